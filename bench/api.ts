/**
 * (d) Latency of GET /api/meters/:serial/daily (a month of daily values) over HTTP, with
 * millions of readings in interval_readings. Rows are generated server-side, the rollups
 * are filled from them with the same local-calendar rule the gateway uses, and the API runs
 * in its own process (bench/api-server.ts) while this process generates the load.
 *
 * The full bench keeps its data set (100M readings by default) in a database of its own that
 * outlives the run (keptData); quick mode generates a small one into the run's database.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { keptDatabase, provision, type BenchDb, type Household } from './db.ts';
import { cpuMs, log, nowMs, onCleanup, percentile, spawnChild, withTimeout } from './lib.ts';
import { type Pool } from '@kilowire/server';

/** A whole-number bench setting from the environment, refused (not guessed) if malformed. */
export function envInt(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min)
    throw new Error(`${name} must be a whole number >= ${min}, got "${raw}"`);
  return n;
}

const YEAR_START = '2024-01-01 00:00:00+00';
const HALF_HOURS_PER_YEAR = 366 * 48; // 2024 is a leap year

/** One year of half-hours for the meters in $1 (int[]), in primary-key order. */
const READINGS_SQL = `INSERT INTO interval_readings (meter_id, ts, wh, flags)
  SELECT m, ts, 50 + ((m * 7919 + (extract(epoch FROM ts)::bigint / 1800) * 31) % 400)::int, 0
  FROM unnest($1::int[]) AS m
  CROSS JOIN generate_series(timestamptz '${YEAR_START}', timestamptz '${YEAR_START}' + interval '366 days' - interval '30 minutes', interval '30 minutes') AS ts
  ORDER BY m, ts`;
/** The daily rollups of the meters in $1 from their readings, in the meter's local calendar. */
const ROLLUPS_SQL = `INSERT INTO daily_rollups (meter_id, day, wh, intervals, estimated)
  SELECT r.meter_id, (r.ts AT TIME ZONE m.tz)::date, sum(r.wh), count(*), 0
  FROM interval_readings r JOIN meters m ON m.id = r.meter_id
  WHERE r.meter_id = ANY($1::int[])
  GROUP BY 1, 2`;

/** Fill interval_readings (one year of half-hours per meter) and the rollups, over two connections. */
async function generate(url: string, pool: Pool, households: Household[]): Promise<void> {
  const ids = households.map((h) => h.meterId);
  const halves = [ids.slice(0, Math.ceil(ids.length / 2)), ids.slice(Math.ceil(ids.length / 2))];
  const run = async (sql: string, part: number[]) => {
    const c = new pg.Client({ connectionString: url });
    c.on('error', () => undefined); // a dropped connection also fails the pending query, which reports it
    await c.connect();
    try {
      await c.query('SET synchronous_commit = off'); // bulk load only; the measured paths use the defaults
      await c.query(sql, [part]);
    } finally {
      await c.end();
    }
  };
  let t = nowMs();
  await Promise.all(halves.map((part) => run(READINGS_SQL, part)));
  log(`  interval_readings generated in ${((nowMs() - t) / 1000).toFixed(1)} s`);
  t = nowMs();
  await Promise.all(halves.map((part) => run(ROLLUPS_SQL, part)));
  log(`  rollups generated in ${((nowMs() - t) / 1000).toFixed(1)} s`);
  t = nowMs();
  // Steady state: visibility map and statistics current, as autovacuum would leave them.
  await pool.query('VACUUM (ANALYZE) interval_readings, daily_rollups, meters, sessions, users');
  await pool.query('CHECKPOINT');
  log(`  vacuum + checkpoint in ${((nowMs() - t) / 1000).toFixed(1)} s`);
}

/** Bump when the kept data set's shape changes: a kept database of another version is rebuilt. */
const KEEP_VERSION = 1;
/** Meters per build transaction: ~350k readings, so an interrupted build loses little. */
const KEEP_CHUNK_METERS = 20;

interface KeptData {
  url: string;
  readingsStored: number;
  meters: number;
  users: { serial: string; loginId: string }[];
}

