/**
 * (i) The supplier's fleet table at 100,000 meters: 50 staff users working interactively
 * (request, read for 0.5-2 s, next request) over a realistic mix — name-prefix searches of
 * 2-4 letters, serial and postcode searches, filters, sorts, next pages — against the API in
 * its own process (bench/api-server.ts). The data set is built in the database with
 * set-based SQL (generate_series), not a row at a time.
 *
 * The machine's floor is measured in the same run, interleaved with the same users: GET
 * /readyz, a trivial SELECT 1 round trip through the same API server.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cpuMs, log, nowMs, onCleanup, percentile, spawnChild, withTimeout } from './lib.ts';
import { createStaffUser, type Pool } from '@kilowire/server';

export interface FleetSearchResult {
  meters: number;
  buildS: number;
  users: number;
  requests: number;
  p50: number;
  p95: number;
  p99: number;
  /** The SELECT 1 round trip through the same API, interleaved with the same load. */
  floorP95: number;
  floorRequests: number;
  errors: number;
  /** CPU of the API process per measured request (fleet requests and floor probes together). */
  apiCpuMsPerReq: number;
  /** p95 per kind of request, to see which one costs. */
  byKind: Record<string, { n: number; p95: number }>;
}

const FIRST = [
  'Oliver',
  'Amelia',
  'George',
  'Isla',
  'Harry',
  'Ava',
  'Noah',
  'Mia',
  'Jack',
  'Ivy',
  'Leo',
  'Lily',
  'Arthur',
  'Freya',
  'Muhammad',
  'Florence',
  'Oscar',
  'Willow',
  'Charlie',
  'Grace',
  'Henry',
  'Sophia',
  'Theo',
  'Evie',
  'Thomas',
  'Rosie',
  'Alfie',
  'Ella',
  'Finley',
  'Poppy',
  'Ethan',
  'Zara',
  'Priya',
  'Kwame',
  'Siobhan',
  'Dylan',
];
const LAST = [
  'Smith',
  'Jones',
  'Taylor',
  'Brown',
  'Williams',
  'Wilson',
  'Johnson',
  'Davies',
  'Patel',
  'Robinson',
  'Wright',
  'Thompson',
  'Evans',
  'Walker',
  'White',
  'Roberts',
  'Green',
  'Hall',
  'Thomas',
  'Clarke',
  'Jackson',
  'Wood',
  'Harris',
  'Edwards',
  'Turner',
  'Martin',
  'Cooper',
  'Hill',
  'Ward',
  'Hughes',
  'Moore',
  'Clark',
  'King',
  'Harrison',
  'Lewis',
  'Baker',
  'Lee',
  'Allen',
  'Morris',
  'Khan',
  'Scott',
  'Watson',
  'Davis',
  'Parker',
  'James',
  'Bennett',
  'Young',
  'Phillips',
  'Richardson',
  'Mitchell',
  'Bailey',
  'Carter',
  'Cook',
  'Singh',
  'Shaw',
  'Bell',
  'Collins',
  'Morgan',
  'Kelly',
  'Begum',
];
const STREETS = [
  'High Street',
  'Station Road',
  'Church Lane',
  'Acacia Avenue',
  'Mill Road',
  'Park View',
  'Victoria Road',
  'Green Lane',
];
const TOWNS = ['Leeds', 'York', 'Bristol', 'Cardiff', 'Norwich', 'Derby', 'Bath', 'Hull', 'Exeter', 'Stoke'];
const AREAS = ['LS', 'YO', 'BS', 'CF', 'NR', 'DE', 'BA', 'HU', 'EX', 'ST'];
const sqlArray = (a: string[]) => `ARRAY[${a.map((s) => `'${s.replace(/'/g, "''")}'`).join(',')}]`;

