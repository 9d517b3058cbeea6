import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import {
  DayFinder,
  addDays,
  billingPeriod,
  daysBetween,
  intervalsInDay,
  localDate,
  localMidnight,
} from '@kilowire/protocol/calendar';

/**
 * The calendar module (Intl, in the gateway, API and portal) against PostgreSQL's own
 * `AT TIME ZONE` (in the SQL that rolls up, alerts and bills), over every day of 2020-2030.
 * Both read the IANA database, through different code and possibly different releases, so
 * any disagreement is a bug on one side or stale data on the other: each check names the
 * first mismatch with its zone and date. PostgreSQL generates the series and returns arrays;
 * the comparison is in JS.
 */
const ZONES = [
  'Europe/London', // 23/25-hour days at 01:00 UTC
  'America/New_York',
  'Australia/Lord_Howe', // a 30-minute DST shift: 23.5/24.5-hour days
  'Asia/Kolkata', // +05:30 all year
  'America/Santiago', // DST starts at 00:00: midnight does not exist on that day
];
const FIRST_DAY = '2020-01-01';
const LAST_DAY = '2030-12-31';
const FROM_S = Date.UTC(2020, 0, 1) / 1000;
const TO_S = Date.UTC(2031, 0, 1) / 1000; // excluded
/** Day numbers from PostgreSQL count from here (a day before FIRST_DAY: zones west of UTC). */
const BASE_DAY = '2019-12-31';

const days: string[] = [];
for (let d = FIRST_DAY; d <= LAST_DAY; d = addDays(d, 1)) days.push(d);
/** BASE_DAY + n for every n PostgreSQL can return, so JS compares strings without date maths. */
const dateOf: string[] = [];
for (let n = 0, d = BASE_DAY; n <= days.length + 2; n++, d = addDays(d, 1)) dateOf.push(d);

/** Every date from parameter $a to parameter $b, as rows of `d`. */
const daysSql = (a: number, b: number): string =>
  `SELECT $${a}::date + i AS d FROM generate_series(0, $${b}::date - $${a}::date) i`;

interface ZoneRows {
  /** Epoch s of `date::timestamp AT TIME ZONE tz` for every date. */
  midnights: number[];
  /** Local date of every 15-minute instant from FROM_S, as days after BASE_DAY. */
  dates: number[];
  /** Aligned half-hours grouped by their local date, for every date. */
  half_hours: number[];
}

// Everything a zone needs in one statement ($1 zone, $2/$3 first/last day, $4/$5 first/excluded
// instant, $6 BASE_DAY). The half-hours get two days of margin so the edge days are whole.
const ZONE_SQL = `SELECT
  (SELECT array_agg(extract(epoch FROM (d::timestamp AT TIME ZONE $1))::float8 ORDER BY d)
     FROM (${daysSql(2, 3)}) days) AS midnights,
  (SELECT array_agg((to_timestamp(t) AT TIME ZONE $1)::date - $6::date ORDER BY t)
     FROM generate_series($4::bigint, $5::bigint - 1, 900) t) AS dates,
  (SELECT array_agg(n ORDER BY d) FROM (
     SELECT (to_timestamp(t) AT TIME ZONE $1)::date AS d, count(*)::int AS n
       FROM generate_series($4::bigint - 172800, $5::bigint + 172800 - 1, 1800) t GROUP BY 1
   ) per_day WHERE d BETWEEN $2::date AND $3::date) AS half_hours`;

// The CASE is homeSummary's (alerts/queries.ts) verbatim but for names: m.today -> d,
// billing_cycle_day -> c. date_trunc on a date goes through timestamptz: the session zone is pinned.
const BILLING_SQL = `SELECT array_agg(p - $3::date ORDER BY d, c) AS s,
       array_agg((p + interval '1 month')::date - $3::date ORDER BY d, c) AS e
  FROM (
    SELECT d, c, CASE WHEN extract(day FROM d) >= c
                      THEN date_trunc('month', d)::date + (c - 1)
                      ELSE (date_trunc('month', d) - interval '1 month')::date + (c - 1)
                 END AS p
      FROM (${daysSql(1, 2)}) days, generate_series(1, 28) c
  ) x`;

let db: pg.Client;
const fetched = new Map<string, Promise<ZoneRows>>();
let billing: Promise<{ s: number[]; e: number[] }>;