interface Marker {
  version: number;
  meters: number;
  tag: string;
  readings: string | null;
  complete: boolean;
  build_s: number;
}

/**
 * Part d's data set in a database that outlives the run (`kw_bench_keep_<n>m` on the run's
 * server; for the embedded server that is under ./data-bench). A marker row records what was
 * built; a later run checks it cheaply and reuses the data, resumes an interrupted build
 * (each transaction holds whole meters: their readings and their rollups), or rebuilds it if
 * the marker is from another version or the data does not match it.
 */
async function keptData(
  db: BenchDb,
  target: number,
  passwordHash: string,
  pauseHardLimit?: () => () => void,
): Promise<KeptData> {
  const meters = Math.ceil(target / HALF_HOURS_PER_YEAR);
  const name = `kw_bench_keep_${Math.round(target / 1e6)}m`;
  const where = `database ${name} on ${db.where}`;
  const open = async (recreate: boolean) => {
    const k = await keptDatabase(db, name, { recreate });
    await k.pool.query(`CREATE TABLE IF NOT EXISTS bench_keep (
      id integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
      version integer NOT NULL, meters integer NOT NULL, tag text NOT NULL,
      readings bigint, complete boolean NOT NULL DEFAULT false,
      build_s double precision NOT NULL DEFAULT 0, built_at timestamptz)`);
    const { rows } = await k.pool.query<Marker>('SELECT * FROM bench_keep');
    return { ...k, marker: rows[0] };
  };
  let k = await open(false);
  const users = (tag: string) =>
    Array.from({ length: Math.min(24, meters) }, (_, j) => {
      // Spread over the whole meter range, not the first few meters' pages.
      const i = Math.floor((j * meters) / Math.min(24, meters));
      return { serial: `${tag}M${i}`, loginId: `${tag}C${i}` };
    });

  const problem = async (m: Marker): Promise<string | null> => {
    if (m.version !== KEEP_VERSION) return `built by version ${m.version}, this is ${KEEP_VERSION}`;
    if (m.meters !== meters) return `holds ${m.meters} meters, the target needs ${meters}`;
    const { rows: mc } = await k.pool.query<{ n: number; first: number; last: number }>(
      `SELECT count(*)::int AS n, min(id) AS first, max(id) AS last FROM meters WHERE serial LIKE $1`,
      [`${m.tag}M%`],
    );
    if (mc[0]!.n !== meters) return `${mc[0]!.n} of ${meters} meters present`;
    if (!m.complete) return null;
    for (const id of [mc[0]!.first, mc[0]!.last]) {
      const { rows } = await k.pool.query<{ r: number; d: number }>(
        `SELECT (SELECT count(*)::int FROM interval_readings WHERE meter_id = $1) AS r,
                (SELECT count(*)::int FROM daily_rollups WHERE meter_id = $1) AS d`,
        [id],
      );
      if (rows[0]!.r !== HALF_HOURS_PER_YEAR || rows[0]!.d < 366)
        return `meter ${id} has ${rows[0]!.r} readings and ${rows[0]!.d} rollups`;
    }
    const est = await reltuples(k.pool);
    if (Math.abs(est - Number(m.readings)) > 0.1 * Number(m.readings))
      return `the planner estimates ${est} readings, the marker says ${m.readings}`;
    return null;
  };

  if (k.marker) {
    const p = await problem(k.marker);
    if (p) {
      log(`  kept ${where}: ${p}; rebuilding it`);
      await k.close();
      k = await open(true);
    }
  } else if ((await k.pool.query('SELECT 1 FROM meters LIMIT 1')).rowCount) {
    // Meters but no marker: a build that died while provisioning.
    await k.close();
    k = await open(true);
  }
  if (k.marker?.complete) {
    const est = await reltuples(k.pool);
    log(
      `  REUSING the kept data set: ${where}, ${Number(k.marker.readings).toLocaleString('en')} readings ` +
        `(planner estimate ${est.toLocaleString('en')}), built in ${k.marker.build_s.toFixed(0)} s`,
    );
    return { url: k.url, readingsStored: Number(k.marker.readings), meters, users: users(k.marker.tag) };
  }

  const resumeHardLimit = pauseHardLimit?.() ?? (() => undefined);
  try {
    return await build(k.marker);
  } finally {
    resumeHardLimit();
  }

  async function build(marker: Marker | undefined): Promise<KeptData> {
    const t0 = nowMs();
    const estGb = (target * 85) / 1e9; // bytes per reading measured with 10M (0.8 GiB): heap, primary key, rollups
    log(
      `  BUILDING a KEPT data set (${meters} meters x 1 year of half-hours = ${(meters * HALF_HOURS_PER_YEAR).toLocaleString('en')} readings, ~${estGb.toFixed(1)} GB): ` +
        `${where}. Later full runs reuse it. Delete it with DROP DATABASE ${name}` +
        (db.where.startsWith('embedded')
          ? ' (or delete ./data-bench, which holds the whole embedded server)'
          : '') +
        `; BENCH_KEEP_READINGS sets the size.`,
    );
    let tag: string;
    if (!marker) {
      log(`  provisioning ${meters} households`);
      const hh = await provision(k.pool, meters, { prefix: 'K', passwordHash, concurrency: 4 });
      tag = hh[0]!.serial.replace(/M0$/, '');
      await k.pool.query('INSERT INTO bench_keep (version, meters, tag) VALUES ($1, $2, $3)', [
        KEEP_VERSION,
        meters,
        tag,
      ]);
      log(`  households in ${((nowMs() - t0) / 1000).toFixed(0)} s`);
    } else {
      tag = marker.tag;
      log(`  resuming an interrupted build (${marker.build_s.toFixed(0)} s spent before)`);
    }
    const { rows: idRows } = await k.pool.query<{ id: number }>(
      'SELECT id FROM meters WHERE serial LIKE $1 ORDER BY id',
      [`${tag}M%`],
    );
    const chunks: number[][] = [];
    for (let i = 0; i < idRows.length; i += KEEP_CHUNK_METERS)
      chunks.push(idRows.slice(i, i + KEEP_CHUNK_METERS).map((r) => r.id));
    let next = 0;
    let done = 0;
    let skipped = 0;
    let lastLog = nowMs();
    const tLoad = nowMs();
    const worker = async () => {
      const c = new pg.Client({ connectionString: k.url });
      c.on('error', () => undefined); // a dropped connection also fails the pending query, which reports it
      await c.connect();
      try {
        await c.query('SET synchronous_commit = off'); // bulk load only; a crash loses at most a chunk, redone on resume
        for (;;) {
          const i = next++;
          if (i >= chunks.length) return;
          const chunk = chunks[i]!;
          await c.query('BEGIN');
          const { rowCount } = await c.query(
            'SELECT 1 FROM daily_rollups WHERE meter_id = ANY($1::int[]) LIMIT 1',
            [chunk],
          );
          if (rowCount) {
            await c.query('ROLLBACK');
            skipped++;
            continue;
          }
          await c.query(READINGS_SQL, [chunk]);
          await c.query(ROLLUPS_SQL, [chunk]);
          await c.query('COMMIT');
          done++;
          if (nowMs() - lastLog > 30_000) {
            lastLog = nowMs();
            // So that a resumed build still reports the whole build time.
            await k.pool.query('UPDATE bench_keep SET build_s = $1', [
              (marker?.build_s ?? 0) + (nowMs() - t0) / 1000,
            ]);
            const s = (nowMs() - tLoad) / 1000;
            const left = chunks.length - done - skipped;
            log(
              `  ${(((done + skipped) / chunks.length) * 100).toFixed(0)}%: ${((done * KEEP_CHUNK_METERS * HALF_HOURS_PER_YEAR) / s / 1000).toFixed(0)}k readings/s, ` +
                `~${((left * s) / Math.max(done, 1) / 60).toFixed(0)} min left`,
            );
          }
        }
      } catch (err) {
        await c.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        await c.end();
      }
    };
    const workers = envInt('BENCH_KEEP_WORKERS', 2, 1);
    await Promise.all(Array.from({ length: workers }, worker));
    const loadS = (nowMs() - tLoad) / 1000;
    log(
      `  readings + rollups in ${loadS.toFixed(0)} s (${workers} connections, ${done} chunks of ${KEEP_CHUNK_METERS} meters, ${skipped} already done)`,
    );
    let t = nowMs();
    // Steady state: visibility map and statistics current, as autovacuum would leave them.
    await k.pool.query('VACUUM (ANALYZE) interval_readings, daily_rollups, meters, sessions, users');
    await k.pool.query('CHECKPOINT');
    const vacuumS = (nowMs() - t) / 1000;
    t = nowMs();
    const { rows: cnt } = await k.pool.query<{ n: string }>('SELECT count(*) AS n FROM interval_readings');
    const readings = Number(cnt[0]!.n);
    const { rows: size } = await k.pool.query<{ b: string }>(
      'SELECT pg_database_size(current_database()) AS b',
    );
    const buildS = (marker?.build_s ?? 0) + (nowMs() - t0) / 1000;
    await k.pool.query(
      'UPDATE bench_keep SET readings = $1, complete = true, build_s = $2, built_at = now()',
      [readings, buildS],
    );
    log(
      `  vacuum + checkpoint ${vacuumS.toFixed(0)} s, exact count ${((nowMs() - t) / 1000).toFixed(0)} s: ${readings.toLocaleString('en')} readings, ` +
        `database ${(Number(size[0]!.b) / 2 ** 30).toFixed(1)} GiB; whole build ${buildS.toFixed(0)} s. KEPT: ${where}`,
    );
    return { url: k.url, readingsStored: readings, meters, users: users(tag) };
  }
}

