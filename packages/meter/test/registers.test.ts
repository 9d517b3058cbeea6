import { describe, expect, it } from 'vitest';
import {
  OBIS,
  decodeUp,
  encodeUp,
  inWindow,
  localDate,
  localMidnight,
  localMinuteOfDay,
  localParts,
} from '@kilowire/protocol';
import { BACKLOG_BATCH } from '../src/meter.ts';
import { DAY, HH, T0, makeMeter, readings } from './helpers.ts';

const intervalsOf = (m: ReturnType<typeof makeMeter>) => readings(m).flatMap((r) => r.intervals);

describe('registers and intervals', () => {
  it('only grow, and agree with the intervals and the rate split over a month', () => {
    const m = makeMeter({
      profile: { hasSolar: true, solarPeakW: 4000 },
      startS: Date.UTC(2026, 5, 1) / 1000,
    });
    const start = m.cursor;
    let prev = m.registers;
    for (let t = start + HH; t <= start + 30 * DAY; t += 7 * HH) {
      m.advanceTo(t);
      const r = m.registers;
      for (const k of Object.values(OBIS)) expect(r[k] ?? 0).toBeGreaterThanOrEqual(prev[k] ?? 0);
      prev = r;
    }
    m.advanceTo(start + 30 * DAY);
    m.flush();
    const ivs = intervalsOf(m);
    expect(ivs).toHaveLength(30 * 48);
    const r = m.registers;
    const sumWh = ivs.reduce((a, iv) => a + iv.wh, 0);
    const sumExp = ivs.reduce((a, iv) => a + (iv.exp ?? 0), 0);
    expect(sumWh).toBe(r[OBIS.importTotal]);
    expect(sumExp).toBe(r[OBIS.exportTotal]);
    expect(sumExp).toBeGreaterThan(0); // a June month of a solar house exports
    expect(r[OBIS.importRate1] + r[OBIS.importRate2]).toBe(r[OBIS.importTotal]);
    // Band 2 is 00:00-07:00 local under the default tariff (BST in June: local = UTC+1).
    const night = ivs
      .filter((iv) => inWindow(localMinuteOfDay(iv.t, 'Europe/London'), '00:00', '07:00'))
      .reduce((a, iv) => a + iv.wh, 0);
    expect(r[OBIS.importRate2]).toBe(night);
    expect(r[OBIS.importRate2]).toBeGreaterThan(0);
    // Each message's registers are the running total at the end of its last interval.
    let running = 0;
    for (const msg of readings(m)) {
      running += msg.intervals.reduce((a, iv) => a + iv.wh, 0);
      expect(msg.registers[OBIS.importTotal]).toBe(running);
      expect(decodeUp('readings', encodeUp('readings', msg))).toEqual(msg);
    }
  });

  it.each([
    ['2026-03-29', 46],
    ['2026-10-25', 50],
    ['2026-07-01', 48],
  ])('local day %s in Europe/London has %i half-hours', (date, expected) => {
    const from = localMidnight(date, 'Europe/London');
    const to = localMidnight(
      date.slice(0, 8) + String(Number(date.slice(8)) + 1).padStart(2, '0'),
      'Europe/London',
    );
    const m = makeMeter({ startS: from, flushPartial: true });
    m.advanceTo(to);
    const ivs = intervalsOf(m);
    expect(ivs).toHaveLength(expected);
    expect(ivs.every((iv) => localDate(iv.t, 'Europe/London') === date)).toBe(true);
    expect(m.cursor).toBe(to);
  });

  it('backlogByLocalDay: a backlog closes at every local midnight, also across the clock change', () => {
    const start = localMidnight('2026-03-27', 'Europe/London') + 10 * 3600 + 1800; // Friday 10:30
    const end = localMidnight('2026-03-31', 'Europe/London');
    const m = makeMeter({ startS: start, backlogByLocalDay: true });
    m.advanceTo(end);
    const msgs = readings(m);
    // Friday from 10:30 (27 half-hours), Saturday (48), Sunday the 29th (46: 01:00-02:00 never happens), Monday (48).
    expect(msgs.map((r) => r.intervals.length)).toEqual([27, 48, 46, 48]);
    let running = 0;
    for (const r of msgs) {
      const last = r.intervals.at(-1)!;
      const endS = last.t + 1800;
      expect(localMinuteOfDay(endS, 'Europe/London')).toBe(0); // each message ends at a local midnight
      running += r.intervals.reduce((a, iv) => a + iv.wh, 0);
      expect(r.registers[OBIS.importTotal]).toBe(running);
    }
    // Without the option, the same backlog goes in batches of exactly 48.
    const plain = makeMeter({ startS: start });
    plain.advanceTo(end);
    expect(readings(plain).map((r) => r.intervals.length)).toEqual([48, 48, 48, 25]);
  });

  it('batches: steady state by batchIntervals, a backlog in day batches', () => {
    const m = makeMeter({ batchIntervals: 4 });
    for (let i = 1; i <= 8; i++) m.advanceTo(T0 + i * HH);
    expect(readings(m).map((r) => r.intervals.length)).toEqual([4, 4]);
    m.advanceTo(T0 + 8 * HH + 3 * DAY + 5 * HH); // a restart after three days
    const sizes = readings(m).map((r) => r.intervals.length);
    expect(sizes).toEqual([4, 4, BACKLOG_BATCH, BACKLOG_BATCH, BACKLOG_BATCH, 5]);
    expect(readings(m).map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    // A partial batch waits for the next advance unless flushPartial asks otherwise.
    m.advanceTo(m.cursor + HH);
    expect(readings(m)).toHaveLength(6);
    const partial = makeMeter({ batchIntervals: 4, flushPartial: true });
    partial.advanceTo(T0 + HH);
    expect(readings(partial).map((r) => r.intervals.length)).toEqual([1]);
  });

  it('produces nothing for a partial interval and never runs ahead of the given time', () => {
    const m = makeMeter();
    expect(m.advanceTo(T0 + HH - 1)).toBe(0);
    expect(m.advanceTo(T0 + HH)).toBe(1);
    expect(m.cursor).toBe(T0 + HH);
    expect(m.advanceTo(T0)).toBe(0);
  });
});

describe('load shape', () => {
  function month(startS: number, seed = 7) {
    const m = makeMeter({
      startS,
      seed,
      profile: { baseLoadW: 200, sizeFactor: 1, hasSolar: false },
      flushPartial: true,
    });
    m.advanceTo(startS + 30 * DAY);
    return intervalsOf(m).map((iv) => ({ ...iv, p: localParts(iv.t, 'Europe/London') }));
  }
  const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

  it('has an evening peak well above the night base, and a morning peak on weekdays', () => {
    const ivs = month(T0);
    const evening = avg(ivs.filter((i) => i.p.hour >= 17 && i.p.hour < 21).map((i) => i.wh));
    const night = avg(ivs.filter((i) => i.p.hour >= 1 && i.p.hour < 5).map((i) => i.wh));
    const weekdayMorning = avg(
      ivs
        .filter((i) => i.p.hour >= 7 && i.p.hour < 9 && i.p.weekday >= 1 && i.p.weekday <= 5)
        .map((i) => i.wh),
    );
    expect(evening).toBeGreaterThan(2.5 * night);
    expect(weekdayMorning).toBeGreaterThan(2 * night);
    // A plausible UK household: a few to a few tens of kWh per day.
    const dailyKWh = ivs.reduce((a, i) => a + i.wh, 0) / 30 / 1000;
    expect(dailyKWh).toBeGreaterThan(5);
    expect(dailyKWh).toBeLessThan(30);
  });

  it('is busier at weekends during the day, and higher in winter than in summer', () => {
    const jan = month(T0);
    const day = (i: (typeof jan)[number]) => i.p.hour >= 10 && i.p.hour < 16;
    const weekend = avg(
      jan.filter((i) => day(i) && (i.p.weekday === 0 || i.p.weekday === 6)).map((i) => i.wh),
    );
    const weekday = avg(jan.filter((i) => day(i) && i.p.weekday >= 1 && i.p.weekday <= 5).map((i) => i.wh));
    expect(weekend).toBeGreaterThan(weekday * 1.2);
    const jul = month(Date.UTC(2026, 6, 6) / 1000);
    const total = (xs: typeof jan) => xs.reduce((a, i) => a + i.wh, 0);
    expect(total(jan)).toBeGreaterThan(total(jul) * 1.3);
  });

  it('is deterministic for a seed and differs between seeds', () => {
    const a = month(T0, 1).map((i) => i.wh);
    expect(month(T0, 1).map((i) => i.wh)).toEqual(a);
    expect(month(T0, 2).map((i) => i.wh)).not.toEqual(a);
  });
});
