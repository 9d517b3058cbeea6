/**
 * The one calendar of Kilowire: local days, months, billing periods and clock changes in a
 * meter's IANA time zone. Intl only (no tz library) and no imports at all, because the
 * portal bundles this file directly (`@kilowire/protocol/calendar`) and must not pull zod in.
 *
 * Units: instants are UTC epoch SECONDS; dates are `YYYY-MM-DD`, months `YYYY-MM`, both
 * plain calendar values handled with UTC maths so a clock change never shifts a date.
 *
 * A local day is [localMidnight(date), localMidnight(next date)): 23 or 25 hours on
 * clock-change days (23.5 or 24.5 in Australia/Lord_Howe). It starts at the FIRST instant
 * whose local date is `date`: where the clocks skip midnight (DST starting at 00:00, as in
 * America/Santiago) that is the instant the clocks jump, reading 01:00; where midnight
 * happens twice (DST ending at 01:00 -> 00:00, as in America/Havana) it is the first 00:00.
 * localDate and DayFinder read the wall clock, so in the rare zone whose clocks went back
 * across midnight (Newfoundland at 00:01 until 2011) one hour of a day's span reads the day before.
 */

const DAY_S = 86_400;

// ------------------------------------------------------------------------------ plain dates

const pad2 = (n: number): string => (n < 10 ? `0${n}` : String(n));

function ymd(date: string): [number, number, number] {
  return [Number(date.slice(0, 4)), Number(date.slice(5, 7)), Number(date.slice(8, 10))];
}

/** Days since 1970-01-01 of a calendar date (the date's midnight as if it were UTC, / 86400). */
function dayNumber(date: string): number {
  const [y, m, d] = ymd(date);
  return Date.UTC(y, m - 1, d) / 86_400_000;
}

function dateOfDayNumber(n: number): string {
  return new Date(n * 86_400_000).toISOString().slice(0, 10);
}

/** Whether `s` is a real calendar date written YYYY-MM-DD (2026-02-30 is not). */
export function isIsoDate(s: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(s)) return false;
  const [y, m, d] = ymd(s);
  return m >= 1 && m <= 12 && d >= 1 && d <= daysInMonth(y, m);
}

/** Whether `s` is a calendar month written YYYY-MM. */
export function isIsoMonth(s: string): boolean {
  return /^\d{4}-(0[1-9]|1[0-2])$/.test(s);
}

/** The date `n` days after `date` (negative: before), YYYY-MM-DD. */
export function addDays(date: string, n: number): string {
  return dateOfDayNumber(dayNumber(date) + n);
}

/** Whole days from date `a` to date `b` (b - a; negative when b is earlier). */
export function daysBetween(a: string, b: string): number {
  return dayNumber(b) - dayNumber(a);
}

/** Every date from `from` to `to`, both included, ascending; empty when `to` < `from`. */
export function eachDay(from: string, to: string): string[] {
  const out: string[] = [];
  for (let n = dayNumber(from), last = dayNumber(to); n <= last; n++) out.push(dateOfDayNumber(n));
  return out;
}

/** Days in a month (month 1..12): 28..31. */
export function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** The month (YYYY-MM) of a date. */
export function monthOf(date: string): string {
  return date.slice(0, 7);
}

/** The first day (YYYY-MM-01) of the month `n` months from the month of `date` (a date or a month). */
export function addMonths(date: string, n: number): string {
  const y = Number(date.slice(0, 4));
  const m = Number(date.slice(5, 7));
  const i = y * 12 + (m - 1) + n;
  return `${String(Math.floor(i / 12)).padStart(4, '0')}-${pad2((i % 12) + 1)}-01`;
}

/** Whole months from month `a` to month `b` (YYYY-MM, or dates: only the month counts), b - a. */
export function monthsBetween(a: string, b: string): number {
  return (Number(b.slice(0, 4)) - Number(a.slice(0, 4))) * 12 + Number(b.slice(5, 7)) - Number(a.slice(5, 7));
}

/**
 * The billing period containing local date `date` for an account's billing_cycle_day
 * (1..28, so the day exists in every month): it starts on that day of this month when
 * `date`'s day is >= the cycle day, else on that day of the previous month, and runs one
 * month. `start` is included, `end` excluded (both YYYY-MM-DD).
 */
export function billingPeriod(date: string, cycleDay: number): { start: string; end: string } {
  if (!Number.isInteger(cycleDay) || cycleDay < 1 || cycleDay > 28) {
    throw new RangeError(`billing cycle day must be 1..28, got ${cycleDay}`);
  }
  const first = addMonths(date, ymd(date)[2] >= cycleDay ? 0 : -1);
  const day = `-${pad2(cycleDay)}`;
  return { start: first.slice(0, 7) + day, end: addMonths(first, 1).slice(0, 7) + day };
}

// ------------------------------------------------------------------------------ time zones

interface Formats {
  /** "11/28/2026, 20:59:30": every wall-clock field. */
  dateTime: Intl.DateTimeFormat;
  /** "11/28/2026": the date alone, about a quarter cheaper for localDate. */
  date: Intl.DateTimeFormat;
}

