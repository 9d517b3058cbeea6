import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeUp } from '@kilowire/protocol';
import { ANSWERED_MEMORY } from '../src/meter.ts';
import { FileStore } from '../src/store.ts';
import { HH, T0, eventCodes, makeMeter, signed } from './helpers.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function storePath(): string {
  const d = mkdtempSync(join(tmpdir(), 'kw-mem-'));
  dirs.push(d);
  return join(d, 'M1.json');
}

describe('answered commands are remembered', () => {
  it('answers a resent command with its stored reply and applies it once', () => {
    const m = makeMeter({ mode: 'prepayment', initialCreditMinor: 1_000 });
    const offId = randomUUID();
    const off = signed({ type: 'supply.off' }, 1, { id: offId });
    const first = m.handleCommand(off, T0 + 60);
    expect(first.reply).toEqual({ v: 1, id: offId, counter: 1, t: T0 + 60, result: 'ok' });
    m.delivered('replies', offId);
    expect(m.pendingReplies).toEqual([]);

    // The head-end did not see the reply and resends, later, after a newer command changed the relay again.
    expect(m.handleCommand(signed({ type: 'supply.on' }, 2), T0 + 120).result).toBe('ok');
    const again = m.handleCommand(off, T0 + 600);
    expect(again).toMatchObject({ result: 'ok', repeated: true });
    expect(again.reply).toEqual(first.reply); // same t, counter and result: the stored one
    expect(m.relay.state).toBe('connected'); // not applied a second time
    expect(m.lastCounter).toBe(2);
    expect(eventCodes(m)).toEqual(['relay.disconnected', 'relay.connected']);
    // Queued for sending like any reply, first in line.
    const due = m.due(0);
    expect(due[0]?.kind).toBe('replies');
    expect(due.filter((d) => d.kind === 'replies').map((d) => decodeUp('replies', d.payload))).toEqual([
      expect.objectContaining({ counter: 2 }),
      first.reply,
    ]);
  });

  it('never turns an applied top-up into DUPLICATE_TOPUP or STALE_COUNTER when it is resent', () => {
    const m = makeMeter({ mode: 'prepayment', initialCreditMinor: 1_000 });
    const topup = signed({ type: 'credit.add', topupId: 'TU-9', amountMinor: 500 }, 1);
    expect(m.handleCommand(topup, T0).result).toBe('ok');
    for (let i = 0; i < 3; i++) {
      expect(m.handleCommand(topup, T0 + i)).toMatchObject({ result: 'ok', repeated: true });
    }
    expect(m.credit.creditMinor).toBe(1_500);
    expect(eventCodes(m)).toEqual(['credit.topup_applied']);
    // One queued reply per command, not one per resend.
    expect(m.pendingReplies).toHaveLength(1);
  });

  it('keeps the memory across a restart', () => {
    const path = storePath();
    const m = makeMeter({ store: new FileStore(path) });
    const off = signed({ type: 'supply.off', reason: 'tamper' }, 7);
    const first = m.handleCommand(off, T0 + 60);
    m.handleCommand(signed({ type: 'supply.arm' }, 8), T0 + 70);
    m.delivered('replies', first.reply!.id);

    const rebuilt = makeMeter({ store: new FileStore(path) });
    const again = rebuilt.handleCommand(off, T0 + 3 * HH);
    expect(again).toMatchObject({ result: 'ok', repeated: true });
    expect(again.reply).toEqual(first.reply);
    expect(rebuilt.relay).toEqual({ state: 'armed', reason: 'tamper' });
    expect(eventCodes(rebuilt)).toEqual(['relay.disconnected', 'relay.armed']);
    expect(rebuilt.pendingReplies.map((r) => r.counter)).toEqual([8, 7]);
  });

  it('gives a different command with a used counter STALE_COUNTER, and does not remember it', () => {
    const m = makeMeter();
    m.handleCommand(signed({ type: 'supply.off' }, 5), T0);
    const staleId = randomUUID();
    const stale = signed({ type: 'supply.on' }, 5, { id: staleId });
    for (let i = 0; i < 2; i++) {
      const out = m.handleCommand(stale, T0 + 10);
      expect(out).toMatchObject({ result: 'rejected', code: 'STALE_COUNTER' });
      expect(out.repeated).toBeUndefined();
    }
    expect(m.relay.state).toBe('disconnected');
    expect(m.snapshot().commands.answered.map((r) => r.id)).not.toContain(staleId);
  });

  it(`remembers the last ${ANSWERED_MEMORY} answered commands`, () => {
    const m = makeMeter();
    const envs = Array.from({ length: ANSWERED_MEMORY + 1 }, (_, i) => signed({ type: 'supply.arm' }, i + 1));
    for (const e of envs) expect(m.handleCommand(e, T0).result).toBe('ok');
    expect(m.snapshot().commands.answered).toHaveLength(ANSWERED_MEMORY);
    // The oldest has been forgotten; from then on its counter is all the meter knows.
    expect(m.handleCommand(envs[0]!, T0)).toMatchObject({ result: 'rejected', code: 'STALE_COUNTER' });
    expect(m.handleCommand(envs[1]!, T0)).toMatchObject({ result: 'ok', repeated: true });
  });
});
