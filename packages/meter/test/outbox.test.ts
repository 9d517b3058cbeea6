import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeUp } from '@kilowire/protocol';
import { FileStore } from '../src/store.ts';
import { HH, T0, makeMeter, readings } from './helpers.ts';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'kw-meter-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Advance interval by interval, as a live meter does (one readings message each). */
function step(m: ReturnType<typeof makeMeter>, n: number): void {
  for (let i = 0; i < n; i++) m.advanceTo(m.cursor + HH);
}

const seqsOf = (msgs: { kind: string; key: string }[]) => msgs.map((m) => `${m.kind}:${m.key}`);

describe('outbox', () => {
  it('resends with doubling backoff until acknowledged, then forgets', () => {
    const m = makeMeter({ resendAfterMs: 1000, maxResendAfterMs: 3000 });
    step(m, 3);
    expect(seqsOf(m.due(0))).toEqual(['readings:1', 'readings:2', 'readings:3']);
    expect(m.due(999)).toEqual([]);
    expect(m.due(1000)).toHaveLength(3); // attempt 2
    expect(m.due(2999)).toEqual([]); // next after 2 s
    expect(m.due(3000)).toHaveLength(3); // attempt 3
    expect(m.due(5999)).toEqual([]); // capped at 3 s, not 4 s
    expect(m.due(6000)).toHaveLength(3);

    expect(m.handleAck({ v: 1, kind: 'ack', stream: 'readings', upTo: 2 })).toBe(2);
    expect(m.outbox.map((e) => e.seq)).toEqual([3]);
    expect(seqsOf(m.due(60_000))).toEqual(['readings:3']);
    // An ack for the other stream releases nothing.
    expect(m.handleAck({ v: 1, kind: 'ack', stream: 'events', upTo: 99 })).toBe(0);
    expect(m.handleAck({ v: 1, kind: 'ack', stream: 'readings', upTo: 0, seqs: [3] })).toBe(1);
    expect(m.outbox).toHaveLength(0);
    expect(m.due(1e9)).toEqual([]);
  });

  it('honours a resend request at once, and acks of listed seqs out of order', () => {
    const m = makeMeter({ resendAfterMs: 10_000 });
    step(m, 4);
    m.due(0);
    expect(m.due(1)).toEqual([]);
    m.handleAck({ v: 1, kind: 'resend', stream: 'readings', seqs: [2, 4] });
    expect(seqsOf(m.due(2))).toEqual(['readings:2', 'readings:4']);
    expect(m.due(3)).toEqual([]);
    m.handleAck({ v: 1, kind: 'ack', stream: 'readings', upTo: 0, seqs: [1, 3] });
    expect(m.outbox.map((e) => e.seq)).toEqual([2, 4]);
  });

  it('sends events before readings and bounds each call', () => {
    const m = makeMeter();
    step(m, 10);
    m.injectTamper('magnetic', T0 + 10 * HH);
    const first = m.due(0, 4);
    expect(seqsOf(first)).toEqual(['events:1', 'readings:1', 'readings:2', 'readings:3']);
    expect(decodeUp('events', first[0]!.payload).events[0]?.code).toBe('tamper.magnetic');
    expect(m.due(0, 100)).toHaveLength(7);
  });

  it('survives a restart from a FileStore: registers, seqs, outbox and acks', () => {
    const path = join(tmp(), 'M1.json');
    const a = makeMeter({ store: new FileStore(path) });
    step(a, 5);
    a.injectTamper('cover', T0 + 5 * HH);
    a.handleAck({ v: 1, kind: 'ack', stream: 'readings', upTo: 2 });
    a.due(0);

    // Options of a new construction do not override what the meter already is.
    const b = makeMeter({ store: new FileStore(path), seed: 999, startS: T0 + 1000 * HH });
    expect(b.snapshot()).toEqual(a.snapshot());
    expect(b.outbox.map((e) => `${e.stream}:${e.seq}`)).toEqual([
      'readings:3',
      'readings:4',
      'readings:5',
      'events:1',
    ]);
    // Nothing is assumed in flight after a restart: everything unacked is due at once.
    expect(b.due(1)).toHaveLength(4);
    b.advanceTo(T0 + 6 * HH);
    expect(readings(b).at(-1)?.seq).toBe(6);
    // Same seed, same interval: the rebuilt meter continues the very same series.
    a.advanceTo(T0 + 6 * HH);
    expect(readings(b).at(-1)?.intervals).toEqual(readings(a).at(-1)?.intervals);
  });

  it('writes atomically: no temp file left, and a torn temp file is never read', () => {
    const dir = tmp();
    const path = join(dir, 'M1.json');
    const m = makeMeter({ store: new FileStore(path) });
    step(m, 3);
    expect(readdirSync(dir)).toEqual(['M1.json']);
    // What a kill -9 in the middle of a save leaves behind.
    writeFileSync(`${path}.4242.tmp`, '{"format":1,"id":"M1","cur');
    const again = makeMeter({ store: new FileStore(path) });
    expect(again.cursor).toBe(T0 + 3 * HH);
    expect(new FileStore(join(dir, 'nobody.json')).load()).toBeNull();
  });
});
