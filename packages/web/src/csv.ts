// CSV export of chart data (RFC 4180: CRLF line ends, quoted when needed).
import type { Bar } from './chart.ts';

export const CSV_HEADER = [
  'start',
  'end',
  'wh',
  'estimated',
  'missing',
  'intervals',
  'estimated_intervals',
] as const;

function field(v: string | number | boolean | null): string {
  if (v === null) return '';
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** One row per bar; timestamps ISO 8601 with the UTC offset, energy in integer Wh. Future bars are left out. */
export function barsToCsv(bars: readonly Bar[]): string {
  const rows = bars
    .filter((b) => b.status !== 'future')
    .map((b) =>
      [
        b.start,
        b.end,
        b.wh === null ? null : Math.round(b.wh),
        b.status === 'estimated',
        b.status === 'missing',
        b.intervals,
        b.estimatedIntervals,
      ]
        .map(field)
        .join(','),
    );
  return [CSV_HEADER.join(','), ...rows].join('\r\n') + '\r\n';
}

export function csvFileName(serial: string, view: string, from: string): string {
  return `kilowire-${serial}-${view}-${from}.csv`.replace(/[^A-Za-z0-9._-]/g, '_');
}