/** 100,000 households of one supplier, with the mix the filters need, in a handful of statements. */
export async function build(
  pool: Pool,
  n: number,
  passwordHash: string,
): Promise<{ supplierId: number; tariffs: number[] }> {
  const c = await pool.connect();
  try {
    await c.query('SET synchronous_commit = off'); // bulk load only
    const sup = await c.query<{ id: number }>(
      `INSERT INTO organisations (kind, slug, name) VALUES ('supplier', 'fleet-bench', 'Fleet Bench Energy') RETURNING id`,
    );
    const supplierId = sup.rows[0]!.id;
    const op = await c.query<{ id: number }>(
      `INSERT INTO organisations (kind, slug, name) VALUES ('network_operator', 'fleet-bench-op', 'Fleet Bench DNO') RETURNING id`,
    );
    await c.query(`INSERT INTO network_areas (id, operator_id, name) VALUES ('FB', $1, 'Fleet Bench area')`, [
      op.rows[0]!.id,
    ]);
    const g = `generate_series(1::bigint, ${n}) g`;
    await c.query(
      `INSERT INTO users (role, login_id, password_hash, display_name)
       SELECT 'consumer', 'FB' || lpad(g::text, 6, '0'), $1, 'x' FROM ${g}`,
      [passwordHash],
    );
    // Names, addresses and postcodes from small lists by a hash of g: realistic repetition
    // (many Smiths), so prefix searches match tens to thousands of households.
    await c.query(
      `INSERT INTO consumers (user_id, supplier_id, name, email, address, postcode, vulnerable, vulnerable_note)
       SELECT u.id, $1,
              (${sqlArray(FIRST)})[1 + (g * 7919) % ${FIRST.length}] || ' ' || (${sqlArray(LAST)})[1 + (g * 104729) % ${LAST.length}],
              'fb' || g || '@example.test',
              (g % 200 + 1) || ' ' || (${sqlArray(STREETS)})[1 + (g * 31) % ${STREETS.length}] || ', ' || (${sqlArray(TOWNS)})[1 + g % ${TOWNS.length}],
              (${sqlArray(AREAS)})[1 + g % ${AREAS.length}] || (1 + (g * 13) % 20) || ' ' || (1 + g % 9) || chr((65 + (g * 17) % 26)::int) || chr((65 + (g * 23) % 26)::int),
              g % 20 = 0, CASE WHEN g % 20 = 0 THEN 'Medical equipment' END
         FROM ${g} JOIN users u ON u.login_id = 'FB' || lpad(g::text, 6, '0')`,
      [supplierId],
    );
    await c.query(
      `INSERT INTO accounts (consumer_id, supplier_id, mode)
       SELECT c.id, $1, CASE WHEN c.id % 5 < 2 THEN 'prepayment' ELSE 'credit' END FROM consumers c WHERE c.supplier_id = $1`,
      [supplierId],
    );
    await c.query(
      `INSERT INTO meters (serial, account_id, supplier_id, area_id, credential_hash, mode, relay, credit_minor,
                           firmware_version, last_seen_at, last_status)
       SELECT 'FBM' || lpad(a.id::text, 7, '0'), a.id, $1, 'FB', 'x', a.mode,
              CASE WHEN a.id % 50 = 0 THEN 'disconnected' WHEN a.id % 97 = 0 THEN 'armed' ELSE 'connected' END,
              CASE WHEN a.mode = 'prepayment' THEN (a.id * 7919) % 6000 - 500 END,
              (ARRAY['1.2.0', '1.3.0', '1.3.1', '2.0.0'])[1 + (a.id * 11) % 4],
              CASE WHEN a.id % 100 = 0 THEN NULL ELSE now() - ((a.id * 7907) % 1209600) * interval '1 second' END,
              '{"firmware":{"slot":"A"}}'
         FROM accounts a WHERE a.supplier_id = $1`,
      [supplierId],
    );
    const tariffs: number[] = [];
    for (const code of ['FLAT', 'EV', 'GREEN']) {
      const t = await c.query<{ id: number }>(
        `INSERT INTO tariffs (supplier_id, code, name, structure) VALUES ($1, $2, $3, 'flat') RETURNING id`,
        [supplierId, code, `Fleet ${code}`],
      );
      tariffs.push(t.rows[0]!.id);
    }
    await c.query(
      `INSERT INTO meter_tariffs (meter_id, from_day, tariff_id)
       SELECT m.id, current_date - 60, ($2::int[])[1 + m.id % 3] FROM meters m WHERE m.supplier_id = $1`,
      [supplierId, tariffs],
    );
    // ~3% open tamper cases, ~4% with VEE findings to review.
    await c.query(
      `INSERT INTO tamper_cases (meter_id, supplier_id, status)
       SELECT m.id, $1, CASE WHEN m.id % 2 = 0 THEN 'open' ELSE 'investigating' END
         FROM meters m WHERE m.supplier_id = $1 AND m.id % 33 = 0`,
      [supplierId],
    );
    await c.query(
      `INSERT INTO vee_issues (meter_id, ts, rule, needs_review)
       SELECT m.id, now() - interval '1 day', 'spike', true FROM meters m WHERE m.supplier_id = $1 AND m.id % 25 = 0`,
      [supplierId],
    );
    await c.query(
      'VACUUM (ANALYZE) users, consumers, accounts, meters, meter_tariffs, tamper_cases, vee_issues',
    );
    return { supplierId, tariffs };
  } finally {
    c.release();
  }
}

