import { describe, expect, it } from 'vitest';
import {
  catchingUpText,
  formatDateTime,
  formatKwh,
  formatMoney,
  normaliseE164,
  parseKwhInput,
  percentOf,
  relativeTime,
  usageAgainstLimit,
  whToInput,
} from '../src/format.ts';

describe('kWh', () => {
  it('formats Wh as kWh with one decimal', () => {
    expect(formatKwh(6240)).toBe('6.2 kWh');
    expect(formatKwh(0)).toBe('0.0 kWh');
    expect(formatKwh(1_234_560)).toBe('1,234.6 kWh');
    expect(formatKwh(125, 2)).toBe('0.13 kWh');
  });
  it('states usage against a limit with the percentage', () => {
    expect(usageAgainstLimit(6200, 10_000)).toBe('6.2 of 10.0 kWh (62 %)');
    expect(usageAgainstLimit(12_000, 10_000)).toBe('12.0 of 10.0 kWh (120 %)');
    expect(percentOf(1, 0)).toBeNull();
  });
  it('parses typed kWh into integer Wh', () => {
    expect(parseKwhInput('10')).toEqual({ ok: true, wh: 10_000 });
    expect(parseKwhInput(' 7.5 ')).toEqual({ ok: true, wh: 7500 });
    expect(parseKwhInput('2,25')).toEqual({ ok: true, wh: 2250 });
    expect(parseKwhInput('0.001')).toEqual({ ok: true, wh: 1 });
    expect(parseKwhInput('0.0001').ok).toBe(false);
    expect(parseKwhInput('0').ok).toBe(false);
    expect(parseKwhInput('-1').ok).toBe(false);
    expect(parseKwhInput('ten').ok).toBe(false);
    expect(parseKwhInput('').ok).toBe(false);
    expect(whToInput(7500)).toBe('7.5');
    expect(whToInput(10_000)).toBe('10');
    expect(whToInput(null)).toBe('');
  });
});

describe('money', () => {
  it('formats integer minor units in GBP', () => {
    expect(formatMoney(2000)).toBe('£20.00');
    expect(formatMoney(1086, 'GBP')).toBe('£10.86');
    expect(formatMoney(5)).toBe('£0.05');
    expect(formatMoney(-150)).toBe('-£1.50');
    expect(formatMoney(123_456)).toBe('£1,234.56');
  });
  it('respects currencies without minor units', () => {
    expect(formatMoney(500, 'JPY')).toBe('JP¥500');
  });
});

describe('relative time', () => {
  const now = Date.parse('2026-11-26T12:00:00Z');
  it('says how long ago', () => {
    expect(relativeTime('2026-11-26T11:59:30Z', now)).toBe('just now');
    expect(relativeTime('2026-11-26T11:59:00Z', now)).toBe('1 min ago');
    expect(relativeTime('2026-11-26T11:46:00Z', now)).toBe('14 min ago');
    expect(relativeTime('2026-11-26T09:00:00Z', now)).toBe('3 h ago');
    expect(relativeTime('2026-11-25T11:00:00Z', now)).toBe('1 day ago');
    expect(relativeTime('2026-11-20T12:00:00Z', now)).toBe('6 days ago');
  });
  it('treats clock skew (future) as just now and junk as unknown', () => {
    expect(relativeTime('2026-11-26T12:05:00Z', now)).toBe('just now');
    expect(relativeTime('not a date', now)).toBe('unknown');
  });
  it('gives the exact time in the meter zone', () => {
    expect(formatDateTime('2026-07-01T11:14:00Z', 'Europe/London')).toBe('1 Jul 2026, 12:14 BST');
    expect(formatDateTime('2026-11-26T11:14:00Z', 'Europe/London')).toBe('26 Nov 2026, 11:14 GMT');
  });
});

describe('mobile numbers', () => {
  it('accepts E.164 and tolerates spacing', () => {
    expect(normaliseE164('+447700900123')).toBe('+447700900123');
    expect(normaliseE164('+44 7700 900-123')).toBe('+447700900123');
    expect(normaliseE164('+1 (415) 555-0100')).toBe('+14155550100');
  });
  it('takes a UK national mobile the way people type it', () => {
    expect(normaliseE164('07700 900123')).toBe('+447700900123');
    expect(normaliseE164('07700900123')).toBe('+447700900123');
    expect(normaliseE164(' 07700-900-123 ')).toBe('+447700900123');
    expect(normaliseE164('+44 (0)7700 900123')).toBe('+447700900123');
    expect(normaliseE164('0044 7700 900123')).toBe('+447700900123');
  });
  it('rejects what is not a number', () => {
    expect(normaliseE164('0770090012')).toBeNull();
    expect(normaliseE164('077009001234')).toBeNull();
    expect(normaliseE164('+07700900123')).toBeNull();
    expect(normaliseE164('+44')).toBeNull();
    expect(normaliseE164('+4477009001234567')).toBeNull();
    expect(normaliseE164('+44 abc')).toBeNull();
  });
});

describe('catching up', () => {
  const now = Date.parse('2026-11-29T15:10:00Z');
  it('says nothing while the newest reading is within two intervals', () => {
    expect(catchingUpText('2026-11-29T14:30:00Z', 1800, now, 'Europe/London')).toBeNull();
    expect(catchingUpText('2026-11-29T14:10:00Z', 1800, now, 'Europe/London')).toBeNull();
  });
  it('names the time the data reaches once it is older than two intervals, in the meter zone', () => {
    expect(catchingUpText('2026-11-29T14:00:00Z', 1800, now, 'Europe/London')).toBe(
      'Data up to 14:00, catching up',
    );
    // 15-minute meters fall behind sooner.
    expect(catchingUpText('2026-11-29T14:30:00Z', 900, now, 'Europe/London')).toBe(
      'Data up to 14:30, catching up',
    );
    expect(
      catchingUpText('2026-07-01T13:30:00Z', 1800, Date.parse('2026-07-01T15:00:00Z'), 'Europe/London'),
    ).toBe('Data up to 14:30, catching up');
  });
  it('adds the date when the data stops on an earlier day, and says when nothing arrived at all', () => {
    expect(catchingUpText('2026-11-27T23:30:00Z', 1800, now, 'Europe/London')).toBe(
      'Data up to 27 Nov, 23:30, catching up',
    );
    expect(catchingUpText(null, 1800, now, 'Europe/London')).toBe(
      'No readings received from your meter yet.',
    );
  });
});
