// Pure chart logic: bar data for the three statistics views, axis scaling, comparisons.
import type { DayIntervals, Daily, Monthly } from '@kilowire/contract';
import { addDays, addMonths, eachDay, isoWithOffset, localMidnight } from '@kilowire/protocol/calendar';
import { formatKwh } from './format.ts';

export type BarStatus = 'measured' | 'estimated' | 'missing' | 'future';

export interface Bar {
  key: string;
  /** Short axis label: "01:30", "25", "Oct". */
  label: string;
  /** Full label for tables and tooltips: "01:30 (+01:00)", "Sun 25 Oct", "October 2026". */
  fullLabel: string;
  /** Period start and end (exclusive), ISO 8601 with the meter's UTC offset. */
  start: string;
  end: string;
  /** Energy, Wh; null when no data (missing or in the future). */
  wh: number | null;
  status: BarStatus;
  /** Intervals received / of which estimated (rollups); 1/0 or 1/1 for single intervals. */
  intervals: number;
  estimatedIntervals: number;
}

const weekdayDay = new Intl.DateTimeFormat('en-GB', {
  weekday: 'short',
  day: 'numeric',
  month: 'short',
  timeZone: 'UTC',
});
const monthShort = new Intl.DateTimeFormat('en-GB', { month: 'short', timeZone: 'UTC' });
const monthLong = new Intl.DateTimeFormat('en-GB', { month: 'long', year: 'numeric', timeZone: 'UTC' });

/** Bars of one local day: one per interval slot (46/48/50 half-hours on DST days). */
export function dayBars(d: DayIntervals, nowMs: number): Bar[] {
  const offsets = new Set(d.intervals.map((i) => i.start.slice(19)));
  return d.intervals.map((iv, n) => {
    const hhmm = iv.start.slice(11, 16);
    const next = d.intervals[n + 1];
    // An interval still running (or not begun) has no reading yet: that is not "missing".
    const future = Date.parse(iv.startUtc) + d.intervalS * 1000 > nowMs;
    const status: BarStatus =
      iv.wh === null ? (future ? 'future' : 'missing') : iv.estimated ? 'estimated' : 'measured';
    return {
      key: iv.startUtc,
      label: hhmm,
      // On a DST change the same wall-clock time happens twice: show the offset to tell them apart.
      fullLabel: offsets.size > 1 ? `${hhmm} (UTC${iv.start.slice(19)})` : hhmm,
      start: iv.start,
      end: next ? next.start : d.end,
      wh: iv.wh,
      status,
      intervals: iv.wh === null ? 0 : 1,
      estimatedIntervals: iv.wh !== null && iv.estimated ? 1 : 0,
    };
  });
}

/** Bars of the days from..to (inclusive); days absent from the API answer are missing (or future). */
export function dailyBars(
  d: Pick<Daily, 'days'>,
  from: string,
  to: string,
  tz: string,
  today: string,
): Bar[] {
  const byDay = new Map(d.days.map((r) => [r.day, r]));
  return eachDay(from, to).map((day) => {
    const r = byDay.get(day);
    const status: BarStatus = r
      ? r.estimated > 0
        ? 'estimated'
        : 'measured'
      : day > today
        ? 'future'
        : 'missing';
    const date = new Date(`${day}T00:00:00Z`);
    return {
      key: day,
      label: String(Number(day.slice(8))),
      fullLabel: weekdayDay.format(date),
      start: isoWithOffset(localMidnight(day, tz), tz),
      end: isoWithOffset(localMidnight(addDays(day, 1), tz), tz),
      wh: r ? r.wh : null,
      status,
      intervals: r?.intervals ?? 0,
      estimatedIntervals: r?.estimated ?? 0,
    };
  });
}

/** Twelve monthly bars of `year`. */
export function monthlyBars(m: Pick<Monthly, 'months'>, year: number, tz: string, today: string): Bar[] {
  const byMonth = new Map(m.months.map((r) => [r.month, r]));
  const out: Bar[] = [];
  for (let i = 1; i <= 12; i++) {
    const month = `${year}-${String(i).padStart(2, '0')}`;
    const first = `${month}-01`;
    const r = byMonth.get(month);
    const status: BarStatus = r
      ? r.estimated > 0
        ? 'estimated'
        : 'measured'
      : first > today
        ? 'future'
        : 'missing';
    const date = new Date(`${first}T00:00:00Z`);
    out.push({
      key: month,
      label: monthShort.format(date),
      fullLabel: monthLong.format(date),
      start: isoWithOffset(localMidnight(first, tz), tz),
      end: isoWithOffset(localMidnight(addMonths(first, 1), tz), tz),
      wh: r ? r.wh : null,
      status,
      intervals: r?.intervals ?? 0,
      estimatedIntervals: r?.estimated ?? 0,
    });
  }
  return out;
}

