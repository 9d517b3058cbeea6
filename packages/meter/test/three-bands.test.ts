import { describe, expect, it } from 'vitest';
import {
  OBIS,
  decodeUp,
  encodeUp,
  localDate,
  localMidnight,
  localParts,
  type TariffSpec,
} from '@kilowire/protocol';
import { DEFAULT_TARIFF } from '../src/meter.ts';
import { MemoryStore } from '../src/store.ts';
import { DAY, HH, eventCodes, makeMeter, readings, signed } from './helpers.ts';

const TZ = 'Europe/London';
/**
 * Night 23:00-07:00 (band 2) with a morning peak 06:30-07:30 that overlaps it, and an evening
 * peak 16:00-19:00 (band 3). Standing charge 53.35 p/day, exact only in thousandths.
 */
const PEAK: TariffSpec = {
  id: 'peak-test',
  version: 1,
  currency: 'GBP',
  rates: { '1': 26_110, '2': 14_520, '3': 38_250 },
  band2Windows: [{ from: '23:00', to: '07:00' }],
  band3Windows: [
    { from: '06:30', to: '07:30' },
    { from: '16:00', to: '19:00' },
  ],
  standingChargeMinorPerDay: 53,
  standingChargeMilliPerDay: 53_350,
  effectiveFrom: 946_684_800,
};
const RATE = { 1: 26_110, 2: 14_520, 3: 38_250 } as const;

/**
 * The band of a half-hour by its local start, written out by hand (not by the meter's rule):
 * the two peak windows first, because peak wins where it overlaps the night.
 */
function handBand(t: number): 1 | 2 | 3 {
  const p = localParts(t, TZ);
  const hhmm = `${String(p.hour).padStart(2, '0')}:${String(p.minute).padStart(2, '0')}`;
  if (['06:30', '07:00', '16:00', '16:30', '17:00', '17:30', '18:00', '18:30'].includes(hhmm)) return 3;
  if (p.hour >= 23 || p.hour < 7) return 2;
  return 1;
}

const day = (date: string) => {
  const next = new Date(`${date}T12:00:00Z`);
  next.setUTCDate(next.getUTCDate() + 1);
  return [localMidnight(date, TZ), localMidnight(next.toISOString().slice(0, 10), TZ)] as const;
};

