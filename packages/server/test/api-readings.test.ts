import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createTestDb, type TestDb } from './support/db.ts';
import { as, buildWorld, login, testApi, type World } from './support/api.ts';

let db: TestDb;
let app: FastifyInstance;
let w: World;
let consumer: string;
let staff: string;

beforeAll(async () => {
  db = await createTestDb();
  w = await buildWorld(db.pool);
  app = await testApi(db.pool);
  consumer = await login(app, 'C1A');
  staff = await login(app, 'staff@sup1.test');
});
afterAll(async () => {
  await app?.close();
  await db?.drop();
});

async function insertIntervals(
  meterId: number,
  rows: { t: number; wh: number; flags?: number }[],
): Promise<void> {
  for (const r of rows) {
    await db.pool.query(
      'INSERT INTO interval_readings (meter_id, ts, wh, flags) VALUES ($1, to_timestamp($2), $3, $4)',
      [meterId, r.t, r.wh, r.flags ?? 0],
    );
  }
}

interface DayBody {
  expectedIntervals: number;
  receivedIntervals: number;
  estimatedIntervals: number;
  wh: number;
  start: string;
  end: string;
  intervals: { start: string; startUtc: string; wh: number | null; estimated: boolean }[];
}

async function getJson<T>(cookie: string, url: string): Promise<T> {
  const res = await app.inject(as(cookie, { method: 'GET', url }));
  expect(res.statusCode, res.body).toBe(200);
  return JSON.parse(res.body) as T;
}

const HALF_HOUR = 1800;

describe('intervals of a local day', () => {
  test('Europe/London 2026-03-29 (clocks go forward): 46 half-hours, total and estimated flags', async () => {
    const start = Date.UTC(2026, 2, 29, 0, 0) / 1000; // local midnight is GMT
    const rows = Array.from({ length: 46 }, (_, i) => ({
      t: start + i * HALF_HOUR,
      wh: i + 1,
      flags: i === 3 ? 1 : i === 4 ? 2 : i === 5 ? 3 : 0,
    }));
    // Neighbours just outside the local day must not count.
    rows.push(
      { t: start - HALF_HOUR, wh: 1000, flags: 0 },
      { t: start + 46 * HALF_HOUR, wh: 1000, flags: 0 },
    );
    await insertIntervals(w.h1A.meterId, rows);

    const body = await getJson<DayBody>(
      consumer,
      `/api/meters/${w.h1A.meterSerial}/intervals?date=2026-03-29`,
    );
    expect(body.expectedIntervals).toBe(46);
    expect(body.intervals).toHaveLength(46);
    expect(body.receivedIntervals).toBe(46);
    expect(body.wh).toBe((46 * 47) / 2);
    expect(body.estimatedIntervals).toBe(2);
    expect(body.intervals.filter((i) => i.estimated).map((i) => i.wh)).toEqual([4, 6]);
    expect(body.start).toBe('2026-03-29T00:00:00+00:00');
    expect(body.end).toBe('2026-03-30T00:00:00+01:00');
    expect(body.intervals[1]!.start).toBe('2026-03-29T00:30:00+00:00');
    // 01:00 local does not exist that day: 00:30 GMT is followed by 02:00 BST.
    expect(body.intervals[2]!.start).toBe('2026-03-29T02:00:00+01:00');
    expect(body.intervals[2]!.startUtc).toBe('2026-03-29T01:00:00.000Z');
  });

  test('Europe/London 2026-10-25 (clocks go back): 50 half-hours, a missing one is null', async () => {
    const start = Date.UTC(2026, 9, 24, 23, 0) / 1000; // local midnight is BST
    const rows = Array.from({ length: 50 }, (_, i) => ({ t: start + i * HALF_HOUR, wh: i + 1 })).filter(
      (_, i) => i !== 10,
    );
    await insertIntervals(w.h1A.meterId, rows);

    const body = await getJson<DayBody>(staff, `/api/meters/${w.h1A.meterSerial}/intervals?date=2026-10-25`);
    expect(body.expectedIntervals).toBe(50);
    expect(body.intervals).toHaveLength(50);
    expect(body.receivedIntervals).toBe(49);
    expect(body.wh).toBe((50 * 51) / 2 - 11);
    expect(body.intervals[10]!.wh).toBeNull();
    expect(body.intervals[0]!.start).toBe('2026-10-25T00:00:00+01:00');
    // 01:00 and 01:30 happen twice, once in BST and once in GMT.
    expect(body.intervals[2]!.start).toBe('2026-10-25T01:00:00+01:00');
    expect(body.intervals[4]!.start).toBe('2026-10-25T01:00:00+00:00');
    expect(body.intervals[49]!.start).toBe('2026-10-25T23:30:00+00:00');
    expect(body.end).toBe('2026-10-26T00:00:00+00:00');
  });

  test('an ordinary day has 48 half-hours, all null when nothing arrived', async () => {
    const body = await getJson<DayBody>(
      consumer,
      `/api/meters/${w.h1A.meterSerial}/intervals?date=2026-06-01`,
    );
    expect(body.expectedIntervals).toBe(48);
    expect(body.receivedIntervals).toBe(0);
    expect(body.wh).toBe(0);
    expect(body.intervals.every((i) => i.wh === null)).toBe(true);
    expect(body.start).toBe('2026-06-01T00:00:00+01:00');
  });

  test("days follow the meter's own zone and interval length", async () => {
    await db.pool.query("UPDATE meters SET tz = 'America/New_York', interval_s = 900 WHERE id = $1", [
      w.h1B.meterId,
    ]);
    const cookie = await login(app, 'C1B');
    // US clocks go forward on 2026-03-08: 23 hours of 15-minute intervals.
    const body = await getJson<DayBody>(cookie, `/api/meters/${w.h1B.meterSerial}/intervals?date=2026-03-08`);
    expect(body.expectedIntervals).toBe(92);
    expect(body.start).toBe('2026-03-08T00:00:00-05:00');
    expect(body.end).toBe('2026-03-09T00:00:00-04:00');
  });
});

