import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { migrate } from '../src/db/migrate.ts';
import { Gateway } from '../src/gateway/gateway.ts';
import { startBoss, type StartedBoss } from '../src/jobs/boss.ts';
import { logger } from '../src/log.ts';
import {
  PartitionError,
  addMonthsUtc,
  createMonth,
  detachMonth,
  ensurePartitions,
  listPartitions,
  monthLabel,
  monthStart,
  startPartitionJobs,
} from '../src/readings/partitions.ts';
import { as, buildWorld, login, testApi, type World } from './support/api.ts';
import { startTestBroker, type TestBroker } from './support/brokers.ts';
import { startTestGateway } from './support/gateway-world.ts';
import { createTestDb, type TestDb } from './support/db.ts';
import { RawMeter, readingsMsg, waitFor } from './support/world.ts';

/**
 * #11 Reading tables partitioned by month: migration 019 on a database that already holds
 * readings, the real gateway ingesting into monthly partitions and into months with none
 * (the default partition), the job creating months ahead, and detaching a month for archive.
 * The gateway's clock is moved months ahead (its `now` option) so that readings can be dated
 * in months the migration created; the partition code takes the same clock.
 */

const DAY = 86_400_000;
const M0 = monthStart(new Date());
/** The first month after the one the migration ran in: the old table holds everything before it. */
const CUT = addMonthsUtc(M0, 1);
const sec = (d: Date) => Math.floor(d.getTime() / 1000);
const at = (month: Date, days: number, hours = 10) =>
  new Date(month.getTime() + days * DAY + hours * 3_600_000);
const tag = (d: Date) => monthLabel(d).replace('-', '_');
/** The head-end's clock in this test: 20 days into the fourth month after CUT. */
const GW_NOW = at(addMonthsUtc(CUT, 4), 20);
const shiftS = sec(GW_NOW) - Math.floor(Date.now() / 1000);

const LEGACY = `interval_readings_before_${tag(CUT)}`;
/** Rows in the old table before the migration: a past month, with one estimate. */
const OLD_T = at(addMonthsUtc(CUT, -2), 14);
/** A reading from a meter whose clock was far ahead, already stored before the migration. */
const STRAY_T = at(addMonthsUtc(CUT, 6), 9);

let db: TestDb;
let w: World;
let broker: TestBroker;
let gw: Gateway;
let app: FastifyInstance;
let staff: string;
let boss: StartedBoss | undefined;
const meters: RawMeter[] = [];
let a: RawMeter; // h1A
let b: RawMeter; // h1B
let c: RawMeter; // h2A

beforeAll(async () => {
  db = await createTestDb({ upTo: '018_firmware_uploads.sql' });
  w = await buildWorld(db.pool);
  const q = (sql: string, v: unknown[]) => db.pool.query(sql, v);
  for (let i = 0; i < 48; i++) {
    await q('INSERT INTO interval_readings (meter_id, ts, wh, flags) VALUES ($1, $2, $3, $4)', [
      w.h2A.meterId,
      new Date(OLD_T.getTime() + i * 1_800_000),
      100 + i,
      i === 0 ? 1 : 0,
    ]);
  }
  await q('INSERT INTO interval_readings (meter_id, ts, wh) VALUES ($1, $2, 7)', [w.h2B.meterId, STRAY_T]);
  await q(
    'INSERT INTO register_reads (meter_id, ts, import_wh, rate1_wh, rate2_wh, rate3_wh, export_wh) VALUES ($1, $2, 5000, 5000, 0, 0, 0), ($3, $4, 9, 9, 0, 0, 0)',
    [w.h2A.meterId, OLD_T, w.h2B.meterId, STRAY_T],
  );
  expect(await migrate(db.pool)).toEqual(['019_partitions.sql']);
});

afterAll(async () => {
  await boss?.stop(5_000);
  for (const m of meters) await m.close().catch(() => undefined);
  await gw?.stop();
  await broker?.close();
  await app?.close();
  await db?.drop();
});