/** The planner's row count of interval_readings (its partitions' if it is partitioned): free to read. */
async function reltuples(pool: Pool): Promise<number> {
  const { rows } = await pool.query<{ n: number | null }>(
    `SELECT sum(greatest(reltuples, 0))::float8 AS n FROM pg_class
     WHERE relkind = 'r' AND (oid = 'interval_readings'::regclass
       OR oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'interval_readings'::regclass))`,
  );
  return Math.round(rows[0]?.n ?? 0);
}

export interface ApiResult {
  readingsStored: number;
  meters: number;
  requests: number;
  concurrency: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  reqPerS: number;
  errors: number;
  /** CPU ms per request of the API process and of this (load generator) process. */
  apiCpuMsPerReq: number;
  clientCpuMsPerReq: number;
  /** The same endpoint at concurrency 1 (300 requests). */
  serialP50: number;
  serialP95: number;
  /**
   * The portal's home call (GET /api/home) for `homeConcurrency` simulated users, each
   * loading home, reading it for 0.5-1.5 s, loading it again: the interactive-users model.
   */
  home: {
    concurrency: number;
    requests: number;
    p50: number;
    p95: number;
    p99: number;
    reqPerS: number;
    errors: number;
  };
  /** The daily-statistics call for the same interactive users. */
  dailyUsers: { p50: number; p95: number; p99: number; reqPerS: number; requests: number };
  /** The same users with no think time at all: the API's saturation point on this machine. */
  homeSaturated: { p50: number; p95: number; reqPerS: number };
}

