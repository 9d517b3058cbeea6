/**
 * (d) Latency of GET /api/meters/:serial/daily (a month of daily values) over HTTP, with
 * millions of readings in interval_readings. Rows are generated server-side, the rollups
 * are filled from them with the same local-calendar rule the gateway uses, and the API runs
 * in its own process (bench/api-server.ts) while this process generates the load.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { provision, type Household } from './db.ts';
import { cpuMs, log, nowMs, onCleanup, percentile, spawnChild, withTimeout } from './lib.ts';
import { type Pool } from '@kilowire/server';

const YEAR_START = '2024-01-01 00:00:00+00';
const HALF_HOURS_PER_YEAR = 366 * 48; // 2024 is a leap year

/** Fill interval_readings (one year of half-hours per meter) and the rollups, over two connections. */
async function generate(url: string, pool: Pool, households: Household[]): Promise<void> {
  const ids = households.map((h) => h.meterId);
  const halves = [ids.slice(0, Math.ceil(ids.length / 2)), ids.slice(Math.ceil(ids.length / 2))];
  const run = async (sql: string, part: number[]) => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      await c.query('SET synchronous_commit = off'); // bulk load only; the measured paths use the defaults
      await c.query(sql, [part]);
    } finally {
      await c.end();
    }
  };
  let t = nowMs();
  await Promise.all(
    halves.map((part) =>
      run(
        `INSERT INTO interval_readings (meter_id, ts, wh, flags)
         SELECT m, ts, 50 + ((m * 7919 + (extract(epoch FROM ts)::bigint / 1800) * 31) % 400)::int, 0
         FROM unnest($1::int[]) AS m
         CROSS JOIN generate_series(timestamptz '${YEAR_START}', timestamptz '${YEAR_START}' + interval '366 days' - interval '30 minutes', interval '30 minutes') AS ts
         ORDER BY m, ts`,
        part,
      ),
    ),
  );
  log(`  interval_readings generated in ${((nowMs() - t) / 1000).toFixed(1)} s`);
  t = nowMs();
  await Promise.all(
    halves.map((part) =>
      run(
        `INSERT INTO daily_rollups (meter_id, day, wh, intervals, estimated)
         SELECT r.meter_id, (r.ts AT TIME ZONE m.tz)::date, sum(r.wh), count(*), 0
         FROM interval_readings r JOIN meters m ON m.id = r.meter_id
         WHERE r.meter_id = ANY($1::int[])
         GROUP BY 1, 2`,
        part,
      ),
    ),
  );
  log(`  rollups generated in ${((nowMs() - t) / 1000).toFixed(1)} s`);
  t = nowMs();
  // Steady state: visibility map and statistics current, as autovacuum would leave them.
  await pool.query('VACUUM (ANALYZE) interval_readings, daily_rollups, meters, sessions, users');
  await pool.query('CHECKPOINT');
  log(`  vacuum + checkpoint in ${((nowMs() - t) / 1000).toFixed(1)} s`);
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
  },
): Promise<ApiResult> {
  const meters = Math.ceil(opts.targetReadings / HALF_HOURS_PER_YEAR);
  log(`  provisioning ${meters} households`);
  const households = await provision(pool, meters, { prefix: 'D', passwordHash: opts.passwordHash });
  await generate(url, pool, households);
  const { rows: cnt } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM interval_readings');
  const readingsStored = cnt[0]?.n ?? 0;
  log(`  interval_readings holds ${readingsStored} rows`);

  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'kw-bench-api-'));
  onCleanup('api data dir', () => rmSync(dataDir, { recursive: true, force: true }));
  let port = 0;
  const api = spawnChild(
    'api server',
    process.execPath,
    ['--import', 'tsx', path.join(import.meta.dirname, 'api-server.ts')],
    {
      env: { ...process.env, DATABASE_URL: url, DATA_DIR: dataDir },
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
    const users = households.slice(0, 24);
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
