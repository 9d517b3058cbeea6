import { describe, expect, it } from 'vitest';
import { contains, periodOf, previousPeriod, shiftDate } from '../src/period.ts';

// The calendar primitives underneath (dates, zones, DST) are tested in packages/protocol/test/calendar.test.ts.
describe('statistics periods', () => {
  it('steps days, months and years to the anchor of the next period', () => {
    expect(shiftDate('day', '2026-10-25', 1)).toBe('2026-10-26');
    expect(shiftDate('day', '2026-03-30', -1)).toBe('2026-03-29');
    expect(shiftDate('day', '2026-12-31', 1)).toBe('2027-01-01');
    expect(shiftDate('month', '2026-03-31', -1)).toBe('2026-02-01');
    expect(shiftDate('month', '2026-01-15', -1)).toBe('2025-12-01');
    expect(shiftDate('month', '2026-12-31', 1)).toBe('2027-01-01');
    expect(shiftDate('year', '2026-07-04', 1)).toBe('2027-01-01');
  });
  it('describes periods and the one before', () => {
    // ICU versions differ on the comma after the weekday.
    expect(periodOf('day', '2026-10-25')).toMatchObject({
      view: 'day',
      from: '2026-10-25',
      to: '2026-10-25',
    });
    expect(periodOf('day', '2026-10-25').label).toMatch(/^Sunday,? 25 October 2026$/);
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
    expect(previousPeriod(periodOf('month', '2026-01-15'))).toMatchObject({
      from: '2025-12-01',
      to: '2025-12-31',
      label: 'December 2025',
    });
    expect(previousPeriod(periodOf('day', '2026-03-01'))).toMatchObject({ from: '2026-02-28' });
    expect(previousPeriod(periodOf('year', '2026-03-01'))).toMatchObject({
      from: '2025-01-01',
      to: '2025-12-31',
    });
  });
  it('knows whether a period is still in progress', () => {
    expect(contains(periodOf('month', '2026-11-01'), '2026-11-26')).toBe(true);
    expect(contains(periodOf('month', '2026-10-01'), '2026-11-26')).toBe(false);
    expect(contains(periodOf('day', '2026-11-26'), '2026-11-26')).toBe(true);
    expect(contains(periodOf('year', '2026-01-01'), '2026-12-31')).toBe(true);
  });
});
