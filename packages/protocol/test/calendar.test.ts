import { describe, expect, it } from 'vitest';
import {
  DayFinder,
  addDays,
  addMonths,
  billingPeriod,
  daysBetween,
  daysInMonth,
  eachDay,
  inWindow,
  intervalsInDay,
  isIsoDate,
  isIsoMonth,
  isoWithOffset,
  localDate,
  localHourStart,
  localMidnight,
  localMinuteOfDay,
  localParts,
  monthOf,
  monthsBetween,
  todayIn,
  tzOffsetS,
} from '../src/calendar.ts';

// Every figure here is epoch SECONDS. The same module is compared with PostgreSQL over every
// day of 2020-2030 in packages/server/test/calendar-pg.test.ts; these pin the cases by name.
const LONDON = 'Europe/London';
const NEW_YORK = 'America/New_York';
const LORD_HOWE = 'Australia/Lord_Howe'; // +10:30, +11:00 in summer: a 30-minute change
const KOLKATA = 'Asia/Kolkata'; // +05:30 all year
const SANTIAGO = 'America/Santiago'; // DST starts at 00:00: that midnight never happens
const HAVANA = 'America/Havana'; // DST ends at 01:00 -> 00:00: that midnight happens twice

const s = (iso: string): number => Date.parse(iso) / 1000;

describe('plain dates', () => {
  it('steps days across months, years, leap days and clock changes without drifting', () => {
    expect(addDays('2026-10-25', 1)).toBe('2026-10-26');
    expect(addDays('2026-03-30', -1)).toBe('2026-03-29');
    expect(addDays('2026-12-31', 1)).toBe('2027-01-01');
    expect(addDays('2024-02-28', 1)).toBe('2024-02-29');
    expect(addDays('2023-02-28', 1)).toBe('2023-03-01');
    expect(addDays('2026-01-01', -365)).toBe('2025-01-01');
  });

  it('counts whole days between dates, and lists them', () => {
    expect(daysBetween('2026-03-28', '2026-03-30')).toBe(2); // across the UK spring change
    expect(daysBetween('2026-12-31', '2026-01-01')).toBe(-364);
    expect(daysBetween('2024-01-01', '2025-01-01')).toBe(366);
    expect(eachDay('2026-02-27', '2026-03-02')).toEqual([
      '2026-02-27',
      '2026-02-28',
      '2026-03-01',
      '2026-03-02',
    ]);
    expect(eachDay('2026-03-01', '2026-03-01')).toEqual(['2026-03-01']);
    expect(eachDay('2026-03-02', '2026-03-01')).toEqual([]);
  });

  it('knows month lengths, including the century rule', () => {
    expect(daysInMonth(2026, 2)).toBe(28);
    expect(daysInMonth(2024, 2)).toBe(29);
    expect(daysInMonth(2100, 2)).toBe(28);
    expect(daysInMonth(2000, 2)).toBe(29);
    expect(daysInMonth(2026, 4)).toBe(30);
    expect(daysInMonth(2026, 12)).toBe(31);
  });

  it('steps months to their first day, across year ends, and counts months between', () => {
    expect(addMonths('2026-01-31', 1)).toBe('2026-02-01');
    expect(addMonths('2026-01-15', -1)).toBe('2025-12-01');
    expect(addMonths('2026-12-31', 1)).toBe('2027-01-01');
    expect(addMonths('2026-03', -27)).toBe('2023-12-01');
    expect(monthOf('2026-10-25')).toBe('2026-10');
    expect(monthsBetween('2025-11', '2026-02')).toBe(3);
    expect(monthsBetween('2026-02', '2025-11')).toBe(-3);
    expect(monthsBetween('2026-05', '2026-05')).toBe(0);
    expect(monthsBetween('2016-01', '2026-01')).toBe(120);
    expect(monthsBetween('2026-01-31', '2026-02-01')).toBe(1);
  });

  it('validates dates and months', () => {
    expect(isIsoDate('2026-02-28')).toBe(true);
    expect(isIsoDate('2024-02-29')).toBe(true);
    for (const bad of [
      '2026-02-29',
      '2026-02-30',
      '2026-13-01',
      '2026-00-10',
      '2026-04-31',
      '26-02-01',
      '2026-2-1',
      '',
    ])
      expect(isIsoDate(bad)).toBe(false);
    expect(isIsoMonth('2026-12')).toBe(true);
    for (const bad of ['2026-13', '2026-00', '2026-1', '2026-01-01']) expect(isIsoMonth(bad)).toBe(false);
  });
});

