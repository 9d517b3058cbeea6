/**
 * (j) A monthly extract (S5) over N meters of one supplier: 30 days of daily_rollups each
 * (November 2026; N = 100,000 is ~3M rows), built set-based inside the database
 * (generate_series), then one extract through the real job path: createExtract (the row and
 * its domain event), a job on the extract queue, the jobs service's worker (startCaseJobs)
 * writing gzip chunks with progress, until the extract is done. The floor it is compared with
 * is measured in the same run on the same rows: COPY (SELECT the month's rows) TO STDOUT, the
 * fastest way PostgreSQL can hand those rows out as text.
 */
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gunzipSync } from 'node:zlib';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import {
  createArea,
  createExtract,
  createOrganisation,
  EXTRACT_QUEUE,
  logger,
  startBoss,
  startCaseJobs,
  tx,
  type Pool,
} from '@kilowire/server';
import { log, nowMs } from './lib.ts';

export interface ExtractResult {
  meters: number;
  /** CSV data rows (daily + monthly). */
  rows: number;
  /** Uncompressed CSV bytes. */
  bytes: number;
  buildS: number;
  /** From the extract's creation to status done (queue, worker, all chunks). */
  extractS: number;
  rowsPerS: number;
  /** COPY (SELECT the month's daily rows) TO STDOUT, rows/s: the floor. */
  copyOutRowsPerS: number;
  /** extract rows/s over COPY-out rows/s. */
  vsCopyOut: number;
  chunk: number;
}

const MONTH = '2026-11';

async function copyOut(url: string, supplierId: number): Promise<{ rows: number; s: number }> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    let lines = 0;
    const t = nowMs();
    const src = c.query(
      copyTo(`COPY (SELECT m.serial, r.day, r.wh, r.intervals, r.estimated
                      FROM meters m JOIN daily_rollups r ON r.meter_id = m.id
                     WHERE m.supplier_id = ${supplierId} AND r.day >= '${MONTH}-01' AND r.day < '${MONTH}-01'::date + interval '1 month'
                     ORDER BY m.serial, r.day) TO STDOUT (FORMAT csv)`),
    );
    await pipeline(
      src,
      new Writable({
        write(chunk: Buffer, _e, cb) {
          for (let i = 0; i < chunk.length; i++) if (chunk[i] === 10) lines++;
          cb();
        },
      }),
    );
    return { rows: lines, s: (nowMs() - t) / 1000 };
  } finally {
    await c.end();
  }
}