export function totalWh(bars: readonly Bar[]): number {
  return bars.reduce((s, b) => s + (b.wh ?? 0), 0);
}

export interface Comparison {
  currentWh: number;
  previousWh: number;
  diffWh: number;
  /** Change in percent of the previous total, rounded; null when the previous total is 0. */
  pct: number | null;
  /** No reading at all in the current period (so far): its 0 kWh means "not arrived", not "used nothing". */
  currentMissing: boolean;
  /** No reading at all in the compared part of the previous period. */
  previousMissing: boolean;
}

/** Whether any of `bars` holds a reading (measured or estimated). */
export function hasReadings(bars: readonly Bar[]): boolean {
  return bars.some((b) => b.wh !== null && b.intervals > 0);
}

export function compare(
  currentWh: number,
  previousWh: number,
  readings: { current: boolean; previous: boolean } = { current: true, previous: true },
): Comparison {
  const diffWh = currentWh - previousWh;
  return {
    currentWh,
    previousWh,
    diffWh,
    pct: previousWh > 0 ? Math.round((diffWh / previousWh) * 100) : null,
    currentMissing: !readings.current,
    previousMissing: !readings.previous,
  };
}

export type ChartView = 'day' | 'month' | 'year';

const PREVIOUS: Record<ChartView, { soFar: string; whole: string; current: string }> = {
  day: { soFar: 'Same time yesterday', whole: 'The day before', current: 'day' },
  month: { soFar: 'Same point last month', whole: 'The month before', current: 'month' },
  year: { soFar: 'Same point last year', whole: 'The year before', current: 'year' },
};

/**
 * The comparison in words. A period without readings is said to be missing: "100 % less"
 * when today's readings have not arrived, or "0.0 kWh" for a month the meter was not yet
 * reporting, would be false statements about the household's usage.
 */
export function comparisonText(
  c: Comparison,
  view: ChartView,
  soFar: boolean,
): { previous: string; change: string | null; direction: 'up' | 'down' | null } {
  const t = PREVIOUS[view];
  const label = soFar ? t.soFar : t.whole;
  if (c.previousMissing) {
    return { previous: `${label}: no readings to compare with`, change: null, direction: null };
  }
  const previous = `${label}: ${formatKwh(c.previousWh)}`;
  if (c.currentMissing) {
    const change = soFar
      ? view === 'day'
        ? "today's readings have not arrived yet"
        : `no readings for this ${t.current} yet`
      : `no readings for this ${t.current}`;
    return { previous, change, direction: null };
  }
  if (c.diffWh === 0) return { previous, change: 'the same', direction: null };
  const direction = c.diffWh > 0 ? 'up' : 'down';
  const word = c.diffWh > 0 ? 'more' : 'less';
  const change = c.pct === null ? `${formatKwh(Math.abs(c.diffWh))} ${word}` : `${Math.abs(c.pct)} % ${word}`;
  return { previous, change, direction };
}

/** A "nice" axis maximum >= max: 1, 2, 2.5 or 5 times a power of ten (0 -> 1). */
export function niceMax(max: number): number {
  if (!(max > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  for (const f of [1, 2, 2.5, 5, 10]) if (f * p >= max - 1e-9) return f * p;
  return 10 * p;
}

/** Tick values from 0 to niceMax(max), `count` steps. */
export function ticks(max: number, count = 4): number[] {
  const top = niceMax(max);
  return Array.from({ length: count + 1 }, (_, i) => (top * i) / count);
}

/** Height in pixels of a bar of `value` on an axis from 0 to `top` drawn `height` px tall. */
export function barHeight(value: number, top: number, height: number): number {
  if (!(top > 0) || !(value > 0)) return 0;
  return Math.min(height, (value / top) * height);
}

/** Which bars get an axis label so labels never crowd: every nth, n chosen from the count. */
export function labelEvery(count: number, maxLabels: number): number {
  return Math.max(1, Math.ceil(count / Math.max(1, maxLabels)));
}
