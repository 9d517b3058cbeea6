import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { upgradeState, type MeterStateV1, type StoredMeterState } from '../src/state.ts';
import { FileStore } from '../src/store.ts';
import { HH, T0, eventCodes, makeMeter, readings, signed } from './helpers.ts';

/**
 * `fixtures/M1.format1.json` was written by the format-1 meter (before the split) after a
 * scripted life: prepayment, a top-up, a future tariff, supply off/arm/button, a stale
 * command, a duplicate top-up, a firmware command, an outage, an ack, one reply delivered.
 * The expected figures below are what the format-1 code itself produced from that file.
 */
const FIXTURE = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'M1.format1.json');
const uid = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function fixtureCopy(edit?: (s: MeterStateV1) => void): string {
  const d = mkdtempSync(join(tmpdir(), 'kw-fmt-'));
  dirs.push(d);
  const path = join(d, 'M1.json');
  if (edit) {
    const s = JSON.parse(readFileSync(FIXTURE, 'utf8')) as MeterStateV1;
    edit(s);
    writeFileSync(path, JSON.stringify(s));
  } else {
    copyFileSync(FIXTURE, path);
  }
  return path;
}
const load = (path: string) => makeMeter({ store: new FileStore(path), mode: 'prepayment' });

describe('meter state format 1', () => {
  it('loads into format 2 with every slice in place, and is written back as format 2', () => {
    const path = fixtureCopy();
    const m = load(path);
    const s = m.snapshot();
    expect(s.format).toBe(2);
    expect((JSON.parse(readFileSync(path, 'utf8')) as { format: number }).format).toBe(2);
    expect(s.production).toMatchObject({
      cursor: T0 + 7 * HH,
      registers: { '1.0.1.8.0': 752, '1.0.1.8.1': 0, '1.0.1.8.2': 752, '1.0.2.8.0': 0 },
      openBatch: [],
      powerOn: true,
      outages: [{ from: T0 + 6 * HH + 100, to: T0 + 7 * HH + 900 }],
    });
    expect(s.production.tariff.id).toBe('default');
    expect(s.production.pendingTariff?.id).toBe('eco7');
    expect(s.prepayment).toMatchObject({
      mode: 'prepayment',
      creditMinor: 1441,
      remainderMicro: 24_000,
      lowThresholdMinor: 400,
      standingChargedFor: '2026-01-05',
      appliedTopups: ['TU-1'],
    });
    expect(s.relay).toEqual({ state: 'connected', reason: null });
    // Format 1 knew no sequence: the running image counts as a factory image of sequence 0.
    expect(s.firmware).toEqual({
      active: 'A',
      slots: { A: '1.0.0', B: null },
      images: { A: { version: '1.0.0', sequence: 0, sha256: null }, B: null },
      pending: null,
    });
    expect(s.outbox).toMatchObject({ nextReadingsSeq: 5, nextEventsSeq: 8 });
    expect(s.outbox.entries.map((e) => `${e.stream}:${e.seq}`)).toEqual([
      'events:1',
      'events:2',
      'events:3',
      'events:4',
      'events:5',
      'readings:3',
      'events:6',
      'readings:4',
      'events:7',
    ]);
    // Undelivered replies stay queued; those of commands that consumed a counter seed the memory
    // (not the STALE_COUNTER one: that command was never acted on).
    expect(s.outbox.replies.map((r) => r.id)).toEqual([2, 3, 4, 5, 6, 7, 8].map(uid));
    expect(s.commands.lastCounter).toBe(7);
    expect(s.commands.answered.map((r) => r.id)).toEqual([2, 3, 4, 5, 7, 8].map(uid));
    expect(m.status(T0 + 7 * HH)).toMatchObject({
      firmware: { slot: 'A', version: '1.0.0' },
      lastCounter: 7,
    });
  });

  it('carries on exactly as the format-1 code did from the same file', () => {
    const m = load(fixtureCopy());
    m.advanceTo(T0 + 30 * HH);
    expect(m.registers).toEqual({ '1.0.1.8.0': 7769, '1.0.1.8.1': 5891, '1.0.1.8.2': 1878, '1.0.2.8.0': 0 });
    expect(m.credit).toMatchObject({ creditMinor: 1265, remainderMicro: 395_000, emergencyInUse: false });
    expect(m.tariff.id).toBe('eco7');
    expect(readings(m).map((r) => r.seq)).toEqual([3, 4, 5]);
    expect(
      readings(m)
        .flatMap((r) => r.intervals)
        .slice(0, 4),
    ).toEqual([
      { t: T0 + 5 * HH, wh: 155 },
      { t: T0 + 6 * HH, wh: 7 }, // the outage began 100 s in
      { t: T0 + 7 * HH, wh: 67 }, // and ended 900 s in
      { t: T0 + 8 * HH, wh: 129 },
    ]);
    expect(eventCodes(m)).toEqual([
      'credit.topup_applied',
      'relay.disconnected',
      'relay.armed',
      'credit.topup_duplicate',
      'relay.connected',
      'power.fail',
      'power.restored_long',
      'tariff.applied',
    ]);
    expect(m.status(T0 + 30 * HH)).toMatchObject({ lastCounter: 7, outbox: 11, creditMinor: 1265 });
  });

  it('answers a resend of a command whose reply was still queued in format 1 from memory', () => {
    const m = load(fixtureCopy());
    // Same body as the original (id 4, counter 4); the memory is keyed by the id.
    const off = m.handleCommand(signed({ type: 'supply.off' }, 4, { id: uid(4) }), T0 + 8 * HH);
    expect(off).toMatchObject({ result: 'ok', repeated: true });
    expect(off.reply).toEqual({ v: 1, id: uid(4), counter: 4, t: T0 + 4 * HH + 60, result: 'ok' });
    expect(m.relay.state).toBe('connected');
    const dup = m.handleCommand(
      signed({ type: 'credit.add', topupId: 'TU-1', amountMinor: 500 }, 6, { id: uid(7) }),
      T0,
    );
    expect(dup).toMatchObject({ result: 'rejected', code: 'DUPLICATE_TOPUP', repeated: true });
    // The one refused on its counter was not remembered: it is refused on its counter again.
    const stale = m.handleCommand(signed({ type: 'supply.on' }, 3, { id: uid(6) }), T0 + 8 * HH);
    expect(stale).toMatchObject({ result: 'rejected', code: 'STALE_COUNTER' });
    expect(stale.repeated).toBeUndefined();
  });

  it('maps a meter running from slot B', () => {
    const m = load(
      fixtureCopy((s) => {
        s.firmware = { slot: 'B', version: '1.2.0' };
      }),
    );
    expect(m.snapshot().firmware).toMatchObject({ active: 'B', slots: { A: null, B: '1.2.0' } });
    expect(m.status().firmware).toEqual({ slot: 'B', version: '1.2.0', sequence: 0 });
  });

  it('refuses a format it does not know rather than overwrite it', () => {
    const path = fixtureCopy((s) => {
      (s as unknown as { format: number }).format = 3;
    });
    expect(() => load(path)).toThrow(/unknown meter state format/);
    expect((JSON.parse(readFileSync(path, 'utf8')) as { format: number }).format).toBe(3);
    // A store that does not look at the format (MemoryStore) still cannot slip one past the meter.
    const future = { ...makeMeter().snapshot(), format: 3 } as unknown as StoredMeterState;
    expect(() => upgradeState(future)).toThrow(/unknown meter state format 3/);
  });

  it('needs no migration for three bands: a file without register 1.0.1.8.3 gains it with its first three-band tariff', () => {
    const path = fixtureCopy();
    const m = load(path);
    expect('1.0.1.8.3' in m.registers).toBe(false);
    const tariff = {
      ...m.tariff,
      id: 'peak',
      rates: { '1': 26_110, '2': 14_520, '3': 38_250 },
      band3Windows: [{ from: '00:00', to: '23:59' }],
      effectiveFrom: m.cursor,
    };
    expect(m.handleCommand(signed({ type: 'tariff.set', tariff }, 8), m.cursor).reply?.result).toBe('ok');
    const before = m.registers;
    m.advanceTo(m.cursor + 4 * HH);
    const r = m.registers;
    expect(r['1.0.1.8.3']).toBe(r['1.0.1.8.0'] - before['1.0.1.8.0']);
    expect(r['1.0.1.8.1'] + r['1.0.1.8.2'] + r['1.0.1.8.3']!).toBe(r['1.0.1.8.0']);
    // Written in format 2, and read back the same.
    expect((JSON.parse(readFileSync(path, 'utf8')) as { format: number }).format).toBe(2);
    expect(load(path).registers).toEqual(r);
  });
});