async function whereIs(meterId: number, ts: Date): Promise<string | undefined> {
  const r = await db.pool.query<{ part: string }>(
    'SELECT tableoid::regclass::text AS part FROM interval_readings WHERE meter_id = $1 AND ts = $2',
    [meterId, ts],
  );
  return r.rows[0]?.part;
}

/** Tables the plan of a meter-day query reads (what partition pruning left). */
async function scanned(meterId: number, day: Date): Promise<string[]> {
  const { rows } = await db.pool.query<{ 'QUERY PLAN': unknown }>(
    `EXPLAIN (FORMAT JSON) SELECT extract(epoch FROM ts)::bigint AS t, wh, flags FROM interval_readings
      WHERE meter_id = $1 AND ts >= to_timestamp($2) AND ts < to_timestamp($3) ORDER BY ts`,
    [meterId, sec(day), sec(day) + 86_400],
  );
  const names = new Set<string>();
  const walk = (n: unknown): void => {
    if (Array.isArray(n)) n.forEach(walk);
    else if (n && typeof n === 'object') {
      const o = n as Record<string, unknown>;
      if (typeof o['Relation Name'] === 'string') names.add(o['Relation Name']);
      Object.values(o).forEach(walk);
    }
  };
  walk(rows[0]!['QUERY PLAN']);
  return [...names];
}

async function daily(serial: string, day: Date): Promise<{ wh: number; intervals: number }[]> {
  const d = day.toISOString().slice(0, 10);
  const res = await app.inject(
    as(staff, { method: 'GET', url: `/api/meters/${serial}/daily?from=${d}&to=${d}` }),
  );
  expect(res.statusCode, res.body).toBe(200);
  return (JSON.parse(res.body) as { days: { wh: number; intervals: number }[] }).days.map((x) => ({
    wh: x.wh,
    intervals: x.intervals,
  }));
}

describe('migration 019 on a database with readings', () => {
  it('keeps every row queryable, in the old table attached as the first partition', async () => {
    const n = await db.pool.query<{ part: string; n: number }>(
      `SELECT tableoid::regclass::text AS part, count(*)::int AS n FROM interval_readings GROUP BY 1 ORDER BY 1`,
    );
    expect(n.rows).toEqual([
      { part: LEGACY, n: 48 },
      // The far-future row was found through the primary key and moved out of the old table.
      { part: 'interval_readings_default', n: 1 },
    ]);
    const est = await db.pool.query(
      'SELECT wh FROM interval_readings WHERE meter_id = $1 AND flags & 1 = 1',
      [w.h2A.meterId],
    );
    expect(est.rows).toEqual([{ wh: 100 }]);
    const regs = await db.pool.query<{ part: string }>(
      'SELECT tableoid::regclass::text AS part FROM register_reads ORDER BY ts',
    );
    expect(regs.rows.map((r) => r.part)).toEqual([
      `register_reads_before_${tag(CUT)}`,
      'register_reads_default',
    ]);
    const parts = (await listPartitions(db.pool)).filter((p) => p.table === 'interval_readings');
    expect(parts.map((p) => [p.name, p.from, p.to])).toEqual([
      [LEGACY, null, CUT.toISOString()],
      ...[0, 1, 2].map((i) => [
        `interval_readings_${tag(addMonthsUtc(CUT, i))}`,
        addMonthsUtc(CUT, i).toISOString(),
        addMonthsUtc(CUT, i + 1).toISOString(),
      ]),
      ['interval_readings_default', null, null],
    ]);
  });

  it('keeps every key meter-first, partitioned by ts', async () => {
    const { rows } = await db.pool.query<{ rel: string; cols: string[] }>(
      `SELECT c.relname AS rel, array_agg(a.attname::text ORDER BY k.ord) AS cols
         FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
         CROSS JOIN unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
        WHERE i.indisprimary AND (c.relname LIKE 'interval\\_readings%' OR c.relname LIKE 'register\\_reads%')
        GROUP BY c.relname`,
    );
    // Both parents and their 5 partitions each (old table, 3 months, default).
    expect(rows).toHaveLength(12);
    for (const r of rows) expect(r.cols, r.rel).toEqual(['meter_id', 'ts']);
    const key = await db.pool.query<{ k: string }>(
      `SELECT pg_get_partkeydef('interval_readings'::regclass) || ' ' || pg_get_partkeydef('register_reads'::regclass) AS k`,
    );
    expect(key.rows[0]!.k).toBe('RANGE (ts) RANGE (ts)');
    // The partial index on estimates is on the parent; the old table's own index serves as its part.
    const est = await db.pool.query<{ part: string }>(
      `SELECT c.relname::text AS part FROM pg_inherits i JOIN pg_class x ON x.oid = i.inhrelid
         JOIN pg_index ix ON ix.indexrelid = x.oid JOIN pg_class c ON c.oid = ix.indrelid
        WHERE i.inhparent = 'interval_readings_estimated'::regclass ORDER BY 1`,
    );
    expect(est.rows.map((r) => r.part)).toEqual(
      (await listPartitions(db.pool))
        .filter((p) => p.table === 'interval_readings')
        .map((p) => p.name)
        .sort(),
    );
  });

  it('prunes a meter-day query to one partition', async () => {
    const mid = at(addMonthsUtc(CUT, 1), 14, 0);
    expect(await scanned(w.h1A.meterId, mid)).toEqual([`interval_readings_${tag(addMonthsUtc(CUT, 1))}`]);
    expect(await scanned(w.h2A.meterId, at(addMonthsUtc(CUT, -2), 14, 0))).toEqual([LEGACY]);
  });
});

