import type {
  CollectionArea,
  CollectionDayResponse,
  CollectionFileLine,
  CollectionMissingMeter,
  CollectionRun,
  CollectionTotal,
  CollectionVersion,
} from '@kilowire/contract';
import { addDays, localDate } from '@kilowire/protocol';
import type { Q } from '../db/pool.ts';
import { scopeSql, type Actor } from '../policies.ts';
import { cutoffOf } from './schedule.ts';

/**
 * What the operator reads of the daily collection: per area the last days, one day's
 * versions and totals, the meters missing, and each supplier's file. Areas outside the
 * actor's scope do not exist here (the routes answer 404).
 */

export interface AreaRow {
  id: string;
  name: string;
  tz: string;
  cutoff: string;
  pct: number;
}

const AREA_COLS = `a.id, a.name, a.tz, to_char(coalesce(s.collection_cutoff, '06:00'), 'HH24:MI') AS cutoff,
  coalesce(s.completeness_alert_pct, 98)::float8 AS pct`;

/** The area if the actor may see it (operators their own, admins all), else null. */
export async function visibleArea(q: Q, actor: Actor, areaId: string): Promise<AreaRow | null> {
  const s = scopeSql(actor, 'network_areas', 'a', 2);
  const r = await q.query<AreaRow>(
    `SELECT ${AREA_COLS} FROM network_areas a LEFT JOIN network_settings s ON s.operator_id = a.operator_id
      WHERE a.id = $1 AND ${s.sql}`,
    [areaId, ...s.params],
  );
  return r.rows[0] ?? null;
}

interface RunRow {
  id: number;
  day: string;
  version: number;
  reason: CollectionRun['reason'];
  finished_at: Date | null;
  started_at: Date;
  meters: number;
  complete_meters: number;
  wh: number;
  actual: number;
  estimated: number;
  expected: number;
  changed_meters: number | null;
}

const RUN_COLS = `r.id::int AS id, r.changed_meters, to_char(r.day, 'YYYY-MM-DD') AS day, r.version, r.reason, r.started_at, r.finished_at,
  r.meters, r.complete_meters, r.wh, r.actual, r.estimated, r.expected`;

const pctOf = (complete: number, meters: number): number | null =>
  meters > 0 ? Math.floor((complete * 1000) / meters) / 10 : null;

function presentRun(r: RunRow): CollectionRun {
  return {
    version: r.version,
    reason: r.reason,
    collectedAt: (r.finished_at ?? r.started_at).toISOString(),
    meters: r.meters,
    completeMeters: r.complete_meters,
    completePct: pctOf(r.complete_meters, r.meters),
    wh: Number(r.wh),
    actual: Number(r.actual),
    estimated: Number(r.estimated),
    expected: Number(r.expected),
  };
}

/** The actor's areas, each with its last `days` local days (yesterday first) and their latest versions. */
export async function listAreas(q: Q, actor: Actor, days: number, nowS: number): Promise<CollectionArea[]> {
  const s = scopeSql(actor, 'network_areas', 'a');
  const areas = (
    await q.query<AreaRow>(
      `SELECT ${AREA_COLS} FROM network_areas a LEFT JOIN network_settings s ON s.operator_id = a.operator_id
        WHERE ${s.sql} ORDER BY a.id`,
      s.params,
    )
  ).rows;
  if (!areas.length) return [];
  const out: CollectionArea[] = [];
  for (const a of areas) {
    const today = localDate(nowS, a.tz);
    const from = addDays(today, -days);
    const runs = (
      await q.query<RunRow & { n: number }>(
        `SELECT DISTINCT ON (r.day) ${RUN_COLS}, count(*) OVER (PARTITION BY r.day)::int AS n
           FROM collection_runs r
          WHERE r.area_id = $1 AND r.day >= $2 AND r.day < $3 AND r.status = 'done'
          ORDER BY r.day DESC, r.version DESC`,
        [a.id, from, today],
      )
    ).rows;
    const byDay = new Map(runs.map((r) => [r.day, r]));
    const list: CollectionArea['days'] = [];
    for (let k = 1; k <= days; k++) {
      const day = addDays(today, -k);
      const r = byDay.get(day);
      list.push({ day, versions: r?.n ?? 0, latest: r ? presentRun(r) : null });
    }
    out.push({
      areaId: a.id,
      name: a.name,
      tz: a.tz,
      cutoff: a.cutoff,
      completenessAlertPct: a.pct,
      days: list,
    });
  }
  return out;
}

