import type { CollectionReason } from '@kilowire/contract';
import { raiseOperatorAlerts } from '../alerts/raise.ts';
import { tx, type Pool, type PoolClient } from '../db/pool.ts';

/**
 * The daily collection (#9 N1): each meter's local day in an operator's area, read from the
 * raw interval readings (not the household rollups) and kept as a numbered version. Version 1
 * is taken at the cut-off; late data, or a person, can add version n+1, and version n stays
 * as it was (the database refuses to change a finished run). Network-use invoices and the
 * operator's dashboard read these rows.
 */

export interface CollectResult {
  runId: number;
  areaId: string;
  day: string;
  version: number;
  reason: CollectionReason;
  /** false: nothing had changed since the latest version, which is returned as it is. */
  created: boolean;
  meters: number;
  completeMeters: number;
  wh: number;
  actual: number;
  estimated: number;
  expected: number;
  /** A collection_incomplete alert was raised for this version (first time only). */
  alerted: boolean;
}

/**
 * Every meter of the area active on the local day, in one pass over interval_readings by
 * (meter_id, ts) range. $1 area, $2 local day, $3 run id.
 *
 * - Active: not decommissioned before the day began, and installed before it ended — or
 *   holding readings of the day (data loaded for a meter whose install record is later).
 * - slot: local wall-clock half-hour of the interval's start, so on the autumn clock change
 *   the repeated hour adds into the same slots and on the spring one its slots stay 0.
 * - expected: intervals of the meter's size from the interval holding its start on the day
 *   (install time, or its first reading if earlier) to the end of the day or its
 *   decommissioning: 46/48/50 half-hours on a whole day (92/96/100 for 15-minute meters).
 * - last_data_at: the end of the newest interval held for the meter (any day): "missing since".
 */
const COLLECT_ROWS = `
WITH a AS (
  SELECT tz, ($2::date::timestamp AT TIME ZONE tz) AS t0, (($2::date + 1)::timestamp AT TIME ZONE tz) AS t1
    FROM network_areas WHERE id = $1
), m AS (
  SELECT m.id, m.supplier_id, m.feeder_id, m.interval_s, m.created_at, m.decommissioned_at
    FROM meters m CROSS JOIN a
   WHERE m.area_id = $1 AND (m.decommissioned_at IS NULL OR m.decommissioned_at > a.t0)
), s AS (
  SELECT r.meter_id,
         least(47, greatest(0, floor(extract(epoch FROM (r.ts AT TIME ZONE a.tz) - $2::date::timestamp) / 1800)))::int AS slot,
         sum(r.wh) AS wh,
         count(*) FILTER (WHERE r.flags & 1 = 0) AS actual,
         count(*) FILTER (WHERE r.flags & 1 = 1) AS estimated,
         min(r.ts) AS first_ts
    FROM m CROSS JOIN a JOIN interval_readings r ON r.meter_id = m.id AND r.ts >= a.t0 AND r.ts < a.t1
   GROUP BY 1, 2
), d AS (
  SELECT meter_id, sum(wh) AS wh, sum(actual) AS actual, sum(estimated) AS estimated, min(first_ts) AS first_ts,
         array_agg(slot ORDER BY slot) AS slots, array_agg(wh ORDER BY slot) AS whs
    FROM s GROUP BY 1
), x AS (
  SELECT m.id, m.supplier_id, m.feeder_id, m.interval_s, d.*, a.t0,
         greatest(a.t0, least(m.created_at, d.first_ts)) AS eff_start,
         least(a.t1, m.decommissioned_at) AS eff_end
    FROM m CROSS JOIN a LEFT JOIN d ON d.meter_id = m.id
   WHERE d.meter_id IS NOT NULL OR m.created_at < a.t1
)
INSERT INTO collection_meter_days
  (run_id, meter_id, supplier_id, feeder_id, wh, actual, estimated, expected, slot_wh, last_data_at)
SELECT $3::bigint, x.id, x.supplier_id, x.feeder_id, coalesce(x.wh, 0), coalesce(x.actual, 0), coalesce(x.estimated, 0),
       greatest(0, ceil(extract(epoch FROM x.eff_end - x.t0) / x.interval_s)
                 - floor(extract(epoch FROM x.eff_start - x.t0) / x.interval_s))::int,
       CASE WHEN x.meter_id IS NULL THEN array_fill(0, ARRAY[48])
            WHEN cardinality(x.slots) = 48 THEN x.whs::int[]
            ELSE (SELECT array_agg(coalesce(v.wh, 0)::int ORDER BY g)
                    FROM generate_series(0, 47) g LEFT JOIN unnest(x.slots, x.whs) AS v(slot, wh) ON v.slot = g)
       END,
       (SELECT r.ts + make_interval(secs => x.interval_s) FROM interval_readings r
         WHERE r.meter_id = x.id ORDER BY r.ts DESC LIMIT 1)
  FROM x`;

/** Whether run $1's meter days differ from run $2's in anything a bill or a file reads. */
const DIFFERS = `
SELECT EXISTS (
  SELECT 1 FROM (SELECT * FROM collection_meter_days WHERE run_id = $1) n
  FULL JOIN (SELECT * FROM collection_meter_days WHERE run_id = $2) o ON o.meter_id = n.meter_id
   WHERE n.meter_id IS NULL OR o.meter_id IS NULL
      OR (n.wh, n.actual, n.estimated, n.expected, n.supplier_id, n.feeder_id, n.slot_wh)
         IS DISTINCT FROM (o.wh, o.actual, o.estimated, o.expected, o.supplier_id, o.feeder_id, o.slot_wh)
) AS changed`;

