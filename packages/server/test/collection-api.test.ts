import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance, InjectOptions } from 'fastify';
import type pg from 'pg';
import { localMidnight } from '@kilowire/protocol';
import type {
  CollectionAreasResponse,
  CollectionDayResponse,
  CollectionMissingResponse,
  CollectResponse,
} from '@kilowire/contract';
import { collectDay } from '../src/collection/collect.ts';
import { createTestDb, type TestDb } from './support/db.ts';
import { as, buildWorld, login, testApi, type World } from './support/api.ts';

// The collection API over a collected day of area A (suppliers 1 and 2): what the operator
// reads, the files, the hand re-collection, and that operator B sees nothing of area A. The
// interval rows are written with SQL here; the collection's reading of real ingest is
// proven in collection.test.ts.

let db: TestDb;
let app: FastifyInstance;
let w: World;
const cookie: Record<string, string> = {};
const DAY = '2026-11-20';
const t0 = localMidnight(DAY, 'Europe/London');

async function one<T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<T> {
  return (await db.pool.query<T>(sql, params)).rows[0]!;
}
async function intervals(meterId: number, from: number, n: number, estimated: number[] = []): Promise<void> {
  await db.pool.query(
    `INSERT INTO interval_readings (meter_id, ts, wh, flags)
     SELECT $1, to_timestamp($2 + i * 1800), 100 + i, CASE WHEN i = ANY($4::int[]) THEN 1 ELSE 0 END
       FROM generate_series($3::int, $3::int + $5::int - 1) i`,
    [meterId, t0, from, estimated, n],
  );
}
async function get<T>(
  who: string,
  url: string,
): Promise<{ status: number; body: T; raw: string; headers: Record<string, unknown> }> {
  const res = await app.inject(as(cookie[who], { method: 'GET', url } satisfies InjectOptions));
  return {
    status: res.statusCode,
    body: (res.headers['content-type'] ?? '').toString().includes('json')
      ? (JSON.parse(res.body) as T)
      : (undefined as T),
    raw: res.body,
    headers: res.headers,
  };
}
async function post(who: string, url: string) {
  const res = await app.inject(
    as(cookie[who], { method: 'POST', url, headers: { 'content-type': 'application/json' }, payload: {} }),
  );
  return {
    status: res.statusCode,
    body: JSON.parse(res.body) as CollectResponse & { error?: { code: string } },
  };
}

beforeAll(async () => {
  db = await createTestDb();
  w = await buildWorld(db.pool);
  app = await testApi(db.pool);
  for (const [k, id] of Object.entries(w.login)) cookie[k] = await login(app, id);
  await db.pool.query(`UPDATE meters SET created_at = '2026-01-01Z'`);
  // A feeder whose id a spreadsheet would run as a formula: the CSV must defuse it.
  await db.pool.query(
    `INSERT INTO feeders (id, area_id, name) VALUES ('=HYPERLINK("x")', 'A', 'Odd feeder')`,
  );
  await db.pool.query(`UPDATE meters SET feeder_id = '=HYPERLINK("x")' WHERE id = $1`, [w.h2A.meterId]);
  await intervals(w.h1A.meterId, 0, 48, [10, 11]);
  await intervals(w.h2A.meterId, 0, 30);
  await intervals(w.h1B.meterId, 0, 48);
  await collectDay(db.pool, 'A', DAY, 'cutoff');
  await collectDay(db.pool, 'B', DAY, 'cutoff');
});

afterAll(async () => {
  await app?.close();
  await db?.drop();
});

