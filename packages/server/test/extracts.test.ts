import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createHousehold } from '../src/accounts/repo.ts';
import { tx } from '../src/db/pool.ts';
import { createExtract, runExtract } from '../src/extracts/extracts.ts';
import type { RunningJobs } from '../src/jobs/service.ts';
import { as, buildWorld, login, PASSWORD, testApi, type World } from './support/api.ts';
import { createTestDb, type TestDb } from './support/db.ts';
import { settleEvents, startTestJobs } from './support/jobs.ts';

/**
 * Monthly extracts over a small fleet with known rollups in October 2026 (the clocks go back
 * in Europe/London on the 25th: that day has 50 half-hours), produced through the real
 * path: POST -> domain event -> the jobs service's queue -> chunks in the database ->
 * streamed download.
 */
let db: TestDb;
let app: FastifyInstance;
let jobs: RunningJobs;
let w: World;
const c: Record<string, string> = {};
let ny = 0;

beforeAll(async () => {
  db = await createTestDb();
  w = await buildWorld(db.pool);
  // A third meter of supplier 1 in New York: its days are New York's (the rollups say so).
  ny = (
    await createHousehold(db.pool, {
      loginId: 'C1N',
      password: PASSWORD,
      name: 'Household C1N',
      supplierId: w.sup1,
      mode: 'credit',
      meter: { serial: 'KW1N', areaId: 'A', tz: 'America/New_York' },
    })
  ).meterId;
  // KW1A: every day of October, wh = 1000 + day, 48 half-hours (50 on the 25th), and the
  // days either side of the month that must not appear.
  await db.pool.query(
    `INSERT INTO daily_rollups (meter_id, day, wh, intervals, estimated)
     SELECT $1::int, d::date, 1000 + extract(day FROM d)::int, CASE WHEN d = '2026-10-25' THEN 50 ELSE 48 END, 0
       FROM generate_series('2026-10-01'::date, '2026-10-31'::date, interval '1 day') d
     UNION ALL SELECT $1::int, '2026-09-30', 999999, 48, 0
     UNION ALL SELECT $1::int, '2026-11-01', 999999, 46, 0`,
    [w.h1A.meterId],
  );
  // KW1B (prepayment): three days, one with estimates. KW1N: one day. KW2A: another supplier's.
  await db.pool.query(
    `INSERT INTO daily_rollups (meter_id, day, wh, intervals, estimated) VALUES
       ($1, '2026-10-01', 5000, 48, 0), ($1, '2026-10-02', 5100, 48, 3), ($1, '2026-10-31', 7, 2, 2),
       ($2, '2026-10-31', 4321, 48, 0),
       ($3, '2026-10-05', 123456, 48, 0)`,
    [w.h1B.meterId, w.h2A.meterId, ny],
  );
  app = await testApi(db.pool);
  jobs = await startTestJobs(db.pool);
  for (const k of ['h1A', 'sup1', 'agent1', 'sup2', 'opA', 'admin'] as const)
    c[k] = await login(app, w.login[k]);
}, 60_000);
afterAll(async () => {
  await jobs?.stop();
  await app?.close();
  await db?.drop();
});

const get = (cookie: string, url: string) => app.inject(as(cookie, { method: 'GET', url }));
const post = (cookie: string, url: string, payload: unknown) =>
  app.inject(
    as(cookie, {
      method: 'POST',
      url,
      headers: { 'content-type': 'application/json' },
      payload: payload as object,
    }),
  );

function expectedCsv(): string {
  const lines = ['kind,serial,period,wh,intervals,estimated'];
  let sum = 0;
  let n = 0;
  for (let d = 1; d <= 31; d++) {
    const day = `2026-10-${String(d).padStart(2, '0')}`;
    const iv = d === 25 ? 50 : 48;
    lines.push(`daily,KW1A,${day},${1000 + d},${iv},0`);
    sum += 1000 + d;
    n += iv;
  }
  lines.push(`monthly,KW1A,2026-10,${sum},${n},0`);
  lines.push(
    'daily,KW1B,2026-10-01,5000,48,0',
    'daily,KW1B,2026-10-02,5100,48,3',
    'daily,KW1B,2026-10-31,7,2,2',
  );
  lines.push('monthly,KW1B,2026-10,10107,98,5');
  lines.push('daily,KW1N,2026-10-05,123456,48,0', 'monthly,KW1N,2026-10,123456,48,0');
  return lines.join('\n') + '\n';
}