const FINISH = `
UPDATE collection_runs r SET status = 'done', finished_at = now(),
       meters = t.meters, complete_meters = t.complete, wh = t.wh, actual = t.actual,
       estimated = t.estimated, expected = t.expected
  FROM (SELECT count(*)::int AS meters,
               count(*) FILTER (WHERE actual + estimated >= expected)::int AS complete,
               coalesce(sum(wh), 0)::bigint AS wh, coalesce(sum(actual), 0)::bigint AS actual,
               coalesce(sum(estimated), 0)::bigint AS estimated, coalesce(sum(expected), 0)::bigint AS expected
          FROM collection_meter_days WHERE run_id = $1) t
 WHERE r.id = $1`;

interface RunRow {
  id: string;
  version: number;
  reason: CollectionReason;
  meters: number;
  complete_meters: number;
  wh: string;
  actual: string;
  estimated: string;
  expected: string;
}

const RUN_COLS = 'id, version, reason, meters, complete_meters, wh, actual, estimated, expected';

function result(areaId: string, day: string, r: RunRow, created: boolean, alerted: boolean): CollectResult {
  return {
    runId: Number(r.id),
    areaId,
    day,
    version: r.version,
    reason: r.reason,
    created,
    meters: r.meters,
    completeMeters: r.complete_meters,
    wh: Number(r.wh),
    actual: Number(r.actual),
    estimated: Number(r.estimated),
    expected: Number(r.expected),
    alerted,
  };
}

/** A collection is a known failure when the area does not exist. */
export class UnknownAreaError extends Error {
  constructor(readonly areaId: string) {
    super(`no network area ${areaId}`);
  }
}

/**
 * Collect one local day of one area in the caller's transaction (a route adds its audit row
 * to the same transaction). Collections of the same (area, day) queue behind each other.
 */
export async function collectDayIn(
  c: PoolClient,
  areaId: string,
  day: string,
  reason: CollectionReason,
): Promise<CollectResult> {
  // One area's day is one big statement (100,000 meters in tens of seconds at most).
  await c.query("SET LOCAL statement_timeout = '600s'");
  await c.query("SET LOCAL work_mem = '64MB'");
  await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`collection:${areaId}:${day}`]);
  const area = (
    await c.query<{ operator_id: number; name: string; pct: string }>(
      `SELECT a.operator_id, a.name, coalesce(s.completeness_alert_pct, 98) AS pct
         FROM network_areas a LEFT JOIN network_settings s ON s.operator_id = a.operator_id
        WHERE a.id = $1`,
      [areaId],
    )
  ).rows[0];
  if (!area) throw new UnknownAreaError(areaId);
  const prev = (
    await c.query<RunRow>(
      `SELECT ${RUN_COLS} FROM collection_runs WHERE area_id = $1 AND day = $2 AND status = 'done'
        ORDER BY version DESC LIMIT 1`,
      [areaId, day],
    )
  ).rows[0];

  // Taken inside a savepoint: a re-collection that finds nothing changed is undone whole
  // (no empty version, no rows to delete from a run the trigger would have to allow).
  await c.query('SAVEPOINT collect');
  const run = (
    await c.query<{ id: string }>(
      `INSERT INTO collection_runs (area_id, day, version, reason) VALUES ($1, $2, $3, $4) RETURNING id`,
      [areaId, day, (prev?.version ?? 0) + 1, reason],
    )
  ).rows[0]!;
  await c.query(COLLECT_ROWS, [areaId, day, run.id]);
  if (prev) {
    const { changed } = (await c.query<{ changed: boolean }>(DIFFERS, [run.id, prev.id])).rows[0]!;
    if (!changed) {
      await c.query('ROLLBACK TO SAVEPOINT collect');
      return result(areaId, day, prev, false, false);
    }
  }
  await c.query(FINISH, [run.id]);
  await c.query('RELEASE SAVEPOINT collect');
  const done = (await c.query<RunRow>(`SELECT ${RUN_COLS} FROM collection_runs WHERE id = $1`, [run.id]))
    .rows[0]!;

  let alerted = false;
  const missing = done.meters - done.complete_meters;
  if (done.meters > 0 && done.complete_meters * 100 < Number(area.pct) * done.meters) {
    const pct = Math.floor((done.complete_meters * 1000) / done.meters) / 10;
    const ids = await raiseOperatorAlerts(c, [
      {
        operatorId: area.operator_id,
        type: 'collection_incomplete',
        dedupeKey: `collection:${areaId}:${day}:v${done.version}`,
        title: `Collection of ${day} incomplete in ${area.name}`,
        message:
          `${missing} of ${done.meters} meters in ${area.name} are missing or incomplete for ${day} ` +
          `(version ${done.version}): ${pct}% complete, below the ${Number(area.pct)}% threshold.`,
        figures: {
          areaId,
          day,
          version: done.version,
          meters: done.meters,
          completeMeters: done.complete_meters,
          missingMeters: missing,
          completePct: pct,
          thresholdPct: Number(area.pct),
        },
      },
    ]);
    alerted = ids.length > 0;
  }
  return result(areaId, day, done, true, alerted);
}

/**
 * Collect one local day (YYYY-MM-DD, in the area's network_areas.tz) of one area: a new
 * version of collection_runs with a collection_meter_days row per active meter, or the latest
 * version unchanged when nothing changed since it. Raises collection_incomplete when the share
 * of complete meters is below the operator's threshold.
 */
export async function collectDay(
  pool: Pool,
  areaId: string,
  day: string,
  reason: CollectionReason,
): Promise<CollectResult> {
  return tx(pool, (c) => collectDayIn(c, areaId, day, reason));
}
