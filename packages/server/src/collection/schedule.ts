import { addDays, localDate, localTimeToEpoch } from '@kilowire/protocol';
import type PgBoss from 'pg-boss';
import type { Pool, Q } from '../db/pool.ts';
import type { DomainEvent, Subscriber } from '../events/types.ts';
import type { Logger } from '../log.ts';
import { collectDay, type CollectResult } from './collect.ts';

/**
 * When the daily collection runs (#9 N1). A local day D of an area is due once its cut-off
 * has passed: D+1 at the operator's network_settings.collection_cutoff, in the area's time
 * zone. The schedule collects every due day that has no version yet, looking back a bounded
 * number of days (after downtime it catches up; it never walks the whole history), and
 * re-collects days that received data after their cut-off ("dirty", marked by the
 * readings.committed subscriber) as late_data versions.
 */

export interface ScheduleOptions {
  /** Clock (epoch s): tests pin it. */
  nowS?: number;
  /** How many local days back a missing collection is still caught up (1 = yesterday only). */
  catchUpDays?: number;
  log?: Logger;
}

interface AreaRow {
  id: string;
  tz: string;
  cutoff: string;
}

async function areas(q: Q): Promise<AreaRow[]> {
  return (
    await q.query<AreaRow>(
      `SELECT a.id, a.tz, to_char(coalesce(s.collection_cutoff, '06:00'), 'HH24:MI') AS cutoff
         FROM network_areas a LEFT JOIN network_settings s ON s.operator_id = a.operator_id ORDER BY a.id`,
    )
  ).rows;
}

/** The instant (epoch s) local day `day` of an area is settled and can be collected. */
export function cutoffOf(day: string, tz: string, cutoff: string): number {
  return localTimeToEpoch(addDays(day, 1), cutoff, tz);
}

/** The days of each area that are due and have no version yet, oldest first. */
export async function dueDays(
  q: Q,
  nowS: number,
  catchUpDays: number,
): Promise<{ areaId: string; day: string }[]> {
  const out: { areaId: string; day: string }[] = [];
  for (const a of await areas(q)) {
    const today = localDate(nowS, a.tz);
    const candidates: string[] = [];
    for (let k = catchUpDays; k >= 1; k--) {
      const day = addDays(today, -k);
      if (cutoffOf(day, a.tz, a.cutoff) <= nowS) candidates.push(day);
    }
    if (!candidates.length) continue;
    const have = new Set(
      (
        await q.query<{ day: string }>(
          `SELECT DISTINCT to_char(day, 'YYYY-MM-DD') AS day FROM collection_runs
            WHERE area_id = $1 AND day = ANY($2::date[])`,
          [a.id, candidates],
        )
      ).rows.map((r) => r.day),
    );
    for (const day of candidates) if (!have.has(day)) out.push({ areaId: a.id, day });
  }
  return out;
}

/**
 * One pass of the schedule: first collections of due days, then late-data re-collections of
 * dirty days. A dirty mark is cleared only if nothing marked it again while the day was being
 * collected (data arriving meanwhile gets its own version on the next pass).
 */
export async function runCollectionSchedule(pool: Pool, o: ScheduleOptions = {}): Promise<CollectResult[]> {
  const nowS = o.nowS ?? Math.floor(Date.now() / 1000);
  const done: CollectResult[] = [];
  for (const d of await dueDays(pool, nowS, o.catchUpDays ?? 7)) {
    done.push(await collectDay(pool, d.areaId, d.day, 'cutoff'));
  }
  const dirty = (
    await pool.query<{ area_id: string; day: string; marked_at: string; collected: boolean }>(
      `SELECT d.area_id, to_char(d.day, 'YYYY-MM-DD') AS day, d.marked_at::text AS marked_at,
              EXISTS (SELECT 1 FROM collection_runs r WHERE r.area_id = d.area_id AND r.day = d.day) AS collected
         FROM collection_dirty d ORDER BY d.day, d.area_id`,
    )
  ).rows;
  for (const d of dirty) {
    // A day marked before its first collection (data after the cut-off, before the
    // schedule got to it) is collected for the first time here.
    done.push(await collectDay(pool, d.area_id, d.day, d.collected ? 'late_data' : 'cutoff'));
    // marked_at as text: a JS Date would drop its microseconds and never match.
    await pool.query(
      'DELETE FROM collection_dirty WHERE area_id = $1 AND day = $2 AND marked_at <= $3::timestamptz',
      [d.area_id, d.day, d.marked_at],
    );
  }
  const created = done.filter((r) => r.created);
  if (created.length)
    o.log?.info(
      { runs: created.map((r) => `${r.areaId}:${r.day}:v${r.version}:${r.reason}`) },
      'daily collection runs',
    );
  return done;
}