export async function benchExtract(
  url: string,
  pool: Pool,
  o: { meters: number; chunk: number; workers: number },
): Promise<ExtractResult> {
  const t0 = nowMs();
  const sup = await createOrganisation(pool, 'supplier', 'sup-extract', 'Extract Energy');
  const op = await createOrganisation(pool, 'network_operator', 'op-extract', 'Extract Networks');
  await createArea(pool, 'A-EXTRACT', op, 'Extract area', ['F-EXTRACT']);
  await pool.query(
    `WITH u AS (
       INSERT INTO users (role, login_id, password_hash, display_name)
       SELECT 'consumer', 'EXTC' || i, 'x', 'Household ' || i FROM generate_series(1, $2::int) i
       RETURNING id, display_name),
     c AS (
       INSERT INTO consumers (user_id, supplier_id, name) SELECT id, $1, display_name FROM u RETURNING id),
     a AS (
       INSERT INTO accounts (consumer_id, supplier_id, mode, billing_cycle_day) SELECT id, $1, 'credit', 1 FROM c RETURNING id)
     INSERT INTO meters (serial, account_id, supplier_id, area_id, feeder_id, tz, credential_hash, mode)
     SELECT 'EXTM' || lpad(id::text, 7, '0'), id, $1, 'A-EXTRACT', 'F-EXTRACT', 'Europe/London', 'x', 'credit' FROM a`,
    [sup, o.meters],
  );
  // 30 local days per meter, a few with estimates; energy varies by meter and day.
  await pool.query(
    `INSERT INTO daily_rollups (meter_id, day, wh, intervals, estimated)
     SELECT m.id, d::date, 4000 + ((m.id * 37 + extract(day FROM d)::int * 101) % 9000), 48,
            CASE WHEN (m.id + extract(day FROM d)::int) % 97 = 0 THEN 2 ELSE 0 END
       FROM meters m, generate_series('${MONTH}-01'::date, '${MONTH}-30'::date, interval '1 day') d
      WHERE m.supplier_id = $1`,
    [sup],
  );
  await pool.query('VACUUM ANALYZE daily_rollups');
  await pool.query('VACUUM ANALYZE meters');
  await pool.query('CHECKPOINT');
  const buildS = (nowMs() - t0) / 1000;
  log(`extract data set: ${o.meters} meters x 30 days built in ${buildS.toFixed(1)} s`);

  // The floor, on the same rows (warm cache for both).
  const floor = await copyOut(url, sup);
  const copyOutRowsPerS = floor.rows / floor.s;
  log(`COPY out: ${floor.rows} rows in ${floor.s.toFixed(2)} s, ${Math.round(copyOutRowsPerS)} rows/s`);

  const started = await startBoss(pool, { supervise: false, schedule: false });
  try {
    await startCaseJobs(started.boss, pool, logger('bench-extract'), {
      pollS: 0.5,
      run: { chunk: o.chunk, workers: o.workers },
    });
    const user = await pool.query<{ id: number }>(`SELECT id FROM users WHERE login_id = 'EXTC1'`);
    const t = nowMs();
    const id = await tx(pool, (c) =>
      createExtract(c, { supplierId: sup, requestedBy: user.rows[0]!.id, month: MONTH, selection: {} }),
    );
    // What the extracts subscriber does when the domain event reaches it.
    await started.boss.send(EXTRACT_QUEUE, { extractId: id });
    let last = '';
    for (;;) {
      const { rows } = await pool.query<{ status: string; meters_done: number; meters_total: number | null }>(
        'SELECT status, meters_done, meters_total FROM extracts WHERE id = $1',
        [id],
      );
      const x = rows[0]!;
      if (x.status === 'done') break;
      if (x.status === 'failed') throw new Error('the extract failed');
      const p = `${x.meters_done}/${x.meters_total ?? '?'}`;
      if (p !== last) log(`  extract progress ${p}`);
      last = p;
      if (nowMs() - t > 600_000) throw new Error(`extract not done after 10 min (${p})`);
      await new Promise((r) => setTimeout(r, 250));
    }
    const extractS = (nowMs() - t) / 1000;
    const x = (
      await pool.query<{ rows: number; bytes: number }>('SELECT rows, bytes FROM extracts WHERE id = $1', [
        id,
      ])
    ).rows[0]!;
    // Check the file: every daily row is there once, and one monthly row per meter.
    const chunks = await pool.query<{ gz: Buffer }>(
      'SELECT gz FROM extract_chunks WHERE extract_id = $1 ORDER BY n',
      [id],
    );
    let daily = 0;
    let monthly = 0;
    for (const c of chunks.rows) {
      const text = gunzipSync(c.gz).toString();
      for (const line of text.split('\n')) {
        if (line.startsWith('daily,')) daily++;
        else if (line.startsWith('monthly,')) monthly++;
      }
    }
    if (daily !== floor.rows || monthly !== o.meters)
      throw new Error(
        `extract has ${daily} daily and ${monthly} monthly rows; expected ${floor.rows} and ${o.meters}`,
      );
    const rowsPerS = x.rows / extractS;
    log(
      `extract: ${x.rows} rows, ${(x.bytes / 1e6).toFixed(1)} MB CSV in ${extractS.toFixed(1)} s, ${Math.round(rowsPerS)} rows/s`,
    );
    return {
      meters: o.meters,
      rows: x.rows,
      bytes: x.bytes,
      buildS,
      extractS,
      rowsPerS,
      copyOutRowsPerS,
      vsCopyOut: rowsPerS / copyOutRowsPerS,
      chunk: o.chunk,
    };
  } finally {
    await started.stop(10_000);
  }
}