// Building a DateTimeFormat costs far more than using one; zones are few.
const formats = new Map<string, Formats>();
function formatsOf(tz: string): Formats {
  let f = formats.get(tz);
  if (!f) {
    f = {
      // h23: some ICU versions write midnight as 24 with hour12: false.
      dateTime: new Intl.DateTimeFormat('en-US', {
        timeZone: tz,
        hourCycle: 'h23',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
      }),
      date: new Intl.DateTimeFormat('en-US', {
        timeZone: tz,
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
      }),
    };
    formats.set(tz, f);
  }
  return f;
}

type Fields = [year: number, month: number, day: number, hour: number, minute: number, second: number];

/**
 * The wall clock of `tz` at an instant (epoch s). format() and a digit scan cost a quarter
 * of formatToParts(), which matters on the ingest path.
 */
function wallFields(epochS: number, tz: string): Fields {
  const text = formatsOf(tz).dateTime.format(Math.floor(epochS) * 1000);
  const [mo = 0, d = 0, y = 0, h = 0, mi = 0, s = 0] = (text.match(/\d+/g) ?? []).map(Number);
  return [y, mo, d, h, mi, s];
}

/** The wall clock of `tz` at an instant, as seconds since 1970-01-01 00:00 of that clock. */
function wallSeconds(epochS: number, tz: string): number {
  const [y, mo, d, h, mi, s] = wallFields(epochS, tz);
  return Date.UTC(y, mo - 1, d, h, mi, s) / 1000;
}

export interface LocalParts {
  year: number;
  /** 1..12 */
  month: number;
  /** 1..31 */
  day: number;
  /** 0..23 */
  hour: number;
  minute: number;
  second: number;
  /** 0 = Sunday */
  weekday: number;
}

/** Wall-clock fields of an instant (epoch s) in `tz`. */
export function localParts(epochS: number, tz: string): LocalParts {
  const [year, month, day, hour, minute, second] = wallFields(epochS, tz);
  const weekday = new Date(Date.UTC(year, month - 1, day)).getUTCDay();
  return { year, month, day, hour, minute, second, weekday };
}

/** UTC offset of `tz` at an instant (epoch s), in seconds, positive east of Greenwich (Kolkata: 19800). */
export function tzOffsetS(epochS: number, tz: string): number {
  return wallSeconds(epochS, tz) - Math.floor(epochS);
}

/** The local date (YYYY-MM-DD) of an instant (epoch s) in `tz`, as the wall clock reads it. */
export function localDate(epochS: number, tz: string): string {
  // A number rather than a Date: one allocation less per instant on the ingest path.
  const s = formatsOf(tz).date.format(Math.floor(epochS) * 1000);
  // "MM/DD/YYYY"; anything else (an unusual ICU) takes the slower, general path.
  if (s.length === 10 && s[2] === '/' && s[5] === '/')
    return s.slice(6) + '-' + s.slice(0, 2) + '-' + s.slice(3, 5);
  const p = localParts(epochS, tz);
  return `${p.year}-${pad2(p.month)}-${pad2(p.day)}`;
}

/** Today's local date (YYYY-MM-DD) in `tz` at `nowS` (epoch s). */
export function todayIn(tz: string, nowS: number): string {
  return localDate(nowS, tz);
}

/**
 * The first instant (epoch s) at which the wall clock of `tz` reads `wall` (seconds since
 * 1970-01-01 00:00 wall time) or later. Offsets are looked up a day either side (at most
 * one change in between, as in every real zone); a wall time that exists twice gives the
 * earlier instant, one skipped by a forward change gives the instant of the change.
 */
function firstInstantAtWall(wall: number, tz: string): number {
  const before = tzOffsetS(wall - DAY_S, tz);
  const after = tzOffsetS(wall + DAY_S, tz);
  let found = Infinity;
  for (const off of before === after ? [before] : [before, after]) {
    const t = wall - off;
    if (t < found && tzOffsetS(t, tz) === off) found = t;
  }
  if (found !== Infinity) return found;
  // Skipped: wall time is below `wall` at lo and at or above it at hi; bisect to the second.
  let lo = wall - Math.max(before, after);
  let hi = wall - Math.min(before, after);
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (wallSeconds(mid, tz) >= wall) hi = mid;
    else lo = mid;
  }
  return hi;
}

/**
 * The instant (epoch s) the local date `date` starts in `tz`: local midnight, or when the
 * clocks skip midnight, the first instant of that date (01:00 in Santiago on its DST day).
 */
export function localMidnight(date: string, tz: string): number {
  return firstInstantAtWall(dayNumber(date) * DAY_S, tz);
}

/**
 * The instant (epoch s) the wall clock of `tz` first reads `hhmm` (HH:MM) on `date`; in a
 * spring-forward gap, the instant of the change (quiet hours ending at 01:30 on such a day).
 */