async function waitDone(cookie: string, id: number): Promise<Record<string, unknown>> {
  const until = Date.now() + 30_000;
  for (;;) {
    await settleEvents(db.pool, jobs);
    const r = await get(cookie, `/api/extracts/${id}`);
    const b = r.json<Record<string, unknown>>();
    if (b.status === 'done' || b.status === 'failed') return b;
    if (Date.now() > until) throw new Error(`extract not done: ${r.body}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

let extractId = 0;

describe('through the jobs service', () => {
  test('the whole fleet of supplier 1 for October 2026: exact CSV, progress, streamed download', async () => {
    const r = await post(c.agent1!, '/api/extracts', { month: '2026-10' });
    expect(r.statusCode, r.body).toBe(202);
    const created = r.json<{ id: number; status: string; metersTotal: number | null }>();
    expect(created).toMatchObject({ status: 'queued', metersTotal: null });
    extractId = created.id;
    // Not downloadable before it is done.
    expect((await get(c.sup1!, `/api/extracts/${extractId}/download`)).statusCode).toBe(409);
    const done = await waitDone(c.sup1!, extractId);
    const csv = expectedCsv();
    expect(done).toMatchObject({
      status: 'done',
      month: '2026-10',
      metersTotal: 3,
      metersDone: 3,
      rows: csv.split('\n').length - 2,
      bytes: Buffer.byteLength(csv),
      requestedBy: 'Sup1 Agent',
    });
    const dl = await get(c.sup1!, `/api/extracts/${extractId}/download`);
    expect(dl.statusCode).toBe(200);
    expect(dl.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(dl.headers['content-disposition']).toBe(
      `attachment; filename="kilowire-extract-2026-10-${extractId}.csv"`,
    );
    // Streamed: no length known up front.
    expect(dl.headers['transfer-encoding']).toBe('chunked');
    expect(dl.body).toBe(csv);
    const list = await get(c.sup1!, '/api/extracts');
    expect(list.json<{ items: { id: number }[] }>().items.map((i) => i.id)).toEqual([extractId]);
    const audit = await db.pool.query(
      `SELECT 1 FROM audit_log WHERE action = 'extract.start' AND target = $1`,
      [String(extractId)],
    );
    expect(audit.rowCount).toBe(1);
  });

  test('a selection: prepayment meters only, and named serials', async () => {
    const r = await post(c.sup1!, '/api/extracts', { month: '2026-10', selection: { mode: 'prepayment' } });
    const done = await waitDone(c.sup1!, r.json<{ id: number }>().id);
    expect(done).toMatchObject({ status: 'done', metersTotal: 1 });
    const dl = await get(c.sup1!, `/api/extracts/${done.id as number}/download`);
    expect(dl.body).toBe(
      'kind,serial,period,wh,intervals,estimated\ndaily,KW1B,2026-10-01,5000,48,0\ndaily,KW1B,2026-10-02,5100,48,3\n' +
        'daily,KW1B,2026-10-31,7,2,2\nmonthly,KW1B,2026-10,10107,98,5\n',
    );
    // Another supplier's serial selects nothing: only supplier 1's meters are ever read.
    const s = await post(c.sup1!, '/api/extracts', {
      month: '2026-10',
      selection: { serials: ['KW2A', 'KW1N'] },
    });
    const d2 = await waitDone(c.sup1!, s.json<{ id: number }>().id);
    expect(d2).toMatchObject({ metersTotal: 1 });
    const body = (await get(c.sup1!, `/api/extracts/${d2.id as number}/download`)).body;
    expect(body).not.toContain('KW2A');
    expect(body).toContain('monthly,KW1N,2026-10,123456,48,0');
  });

  test("a tariff selection takes the meters on that tariff on the month's first day", async () => {
    const t = await db.pool.query<{ id: number }>(
      `INSERT INTO tariffs (supplier_id, code, name, structure) VALUES ($1, 'X1', 'Flat', 'flat') RETURNING id`,
      [w.sup1],
    );
    const tariffId = t.rows[0]!.id;
    // KW1A on it from before the month; KW1N moved to it only mid-month: not selected.
    await db.pool.query(
      `INSERT INTO meter_tariffs (meter_id, from_day, tariff_id) VALUES ($1, '2026-09-01', $3), ($2, '2026-10-15', $3)`,
      [w.h1A.meterId, ny, tariffId],
    );
    const r = await post(c.sup1!, '/api/extracts', { month: '2026-10', selection: { tariffId } });
    const done = await waitDone(c.sup1!, r.json<{ id: number }>().id);
    expect(done).toMatchObject({ status: 'done', metersTotal: 1, selection: { tariffId } });
    const body = (await get(c.sup1!, `/api/extracts/${done.id as number}/download`)).body;
    expect(body.split('\n').filter((l) => l.startsWith('monthly,'))).toEqual([
      expect.stringMatching(/^monthly,KW1A,/),
    ]);
  });

  test('bad input is refused', async () => {
    for (const b of [
      { month: '2026-13' },
      { month: '2026-10', selection: { serials: [] } },
      { month: '2026-10', x: 1 },
    ])
      expect((await post(c.sup1!, '/api/extracts', b)).statusCode).toBe(400);
  });
});

describe('crash and resume', () => {
  test('a job that stopped midway resumes without duplicating a row; two runs at once write each chunk once', async () => {
    const id = await tx(db.pool, (cl) =>
      createExtract(cl, { supplierId: w.sup1, requestedBy: 1, month: '2026-10', selection: {} }),
    );
    // A process that wrote one chunk of one meter and died.
    expect(await runExtract(db.pool, id, { chunk: 1, maxChunks: 1 })).toBe('running');
    const mid = await db.pool.query<{ meters_done: number; meters_total: number }>(
      'SELECT meters_done, meters_total FROM extracts WHERE id = $1',
      [id],
    );
    expect(mid.rows[0]).toEqual({ meters_done: 1, meters_total: 3 });
    // The retry and a second process at the same time.
    const [a, b] = await Promise.all([
      runExtract(db.pool, id, { chunk: 1, workers: 2 }),
      runExtract(db.pool, id, { chunk: 1, workers: 2 }),
    ]);
    expect([a, b]).toEqual(['done', 'done']);
    const csv = expectedCsv();
    const x = await db.pool.query<{ rows: number; bytes: number; meters_done: number }>(
      'SELECT rows, bytes, meters_done FROM extracts WHERE id = $1',
      [id],
    );
    expect(x.rows[0]).toEqual({
      rows: csv.split('\n').length - 2,
      bytes: Buffer.byteLength(csv),
      meters_done: 3,
    });
    const dl = await get(c.sup1!, `/api/extracts/${id}/download`);
    expect(dl.body).toBe(csv);
  });
});

describe('scope', () => {
  test("supplier 2 cannot see or download supplier 1's extract (404)", async () => {
    expect((await get(c.sup2!, `/api/extracts/${extractId}`)).statusCode).toBe(404);
    const dl = await get(c.sup2!, `/api/extracts/${extractId}/download`);
    expect(dl.statusCode).toBe(404);
    expect(dl.body).not.toContain('KW1A');
    expect((await get(c.sup2!, '/api/extracts')).json<{ items: unknown[] }>().items).toEqual([]);
  });

  test('households, operators and administrators may never (403)', async () => {
    for (const who of [c.h1A!, c.opA!, c.admin!]) {
      expect((await get(who, '/api/extracts')).statusCode).toBe(403);
      expect((await get(who, `/api/extracts/${extractId}`)).statusCode).toBe(403);
      expect((await get(who, `/api/extracts/${extractId}/download`)).statusCode).toBe(403);
      expect((await post(who, '/api/extracts', { month: '2026-10' })).statusCode).toBe(403);
    }
  });
});