async function runsOfDay(q: Q, areaId: string, day: string): Promise<RunRow[]> {
  return (
    await q.query<RunRow>(
      `SELECT ${RUN_COLS} FROM collection_runs r WHERE r.area_id = $1 AND r.day = $2 AND r.status = 'done'
        ORDER BY r.version`,
      [areaId, day],
    )
  ).rows;
}

/** The run of (area, day, version), the latest without a version; null when there is none. */
export async function runOf(
  q: Q,
  areaId: string,
  day: string,
  version?: number,
): Promise<{ id: number; version: number } | null> {
  const r = await q.query<{ id: number; version: number }>(
    `SELECT id::int AS id, version FROM collection_runs
      WHERE area_id = $1 AND day = $2 AND status = 'done' AND ($3::int IS NULL OR version = $3)
      ORDER BY version DESC LIMIT 1`,
    [areaId, day, version ?? null],
  );
  return r.rows[0] ?? null;
}

interface TotalRow {
  id: string | null;
  name: string | null;
  meters: number;
  complete: number;
  wh: number;
  actual: number;
  estimated: number;
  expected: number;
}

function presentTotal(t: TotalRow): CollectionTotal {
  return {
    id: t.id ?? '',
    name: t.name ?? '—',
    meters: t.meters,
    completeMeters: t.complete,
    completePct: pctOf(t.complete, t.meters),
    wh: Number(t.wh),
    actual: Number(t.actual),
    estimated: Number(t.estimated),
    expected: Number(t.expected),
  };
}

const TOTALS = `count(*)::int AS meters, count(*) FILTER (WHERE d.actual + d.estimated >= d.expected)::int AS complete,
  sum(d.wh)::bigint AS wh, sum(d.actual)::bigint AS actual, sum(d.estimated)::bigint AS estimated,
  sum(d.expected)::bigint AS expected`;

/** One day of an area: its versions (with what changed from the one before) and one version's totals. */
export async function dayView(
  q: Q,
  area: AreaRow,
  day: string,
  version?: number,
): Promise<CollectionDayResponse | null> {
  const runs = await runsOfDay(q, area.id, day);
  if (!runs.length) return null;
  const shown = version === undefined ? runs[runs.length - 1] : runs.find((r) => r.version === version);
  if (!shown) return null;
  const versions: CollectionVersion[] = runs.map((r, i) => ({
    ...presentRun(r),
    changedMeters: i === 0 ? null : r.changed_meters,
    whDelta: i === 0 ? null : Number(r.wh) - Number(runs[i - 1]!.wh),
  }));
  const suppliers = (
    await q.query<TotalRow>(
      `SELECT d.supplier_id::text AS id, o.name, ${TOTALS}
         FROM collection_meter_days d JOIN organisations o ON o.id = d.supplier_id
        WHERE d.run_id = $1 GROUP BY d.supplier_id, o.name ORDER BY o.name`,
      [shown.id],
    )
  ).rows.map(presentTotal);
  const feeders = (
    await q.query<TotalRow>(
      `SELECT d.feeder_id AS id, f.name, ${TOTALS}
         FROM collection_meter_days d LEFT JOIN feeders f ON f.id = d.feeder_id
        WHERE d.run_id = $1 GROUP BY d.feeder_id, f.name ORDER BY d.feeder_id NULLS LAST`,
      [shown.id],
    )
  ).rows.map(presentTotal);
  return {
    areaId: area.id,
    areaName: area.name,
    tz: area.tz,
    day,
    completenessAlertPct: area.pct,
    versions,
    version: presentRun(shown),
    suppliers,
    feeders,
  };
}

/** Missing/incomplete cursor: [missing-since epoch ms or null, meter id]. */
export function encodeMissingCursor(c: [number | null, number]): string {
  return Buffer.from(JSON.stringify(c)).toString('base64url');
}
export function decodeMissingCursor(s: string | undefined): [number | null, number] | null | 'bad' {
  if (s === undefined) return null;
  try {
    const v: unknown = JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
    if (
      Array.isArray(v) &&
      v.length === 2 &&
      (v[0] === null || Number.isSafeInteger(v[0])) &&
      Number.isSafeInteger(v[1])
    )
      return [v[0] as number | null, v[1] as number];
  } catch {
    // fall through
  }
  return 'bad';
}

