import { isoWithOffset } from '@kilowire/protocol/calendar';
import { describe, expect, it } from 'vitest';
import type { DayIntervals } from '@kilowire/contract';
import {
  barHeight,
  compare,
  comparisonText,
  dailyBars,
  dayBars,
  hasReadings,
  labelEvery,
  monthlyBars,
  niceMax,
  ticks,
  totalWh,
} from '../src/chart.ts';
import { barsToCsv, csvFileName } from '../src/csv.ts';

const LONDON = 'Europe/London';

/** The intervals answer for the autumn change day, 2026-10-25 (50 half-hours). */
function autumnDay(): DayIntervals {
  const start = Date.parse('2026-10-24T23:00:00Z');
  const intervals = Array.from({ length: 50 }, (_, i) => {
    const t = start + i * 1_800_000;
    return {
      start: isoWithOffset(t / 1000, LONDON),
      startUtc: new Date(t).toISOString(),
      wh: i === 3 ? null : 100 + i,
      estimated: i === 4,
    };
  });
  return {
    serial: 'KW1',
    tz: LONDON,
    date: '2026-10-25',
    intervalS: 1800,
    start: '2026-10-25T00:00:00+01:00',
    end: '2026-10-26T00:00:00+00:00',
    expectedIntervals: 50,
    receivedIntervals: 49,
    estimatedIntervals: 1,
    wh: intervals.reduce((s, i) => s + (i.wh ?? 0), 0),
    intervals,
    cost: null,
  };
}

describe('scaling', () => {
  it('rounds the axis up to a nice number', () => {
    expect(niceMax(0)).toBe(1);
    expect(niceMax(0.83)).toBe(1);
    expect(niceMax(1.2)).toBe(2);
    expect(niceMax(2.1)).toBe(2.5);
    expect(niceMax(3)).toBe(5);
    expect(niceMax(7)).toBe(10);
    expect(niceMax(10)).toBe(10);
    expect(niceMax(12.5)).toBe(20);
    expect(niceMax(240)).toBe(250);
    expect(ticks(0.83)).toEqual([0, 0.25, 0.5, 0.75, 1]);
    expect(ticks(17)).toEqual([0, 5, 10, 15, 20]);
  });
  it('maps values to heights and never overflows', () => {
    expect(barHeight(500, 1000, 200)).toBe(100);
    expect(barHeight(2000, 1000, 200)).toBe(200);
    expect(barHeight(-5, 1000, 200)).toBe(0);
    expect(barHeight(5, 0, 200)).toBe(0);
  });
  it('thins axis labels to fit', () => {
    expect(labelEvery(48, 20)).toBe(3);
    expect(labelEvery(12, 20)).toBe(1);
    expect(labelEvery(31, 0)).toBe(31);
  });
});