/**
 * Marks (area, day) dirty when a gateway batch committed readings of a day whose cut-off has
 * passed. The event's days are the meter's local days; an area in another time zone gets
 * the neighbouring days too (its day overlaps two of the meter's). Idempotent: an upsert.
 */
export const MARK_DIRTY = `
INSERT INTO collection_dirty AS cd (area_id, day)
SELECT DISTINCT m.area_id, d.day + o.off
  FROM unnest($1::int[], $2::date[]) AS d(meter_id, day)
  JOIN meters m ON m.id = d.meter_id
  JOIN network_areas a ON a.id = m.area_id
  LEFT JOIN network_settings s ON s.operator_id = a.operator_id
  CROSS JOIN LATERAL unnest(CASE WHEN m.tz = a.tz THEN ARRAY[0] ELSE ARRAY[-1, 0, 1] END) AS o(off)
 WHERE ((d.day + o.off + 1)::timestamp + coalesce(s.collection_cutoff, '06:00')) AT TIME ZONE a.tz <= $3::timestamptz
ON CONFLICT (area_id, day) DO UPDATE SET marked_at = excluded.marked_at`;

export async function markDirty(
  q: Q,
  meterDays: [number, string][],
  now: Date = new Date(),
): Promise<number> {
  if (!meterDays.length) return 0;
  const r = await q.query(MARK_DIRTY, [meterDays.map((d) => d[0]), meterDays.map((d) => d[1]), now]);
  return r.rowCount ?? 0;
}

/** The late-data subscriber: readings committed after a day's cut-off make the day dirty. */
export function collectionSubscriber(pool: Pool): Subscriber {
  return {
    name: 'collection',
    types: ['readings.committed'],
    async handle(events: DomainEvent[]) {
      const meterDays: [number, string][] = [];
      for (const e of events) {
        if (e.type === 'readings.committed')
          meterDays.push(...(e as DomainEvent<'readings.committed'>).payload.meterDays);
      }
      await markDirty(pool, meterDays);
    },
  };
}

/** The schedule's queue: a pg-boss cron on a singleton queue, so one jobs process runs it at a time. */
export const COLLECTION_QUEUE = 'collection.schedule';

/**
 * The jobs-service side of the daily collection: the cron (COLLECTION_CRON, UTC) and a first
 * pass at start (days that came due while no jobs process ran), and the late-data subscriber.
 */
export async function startCollectionJobs(
  boss: PgBoss,
  pool: Pool,
  log: Logger,
  o: { cron: string; catchUpDays: number },
): Promise<Subscriber[]> {
  await boss.createQueue(COLLECTION_QUEUE, {
    name: COLLECTION_QUEUE,
    policy: 'singleton',
    retryLimit: 3,
    retryDelay: 60,
    // 100,000 meters take well under a minute per area and day; a catch-up of several days
    // of several areas needs more.
    expireInSeconds: 3600,
  });
  await boss.schedule(COLLECTION_QUEUE, o.cron, {}, { tz: 'UTC' });
  await boss.send(COLLECTION_QUEUE, {});
  await boss.work(COLLECTION_QUEUE, { pollingIntervalSeconds: 30 }, async () => {
    await runCollectionSchedule(pool, { catchUpDays: o.catchUpDays, log });
  });
  return [collectionSubscriber(pool)];
}