/**
 * Meters missing or incomplete in a run, longest missing first (no data at all, then the
 * oldest last_data_at), keyset-paged on (last_data_at, meter_id).
 */
export async function missingMeters(
  q: Q,
  runId: number,
  limit: number,
  after: [number | null, number] | null,
): Promise<{ total: number; items: CollectionMissingMeter[]; next: [number | null, number] | null }> {
  const total = (
    await q.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM collection_meter_days d WHERE d.run_id = $1 AND d.actual + d.estimated < d.expected`,
      [runId],
    )
  ).rows[0]!.n;
  // '-infinity' sorts meters that never sent anything first.
  const key = `coalesce(d.last_data_at, '-infinity'::timestamptz)`;
  const afterTs = after ? (after[0] === null ? '-infinity' : new Date(after[0]).toISOString()) : null;
  const r = await q.query<{
    meter_id: number;
    serial: string;
    feeder: string | null;
    supplier: string;
    actual: number;
    estimated: number;
    expected: number;
    wh: number;
    last_data_at: Date | null;
  }>(
    `SELECT d.meter_id, m.serial, d.feeder_id AS feeder, o.name AS supplier, d.actual, d.estimated, d.expected, d.wh,
            d.last_data_at
       FROM collection_meter_days d JOIN meters m ON m.id = d.meter_id JOIN organisations o ON o.id = d.supplier_id
      WHERE d.run_id = $1 AND d.actual + d.estimated < d.expected
        AND ($2::timestamptz IS NULL OR (${key}, d.meter_id) > ($2::timestamptz, $3::int))
      ORDER BY ${key}, d.meter_id LIMIT $4`,
    [runId, afterTs, after?.[1] ?? 0, limit + 1],
  );
  const rows = r.rows.slice(0, limit);
  const last = rows[rows.length - 1];
  return {
    total,
    items: rows.map((x) => ({
      serial: x.serial,
      feeder: x.feeder,
      supplier: x.supplier,
      actual: x.actual,
      estimated: x.estimated,
      expected: x.expected,
      wh: Number(x.wh),
      lastDataAt: x.last_data_at?.toISOString() ?? null,
    })),
    next: r.rows.length > limit && last ? [last.last_data_at?.getTime() ?? null, last.meter_id] : null,
  };
}

/** The supplier's name if it has meters in the run. */
export async function supplierInRun(q: Q, runId: number, supplierId: number): Promise<string | null> {
  const r = await q.query<{ name: string }>(
    `SELECT o.name FROM organisations o
      WHERE o.id = $2 AND EXISTS (SELECT 1 FROM collection_meter_days d WHERE d.run_id = $1 AND d.supplier_id = $2)`,
    [runId, supplierId],
  );
  return r.rows[0]?.name ?? null;
}

/**
 * One batch of a supplier's file, in meter order after meter `afterMeter`: a range of the
 * run's primary key (run_id, meter_id), so a 100,000-meter file is read in batches without
 * sorting the supplier's rows again for each.
 */
export async function fileLines(
  q: Q,
  runId: number,
  supplierId: number,
  afterMeter: number,
  limit: number,
): Promise<(CollectionFileLine & { meterId: number })[]> {
  const r = await q.query<{
    meter_id: number;
    serial: string;
    feeder: string | null;
    wh: number;
    actual: number;
    estimated: number;
    expected: number;
    slot_wh: number[];
  }>(
    `SELECT d.meter_id, m.serial, d.feeder_id AS feeder, d.wh, d.actual, d.estimated, d.expected, d.slot_wh
       FROM collection_meter_days d JOIN meters m ON m.id = d.meter_id
      WHERE d.run_id = $1 AND d.meter_id > $3 AND d.supplier_id = $2
      ORDER BY d.meter_id LIMIT $4`,
    [runId, supplierId, afterMeter, limit],
  );
  return r.rows.map((x) => ({
    meterId: x.meter_id,
    serial: x.serial,
    feeder: x.feeder,
    wh: Number(x.wh),
    kwh: Number(x.wh) / 1000,
    actual: x.actual,
    estimated: x.estimated,
    expected: x.expected,
    complete: x.actual + x.estimated >= x.expected,
    slotWh: x.slot_wh,
  }));
}

/** Whether the day's cut-off has passed for the area (a day is collected only then). */
export function isDue(area: AreaRow, day: string, nowS: number): boolean {
  return cutoffOf(day, area.tz, area.cutoff) <= nowS;
}
