import { addDays, localMidnight } from '@kilowire/protocol';
import type { Pool, PoolClient } from '../db/pool.ts';

type Q = Pool | PoolClient;

/** Read side of the reading tables, for the API. The gateway owns the write side. */

export interface DaySlot {
  /** Interval start, epoch seconds. */
  t: number;
  /** Energy in the interval (Wh); null when no reading has arrived for it. */
  wh: number | null;
  /** Flag bit 1: the value was estimated by VEE. */
  estimated: boolean;
}

export interface DayProfile {
  /** UTC instants (epoch s) of local midnight and of the next local midnight. */
  start: number;
  end: number;
  /** Every interval of the local day (46/48/50 half-hours on DST-change/normal days). */
  slots: DaySlot[];
  totalWh: number;
  received: number;
  estimated: number;
}

/**
 * The interval profile of one local calendar day in `tz`: [local midnight, next local
 * midnight), so a spring-forward day has 23 hours and an autumn one 25.
 */
export async function dayProfile(
  q: Q,
  meterId: number,
  tz: string,
  date: string,
  intervalS: number,
): Promise<DayProfile> {
  const start = localMidnight(date, tz);
  const end = localMidnight(addDays(date, 1), tz);
  const { rows } = await q.query<{ t: number; wh: number; flags: number }>(
    `SELECT extract(epoch FROM ts)::bigint AS t, wh, flags FROM interval_readings
      WHERE meter_id = $1 AND ts >= to_timestamp($2) AND ts < to_timestamp($3) ORDER BY ts`,
    [meterId, start, end],
  );
  const byT = new Map(rows.map((r) => [r.t, r]));
  const slots: DaySlot[] = [];
  let totalWh = 0;
  let estimated = 0;
  for (let t = start; t < end; t += intervalS) {
    const r = byT.get(t);
    const est = r ? (r.flags & 1) === 1 : false;
    if (r) totalWh += r.wh;
    if (est) estimated++;
    slots.push({ t, wh: r ? r.wh : null, estimated: est });
  }
  return { start, end, slots, totalWh, received: rows.length, estimated };
}

export interface RollupRow {
  /** YYYY-MM-DD (daily) or the first day of the month (monthly). */
  period: string;
  wh: number;
  intervals: number;
  estimated: number;
}

/** Daily rollups for local days from..to inclusive (YYYY-MM-DD). */
export async function dailyRollups(q: Q, meterId: number, from: string, to: string): Promise<RollupRow[]> {
  const { rows } = await q.query<RollupRow>({
    name: 'daily-rollups',
    text: `SELECT day AS period, wh, intervals, estimated FROM daily_rollups
      WHERE meter_id = $1 AND day BETWEEN $2::date AND $3::date ORDER BY day`,
    values: [meterId, from, to],
  });
  return rows;
}

/** Monthly rollups for months from..to inclusive (YYYY-MM). */
export async function monthlyRollups(q: Q, meterId: number, from: string, to: string): Promise<RollupRow[]> {
  // Summed from the daily rollups over a primary-key range (at most 31 rows a month).
  const { rows } = await q.query<RollupRow>({
    name: 'monthly-rollups',
    text: `SELECT date_trunc('month', day)::date AS period, sum(wh)::bigint AS wh, sum(intervals)::int AS intervals,
                  sum(estimated)::int AS estimated
             FROM daily_rollups
            WHERE meter_id = $1 AND day >= ($2 || '-01')::date AND day < ($3 || '-01')::date + interval '1 month'
            GROUP BY 1 ORDER BY 1`,
    values: [meterId, from, to],
  });
  return rows;
}
