/**
 * (l) The daily collection (#9 N1) of one local day over N meters of one area (N = 100,000:
 * 4.8M interval rows). The data set is built in the run's fresh database: meters with
 * INSERT ... SELECT, the day's intervals with COPY in (meter, ts) order as the gateway's
 * batches would leave them (about 1 % of meters silent from the afternoon, 1 % with two
 * estimated intervals). Then collectDay as the schedule calls it, timed, and checked against
 * the raw intervals.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { collectDay, createArea, createOrganisation, fileLines, type Pool } from '@kilowire/server';
import { log, nowMs } from './lib.ts';

export interface CollectionResult {
  meters: number;
  rows: number;
  buildS: number;
  /** The collection of the day (one collectDay call). */
  collectS: number;
  metersPerS: number;
  /** A second collectDay with nothing changed (compares and returns the same version). */
  recollectS: number;
  completeMeters: number;
  /** The bigger supplier's daily file (two thirds of the meters), read batch by batch as the route streams it. */
  fileMeters: number;
  fileS: number;
}

const DAY = '2026-11-02';
const AREA = 'A-COLLECT';

/** Text COPY rows for meters [first, first+n): 48 half-hours of DAY (a GMT day: UTC midnight). */
function rows(first: number, n: number): Readable {
  const t0 = Date.UTC(2026, 10, 2) / 1000;
  const ts = Array.from({ length: 48 }, (_, i) =>
    new Date((t0 + i * 1800) * 1000).toISOString().replace('T', ' ').replace('.000Z', '+00'),
  );
  function* gen(): Generator<Buffer> {
    let chunk = '';
    for (let k = 0; k < n; k++) {
      const id = first + k;
      // 1 % silent from 14:00, 1 % with two estimated intervals (VEE filled a gap).
      const last = k % 100 === 7 ? 28 : 48;
      for (let i = 0; i < last; i++) {
        const flags = k % 100 === 11 && (i === 20 || i === 21) ? 1 : 0;
        chunk += `${id}\t${ts[i]!}\t${30 + ((k * 31 + i * 7) % 400)}\t${flags}\n`;
        if (chunk.length > 256_000) {
          yield Buffer.from(chunk);
          chunk = '';
        }
      }
    }
    if (chunk) yield Buffer.from(chunk);
  }
  return Readable.from(gen(), { objectMode: false });
}

export async function benchCollection(
  url: string,
  pool: Pool,
  o: { meters: number },
): Promise<CollectionResult> {
  const t0 = nowMs();
  const sup1 = await createOrganisation(pool, 'supplier', 'sup-collect-1', 'Collect Energy One');
  const sup2 = await createOrganisation(pool, 'supplier', 'sup-collect-2', 'Collect Energy Two');
  const op = await createOrganisation(pool, 'network_operator', 'op-collect', 'Collect Networks');
  const feeders = Array.from({ length: 20 }, (_, i) => `F-COLLECT-${i}`);
  await createArea(pool, AREA, op, 'Collect area', feeders);
  // Meters of two suppliers over 20 feeders, installed long before the day.
  const ids = await pool.query<{ first: number; n: number }>(
    `WITH m AS (
       INSERT INTO meters (serial, supplier_id, area_id, feeder_id, tz, credential_hash, created_at)
       SELECT 'COLM' || lpad(i::text, 7, '0'), CASE WHEN i % 3 = 0 THEN $2::int ELSE $1::int END, $3,
              'F-COLLECT-' || (i % 20), 'Europe/London', 'x', '2026-01-01Z'
         FROM generate_series(1, $4::int) i
       RETURNING id)
     SELECT min(id)::int AS first, count(*)::int AS n FROM m`,
    [sup1, sup2, AREA, o.meters],
  );
  const { first, n } = ids.rows[0]!;
  if (n !== o.meters) throw new Error(`made ${n} meters, wanted ${o.meters}`);
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await pipeline(
      rows(first, n),
      c.query(copyFrom('COPY interval_readings (meter_id, ts, wh, flags) FROM STDIN')),
    );
  } finally {
    await c.end();
  }
  await pool.query('VACUUM ANALYZE interval_readings');
  await pool.query('VACUUM ANALYZE meters');
  await pool.query('CHECKPOINT');
  const raw = (
    await pool.query<{ rows: number; wh: number }>(
      `SELECT count(*)::int AS rows, sum(wh)::bigint AS wh FROM interval_readings
        WHERE meter_id BETWEEN $1 AND $2`,
      [first, first + n - 1],
    )
  ).rows[0]!;
  const buildS = (nowMs() - t0) / 1000;
  log(`collection data set: ${n} meters, ${raw.rows} intervals built in ${buildS.toFixed(1)} s (COPY)`);

  let t = nowMs();
  const run = await collectDay(pool, AREA, DAY, 'cutoff');
  const collectS = (nowMs() - t) / 1000;
  if (run.meters !== n || run.wh !== Number(raw.wh) || run.actual + run.estimated !== raw.rows)
    throw new Error(
      `collection has ${run.meters} meters, ${run.wh} Wh, ${run.actual + run.estimated} intervals; ` +
        `expected ${n}, ${raw.wh}, ${raw.rows}`,
    );
  log(
    `collection: ${n} meters in ${collectS.toFixed(1)} s (${Math.round(n / collectS)} meters/s), ` +
      `${run.completeMeters} complete`,
  );
  t = nowMs();
  const again = await collectDay(pool, AREA, DAY, 'manual');
  const recollectS = (nowMs() - t) / 1000;
  if (again.created || again.version !== 1) throw new Error('an unchanged day made a new version');
  log(`re-collection with nothing changed: ${recollectS.toFixed(1)} s (no new version)`);
  // The bigger supplier's file, in the route's batches of 2,000 (JSON lines, not sent anywhere).
  t = nowMs();
  let fileMeters = 0;
  let bytes = 0;
  for (let after = 0; ;) {
    const b = await fileLines(pool, run.runId, sup1, after, 2000);
    fileMeters += b.length;
    for (const l of b) bytes += JSON.stringify(l).length;
    if (b.length < 2000) break;
    after = b[b.length - 1]!.meterId;
  }
  const fileS = (nowMs() - t) / 1000;
  const want = n - Math.floor(n / 3);
  if (fileMeters !== want) throw new Error(`the file has ${fileMeters} meters, expected ${want}`);
  log(
    `supplier file: ${fileMeters} meters, ${(bytes / 1e6).toFixed(1)} MB of JSON lines in ${fileS.toFixed(1)} s`,
  );
  return {
    meters: n,
    rows: raw.rows,
    buildS,
    collectS,
    metersPerS: n / collectS,
    recollectS,
    completeMeters: run.completeMeters,
    fileMeters,
    fileS,
  };
}