export async function benchFleetSearch(
  url: string,
  pool: Pool,
  opts: { meters: number; users: number; seconds: number; passwordHash: string },
): Promise<FleetSearchResult> {
  let t = nowMs();
  const { supplierId, tariffs } = await build(pool, opts.meters, opts.passwordHash);
  const buildS = (nowMs() - t) / 1000;
  log(`  ${opts.meters} households built in ${buildS.toFixed(1)} s`);
  const password = 'fleet-bench-staff-password';
  const emails: string[] = [];
  for (let i = 0; i < opts.users; i++) {
    const email = `staff${i}@fleet-bench.test`;
    await createStaffUser(pool, {
      role: 'supplier',
      staffRole: i % 5 === 0 ? 'admin' : 'agent',
      email,
      password,
      orgId: supplierId,
      name: `Staff ${i}`,
    });
    emails.push(email);
  }

  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'kw-bench-fleet-'));
  onCleanup('fleet search data dir', () => rmSync(dataDir, { recursive: true, force: true }));
  let port = 0;
  const api = spawnChild(
    'api server (fleet search)',
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
    const cookies: string[] = [];
    for (const email of emails) {
      const res = await fetch(`${base}/api/session`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email, password }),
        signal: AbortSignal.timeout(10_000),
      });
      if (res.status !== 200) throw new Error(`login ${email}: ${res.status} ${await res.text()}`);
      cookies.push(
        res.headers
          .getSetCookie()
          .find((c) => c.startsWith('kw_session='))!
          .split(';')[0]!,
      );
      await res.arrayBuffer();
    }

    const pick = <T>(a: readonly T[]): T => a[Math.floor(Math.random() * a.length)]!;
    const letters = (k: number) => pick(LAST).slice(0, k).toLowerCase();
    /** What one staff user does next, given the cursor of the page they look at (if any). */
    const nextRequest = (cursorOf: string | null, lastQuery: string): { kind: string; query: string } => {
      const r = Math.random();
      if (cursorOf && r < 0.2) return { kind: 'next page', query: `${lastQuery}&cursor=${cursorOf}` };
      if (r < 0.5) return { kind: 'name prefix', query: `q=${letters(2 + Math.floor(Math.random() * 3))}` };
      if (r < 0.58)
        return {
          kind: 'serial',
          query: `q=FBM${String(1 + Math.floor(Math.random() * 999)).padStart(3, '0')}`,
        };
      // A postcode as staff type it: the outward code and the sector digit ("LS14 3").
      if (r < 0.65)
        return {
          kind: 'postcode',
          query: `q=${encodeURIComponent(`${pick(AREAS)}${1 + Math.floor(Math.random() * 20)} ${1 + Math.floor(Math.random() * 9)}`)}`,
        };
      if (r < 0.85) {
        const f = pick([
          'mode=prepayment',
          'relay=disconnected',
          'openCase=true',
          'veeFindings=true',
          'vulnerable=true',
          'staleHours=168',
          `tariffId=${pick(tariffs)}`,
          'firmware=1.3.1',
          'mode=prepayment&relay=connected&vulnerable=true',
        ]);
        return { kind: 'filter', query: f };
      }
      const sort = pick(['name', 'lastSeen', 'credit', 'postcode', 'serial']);
      const dir = pick(['asc', 'desc']);
      const q = Math.random() < 0.3 ? `&q=${letters(3)}` : '';
      return { kind: 'sort', query: `sort=${sort}&dir=${dir}${q}` };
    };

    const lat: { kind: string; ms: number; query: string }[] = [];
    const floor: number[] = [];
    let errors = 0;
    let firstError = '';
    const run = async (seconds: number, record: boolean) => {
      const start = nowMs();
      await Promise.all(
        cookies.map(async (cookie, u) => {
          await new Promise((r) => setTimeout(r, (u * 1000) / cookies.length));
          let cursor: string | null = null;
          let last = 'q=';
          while (nowMs() - start < seconds * 1000) {
            // One in five turns: the floor probe, in the same load.
            if (Math.random() < 0.2) {
              const t0 = nowMs();
              const res = await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(30_000) });
              await res.arrayBuffer();
              if (record && res.status === 200) floor.push(nowMs() - t0);
            } else {
              const req = nextRequest(cursor, last);
              const t0 = nowMs();
              const res = await fetch(`${base}/api/fleet?limit=50&${req.query}`, {
                headers: { cookie },
                signal: AbortSignal.timeout(30_000),
              });
              const body = (await res.json()) as { items?: unknown[]; nextCursor?: string | null };
              const ms = nowMs() - t0;
              if (res.status !== 200 || !Array.isArray(body.items)) {
                errors++;
                firstError ||= `${req.query}: ${res.status} ${JSON.stringify(body).slice(0, 300)}`;
              } else if (record) lat.push({ kind: req.kind, ms, query: req.query });
              cursor = body.nextCursor ?? null;
              last = req.query.replace(/&cursor=[^&]*/, '');
            }
            await new Promise((r) => setTimeout(r, 500 + Math.random() * 1500));
          }
        }),
      );
    };
    t = nowMs();
    await withTimeout(run(8, false), 120_000, 'fleet search warm-up');
    const cpu0 = cpuMs(api.proc.pid);
    await withTimeout(run(opts.seconds, true), 600_000, 'fleet search load');
    const apiCpu = (cpuMs(api.proc.pid) ?? NaN) - (cpu0 ?? NaN);
    log(
      `  ${lat.length} fleet requests and ${floor.length} floor probes in ${((nowMs() - t) / 1000).toFixed(0)} s`,
    );
    if (errors) log(`  ${errors} failed requests; first: ${firstError}`);
    const sorted = lat.map((l) => l.ms).sort((a, b) => a - b);
    const byKind: FleetSearchResult['byKind'] = {};
    for (const kind of new Set(lat.map((l) => l.kind))) {
      const s = lat
        .filter((l) => l.kind === kind)
        .map((l) => l.ms)
        .sort((a, b) => a - b);
      byKind[kind] = { n: s.length, p95: percentile(s, 95) };
      log(
        `  ${kind}: ${s.length} requests, p50 ${percentile(s, 50).toFixed(1)} ms, p95 ${percentile(s, 95).toFixed(1)} ms`,
      );
    }
    // Filters are few and fixed: each one's own p95 says which one sets the kind's.
    const filters = new Map<string, number[]>();
    for (const l of lat) if (l.kind === 'filter') filters.set(l.query, [...(filters.get(l.query) ?? []), l.ms]);
    log(
      `  filters, p95 ms: ${[...filters]
        .map(([q, ms]) => `${q.replace(/^tariffId=\d+$/, 'tariffId=…')} ${percentile(ms.sort((a, b) => a - b), 95).toFixed(0)} (${ms.length})`)
        .join('; ')}`,
    );
    floor.sort((a, b) => a - b);
    return {
      meters: opts.meters,
      buildS,
      users: cookies.length,
      requests: lat.length,
      p50: percentile(sorted, 50),
      p95: percentile(sorted, 95),
      p99: percentile(sorted, 99),
      floorP95: percentile(floor, 95),
      floorRequests: floor.length,
      errors,
      apiCpuMsPerReq: apiCpu / (lat.length + floor.length),
      byKind,
    };
  } finally {
    await api.stop();
  }
}