export async function benchApi(
  url: string,
  pool: Pool,
  opts: {
    targetReadings: number;
    requests: number;
    concurrency: number;
    homeConcurrency: number;
    passwordHash: string;
    password: string;
    /** Use (or build) the kept data set on this server instead of generating into `url`. */
    keep?: BenchDb;
    /** Stops the run's time limit while a kept data set is built; returns its resume. */
    pauseHardLimit?: () => () => void;
  },
): Promise<ApiResult> {
  let data: KeptData;
  if (opts.keep) {
    data = await keptData(opts.keep, opts.targetReadings, opts.passwordHash, opts.pauseHardLimit);
  } else {
    const meters = Math.ceil(opts.targetReadings / HALF_HOURS_PER_YEAR);
    log(`  provisioning ${meters} households`);
    const households = await provision(pool, meters, { prefix: 'D', passwordHash: opts.passwordHash });
    await generate(url, pool, households);
    const { rows: cnt } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM interval_readings');
    data = { url, readingsStored: cnt[0]?.n ?? 0, meters, users: households.slice(0, 24) };
  }
  const { readingsStored, meters } = data;
  log(`  interval_readings holds ${readingsStored} rows`);

  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'kw-bench-api-'));
  onCleanup('api data dir', () => rmSync(dataDir, { recursive: true, force: true }));
  let port = 0;
  const api = spawnChild(
    'api server',
    process.execPath,
    ['--import', 'tsx', path.join(import.meta.dirname, 'api-server.ts')],
    {
      env: { ...process.env, DATABASE_URL: data.url, DATA_DIR: dataDir },
      onLine: (l) => {
        const m = /^LISTENING (\d+)/.exec(l);
        if (m) port = Number(m[1]);
      },
    },
  );
  try {
    await api.waitFor('LISTENING', 60_000);
    const base = `http://127.0.0.1:${port}`;

    // A few consumers log in (the login rate limit allows 30 a minute per IP).
    const users = data.users;
    const sessions: { cookie: string; serial: string }[] = [];
    for (const h of users) {
      const res = await fetch(`${base}/api/session`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ consumerId: h.loginId, password: opts.password }),
        signal: AbortSignal.timeout(10_000),
      });
      if (res.status !== 200)
        throw new Error(`login of ${h.loginId} failed: ${res.status} ${await res.text()}`);
      const set = res.headers.getSetCookie().find((c) => c.startsWith('kw_session='));
      if (!set) throw new Error('login returned no kw_session cookie');
      sessions.push({ cookie: set.split(';')[0]!, serial: h.serial });
      await res.arrayBuffer();
    }

    // Each request: one consumer's own meter, one month of 2024 (28-31 daily values).
    const months = Array.from({ length: 12 }, (_, i) => {
      const from = new Date(Date.UTC(2024, i, 1));
      const to = new Date(Date.UTC(2024, i + 1, 0));
      return {
        from: from.toISOString().slice(0, 10),
        to: to.toISOString().slice(0, 10),
        days: to.getUTCDate(),
      };
    });
    let errors = 0;
    let firstError = '';
    let target: 'daily' | 'home' = 'daily';
    const one = async (i: number): Promise<number> => {
      const s = sessions[i % sessions.length]!;
      if (target === 'home') {
        const t = nowMs();
        const res = await fetch(`${base}/api/home?serial=${s.serial}`, {
          headers: { cookie: s.cookie },
          signal: AbortSignal.timeout(30_000),
        });
        const body = (await res.json()) as { meter?: { serial?: string } };
        const ms = nowMs() - t;
        if (res.status !== 200 || body.meter?.serial !== s.serial) {
          errors++;
          firstError ||= `${res.status} ${JSON.stringify(body).slice(0, 300)}`;
        }
        return ms;
      }
      const m = months[(i * 7) % 12]!;
      const t = nowMs();
      const res = await fetch(`${base}/api/meters/${s.serial}/daily?from=${m.from}&to=${m.to}`, {
        headers: { cookie: s.cookie },
        signal: AbortSignal.timeout(30_000),
      });
      const body = (await res.json()) as { days?: unknown[] };
      const ms = nowMs() - t;
      if (res.status !== 200 || body.days?.length !== m.days) {
        errors++;
        firstError ||= `${res.status} ${JSON.stringify(body).slice(0, 300)}`;
      }
      return ms;
    };
    const fire = async (
      n: number,
      concurrency = opts.concurrency,
    ): Promise<{ lat: number[]; seconds: number }> => {
      const lat: number[] = [];
      let next = 0;
      const t = nowMs();
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          for (;;) {
            const i = next++;
            if (i >= n) return;
            lat.push(await one(i));
          }
        }),
      );
      return { lat, seconds: (nowMs() - t) / 1000 };
    };
    await withTimeout(fire(Math.min(500, opts.requests)), 120_000, 'API warm-up'); // JIT, pool connections, caches
    errors = 0;
    const apiCpu0 = cpuMs(api.proc.pid);
    const selfCpu0 = process.cpuUsage();
    const r = await withTimeout(fire(opts.requests), 600_000, 'API load');
    const apiCpu = (cpuMs(api.proc.pid) ?? NaN) - (apiCpu0 ?? NaN);
    const self = process.cpuUsage(selfCpu0);
    const clientCpu = (self.user + self.system) / 1000;
    // Whatever else ran on the machine's cores meanwhile: mostly PostgreSQL.
    const otherCpu = os.cpus().length * r.seconds * 1000 - apiCpu - clientCpu;
    log(
      `  CPU per request: API process ${(apiCpu / opts.requests).toFixed(2)} ms, load generator ${(clientCpu / opts.requests).toFixed(2)} ms, ` +
        `rest of the machine (PostgreSQL, idle) ${(otherCpu / opts.requests).toFixed(2)} ms`,
    );
    // The same requests one at a time: the latency floor without queueing.
    const serial = await withTimeout(fire(300, 1), 120_000, 'API serial run');
    if (errors) log(`  ${errors} failed requests; first: ${firstError}`);
    const dailyErrors = errors;

    // The portal's home call, many users at once (each request: session, meter, today, billing period, unread).
    target = 'home';
    errors = 0;
    await withTimeout(fire(Math.min(500, opts.requests), opts.homeConcurrency), 120_000, 'home warm-up');
    errors = 0;
    const sat = await withTimeout(fire(opts.requests, opts.homeConcurrency), 600_000, 'home saturation');
    const ss = sat.lat.sort((x, y) => x - y);
    const homeSaturated = {
      p50: percentile(ss, 50),
      p95: percentile(ss, 95),
      reqPerS: opts.requests / sat.seconds,
    };
    errors = 0;
    // Interactive users: each one loads home, reads it for 0.5-1.5 s, loads it again.
    const interactive = async (seconds: number): Promise<{ lat: number[]; seconds: number }> => {
      const lat: number[] = [];
      const t = nowMs();
      let i = 0;
      await Promise.all(
        Array.from({ length: opts.homeConcurrency }, async (_, u) => {
          // Users arrive spread over the first second, not in one burst.
          await new Promise((r) => setTimeout(r, (u * 1000) / opts.homeConcurrency));
          while (nowMs() - t < seconds * 1000) {
            lat.push(await one(i++));
            await new Promise((r) => setTimeout(r, 500 + Math.random() * 1000));
          }
        }),
      );
      return { lat, seconds: (nowMs() - t) / 1000 };
    };
    const h = await withTimeout(interactive(opts.requests >= 5000 ? 30 : 12), 120_000, 'home users');
    if (errors) log(`  home: ${errors} failed requests; first: ${firstError}`);
    const hs = h.lat.sort((x, y) => x - y);
    const home = {
      concurrency: opts.homeConcurrency,
      requests: h.lat.length,
      p50: percentile(hs, 50),
      p95: percentile(hs, 95),
      p99: percentile(hs, 99),
      reqPerS: h.lat.length / h.seconds,
      errors,
    };
    // The daily-statistics call for the same interactive users (each asks for a month).
    target = 'daily';
    const du = await withTimeout(interactive(opts.requests >= 5000 ? 30 : 12), 120_000, 'daily users');
    const ds = du.lat.sort((x, y) => x - y);
    const dailyUsers = {
      p50: percentile(ds, 50),
      p95: percentile(ds, 95),
      p99: percentile(ds, 99),
      reqPerS: du.lat.length / du.seconds,
      requests: du.lat.length,
    };
    errors += dailyErrors;
    const sorted = r.lat.sort((a, b) => a - b);
    const sortedSerial = serial.lat.sort((a, b) => a - b);
    return {
      readingsStored,
      meters,
      requests: opts.requests,
      concurrency: opts.concurrency,
      p50: percentile(sorted, 50),
      p95: percentile(sorted, 95),
      p99: percentile(sorted, 99),
      max: sorted[sorted.length - 1] ?? NaN,
      reqPerS: opts.requests / r.seconds,
      errors,
      apiCpuMsPerReq: apiCpu / opts.requests,
      clientCpuMsPerReq: clientCpu / opts.requests,
      serialP50: percentile(sortedSerial, 50),
      serialP95: percentile(sortedSerial, 95),
      home,
      homeSaturated,
      dailyUsers,
    };
  } finally {
    await api.stop();
  }
}