describe('daily and monthly rollups', () => {
  beforeAll(async () => {
    const daily: [string, number, number, number][] = [
      ['2026-03-27', 99_999, 48, 0],
      ['2026-03-28', 9_000, 48, 0],
      ['2026-03-29', 1_081, 46, 2],
      ['2026-03-30', 7_000, 48, 1],
      ['2026-04-01', 5_000, 48, 0],
    ];
    for (const [day, wh, n, est] of daily) {
      await db.pool.query(
        'INSERT INTO daily_rollups (meter_id, day, wh, intervals, estimated) VALUES ($1, $2, $3, $4, $5)',
        [w.h1A.meterId, day, wh, n, est],
      );
    }
    // Another meter's rollup on the same day must never leak in.
    await db.pool.query(
      "INSERT INTO daily_rollups (meter_id, day, wh, intervals) VALUES ($1, '2026-03-29', 555, 46)",
      [w.h2A.meterId],
    );
    // A February day: outside the monthly query below, so it must not count.
    await db.pool.query(
      "INSERT INTO daily_rollups (meter_id, day, wh, intervals) VALUES ($1, '2026-02-28', 100000, 48)",
      [w.h1A.meterId],
    );
  });

  test('daily: days from..to inclusive, Wh and total', async () => {
    const body = await getJson<{
      wh: number;
      days: { day: string; wh: number; intervals: number; estimated: number }[];
    }>(consumer, `/api/meters/${w.h1A.meterSerial}/daily?from=2026-03-28&to=2026-03-31`);
    expect(body.days).toEqual([
      { day: '2026-03-28', wh: 9_000, intervals: 48, estimated: 0 },
      { day: '2026-03-29', wh: 1_081, intervals: 46, estimated: 2 },
      { day: '2026-03-30', wh: 7_000, intervals: 48, estimated: 1 },
    ]);
    expect(body.wh).toBe(17_081);
  });

  test('monthly: months from..to inclusive as YYYY-MM', async () => {
    const body = await getJson<{ wh: number; months: { month: string; wh: number }[] }>(
      consumer,
      `/api/meters/${w.h1A.meterSerial}/monthly?from=2026-03&to=2026-04`,
    );
    // Months are the sums of the meter's daily rollups (99,999 + 9,000 + 1,081 + 7,000 in March).
    expect(body.months.map((m) => [m.month, m.wh])).toEqual([
      ['2026-03', 117_080],
      ['2026-04', 5_000],
    ]);
    expect(body.wh).toBe(122_080);
  });
});