describe('billing periods', () => {
  it('start on the cycle day of this month from that day on, else of the previous month', () => {
    expect(billingPeriod('2026-03-15', 15)).toEqual({ start: '2026-03-15', end: '2026-04-15' });
    expect(billingPeriod('2026-03-14', 15)).toEqual({ start: '2026-02-15', end: '2026-03-15' });
    expect(billingPeriod('2026-03-31', 15)).toEqual({ start: '2026-03-15', end: '2026-04-15' });
    expect(billingPeriod('2026-03-01', 1)).toEqual({ start: '2026-03-01', end: '2026-04-01' });
    expect(billingPeriod('2026-03-31', 1)).toEqual({ start: '2026-03-01', end: '2026-04-01' });
  });

  it('cross month ends and year ends', () => {
    expect(billingPeriod('2026-01-10', 28)).toEqual({ start: '2025-12-28', end: '2026-01-28' });
    expect(billingPeriod('2026-12-31', 28)).toEqual({ start: '2026-12-28', end: '2027-01-28' });
    expect(billingPeriod('2027-01-01', 1)).toEqual({ start: '2027-01-01', end: '2027-02-01' });
    expect(billingPeriod('2026-12-31', 1)).toEqual({ start: '2026-12-01', end: '2027-01-01' });
    expect(billingPeriod('2024-02-29', 28)).toEqual({ start: '2024-02-28', end: '2024-03-28' });
    expect(billingPeriod('2026-03-27', 28)).toEqual({ start: '2026-02-28', end: '2026-03-28' });
  });

  it('refuse a cycle day outside 1..28', () => {
    for (const bad of [0, 29, 31, 1.5, Number.NaN])
      expect(() => billingPeriod('2026-03-01', bad)).toThrow(RangeError);
  });
});

describe('wall clocks', () => {
  it('knows the UTC offset at an instant, in seconds', () => {
    expect(tzOffsetS(s('2026-07-01T00:00:00Z'), LONDON)).toBe(3600);
    expect(tzOffsetS(s('2026-12-01T00:00:00Z'), LONDON)).toBe(0);
    expect(tzOffsetS(s('2026-07-01T00:00:00Z'), NEW_YORK)).toBe(-4 * 3600);
    expect(tzOffsetS(s('2026-12-01T00:00:00Z'), NEW_YORK)).toBe(-5 * 3600);
    expect(tzOffsetS(s('2026-07-01T00:00:00Z'), KOLKATA)).toBe(19_800);
    expect(tzOffsetS(s('2026-07-01T00:00:00Z'), LORD_HOWE)).toBe(37_800);
    expect(tzOffsetS(s('2026-01-01T00:00:00Z'), LORD_HOWE)).toBe(39_600);
    expect(tzOffsetS(s('2026-07-01T00:00:00Z'), 'Asia/Kathmandu')).toBe(20_700);
  });

  it('reads local parts, weekday included', () => {
    expect(localParts(s('2026-01-04T23:30:15Z'), KOLKATA)).toEqual({
      year: 2026,
      month: 1,
      day: 5,
      hour: 5,
      minute: 0,
      second: 15,
      weekday: 1,
    });
    expect(localParts(s('2026-01-01T00:00:00Z'), NEW_YORK)).toMatchObject({
      year: 2025,
      month: 12,
      day: 31,
      hour: 19,
    });
    // Midnight is hour 0, never 24.
    expect(localParts(s('2026-06-30T23:00:00Z'), LONDON)).toMatchObject({ day: 1, hour: 0, weekday: 3 });
    expect(localMinuteOfDay(s('2026-06-30T23:30:00Z'), LONDON)).toBe(30);
    expect(localMinuteOfDay(s('2026-07-01T18:29:00Z'), KOLKATA)).toBe(23 * 60 + 59);
  });

  it('gives the local date and today of an instant', () => {
    const t = s('2026-07-01T23:30:00Z');
    expect(localDate(t, LONDON)).toBe('2026-07-02');
    expect(todayIn(LONDON, t)).toBe('2026-07-02');
    expect(todayIn('UTC', t)).toBe('2026-07-01');
    expect(todayIn(NEW_YORK, t)).toBe('2026-07-01');
    expect(localDate(s('2026-06-30T18:29:59Z'), KOLKATA)).toBe('2026-06-30');
    expect(localDate(s('2026-06-30T18:30:00Z'), KOLKATA)).toBe('2026-07-01');
  });

  it('matches time-of-use windows, also across midnight', () => {
    expect(inWindow(30, '00:30', '07:30')).toBe(true);
    expect(inWindow(450, '00:30', '07:30')).toBe(false);
    expect(inWindow(29, '00:30', '07:30')).toBe(false);
    expect(inWindow(1439, '18:00', '08:00')).toBe(true);
    expect(inWindow(0, '18:00', '08:00')).toBe(true);
    expect(inWindow(479, '18:00', '08:00')).toBe(true);
    expect(inWindow(480, '18:00', '08:00')).toBe(false);
    expect(inWindow(1079, '18:00', '08:00')).toBe(false);
  });
});