describe('the system on partitioned tables', () => {
  beforeAll(async () => {
    app = await testApi(db.pool);
    staff = await login(app, 'staff@sup1.test');
    const hh = [w.h1A, w.h1B, w.h2A];
    broker = await startTestBroker(
      db.pool,
      hh.map((h) => ({ id: h.meterSerial, password: h.meterCredential })),
    );
    gw = await startTestGateway(db.pool, broker.url, {
      clientId: `kw-test-${process.pid}-part`,
      now: () => Math.floor(Date.now() / 1000) + shiftS,
    });
    for (const h of hh) meters.push(await RawMeter.connect(broker.url, h.meterSerial, h.meterCredential));
    [a, b, c] = meters as [RawMeter, RawMeter, RawMeter];
  });

  const NEW_T = at(addMonthsUtc(CUT, 1), 14);
  const NOPART_T = at(addMonthsUtc(CUT, 4), 10);
  const acked = (m: RawMeter, seq: number) =>
    m.waitAck((x) => x.kind === 'ack' && x.stream === 'readings' && x.upTo === seq, 15_000);

  it('ingests into a monthly partition by COPY, and by upsert when a batch overlaps', async () => {
    await a.readings(readingsMsg(1, sec(NEW_T), [400], 1000));
    await acked(a, 1);
    // Overlaps the stored interval: the COPY fails on the key and the upsert path stores the rest.
    await a.readings(readingsMsg(2, sec(NEW_T), [400, 300], 1000));
    await acked(a, 2);
    expect(await whereIs(w.h1A.meterId, NEW_T)).toBe(`interval_readings_${tag(addMonthsUtc(CUT, 1))}`);
    expect(await daily(w.h1A.meterSerial, NEW_T)).toEqual([{ wh: 700, intervals: 2 }]);
    const regs = await db.pool.query<{ part: string }>(
      'SELECT DISTINCT tableoid::regclass::text AS part FROM register_reads WHERE meter_id = $1',
      [w.h1A.meterId],
    );
    expect(regs.rows).toEqual([{ part: `register_reads_${tag(addMonthsUtc(CUT, 1))}` }]);
  });

  it('replaces an estimate in the old table through its partial index', async () => {
    await c.readings(readingsMsg(1, sec(OLD_T), [500], 0));
    await acked(c, 1);
    const r = await db.pool.query('SELECT wh, flags FROM interval_readings WHERE meter_id = $1 AND ts = $2', [
      w.h2A.meterId,
      OLD_T,
    ]);
    expect(r.rows).toEqual([{ wh: 500, flags: 0 }]);
  });

  it('stores a reading of a month with no partition in the default partition', async () => {
    await a.readings(readingsMsg(3, sec(NOPART_T), [250], 1700));
    await acked(a, 3);
    expect(await whereIs(w.h1A.meterId, NOPART_T)).toBe('interval_readings_default');
  });

  it('creates months ahead idempotently, also several at once, moving rows out of the default', async () => {
    const first = await ensurePartitions(db.pool, { aheadMonths: 3, now: GW_NOW });
    // The clock's month (CUT+4) and three more, for both tables.
    const want = [4, 5, 6, 7].map((i) => tag(addMonthsUtc(CUT, i)));
    expect(first).toEqual(want.flatMap((m) => [`interval_readings_${m}`, `register_reads_${m}`]));
    expect(await ensurePartitions(db.pool, { aheadMonths: 3, now: GW_NOW })).toEqual([]);
    expect(await whereIs(w.h1A.meterId, NOPART_T)).toBe(`interval_readings_${tag(addMonthsUtc(CUT, 4))}`);
    expect(await whereIs(w.h2B.meterId, STRAY_T)).toBe(`interval_readings_${tag(addMonthsUtc(CUT, 6))}`);
    const inDefault = await db.pool.query<{ n: number }>(
      'SELECT (SELECT count(*) FROM interval_readings_default) + (SELECT count(*) FROM register_reads_default) AS n',
    );
    expect(Number(inDefault.rows[0]!.n)).toBe(0);
    // Three jobs processes at once, two months further on: each month made exactly once.
    const later = addMonthsUtc(GW_NOW, 2);
    const runs = await Promise.all(
      [1, 2, 3].map(() => ensurePartitions(db.pool, { aheadMonths: 3, now: later })),
    );
    expect(runs.flat().sort()).toEqual(
      [8, 9]
        .flatMap((i) => [
          `interval_readings_${tag(addMonthsUtc(CUT, i))}`,
          `register_reads_${tag(addMonthsUtc(CUT, i))}`,
        ])
        .sort(),
    );
  });

  it('detaches a past month into plain tables; ingest and daily statistics go on', async () => {
    const month = monthLabel(addMonthsUtc(CUT, 1));
    const name = `interval_readings_${tag(addMonthsUtc(CUT, 1))}`;
    await expect(detachMonth(db.pool, monthLabel(addMonthsUtc(CUT, 4)), { now: GW_NOW })).rejects.toThrow(
      /current month or later/,
    );
    await expect(detachMonth(db.pool, monthLabel(addMonthsUtc(CUT, 5)), { now: GW_NOW })).rejects.toThrow(
      PartitionError,
    );
    await expect(detachMonth(db.pool, monthLabel(addMonthsUtc(CUT, -2)), { now: GW_NOW })).rejects.toThrow(
      /detach legacy/,
    );
    const gone = await detachMonth(db.pool, month, { now: GW_NOW });
    expect(gone.map((p) => p.name)).toEqual([name, `register_reads_${tag(addMonthsUtc(CUT, 1))}`]);
    // The archive: a plain table with the month's rows; the partitioned table no longer has them.
    const plain = await db.pool.query<{ n: number; part: boolean }>(
      `SELECT (SELECT count(*)::int FROM ${name}) AS n, (SELECT relispartition FROM pg_class WHERE relname = $1) AS part`,
      [name],
    );
    expect(plain.rows[0]).toEqual({ n: 2, part: false });
    expect(await whereIs(w.h1A.meterId, NEW_T)).toBeUndefined();
    const audit = await db.pool.query('SELECT target FROM audit_log WHERE action = $1 ORDER BY id', [
      'readings.partition_detached',
    ]);
    expect(audit.rows).toHaveLength(2);
    // Daily statistics come from the rollups, which stay.
    expect(await daily(w.h1A.meterSerial, NEW_T)).toEqual([{ wh: 700, intervals: 2 }]);
    // Ingest goes on in the current month...
    const next = new Date(NOPART_T.getTime() + 1_800_000);
    await a.readings(readingsMsg(4, sec(next), [100], 1950));
    await acked(a, 4);
    expect(await whereIs(w.h1A.meterId, next)).toBe(`interval_readings_${tag(addMonthsUtc(CUT, 4))}`);
    expect(await daily(w.h1A.meterSerial, next)).toEqual([{ wh: 350, intervals: 2 }]); // with NOPART_T, same day
    // ...and a late reading of the archived month is stored (in the default), not refused.
    const late = at(addMonthsUtc(CUT, 1), 3);
    await b.readings(readingsMsg(1, sec(late), [50], 0));
    await acked(b, 1);
    expect(await whereIs(w.h1B.meterId, late)).toBe('interval_readings_default');
    // Creating that month again would hide the archive: refused with the reason.
    const refused = await createMonth(db.pool, addMonthsUtc(CUT, 1)).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(PartitionError);
    expect((refused as Error).message).toBe(
      `table ${name} exists but is not a partition of interval_readings (a detached month? attach it again or rename it)`,
    );
  });

  it('the CLI lists partitions and refuses to detach the current month', async () => {
    const cli = path.resolve(
      path.dirname(fileURLToPath(import.meta.url)),
      '../src/readings/partitions-cli.ts',
    );
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'kw-part-cli-'));
    const run = (...args: string[]) =>
      new Promise<{ code: number; out: string; err: string }>((resolve) => {
        execFile(
          process.execPath,
          ['--import', 'tsx', cli, ...args],
          { env: { ...process.env, DATABASE_URL: db.url, DATA_DIR: dataDir }, timeout: 60_000 },
          (err, out, errOut) => resolve({ code: err ? ((err.code as number) ?? -1) : 0, out, err: errOut }),
        );
      });
    try {
      const list = await run('list');
      expect(list.code, list.err).toBe(0);
      expect(list.out).toMatch(new RegExp(`${LEGACY} +\\(start\\) \\.\\. ${CUT.toISOString().slice(0, 10)}`));
      expect(list.out).toContain('interval_readings_default');
      const refused = await run('detach', monthLabel(M0));
      expect(refused.code).toBe(1);
      expect(refused.err).toMatch(/current month or later/);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('the jobs service creates the months ahead when it starts', async () => {
    // The operator has dumped and dropped the archive (this test's clock puts that month in
    // the future again, so the job creates it anew and takes the late reading out of the default).
    const m = tag(addMonthsUtc(CUT, 1));
    await db.pool.query(`DROP TABLE interval_readings_${m}, register_reads_${m}`);
    boss = await startBoss(db.pool, { supervise: false, schedule: true });
    await startPartitionJobs(boss.boss, db.pool, logger('test-partitions'), {
      cron: '17 2 * * *',
      aheadMonths: 12,
    });
    const far = `register_reads_${tag(addMonthsUtc(M0, 12))}`;
    await waitFor(
      async () => (await listPartitions(db.pool)).some((p) => p.name === far),
      30_000,
      `${far} created by the job`,
    );
    expect(await whereIs(w.h1B.meterId, at(addMonthsUtc(CUT, 1), 3))).toBe(`interval_readings_${m}`);
  });
});