describe('collection API', () => {
  it('lists the operator its own areas only, with the day complete %, and admins all', async () => {
    const a = await get<CollectionAreasResponse>('opA', '/api/collection/areas?days=30');
    expect(a.status).toBe(200);
    expect(a.body.areas.map((x) => x.areaId)).toEqual(['A']);
    const d = a.body.areas[0]!.days.find((x) => x.day === DAY)!;
    expect(d.versions).toBe(1);
    expect(d.latest).toMatchObject({
      version: 1,
      meters: 2,
      completeMeters: 1,
      completePct: 50,
      actual: 46 + 30,
      estimated: 2,
      expected: 96,
    });
    expect(a.body.areas[0]).toMatchObject({ cutoff: '06:00', completenessAlertPct: 98, tz: 'Europe/London' });
    const b = await get<CollectionAreasResponse>('opB', '/api/collection/areas?days=30');
    expect(b.body.areas.map((x) => x.areaId)).toEqual(['B']);
    const admin = await get<CollectionAreasResponse>('admin', '/api/collection/areas?days=30');
    expect(admin.body.areas.map((x) => x.areaId)).toEqual(['A', 'B']);
    for (const who of ['h1A', 'sup1', 'agent1']) {
      expect((await get(who, '/api/collection/areas')).status).toBe(403);
    }
  });

  it('shows a day with totals per supplier and per feeder', async () => {
    const r = await get<CollectionDayResponse>('opA', `/api/collection/areas/A/days/${DAY}`);
    expect(r.status).toBe(200);
    expect(r.body.versions).toHaveLength(1);
    const sum = (a: number, n: number) =>
      Array.from({ length: n }, (_, i) => 100 + i + a).reduce((x, y) => x + y, 0);
    expect(r.body.suppliers.map((s) => [s.name, s.meters, s.wh, s.completeMeters])).toEqual([
      ['Supplier One', 1, sum(0, 48), 1],
      ['Supplier Two', 1, sum(0, 30), 0],
    ]);
    // KW1A is on no feeder: its own row, named "—", after the feeders.
    expect(r.body.feeders.map((f) => [f.id, f.name, f.meters])).toEqual([
      ['=HYPERLINK("x")', 'Odd feeder', 1],
      ['', '—', 1],
    ]);
    expect(r.body.version.wh).toBe(sum(0, 48) + sum(0, 30));
    expect((await get('opA', `/api/collection/areas/A/days/2026-11-19`)).status).toBe(404);
  });

  it('lists the missing meters with when they were last heard of', async () => {
    const r = await get<CollectionMissingResponse>('opA', `/api/collection/areas/A/days/${DAY}/missing`);
    expect(r.status).toBe(200);
    expect(r.body.total).toBe(1);
    expect(r.body.items).toEqual([
      {
        serial: 'KW2A',
        feeder: '=HYPERLINK("x")',
        supplier: 'Supplier Two',
        actual: 30,
        estimated: 0,
        expected: 48,
        wh: expect.any(Number) as number,
        lastDataAt: new Date((t0 + 30 * 1800) * 1000).toISOString(),
      },
    ]);
    expect(r.body.nextCursor).toBeNull();
  });

  it("serves each supplier's file as CSV (header block, formula-defused cells, 48 slots) and JSON", async () => {
    const csv = await get('opA', `/api/collection/areas/A/days/${DAY}/suppliers/${w.sup2}/file.csv`);
    expect(csv.status).toBe(200);
    expect(String(csv.headers['content-type'])).toContain('text/csv');
    expect(String(csv.headers['content-disposition'])).toContain(
      `collection-A-${DAY}-v1-supplier-${w.sup2}.csv`,
    );
    const lines = csv.raw.split('\r\n');
    expect(lines[0]).toBe('area_id,area,day,version,reason,supplier_id,supplier,time_zone,generated_at');
    expect(lines[1]).toMatch(new RegExp(`^A,Area A,${DAY},1,cutoff,${w.sup2},Supplier Two,Europe/London,20`));
    expect(lines[2]).toBe('');
    expect(lines[3]!.split(',').slice(0, 9)).toEqual([
      'serial',
      'feeder',
      'kwh',
      'wh',
      'actual',
      'estimated',
      'expected',
      'complete',
      '00:00',
    ]);
    expect(lines[3]!.split(',')).toHaveLength(8 + 48);
    // The feeder id starts with "=": quoted and prefixed, never a live formula.
    expect(lines[4]).toMatch(/^KW2A,"'=HYPERLINK\(""x""\)",\d+\.\d{3},\d+,30,0,48,false,100,101,/);
    expect(lines[4]!.endsWith(',0,0')).toBe(true);
    expect(lines.filter((l) => l.startsWith('KW'))).toHaveLength(1);

    const json = await get<{
      version: number;
      supplier: string;
      meters: { serial: string; slotWh: number[]; complete: boolean }[];
    }>('opA', `/api/collection/areas/A/days/${DAY}/suppliers/${w.sup1}/file.json`);
    expect(json.status).toBe(200);
    expect(json.body).toMatchObject({ areaId: 'A', day: DAY, version: 1, supplier: 'Supplier One' });
    expect(json.body.meters).toHaveLength(1);
    expect(json.body.meters[0]).toMatchObject({
      serial: 'KW1A',
      actual: 46,
      estimated: 2,
      expected: 48,
      complete: true,
    });
    expect(json.body.meters[0]!.slotWh).toHaveLength(48);
    // A supplier with no meters in the area's collection has no file.
    const none = await get('opA', `/api/collection/areas/A/days/${DAY}/suppliers/${w.opA}/file.csv`);
    expect(none.status).toBe(404);
  });

  it('operator B sees nothing of area A: every read and the re-collection answer 404', async () => {
    const urls = [
      `/api/collection/areas/A/days/${DAY}`,
      `/api/collection/areas/A/days/${DAY}/missing`,
      `/api/collection/areas/A/days/${DAY}/suppliers/${w.sup1}/file.csv`,
      `/api/collection/areas/A/days/${DAY}/suppliers/${w.sup1}/file.json`,
    ];
    for (const u of urls) {
      const r = await get<{ error: { code: string } }>('opB', u);
      expect(r.status).toBe(404);
      expect(r.raw).not.toContain('KW1A');
    }
    const p = await post('opB', `/api/collection/areas/A/days/${DAY}/collect`);
    expect(p.status).toBe(404);
    expect(
      (await one<{ n: number }>(`SELECT count(*)::int AS n FROM collection_runs WHERE area_id = 'A'`)).n,
    ).toBe(1);
  });

  it('re-collects a day by hand: the same version when nothing changed, a new one when it did, audited', async () => {
    const url = `/api/collection/areas/A/days/${DAY}/collect`;
    for (const who of ['h1A', 'sup1', 'admin']) expect((await post(who, url)).status).toBe(403);
    const same = await post('opA', url);
    expect(same.status).toBe(200);
    expect(same.body).toMatchObject({ created: false, run: { version: 1, reason: 'cutoff' } });
    await intervals(w.h2A.meterId, 30, 18);
    const next = await post('opA', url);
    expect(next.status).toBe(201);
    expect(next.body).toMatchObject({
      created: true,
      run: { version: 2, reason: 'manual', completeMeters: 2, completePct: 100 },
    });
    const audit = await db.pool.query<{ target: string; detail: { version: number; created: boolean } }>(
      `SELECT target, detail FROM audit_log WHERE action = 'collection.collect' ORDER BY id`,
    );
    expect(audit.rows.map((r) => [r.target, r.detail.version, r.detail.created])).toEqual([
      [`A:${DAY}`, 1, false],
      [`A:${DAY}`, 2, true],
    ]);
    const day = await get<CollectionDayResponse>('opA', `/api/collection/areas/A/days/${DAY}`);
    expect(day.body.versions.map((v) => [v.version, v.reason, v.changedMeters])).toEqual([
      [1, 'cutoff', null],
      [2, 'manual', 1],
    ]);
    const v1 = await get<CollectionDayResponse>('opA', `/api/collection/areas/A/days/${DAY}?version=1`);
    expect(v1.body.version).toMatchObject({ version: 1, completeMeters: 1 });
    // A day whose cut-off has not passed is not collected by hand.
    const today = new Date().toISOString().slice(0, 10);
    const early = await post('opA', `/api/collection/areas/A/days/${today}/collect`);
    expect(early.status).toBe(409);
  });
});