describe('ISO 8601 with the offset, on both sides of a change', () => {
  it.each([
    [LONDON, '2026-03-29T00:59:59Z', '2026-03-29T00:59:59+00:00'],
    [LONDON, '2026-03-29T01:00:00Z', '2026-03-29T02:00:00+01:00'],
    [LONDON, '2026-10-25T00:30:00Z', '2026-10-25T01:30:00+01:00'],
    [LONDON, '2026-10-25T01:30:00Z', '2026-10-25T01:30:00+00:00'],
    [NEW_YORK, '2026-03-08T06:59:59Z', '2026-03-08T01:59:59-05:00'],
    [NEW_YORK, '2026-03-08T07:00:00Z', '2026-03-08T03:00:00-04:00'],
    [NEW_YORK, '2026-11-01T05:30:00Z', '2026-11-01T01:30:00-04:00'],
    [NEW_YORK, '2026-11-01T06:30:00Z', '2026-11-01T01:30:00-05:00'],
    [LORD_HOWE, '2026-04-04T14:59:59Z', '2026-04-05T01:59:59+11:00'],
    [LORD_HOWE, '2026-04-04T15:00:00Z', '2026-04-05T01:30:00+10:30'],
    [LORD_HOWE, '2026-10-03T15:29:59Z', '2026-10-04T01:59:59+10:30'],
    [LORD_HOWE, '2026-10-03T15:30:00Z', '2026-10-04T02:30:00+11:00'],
    [KOLKATA, '2026-07-01T00:00:00Z', '2026-07-01T05:30:00+05:30'],
    ['UTC', '2026-07-01T00:00:00Z', '2026-07-01T00:00:00+00:00'],
  ])('%s at %s is %s', (tz, at, iso) => {
    expect(isoWithOffset(s(at), tz)).toBe(iso);
    // The string names the same instant again.
    expect(Date.parse(iso) / 1000).toBe(s(at));
  });
});

describe('local days', () => {
  it('start at local midnight, whatever the offset', () => {
    const at = (date: string, tz: string): string => isoWithOffset(localMidnight(date, tz), tz);
    expect(at('2026-03-29', LONDON)).toBe('2026-03-29T00:00:00+00:00');
    expect(at('2026-03-30', LONDON)).toBe('2026-03-30T00:00:00+01:00');
    expect(at('2026-10-25', LONDON)).toBe('2026-10-25T00:00:00+01:00');
    expect(at('2026-10-26', LONDON)).toBe('2026-10-26T00:00:00+00:00');
    expect(at('2026-07-01', NEW_YORK)).toBe('2026-07-01T00:00:00-04:00');
    expect(at('2026-04-05', LORD_HOWE)).toBe('2026-04-05T00:00:00+11:00');
    expect(at('2026-04-06', LORD_HOWE)).toBe('2026-04-06T00:00:00+10:30');
    expect(localMidnight('2026-07-01', KOLKATA)).toBe(s('2026-06-30T18:30:00Z'));
  });

  it('start at the first instant of the date when the clocks skip midnight', () => {
    // Santiago, 2026-09-06: 00:00 -04 becomes 01:00 -03, so the day starts reading 01:00.
    const t = localMidnight('2026-09-06', SANTIAGO);
    expect(isoWithOffset(t, SANTIAGO)).toBe('2026-09-06T01:00:00-03:00');
    expect(localDate(t, SANTIAGO)).toBe('2026-09-06');
    expect(localDate(t - 1, SANTIAGO)).toBe('2026-09-05');
    // PostgreSQL's '2026-09-06'::timestamp AT TIME ZONE 'America/Santiago' is the same instant.
    expect(t).toBe(s('2026-09-06T04:00:00Z'));
    expect(isoWithOffset(localMidnight('2026-03-29', 'Asia/Beirut'), 'Asia/Beirut')).toBe(
      '2026-03-29T01:00:00+03:00',
    );
  });

  it('start at the first of two midnights when the clocks go back to 00:00', () => {
    // Havana, 2023-11-05: 01:00 -04 becomes 00:00 -05. PostgreSQL's AT TIME ZONE picks the later
    // 00:00 here; the day has to start at the first, or its first hour would belong to no day.
    const t = localMidnight('2023-11-05', HAVANA);
    expect(isoWithOffset(t, HAVANA)).toBe('2023-11-05T00:00:00-04:00');
    expect(localDate(t - 1, HAVANA)).toBe('2023-11-04');
    expect(intervalsInDay('2023-11-05', HAVANA, 1800)).toBe(50);
  });

  it.each([
    [LONDON, '2026-03-29', 1800, 46],
    [LONDON, '2026-06-01', 1800, 48],
    [LONDON, '2026-10-25', 1800, 50],
    [LONDON, '2026-03-29', 900, 92],
    [LONDON, '2026-10-25', 900, 100],
    [NEW_YORK, '2026-03-08', 1800, 46],
    [NEW_YORK, '2026-11-01', 1800, 50],
    [LORD_HOWE, '2026-10-04', 1800, 47],
    [LORD_HOWE, '2026-04-05', 1800, 49],
    [LORD_HOWE, '2026-04-05', 900, 98],
    [KOLKATA, '2026-03-29', 1800, 48],
    [KOLKATA, '2026-10-25', 900, 96],
    [SANTIAGO, '2026-04-04', 1800, 50],
    [SANTIAGO, '2026-09-06', 1800, 46],
  ])('%s on %s has %i intervals of %i s', (tz, date, intervalS, n) => {
    expect(intervalsInDay(date, tz, intervalS)).toBe(n);
  });
});

