import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FileStore } from '../src/store.ts';
import { T0, coreState, eventCodes, makeMeter, signed } from './helpers.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function storePath(): string {
  const d = mkdtempSync(join(tmpdir(), 'kw-exp-'));
  dirs.push(d);
  return join(d, 'M1.json');
}

describe('command expiry', () => {
  it('refuses an expired command without applying it, consumes its counter, and still does after a restart', () => {
    const path = storePath();
    const m = makeMeter({ store: new FileStore(path) });
    const id = randomUUID();
    const expired = signed({ type: 'supply.off' }, 3, { id, expiresAt: T0 + 300 });
    const out = m.handleCommand(expired, T0 + 301);
    expect(out).toMatchObject({ result: 'rejected', code: 'EXPIRED' });
    expect(out.reply).toEqual({ v: 1, id, counter: 3, t: T0 + 301, result: 'rejected', code: 'EXPIRED' });
    expect(m.relay).toEqual({ state: 'connected', reason: null });
    expect(m.lastCounter).toBe(3);
    expect(eventCodes(m)).toEqual([]);
    expect(m.pendingReplies).toEqual([out.reply]);

    const rebuilt = makeMeter({ store: new FileStore(path) });
    expect(rebuilt.lastCounter).toBe(3);
    // Resent: the same answer, still not applied, even though the meter's clock is now earlier.
    const again = rebuilt.handleCommand(expired, T0 + 10);
    expect(again).toMatchObject({ result: 'rejected', code: 'EXPIRED', repeated: true });
    expect(again.reply).toEqual(out.reply);
    expect(rebuilt.relay.state).toBe('connected');
    // The consumed counter stays consumed.
    expect(rebuilt.handleCommand(signed({ type: 'supply.off' }, 2), T0 + 20)).toMatchObject({
      result: 'rejected',
      code: 'STALE_COUNTER',
    });
    // At its expiry instant a command is still valid; it is refused only once the clock is past it.
    const onTime = rebuilt.handleCommand(
      signed({ type: 'supply.off' }, 4, { expiresAt: T0 + 400 }),
      T0 + 400,
    );
    expect(onTime.result).toBe('ok');
    expect(rebuilt.relay.state).toBe('disconnected');
    expect(rebuilt.lastCounter).toBe(4);
  });

  it('checks the counter before the expiry: a stale expired command is STALE_COUNTER and changes nothing', () => {
    const m = makeMeter();
    m.handleCommand(signed({ type: 'supply.arm' }, 10), T0);
    const before = coreState(m);
    const out = m.handleCommand(signed({ type: 'supply.off' }, 9, { expiresAt: T0 + 1 }), T0 + 100);
    expect(out).toMatchObject({ result: 'rejected', code: 'STALE_COUNTER' });
    expect(coreState(m)).toEqual(before);
  });
});