export function localTimeToEpoch(date: string, hhmm: string, tz: string): number {
  return firstInstantAtWall(
    dayNumber(date) * DAY_S + Number(hhmm.slice(0, 2)) * 3600 + Number(hhmm.slice(3, 5)) * 60,
    tz,
  );
}

/** Minutes since the local clock read 00:00 (0..1439) for time-of-use bands; wall-clock based. */
export function localMinuteOfDay(epochS: number, tz: string): number {
  const p = localParts(epochS, tz);
  return p.hour * 60 + p.minute;
}

/** Whether a minute of day (0..1439) falls in the HH:MM window [from, to), which may wrap midnight. */
export function inWindow(minuteOfDay: number, from: string, to: string): boolean {
  const f = Number(from.slice(0, 2)) * 60 + Number(from.slice(3));
  const t = Number(to.slice(0, 2)) * 60 + Number(to.slice(3));
  return f <= t ? minuteOfDay >= f && minuteOfDay < t : minuteOfDay >= f || minuteOfDay < t;
}

/**
 * The instant (epoch s) the local clock hour containing `epochS` started: the instant minus
 * the wall clock's minutes and seconds, as PostgreSQL's date_trunc('hour', ts AT TIME ZONE tz)
 * in the hourly-limit rule. Kolkata's hours start at hh:30 UTC. After Lord Howe's 30-minute
 * fall-back the second 01:30-02:00 is keyed 01:30 of the first pass, so keys stay distinct.
 */
export function localHourStart(epochS: number, tz: string): number {
  const p = localParts(epochS, tz);
  return Math.floor(epochS) - p.minute * 60 - p.second;
}

/**
 * ISO 8601 local time of an instant (epoch s) with the zone's UTC offset at that instant:
 * 2026-10-25T01:30:00+01:00. Both passes of a repeated hour are told apart by the offset.
 */
export function isoWithOffset(epochS: number, tz: string): string {
  const t = Math.floor(epochS);
  const off = tzOffsetS(t, tz);
  const local = new Date((t + off) * 1000).toISOString().slice(0, 19);
  const abs = Math.abs(off);
  const secs = abs % 60;
  // Only pre-1900 local mean times have offsets with seconds; keep them so the instant stays exact.
  return `${local}${off < 0 ? '-' : '+'}${pad2(Math.floor(abs / 3600))}:${pad2(Math.floor(abs / 60) % 60)}${
    secs ? `:${pad2(secs)}` : ''
  }`;
}

/**
 * Number of intervals of `intervalS` seconds (aligned to the epoch, as meters send them) that
 * start within the local day `date`: 48 half-hours, 46/50 on UK clock-change days, 47/49 in Lord Howe.
 */
export function intervalsInDay(date: string, tz: string, intervalS: number): number {
  const start = localMidnight(date, tz);
  const end = localMidnight(addDays(date, 1), tz);
  return Math.ceil(end / intervalS) - Math.ceil(start / intervalS);
}

/**
 * The local date of many instants, fast: remembers per zone a span of instants known to
 * read as one date (normally the whole local day), so a batch costs a handful of Intl calls
 * instead of one per instant. Answers exactly as localDate.
 */
export class DayFinder {
  /**
   * The last few spans per zone, newest first. One span was not enough: a gateway batch
   * interleaves meters that are on different days (backlogs, several publishers), and each
   * change of day cost a fresh span (~70 µs of Intl calls) per row.
   */
  private readonly spans = new Map<string, { start: number; end: number; day: string }[]>();

  /** The local date (YYYY-MM-DD) of an instant (epoch s) in `tz`. */
  day(epochS: number, tz: string): string {
    let list = this.spans.get(tz);
    if (list) {
      for (const r of list) if (epochS >= r.start && epochS < r.end) return r.day;
    } else {
      list = [];
      this.spans.set(tz, list);
    }
    const day = localDate(epochS, tz);
    list.unshift({ ...sameDateSpan(day, tz), day });
    if (list.length > DAY_FINDER_SPANS) list.pop();
    return day;
  }
}

/** Spans a DayFinder keeps per zone: a few weeks of days in flight at once. */
const DAY_FINDER_SPANS = 32;

/**
 * Instants [start, end) that all read as `day` in `tz`: the local day, except when a
 * backward clock change crosses midnight (the wall clock goes from `day` back into the day
 * before, for an hour): then only the part after the change, so a cached span never answers
 * for an instant whose wall clock reads another date.
 */
function sameDateSpan(day: string, tz: string): { start: number; end: number } {
  const start = localMidnight(day, tz);
  const end = localMidnight(addDays(day, 1), tz);
  const offStart = tzOffsetS(start, tz);
  const offEnd = tzOffsetS(end - 1, tz);
  if (offEnd < offStart) {
    // The clocks went back. They re-enter the day before iff the change happens before the
    // instant that reads 00:00 with the later offset, i.e. iff that offset already holds
    // one second earlier.
    const midnightAfterChange = dayNumber(day) * DAY_S - offEnd;
    if (tzOffsetS(midnightAfterChange - 1, tz) === offEnd) return { start: midnightAfterChange, end };
  }
  return { start, end };
}