describe('local clock hours', () => {
  it('start at the full local hour, also in half-hour zones and in the repeated hour', () => {
    expect(localHourStart(s('2026-07-01T12:34:56Z'), LONDON)).toBe(s('2026-07-01T12:00:00Z'));
    expect(localHourStart(s('2026-07-01T05:15:00Z'), KOLKATA)).toBe(s('2026-07-01T04:30:00Z'));
    // London's repeated 01:00-02:00 is two hours, one per offset.
    expect(localHourStart(s('2026-10-25T00:30:00Z'), LONDON)).toBe(s('2026-10-25T00:00:00Z'));
    expect(localHourStart(s('2026-10-25T01:30:00Z'), LONDON)).toBe(s('2026-10-25T01:00:00Z'));
  });

  it("follow PostgreSQL's date_trunc('hour') after Lord Howe's 30-minute fall-back", () => {
    // 01:45 first pass (+11) belongs to the hour from 01:00 +11; 01:45 second pass (+10:30)
    // to an hour keyed 01:30 +11, thirty minutes later: t minus the wall clock's minutes.
    expect(localHourStart(s('2026-04-04T14:45:00Z'), LORD_HOWE)).toBe(s('2026-04-04T14:00:00Z'));
    expect(localHourStart(s('2026-04-04T15:15:00Z'), LORD_HOWE)).toBe(s('2026-04-04T14:30:00Z'));
  });
});

describe('DayFinder', () => {
  /** Every 5 minutes over three days around `around`, in a fixed shuffled order. */
  function shuffledAround(around: string): number[] {
    const from = s(around) - 1.5 * 86_400;
    const ts = Array.from({ length: (3 * 86_400) / 300 }, (_, i) => from + i * 300);
    let seed = 12_345;
    for (let i = ts.length - 1; i > 0; i--) {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      const j = seed % (i + 1);
      [ts[i], ts[j]] = [ts[j]!, ts[i]!];
    }
    return ts;
  }

  it.each([
    [LONDON, '2026-03-29T01:00:00Z'],
    [LONDON, '2026-10-25T01:00:00Z'],
    [NEW_YORK, '2026-11-01T06:00:00Z'],
    [LORD_HOWE, '2026-04-04T15:00:00Z'],
    [LORD_HOWE, '2026-10-03T15:30:00Z'],
    [KOLKATA, '2026-06-30T18:30:00Z'],
    [SANTIAGO, '2026-09-06T04:00:00Z'],
    [SANTIAGO, '2026-04-05T03:00:00Z'],
    [HAVANA, '2023-11-05T05:00:00Z'],
    // Newfoundland went back from 00:01 to 23:01 until 2011: an hour of 2010-11-07's span reads 2010-11-06.
    ['America/St_Johns', '2010-11-07T02:31:00Z'],
  ])('answers as localDate in any order around %s %s', (tz, around) => {
    const finder = new DayFinder();
    for (const t of shuffledAround(around)) expect(finder.day(t, tz), String(t)).toBe(localDate(t, tz));
  });

  it('keeps one span per zone, so interleaved zones do not evict each other', () => {
    const finder = new DayFinder();
    const t = s('2026-07-01T20:00:00Z');
    expect(finder.day(t, KOLKATA)).toBe('2026-07-02');
    expect(finder.day(t, NEW_YORK)).toBe('2026-07-01');
    expect(finder.day(t + 60, KOLKATA)).toBe('2026-07-02');
    expect(finder.day(t + 60, NEW_YORK)).toBe('2026-07-01');
  });
});
