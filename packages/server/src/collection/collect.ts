import type { QueryConfig } from 'pg';
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
 * Every meter of the area active on the local day, each meter's intervals read by its
 * (meter_id, ts) primary-key range. $1 area, $2 area tz, $3 day start, $4 day end (instants),
 * $5 run id, $6 the local day (date), $7 the slots of a plain day, 0..47.
 *
 * - Active: not decommissioned before the day began, and installed before it ended — or
 *   holding readings of the day (data loaded for a meter whose install record is later).
 * - slot: local wall-clock half-hour of the interval's start, so on the autumn clock change
 *   the repeated hour adds into the same slots and on the spring one its slots stay 0. A
 *   half-hourly meter's ordinary day has slots 0..47 once each, in time order: its interval
 *   values are the slots as they are; anything else (gaps, 15-minute meters, clock-change
 *   days, or rows that did not arrive in time order) is summed per slot, which needs no order.
 *   The arrays are aggregated without ORDER BY (a sort per meter and array cost more than
 *   the rest): the index range hands them over in time order, and if it ever did not, the
 *   slots would not read 0..47 and the order-free sum would be taken.
 * - expected: intervals of the meter's size from the interval holding its start on the day
 *   (install time, or its first reading if earlier) to the end of the day or its
 *   decommissioning: 46/48/50 half-hours on a whole day (92/96/100 for 15-minute meters).
 * - last_data_at: the end of the newest interval held for the meter (any day): "missing since".
 *
 * Per meter (a LATERAL aggregate over an index range) rather than one join and GROUP BY: the
 * rows arrive in key order and each meter's ~48 are aggregated in memory, where the join
 * form sorted or hashed all 4.8M rows of 100,000 meters through temporary files (see
 * docs/performance.md, #9 collection).
 */
const COLLECT_ROWS = `
INSERT INTO collection_meter_days
  (run_id, meter_id, supplier_id, feeder_id, wh, actual, estimated, expected, slot_wh, last_data_at)
SELECT $5::bigint, m.id, m.supplier_id, m.feeder_id, coalesce(d.wh, 0), d.actual, d.estimated,
       greatest(0, ceil(extract(epoch FROM least($4::timestamptz, m.decommissioned_at) - $3::timestamptz) / m.interval_s)
                 - floor(extract(epoch FROM greatest($3::timestamptz, least(m.created_at, d.first_ts)) - $3::timestamptz) / m.interval_s))::int,
       CASE WHEN d.n = 0 THEN array_fill(0, ARRAY[48])
            WHEN d.slots = $7::int[] THEN d.whs
            ELSE (SELECT array_agg(coalesce(v.wh, 0)::int ORDER BY g)
                    FROM generate_series(0, 47) g
                    LEFT JOIN (SELECT u.slot, sum(u.wh) AS wh FROM unnest(d.slots, d.whs) AS u(slot, wh) GROUP BY u.slot) v
                      ON v.slot = g)
       END,
       (SELECT r.ts + make_interval(secs => m.interval_s) FROM interval_readings r
         WHERE r.meter_id = m.id ORDER BY r.ts DESC LIMIT 1)
  FROM meters m
  CROSS JOIN LATERAL (
    SELECT count(*) AS n, sum(x.wh)::bigint AS wh,
           count(*) FILTER (WHERE x.flags & 1 = 0)::int AS actual,
           count(*) FILTER (WHERE x.flags & 1 = 1)::int AS estimated,
           min(x.ts) AS first_ts,
           -- The same rows in the same order for both (whatever it is): slots[i] is whs[i]'s slot.
           array_agg(x.slot) AS slots, array_agg(x.wh) AS whs
      FROM (SELECT r.ts, r.wh, r.flags,
                   least(47, greatest(0, floor(extract(epoch FROM (r.ts AT TIME ZONE $2) - $6::date::timestamp) / 1800)))::int AS slot
              FROM interval_readings r
             WHERE r.meter_id = m.id AND r.ts >= $3::timestamptz AND r.ts < $4::timestamptz
             ORDER BY r.ts) x
  ) d
 WHERE m.area_id = $1 AND (m.decommissioned_at IS NULL OR m.decommissioned_at > $3::timestamptz)
   AND (d.n > 0 OR m.created_at < $4::timestamptz)`;

/**
 * The two big statements' limit, on the server (statement_timeout) and in the client (the
 * pool's query_timeout is the API's 30 s + 5 s): an area of 100,000 meters takes ~6 s on two
 * cores, 33 s measured while other work shared them.
 */
const BIG_MS = 600_000;

/** A query with BIG_MS as its client-side timeout (node-pg reads query_timeout per query too). */
function big(text: string, values: unknown[]): QueryConfig {
  const q: QueryConfig & { query_timeout: number } = { text, values, query_timeout: BIG_MS };
  return q;
}

/** The slots of a half-hourly meter's ordinary day, each once and in order. */
const PLAIN_DAY_SLOTS = Array.from({ length: 48 }, (_, i) => i);

/**
 * How many meters' days of run $1 differ from run $2's in anything a bill or a file reads
 * (added, gone, or changed): 0 = nothing changed. Kept on the new version for the dashboard.
 */
const CHANGED = `
SELECT count(*)::int AS changed
  FROM (SELECT * FROM collection_meter_days WHERE run_id = $1) n
  FULL JOIN (SELECT * FROM collection_meter_days WHERE run_id = $2) o ON o.meter_id = n.meter_id
 WHERE n.meter_id IS NULL OR o.meter_id IS NULL
    OR (n.wh, n.actual, n.estimated, n.expected, n.supplier_id, n.feeder_id, n.slot_wh)
       IS DISTINCT FROM (o.wh, o.actual, o.estimated, o.expected, o.supplier_id, o.feeder_id, o.slot_wh)`;

const FINISH = `
UPDATE collection_runs r SET status = 'done', finished_at = now(), changed_meters = $2,
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
  // One area's day is one big statement (100,000 meters: seconds; allow for a busy machine).
  await c.query(`SET LOCAL statement_timeout = '${BIG_MS}ms'`);
  await c.query("SET LOCAL work_mem = '64MB'");
  await c.query('SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))', [
    'kw.collection',
    `${areaId}:${day}`,
  ]);
  const area = (
    await c.query<{ operator_id: number; name: string; pct: string; tz: string; t0: Date; t1: Date }>(
      `SELECT a.operator_id, a.name, coalesce(s.completeness_alert_pct, 98) AS pct, a.tz,
              ($2::date::timestamp AT TIME ZONE a.tz) AS t0, (($2::date + 1)::timestamp AT TIME ZONE a.tz) AS t1
         FROM network_areas a LEFT JOIN network_settings s ON s.operator_id = a.operator_id
        WHERE a.id = $1`,
      [areaId, day],
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
  await c.query(big(COLLECT_ROWS, [areaId, area.tz, area.t0, area.t1, run.id, day, PLAIN_DAY_SLOTS]));
  let changed: number | null = null;
  if (prev) {
    changed = (await c.query<{ changed: number }>(big(CHANGED, [run.id, prev.id]))).rows[0]!.changed;
    if (changed === 0) {
      await c.query('ROLLBACK TO SAVEPOINT collect');
      return result(areaId, day, prev, false, false);
    }
  }
  await c.query(FINISH, [run.id, changed]);
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