/** Queue a statement now, for a test to await later; an early failure is reported by that test. */
function later<T>(p: Promise<pg.QueryResult<T & pg.QueryResultRow>>): Promise<T> {
  const row = p.then((r) => r.rows[0]!);
  row.catch(() => undefined);
  return row;
}

beforeAll(async () => {
  db = new pg.Client({ connectionString: inject('databaseUrl') });
  await db.connect();
  await db.query("SET TimeZone = 'UTC'");
  // All queued at once on one connection: PostgreSQL computes the next zone (one core)
  // while JS compares this one (the other), which keeps the file within ten seconds.
  for (const tz of ZONES) {
    fetched.set(tz, later<ZoneRows>(db.query(ZONE_SQL, [tz, FIRST_DAY, LAST_DAY, FROM_S, TO_S, BASE_DAY])));
  }
  billing = later<{ s: number[]; e: number[] }>(db.query(BILLING_SQL, [FIRST_DAY, LAST_DAY, BASE_DAY]));
});
afterAll(async () => {
  await db?.end();
});

/** The first index where two equally long lists differ, described; null when none does. */
function firstMismatch<T>(
  what: string,
  js: readonly T[],
  db: readonly T[],
  at: (i: number) => string,
): string | null {
  if (js.length !== db.length) return `${what}: ${js.length} values in JS, ${db.length} in PostgreSQL`;
  for (let i = 0; i < js.length; i++) {
    if (js[i] !== db[i]) return `${what} at ${at(i)}: JS ${String(js[i])}, PostgreSQL ${String(db[i])}`;
  }
  return null;
}

describe.each(ZONES)('%s', (tz) => {
  it('starts every local day where PostgreSQL puts midnight', async () => {
    const { midnights } = await fetched.get(tz)!;
    const js = days.map((d) => localMidnight(d, tz));
    expect(firstMismatch(`${tz} localMidnight`, js, midnights, (i) => days[i]!)).toBeNull();
  });

  it('gives every 15-minute instant the local date PostgreSQL gives it, and so does DayFinder', async () => {
    const { dates } = await fetched.get(tz)!;
    expect(dates).toHaveLength((TO_S - FROM_S) / 900);
    const at = (i: number): string => new Date((FROM_S + i * 900) * 1000).toISOString();
    const finder = new DayFinder();
    let mismatch: string | null = null;
    // One pass without intermediate arrays: 385,728 instants per zone.
    for (let i = 0; i < dates.length && !mismatch; i++) {
      const db = dateOf[dates[i]!]!;
      const js = localDate(FROM_S + i * 900, tz);
      const found = finder.day(FROM_S + i * 900, tz);
      if (js !== db || found !== db)
        mismatch = `${tz} at ${at(i)}: PostgreSQL ${db}, localDate ${js}, DayFinder ${found}`;
    }
    expect(mismatch).toBeNull();
    // Backwards too: a span cached for a day must not answer for the end of the day before,
    // which ascending order (always a miss there) would never notice.
    const backwards = new DayFinder();
    for (let i = dates.length - 1; i >= 0 && !mismatch; i--) {
      const db = dateOf[dates[i]!]!;
      const found = backwards.day(FROM_S + i * 900, tz);
      if (found !== db) mismatch = `${tz} at ${at(i)}, descending: PostgreSQL ${db}, DayFinder ${found}`;
    }
    expect(mismatch).toBeNull();
  });

  it('counts the half-hours of every local day as PostgreSQL groups them', async () => {
    const { half_hours } = await fetched.get(tz)!;
    const js = days.map((d) => intervalsInDay(d, tz, 1800));
    expect(firstMismatch(`${tz} intervalsInDay`, js, half_hours, (i) => days[i]!)).toBeNull();
  });
});

describe('billing periods', () => {
  it("match homeSummary's SQL for every day of 2020-2030 and every cycle day 1..28", async () => {
    const { s, e } = await billing;
    const cases = days.flatMap((d) => Array.from({ length: 28 }, (_, i) => [d, i + 1] as const));
    const periods = cases.map(([d, cycle]) => billingPeriod(d, cycle));
    const at = (i: number): string => `${cases[i]![0]} with cycle day ${cases[i]![1]}`;
    const toDay = (d: string): number => daysBetween(BASE_DAY, d);
    expect(
      firstMismatch(
        'billing period start',
        periods.map((p) => toDay(p.start)),
        s,
        at,
      ),
    ).toBeNull();
    expect(
      firstMismatch(
        'billing period end',
        periods.map((p) => toDay(p.end)),
        e,
        at,
      ),
    ).toBeNull();
  });
});
