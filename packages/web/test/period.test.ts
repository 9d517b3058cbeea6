import { describe, expect, it } from 'vitest';
import {
  addDays,
  addMonths,
  contains,
  isIsoDate,
  isoWithOffset,
  localMidnight,
  periodOf,
  previousPeriod,
  shiftDate,
  slotsInDay,
  todayIn,
  tzOffsetMinutes,
} from '../src/period.ts';

const LONDON = 'Europe/London';

describe('calendar navigation', () => {
  it('steps days across months, years and DST changes without drifting', () => {
    expect(addDays('2026-10-25', 1)).toBe('2026-10-26');
    expect(addDays('2026-10-24', 1)).toBe('2026-10-25');
    expect(addDays('2026-03-29', -1)).toBe('2026-03-28');
    expect(addDays('2026-03-30', -1)).toBe('2026-03-29');
    expect(addDays('2026-12-31', 1)).toBe('2027-01-01');
    expect(addDays('2024-02-28', 1)).toBe('2024-02-29');
  });
  it('steps months and years to their first day', () => {
    expect(addMonths('2026-01-31', 1)).toBe('2026-02-01');
    expect(addMonths('2026-01-15', -1)).toBe('2025-12-01');
    expect(shiftDate('month', '2026-03-31', -1)).toBe('2026-02-01');
    expect(shiftDate('year', '2026-07-04', 1)).toBe('2027-01-01');
    expect(shiftDate('day', '2026-10-25', 1)).toBe('2026-10-26');
  });
  it('describes periods and the one before', () => {
    // ICU versions differ on the comma after the weekday.
    expect(periodOf('day', '2026-10-25')).toMatchObject({
      view: 'day',
      from: '2026-10-25',
      to: '2026-10-25',
      label: expect.stringMatching(/^Sunday,? 25 October 2026$/),
    });
    expect(periodOf('month', '2024-02-10')).toMatchObject({
      from: '2024-02-01',
      to: '2024-02-29',
      label: 'February 2024',
    });
    expect(periodOf('year', '2026-06-01')).toMatchObject({
      from: '2026-01-01',
      to: '2026-12-31',
      label: '2026',
    });
    expect(previousPeriod(periodOf('month', '2026-03-15'))).toMatchObject({
      from: '2026-02-01',
      to: '2026-02-28',
    });
    expect(previousPeriod(periodOf('day', '2026-03-01'))).toMatchObject({ from: '2026-02-28' });
    expect(contains(periodOf('month', '2026-11-01'), '2026-11-26')).toBe(true);
    expect(contains(periodOf('month', '2026-10-01'), '2026-11-26')).toBe(false);
  });
  it('validates dates', () => {
    expect(isIsoDate('2026-02-28')).toBe(true);
    expect(isIsoDate('2026-02-30')).toBe(false);
    expect(isIsoDate('26-02-01')).toBe(false);
  });
});

describe('time zones and DST', () => {
  it('knows the UTC offset at an instant', () => {
    expect(tzOffsetMinutes(Date.parse('2026-07-01T00:00:00Z'), LONDON)).toBe(60);
    expect(tzOffsetMinutes(Date.parse('2026-12-01T00:00:00Z'), LONDON)).toBe(0);
    expect(tzOffsetMinutes(Date.parse('2026-07-01T00:00:00Z'), 'America/New_York')).toBe(-240);
    expect(tzOffsetMinutes(Date.parse('2026-07-01T00:00:00Z'), 'Asia/Kolkata')).toBe(330);
  });
  it('finds local midnight with its offset', () => {
    expect(isoWithOffset(localMidnight('2026-10-25', LONDON), LONDON)).toBe('2026-10-25T00:00:00+01:00');
    expect(isoWithOffset(localMidnight('2026-10-26', LONDON), LONDON)).toBe('2026-10-26T00:00:00+00:00');
    expect(isoWithOffset(localMidnight('2026-03-29', LONDON), LONDON)).toBe('2026-03-29T00:00:00+00:00');
    expect(isoWithOffset(localMidnight('2026-03-30', LONDON), LONDON)).toBe('2026-03-30T00:00:00+01:00');
    expect(isoWithOffset(localMidnight('2026-07-01', 'America/New_York'), 'America/New_York')).toBe(
      '2026-07-01T00:00:00-04:00',
    );
  });
  it('writes the repeated hour of the autumn change with both offsets', () => {
    const first = Date.parse('2026-10-25T00:00:00Z'); // 01:00 BST
    expect(isoWithOffset(first, LONDON)).toBe('2026-10-25T01:00:00+01:00');
    expect(isoWithOffset(first + 3_600_000, LONDON)).toBe('2026-10-25T01:00:00+00:00');
  });
  it('counts 46, 48 and 50 half-hours in UK days', () => {
    expect(slotsInDay('2026-03-29', LONDON, 1800)).toBe(46);
    expect(slotsInDay('2026-06-01', LONDON, 1800)).toBe(48);
    expect(slotsInDay('2026-10-25', LONDON, 1800)).toBe(50);
    expect(slotsInDay('2026-10-25', LONDON, 900)).toBe(100);
  });
  it("gives today's date in the meter's zone", () => {
    const t = Date.parse('2026-07-01T23:30:00Z');
    expect(todayIn(LONDON, t)).toBe('2026-07-02');
    expect(todayIn('UTC', t)).toBe('2026-07-01');
    expect(todayIn('America/New_York', t)).toBe('2026-07-01');
  });
});
