/**
 * Calendar helpers in a meter's time zone, with Intl only (no tz library): a local day is
 * [local midnight, next local midnight) in UTC, which is 23 or 25 hours on clock-change days.
 */
const dtfCache = new Map<string, Intl.DateTimeFormat>();
function dtf(tz: string): Intl.DateTimeFormat {
  let f = dtfCache.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      weekday: 'short',
    });
    dtfCache.set(tz, f);
  }
  return f;
}

export interface LocalParts {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  /** 0 = Sunday */
  weekday: number;
}

const WD: Record<string, number> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };

/** Local wall-clock parts of an epoch-seconds instant in `tz`. */
export function localParts(epochS: number, tz: string): LocalParts {
  const parts = dtf(tz).formatToParts(new Date(epochS * 1000));
  const get = (t: string) => parts.find((p) => p.type === t)?.value ?? '0';
  return {
    year: Number(get('year')),
    month: Number(get('month')),
    day: Number(get('day')),
    hour: Number(get('hour')),
    minute: Number(get('minute')),
    weekday: WD[get('weekday')] ?? 0,
  };
}

/** UTC offset of `tz` at an instant, in seconds (positive east of Greenwich). */
export function tzOffsetS(epochS: number, tz: string): number {
  const p = localParts(epochS, tz);
  const asUtc = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute) / 1000;
  return asUtc - (epochS - (epochS % 60));
}

/** The UTC instant of local midnight starting the given local date (YYYY-MM-DD). */
export function localMidnight(date: string, tz: string): number {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number];
  const guess = Date.UTC(y, m - 1, d) / 1000;
  // Two refinements settle the offset even across a clock change near midnight.
  let t = guess - tzOffsetS(guess, tz);
  t = guess - tzOffsetS(t, tz);
  return t;
}

/** The local date (YYYY-MM-DD) of an instant in `tz`. */
export function localDate(epochS: number, tz: string): string {
  const p = localParts(epochS, tz);
  return `${p.year}-${String(p.month).padStart(2, '0')}-${String(p.day).padStart(2, '0')}`;
}

export function addDays(date: string, n: number): string {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number];
  return new Date(Date.UTC(y, m - 1, d + n)).toISOString().slice(0, 10);
}

/** Minutes since local midnight for time-of-use band lookups. */
export function localMinuteOfDay(epochS: number, tz: string): number {
  const p = localParts(epochS, tz);
  return p.hour * 60 + p.minute;
}

/** Whether a local minute-of-day falls inside an HH:MM window that may wrap midnight. */
export function inWindow(minuteOfDay: number, from: string, to: string): boolean {
  const f = Number(from.slice(0, 2)) * 60 + Number(from.slice(3));
  const t = Number(to.slice(0, 2)) * 60 + Number(to.slice(3));
  return f <= t ? minuteOfDay >= f && minuteOfDay < t : minuteOfDay >= f || minuteOfDay < t;
}