describe('events', () => {
  test('newest first, filtered by from/to, limited', async () => {
    const ev: [number, string, string][] = [
      [1, '2026-03-01T10:00:00Z', 'power.fail'],
      [2, '2026-03-01T10:05:00Z', 'power.restore'],
      [3, '2026-03-02T08:00:00Z', 'tamper.cover'],
    ];
    for (const [seq, ts, code] of ev) {
      await db.pool.query(
        'INSERT INTO meter_events (meter_id, seq, idx, ts, code) VALUES ($1, $2, 0, $3, $4)',
        [w.h1A.meterId, seq, ts, code],
      );
    }
    const all = await getJson<{ items: { code: string }[] }>(
      consumer,
      `/api/meters/${w.h1A.meterSerial}/events`,
    );
    expect(all.items.map((e) => e.code)).toEqual(['tamper.cover', 'power.restore', 'power.fail']);
    const day1 = await getJson<{ items: { code: string; ts: string }[] }>(
      consumer,
      `/api/meters/${w.h1A.meterSerial}/events?from=2026-03-01T00:00:00Z&to=2026-03-02T00:00:00Z&limit=1`,
    );
    expect(day1.items).toEqual([
      expect.objectContaining({ code: 'power.restore', ts: '2026-03-01T10:05:00.000Z' }),
    ]);
  });
});

describe('validation -> 400 VALIDATION with the offending path', () => {
  const cases: [string, string, string][] = [
    ['impossible date', '/api/meters/KW1A/intervals?date=2026-02-30', 'query.date'],
    ['missing date', '/api/meters/KW1A/intervals', 'query.date'],
    ['daily to before from', '/api/meters/KW1A/daily?from=2026-03-31&to=2026-03-01', 'query.to'],
    ['daily span over 400 days', '/api/meters/KW1A/daily?from=2025-01-01&to=2026-03-01', 'query.to'],
    ['daily bad format', '/api/meters/KW1A/daily?from=2026-3-1&to=2026-03-01', 'query.from'],
    ['monthly month 13', '/api/meters/KW1A/monthly?from=2026-13&to=2026-12', 'query.from'],
    ['events from not an instant', '/api/meters/KW1A/events?from=yesterday', 'query.from'],
    ['events limit too big', '/api/meters/KW1A/events?limit=100000', 'query.limit'],
    ['meters limit over 200', '/api/meters?limit=201', 'query.limit'],
    ['meters limit not a number', '/api/meters?limit=ten', 'query.limit'],
    ['meters forged cursor', '/api/meters?cursor=%%%', 'query.cursor'],
    ['serial with bad characters', '/api/meters/KW%20%3B1A', 'params.serial'],
  ];
  test.each(cases)('%s', async (_name, url, path) => {
    const res = await app.inject(as(staff, { method: 'GET', url }));
    expect(res.statusCode, res.body).toBe(400);
    const body = JSON.parse(res.body) as { error: { code: string; issues: { path: string }[] } };
    expect(body.error.code).toBe('VALIDATION');
    expect(body.error.issues.map((i) => i.path)).toContain(path);
  });

  test('unknown command type -> body.type', async () => {
    const res = await app.inject(
      as(staff, {
        method: 'POST',
        url: `/api/meters/${w.h1A.meterSerial}/commands`,
        headers: { 'content-type': 'application/json' },
        payload: { type: 'supply.explode' },
      }),
    );
    expect(res.statusCode).toBe(400);
    expect(JSON.parse(res.body)).toMatchObject({
      error: { code: 'VALIDATION', issues: [{ path: 'body.type' }] },
    });
  });

  test('malformed JSON -> 400 VALIDATION; oversized body -> 413', async () => {
    const bad = await app.inject(
      as(staff, {
        method: 'POST',
        url: `/api/meters/${w.h1A.meterSerial}/commands`,
        headers: { 'content-type': 'application/json' },
        payload: '{"type":',
      }),
    );
    expect(bad.statusCode).toBe(400);
    expect(JSON.parse(bad.body)).toMatchObject({ error: { code: 'VALIDATION' } });
    const big = await app.inject(
      as(staff, {
        method: 'POST',
        url: `/api/meters/${w.h1A.meterSerial}/commands`,
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify({ type: 'supply.off', reason: 'x'.repeat(70_000) }),
      }),
    );
    expect(big.statusCode).toBe(413);
    expect(JSON.parse(big.body)).toMatchObject({ error: { code: 'PAYLOAD_TOO_LARGE' } });
  });
});
