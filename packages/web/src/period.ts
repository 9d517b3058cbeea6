// Calendar and time-zone arithmetic for the statistics page. Calendar dates (YYYY-MM-DD) are
// handled as plain dates with UTC maths, so a DST change never shifts a day; instants are
// shown in the meter's IANA zone with its UTC offset at that instant.

export type View = 'day' | 'month' | 'year';

export interface Period {
  view: View;
  /** First local day of the period, YYYY-MM-DD. */
  from: string;
  /** Last local day of the period (inclusive), YYYY-MM-DD. */
  to: string;
  /** Human label: "Sunday 25 October 2026", "October 2026", "2026". */
  label: string;
}

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

export function isIsoDate(s: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(s)) return false;
  const d = new Date(`${s}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === s;
}

function parts(date: string): [number, number, number] {
  return [Number(date.slice(0, 4)), Number(date.slice(5, 7)), Number(date.slice(8, 10))];
}

function fromUtc(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

export function addDays(date: string, n: number): string {
  const [y, m, d] = parts(date);
  return fromUtc(Date.UTC(y, m - 1, d + n));
}

export function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** First day of the month `n` months from the month of `date`. */
export function addMonths(date: string, n: number): string {
  const [y, m] = parts(date);
  return fromUtc(Date.UTC(y, m - 1 + n, 1));
}

export function monthOf(date: string): string {
  return date.slice(0, 7);
}

/** Every day from `from` to `to` inclusive. */
export function daysBetween(from: string, to: string): string[] {
  const out: string[] = [];
  for (let d = from; d <= to; d = addDays(d, 1)) out.push(d);
  return out;
}

const dayLabel = new Intl.DateTimeFormat('en-GB', {
  weekday: 'long',
  day: 'numeric',
  month: 'long',
  year: 'numeric',
  timeZone: 'UTC',
});
const monthLabel = new Intl.DateTimeFormat('en-GB', { month: 'long', year: 'numeric', timeZone: 'UTC' });

export function periodOf(view: View, date: string): Period {
  const [y, m] = parts(date);
  switch (view) {
    case 'day':
      return { view, from: date, to: date, label: dayLabel.format(new Date(`${date}T00:00:00Z`)) };
    case 'month': {
      const from = `${y}-${pad(m)}-01`;
      return {
        view,
        from,
        to: `${y}-${pad(m)}-${pad(daysInMonth(y, m))}`,
        label: monthLabel.format(new Date(`${from}T00:00:00Z`)),
      };
    }
    case 'year':
      return { view, from: `${y}-01-01`, to: `${y}-12-31`, label: String(y) };
  }
}

/** The anchor date of the period `dir` periods away (-1 previous, +1 next). */
export function shiftDate(view: View, date: string, dir: number): string {
  switch (view) {
    case 'day':
      return addDays(date, dir);
    case 'month':
      return addMonths(date, dir);
    case 'year':
      return `${Number(date.slice(0, 4)) + dir}-01-01`;
  }
}

/** The period before `p` (for comparisons). */
export function previousPeriod(p: Period): Period {
  return periodOf(p.view, shiftDate(p.view, p.from, -1));
}

/** Does the period contain `today` (so it is still in progress)? */
export function contains(p: Period, today: string): boolean {
  return p.from <= today && today <= p.to;
}

/** Today's calendar date in an IANA zone. */
export function todayIn(tz: string, nowMs: number): string {
  // en-CA formats dates as YYYY-MM-DD.
  return new Intl.DateTimeFormat('en-CA', {
    timeZone: tz,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
  }).format(new Date(nowMs));
}

/** UTC offset of `tz` at the instant `ms`, in minutes (Europe/London in summer: 60). */
export function tzOffsetMinutes(ms: number, tz: string): number {
  const name =
    new Intl.DateTimeFormat('en-US', { timeZone: tz, timeZoneName: 'longOffset' })
      .formatToParts(new Date(ms))
      .find((p) => p.type === 'timeZoneName')?.value ?? 'GMT';
  const m = /GMT([+-])(\d{2}):?(\d{2})?/.exec(name);
  if (!m) return 0;
  const v = Number(m[2]) * 60 + Number(m[3] ?? 0);
  return m[1] === '-' ? -v : v;
}

/** The instant (ms) of local midnight starting `date` in `tz`. */
export function localMidnight(date: string, tz: string): number {
  const [y, m, d] = parts(date);
  const wall = Date.UTC(y, m - 1, d);
  // Two passes settle the offset even when it differs between the guess and the answer.
  let t = wall - tzOffsetMinutes(wall, tz) * 60_000;
  t = wall - tzOffsetMinutes(t, tz) * 60_000;
  return t;
}

/** ISO 8601 local time with the UTC offset: 2026-10-25T01:00:00+01:00. */
export function isoWithOffset(ms: number, tz: string): string {
  const off = tzOffsetMinutes(ms, tz);
  const local = new Date(ms + off * 60_000).toISOString().slice(0, 19);
  const abs = Math.abs(off);
  return `${local}${off < 0 ? '-' : '+'}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

/** Number of `intervalS` slots in the local day (46/48/50 half-hours on DST days in the UK). */
export function slotsInDay(date: string, tz: string, intervalS: number): number {
  return Math.round((localMidnight(addDays(date, 1), tz) - localMidnight(date, tz)) / (intervalS * 1000));
}