describe('bars', () => {
  it('builds one bar per slot of a DST day, marking estimated, missing and future intervals', () => {
    const day = autumnDay();
    const now = Date.parse('2026-10-25T12:10:00Z');
    // No readings yet from 12:00Z (still running) onwards.
    for (const iv of day.intervals)
      if (Date.parse(iv.startUtc) >= Date.parse('2026-10-25T12:00:00Z')) iv.wh = null;
    const bars = dayBars(day, now);
    expect(bars).toHaveLength(50);
    expect(bars[3]?.status).toBe('missing');
    expect(bars[4]?.status).toBe('estimated');
    expect(bars[0]?.status).toBe('measured');
    // 12:00Z is still running at 12:10Z: no reading yet, not "missing".
    expect(bars.find((b) => b.key === '2026-10-25T12:00:00.000Z')?.status).toBe('future');
    // The repeated 01:00 carries its offset so the two are told apart.
    expect(bars[2]?.fullLabel).toBe('01:00 (UTC+01:00)');
    expect(bars[4]?.fullLabel).toBe('01:00 (UTC+00:00)');
    expect(bars.filter((b) => b.status === 'missing')).toHaveLength(1);
    expect(bars[49]?.end).toBe('2026-10-26T00:00:00+00:00');
  });
  it('fills missing days and leaves future days empty', () => {
    const bars = dailyBars(
      {
        days: [
          { day: '2026-10-01', wh: 9000, intervals: 48, estimated: 0 },
          { day: '2026-10-25', wh: 8000, intervals: 50, estimated: 2 },
        ],
      },
      '2026-10-01',
      '2026-10-31',
      LONDON,
      '2026-10-26',
    );
    expect(bars).toHaveLength(31);
    expect(bars[0]).toMatchObject({
      status: 'measured',
      wh: 9000,
      start: '2026-10-01T00:00:00+01:00',
      label: '1',
      fullLabel: 'Thu 1 Oct',
    });
    expect(bars[1]?.status).toBe('missing');
    expect(bars[24]).toMatchObject({
      status: 'estimated',
      start: '2026-10-25T00:00:00+01:00',
      end: '2026-10-26T00:00:00+00:00',
    });
    expect(bars[25]?.status).toBe('missing');
    expect(bars[26]?.status).toBe('future');
    expect(totalWh(bars)).toBe(17_000);
  });
  it('builds twelve months', () => {
    const bars = monthlyBars(
      { months: [{ month: '2026-03', wh: 300_000, intervals: 1486, estimated: 0 }] },
      2026,
      LONDON,
      '2026-11-26',
    );
    expect(bars).toHaveLength(12);
    expect(bars[2]).toMatchObject({
      status: 'measured',
      label: 'Mar',
      start: '2026-03-01T00:00:00+00:00',
      end: '2026-04-01T00:00:00+01:00',
    });
    expect(bars[0]?.status).toBe('missing');
    expect(bars[11]?.status).toBe('future');
  });
  it('compares with the previous period', () => {
    expect(compare(11_000, 10_000)).toEqual({
      currentWh: 11_000,
      previousWh: 10_000,
      diffWh: 1000,
      pct: 10,
      currentMissing: false,
      previousMissing: false,
    });
    expect(compare(7_500, 10_000).pct).toBe(-25);
    expect(compare(5, 0).pct).toBeNull();
  });
  it('states the change when both periods have readings', () => {
    expect(comparisonText(compare(11_000, 10_000), 'day', true)).toEqual({
      previous: 'Same time yesterday: 10.0 kWh',
      change: '10 % more',
      direction: 'up',
    });
    expect(comparisonText(compare(7_500, 10_000), 'month', false)).toEqual({
      previous: 'The month before: 10.0 kWh',
      change: '25 % less',
      direction: 'down',
    });
    expect(comparisonText(compare(4_000, 4_000), 'year', true).change).toBe('the same');
    // Readings that add up to 0 Wh are a real 0: the change is in kWh, not an infinite percent.
    expect(comparisonText(compare(1_500, 0), 'day', false).change).toBe('1.5 kWh more');
  });
  it("says today's readings have not arrived instead of '100 % less'", () => {
    const c = compare(0, 5_200, { current: false, previous: true });
    const t = comparisonText(c, 'day', true);
    expect(t).toEqual({
      previous: 'Same time yesterday: 5.2 kWh',
      change: "today's readings have not arrived yet",
      direction: null,
    });
    expect(JSON.stringify(t)).not.toContain('%');
    expect(comparisonText(c, 'month', true).change).toBe('no readings for this month yet');
    expect(comparisonText(c, 'day', false).change).toBe('no readings for this day');
  });
  it("says last month has no readings instead of '0.0 kWh'", () => {
    const t = comparisonText(compare(80_000, 0, { current: true, previous: false }), 'month', true);
    expect(t).toEqual({
      previous: 'Same point last month: no readings to compare with',
      change: null,
      direction: null,
    });
    expect(t.previous).not.toContain('kWh');
  });
  it('tells readings from gaps in bars', () => {
    const bars = dailyBars({ days: [] }, '2026-11-01', '2026-11-03', LONDON, '2026-11-29');
    expect(hasReadings(bars)).toBe(false);
    const some = dailyBars(
      { days: [{ day: '2026-11-02', wh: 0, intervals: 48, estimated: 0 }] },
      '2026-11-01',
      '2026-11-03',
      LONDON,
      '2026-11-29',
    );
    expect(hasReadings(some)).toBe(true);
  });
});

describe('CSV', () => {
  it('writes ISO 8601 with offsets, integer Wh and flags, one row per past interval', () => {
    const csv = barsToCsv(dayBars(autumnDay(), Date.parse('2026-10-26T12:00:00Z')));
    const lines = csv.trimEnd().split('\r\n');
    expect(lines[0]).toBe('start,end,wh,estimated,missing,intervals,estimated_intervals');
    expect(lines).toHaveLength(51);
    expect(lines[1]).toBe('2026-10-25T00:00:00+01:00,2026-10-25T00:30:00+01:00,100,false,false,1,0');
    expect(lines[3]).toBe('2026-10-25T01:00:00+01:00,2026-10-25T01:30:00+01:00,102,false,false,1,0');
    expect(lines[4]).toBe('2026-10-25T01:30:00+01:00,2026-10-25T01:00:00+00:00,,false,true,0,0');
    expect(lines[5]).toBe('2026-10-25T01:00:00+00:00,2026-10-25T01:30:00+00:00,104,true,false,1,1');
    expect(lines[50]).toBe('2026-10-25T23:30:00+00:00,2026-10-26T00:00:00+00:00,149,false,false,1,0');
    expect(csv.endsWith('\r\n')).toBe(true);
  });
  it('leaves out future periods and names the file safely', () => {
    const bars = dailyBars({ days: [] }, '2026-11-01', '2026-11-30', LONDON, '2026-11-02');
    expect(barsToCsv(bars).trimEnd().split('\r\n')).toHaveLength(3);
    expect(csvFileName('KW 1/2', 'day', '2026-10-25')).toBe('kilowire-KW_1_2-day-2026-10-25.csv');
  });
});