describe('three time-of-use bands', () => {
  it.each([
    // Spring: 01:00-02:00 local never happens (46 half-hours); 13 of night, 8 of peak, 25 of day.
    ['2026-03-29', 46, { 1: 25, 2: 13, 3: 8 }],
    // Autumn: 01:00-02:00 local happens twice (50 half-hours), both times at night.
    ['2026-10-25', 50, { 1: 25, 2: 17, 3: 8 }],
    ['2026-07-01', 48, { 1: 25, 2: 15, 3: 8 }],
  ] as const)('on %s (%i half-hours) sorts energy into rates 1, 2 and 3 by local time', (date, n, count) => {
    const [from, to] = day(date);
    const m = makeMeter({ startS: from, tariff: PEAK, flushPartial: true });
    m.advanceTo(to);
    const ivs = readings(m).flatMap((r) => r.intervals);
    expect(ivs).toHaveLength(n);
    const perBand = { 1: 0, 2: 0, 3: 0 };
    const whBand = { 1: 0, 2: 0, 3: 0 };
    for (const iv of ivs) {
      perBand[handBand(iv.t)]++;
      whBand[handBand(iv.t)] += iv.wh;
    }
    expect(perBand).toEqual(count);
    const r = m.registers;
    expect(r[OBIS.importRate1]).toBe(whBand[1]);
    expect(r[OBIS.importRate2]).toBe(whBand[2]);
    expect(r[OBIS.importRate3]).toBe(whBand[3]);
    expect(whBand[3]).toBeGreaterThan(0);
    expect(r[OBIS.importRate1] + r[OBIS.importRate2] + r[OBIS.importRate3]!).toBe(r[OBIS.importTotal]);
    // The message puts the new register in schema order and survives the codec unchanged.
    for (const msg of readings(m)) {
      expect(Object.keys(msg.registers)).toEqual([
        OBIS.importTotal,
        OBIS.importRate1,
        OBIS.importRate2,
        OBIS.importRate3,
        OBIS.exportTotal,
      ]);
      expect(decodeUp('readings', encodeUp('readings', msg))).toEqual(msg);
    }
    expect(decodeUp('status', m.statusPayload()).registers[OBIS.importRate3]).toBe(whBand[3]);
  });

  it('prepayment debits each band at its rate and the exact standing charge once per local day, across both clock changes', () => {
    const credit = 1_000_000;
    for (const date of ['2026-03-29', '2026-10-25']) {
      const [from] = day(date);
      const [, to] = day(localDate(from + 30 * 3600, TZ)); // the clock-change day and the day after
      const m = makeMeter({
        startS: from,
        tariff: PEAK,
        mode: 'prepayment',
        initialCreditMinor: credit,
        profile: { sizeFactor: 1.6, hasSolar: false },
        flushPartial: true,
      });
      m.advanceTo(to);
      const ivs = readings(m).flatMap((r) => r.intervals);
      expect(ivs).toHaveLength(date === '2026-03-29' ? 46 + 48 : 50 + 48);
      let micro = 0;
      for (const iv of ivs) micro += iv.wh * RATE[handBand(iv.t)];
      // Two local days, one of 23 or 25 hours: two standing charges of 53.35 p.
      micro += 2 * 53_350 * 1000;
      expect(m.credit.creditMinor).toBe(credit - Math.floor(micro / 1_000_000));
      expect(m.credit.remainderMicro).toBe(micro % 1_000_000);
    }
  });

  it('a standing charge in thousandths is exact where whole pence are not: 53.35 p a day for 20 days', () => {
    const [from] = day('2026-07-01');
    const flat: TariffSpec = { ...PEAK, rates: { '1': 0, '2': 0, '3': 0 } };
    const m = makeMeter({ startS: from, tariff: flat, mode: 'prepayment', initialCreditMinor: 5_000 });
    m.advanceTo(from + 20 * DAY);
    expect(5_000 - m.credit.creditMinor).toBe(1_067); // 20 x 53.35 p = 1,067.00 p
    expect(m.credit.remainderMicro).toBe(0);
    // The same tariff without the exact field falls back to whole minor units (an older head-end).
    const { standingChargeMilliPerDay: _x, ...older } = flat;
    const o = makeMeter({ startS: from, tariff: older, mode: 'prepayment', initialCreditMinor: 5_000 });
    o.advanceTo(from + 20 * DAY);
    expect(5_000 - o.credit.creditMinor).toBe(20 * 53);
  });

  it('reports 1.0.1.8.3 from the first three-band tariff on, also after a later two-band one', () => {
    const [from] = day('2026-07-01');
    const store = new MemoryStore();
    const m = makeMeter({ startS: from, batchIntervals: 48, store });
    m.advanceTo(from + DAY);
    const before = readings(m);
    expect(before.every((r) => !(OBIS.importRate3 in r.registers))).toBe(true);
    expect(OBIS.importRate3 in m.status().registers).toBe(false);
    // Scheduled for the next local midnight: pending until then.
    const at = from + 2 * DAY;
    const out = m.handleCommand(
      signed({ type: 'tariff.set', tariff: { ...PEAK, effectiveFrom: at } }, 1),
      from + DAY,
    );
    expect(out.reply).toMatchObject({ result: 'ok', detail: 'scheduled' });
    m.advanceTo(at);
    expect(OBIS.importRate3 in m.registers).toBe(false);
    m.advanceTo(at + HH); // it takes over at the first interval starting at or after its date (00:00: night)
    expect(m.registers[OBIS.importRate3]).toBe(0);
    expect(m.tariff.id).toBe('peak-test');
    expect(eventCodes(m)).toContain('tariff.applied');
    m.advanceTo(at + DAY);
    const peakWh = m.registers[OBIS.importRate3]!;
    expect(peakWh).toBeGreaterThan(0);
    // Back to two bands: the register stays, frozen, so the head-end's band-3 figures stay continuous.
    m.handleCommand(
      signed({ type: 'tariff.set', tariff: { ...DEFAULT_TARIFF, effectiveFrom: at + DAY } }, 2),
      at + DAY,
    );
    m.advanceTo(at + 2 * DAY);
    expect(m.registers[OBIS.importRate3]).toBe(peakWh);
    expect(readings(m).at(-1)!.registers[OBIS.importRate3]).toBe(peakWh);
    const r = m.registers;
    expect(r[OBIS.importRate1] + r[OBIS.importRate2] + r[OBIS.importRate3]!).toBe(r[OBIS.importTotal]);
    // Persisted: a restart from the store keeps reporting it.
    const again = makeMeter({ store });
    expect(again.registers[OBIS.importRate3]).toBe(peakWh);
  });
});
