import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import {
  addDays,
  billingPeriod,
  generateSigningKeyPair,
  localDate,
  localMidnight,
  privateKeyFromB64,
} from '@kilowire/protocol';
import { alertsSubscriber } from '../src/alerts/handlers.ts';
import { evaluateEvents } from '../src/alerts/rules.ts';
import { tx } from '../src/db/pool.ts';
import { loadEvents } from '../src/events/emit.ts';
import { assignTariff, createTariff } from '../src/money/tariffs.ts';
import { createTestDb, type TestDb } from './support/db.ts';
import { as, buildWorld, login, testApi, type World } from './support/api.ts';
import { rollupFromIntervals } from './support/world.ts';

/**
 * The household's side of money through the API: its tariff and the comparison, the request
 * -> decline / approve -> household told, cost on statistics and home (prepayment days left,
 * a credit account's projection), and its own low-credit level sent to the meter.
 */
const TZ = 'Europe/London';
const key = privateKeyFromB64(generateSigningKeyPair().privateKey);
let db: TestDb;
let app: FastifyInstance;
let w: World;
const c: Record<string, string> = {};
let flatId = 0;
let cheapId = 0;
const nowS = Math.floor(Date.now() / 1000);
const today = localDate(nowS, TZ);

const json = (cookie: string, method: 'POST' | 'PUT', url: string, payload: Record<string, unknown>) =>
  app.inject(as(cookie, { method, url, headers: { 'content-type': 'application/json' }, payload }));
const get = (cookie: string, url: string) => app.inject(as(cookie, { method: 'GET', url }));
const body = <T = Record<string, unknown>>(r: { body: string }) => JSON.parse(r.body) as T;

/** Round half up, as a bill does. */
const vat5 = (net: number) => Math.floor((net * 500 + 5000) / 10_000);

async function handleEvents(): Promise<void> {
  const { rows } = await db.pool.query<{ id: number }>(
    "SELECT id FROM domain_events WHERE type LIKE 'tariff.%' ORDER BY id",
  );
  await alertsSubscriber(db.pool).handle(
    await loadEvents(
      db.pool,
      rows.map((r) => r.id),
    ),
  );
}

beforeAll(async () => {
  db = await createTestDb();
  w = await buildWorld(db.pool);
  app = await testApi(db.pool);
  for (const k of ['h1A', 'h1B', 'h2A', 'sup1', 'opA'] as const) c[k] = await login(app, w.login[k]);
  const v = (dayRate: number, standing: number) => ({
    effectiveFrom: addDays(today, -30),
    dayRate,
    nightRate: null,
    peakRate: null,
    nightWindows: [],
    peakWindows: [],
    exportRate: null,
    standingMilliPerDay: standing,
    vatBp: 500,
  });
  await tx(db.pool, async (cl) => {
    flatId = await createTariff(
      cl,
      w.sup1,
      {
        code: 'FLAT',
        name: 'Simple Flat',
        currency: 'GBP',
        structure: 'flat',
        open: true,
        version: v(25_000, 50_000),
      },
      null,
      { allowPast: true },
    );
    cheapId = await createTariff(
      cl,
      w.sup1,
      {
        code: 'CHEAP',
        name: 'Cheap Flat',
        currency: 'GBP',
        structure: 'flat',
        open: true,
        version: v(20_000, 60_000),
      },
      null,
      { allowPast: true },
    );
    for (const h of [w.h1A, w.h1B]) {
      const m = { id: h.meterId, serial: h.meterSerial, tz: TZ, supplier_id: w.sup1 };
      await assignTariff(cl, key, m, flatId, addDays(today, -7), null, { allowPast: true });
      // Seven complete local days of 48 × 250 Wh (12 kWh a day) before today.
      await cl.query(
        `INSERT INTO interval_readings (meter_id, ts, wh)
         SELECT $1, g, 250 FROM generate_series(to_timestamp($2), to_timestamp($3) - interval '30 minutes', interval '30 minutes') g`,
        [h.meterId, localMidnight(addDays(today, -7), TZ), localMidnight(today, TZ)],
      );
    }
    for (const h of [w.h1A, w.h1B]) await rollupFromIntervals(cl, h.meterId);
    await cl.query(
      `UPDATE meters SET credit_minor = 1234, mode = 'prepayment', last_status = '{"emergencyCreditMinor": 500}' WHERE id = $1`,
      [w.h1B.meterId],
    );
  });
  await db.pool.query("DELETE FROM domain_events WHERE type LIKE 'tariff.%'");
});
afterAll(async () => {
  await app?.close();
  await db?.drop();
});

// A day: 12,000 Wh × 25000 = 300,000,000 µ = 300p + 50p standing = 350p net.
const DAY_NET = 350;

describe('tariff view and comparison', () => {
  it('the household sees its tariff and the open ones priced over its own last 30 and 365 days', async () => {
    const r = await get(c.h1A!, '/api/tariffs');
    expect(r.statusCode, r.body).toBe(200);
    const b = body<{
      items: {
        id: number;
        name: string;
        comparison: { windowDays: number; daysUsed: number; totalMinor: number }[];
      }[];
      meter: { tariffId: number; tariffName: string; command: { status: string } };
    }>(r);
    expect(b.meter).toMatchObject({
      tariffId: flatId,
      tariffName: 'Simple Flat',
      command: { status: 'queued' },
    });
    const flat = b.items.find((t) => t.id === flatId)!;
    // 7 days × 350p = 2450p, VAT 122.5 -> 123p.
    expect(flat.comparison).toEqual([
      { windowDays: 30, daysUsed: 7, wh: 84_000, totalMinor: 2450 + 123 },
      { windowDays: 365, daysUsed: 7, wh: 84_000, totalMinor: 2573 },
    ]);
    // Cheap: 12,000 × 20000 = 240p + 60p = 300p a day; 2100p + VAT 105p.
    expect(b.items.find((t) => t.id === cheapId)!.comparison[0]!.totalMinor).toBe(2205);
  });
});

describe('statistics cost', () => {
  it("a day's intervals and the daily figures carry money at the prices then in force; operators see none", async () => {
    const day = addDays(today, -1);
    const r = await get(c.h1A!, `/api/meters/KW1A/intervals?date=${day}`);
    const b = body<{
      cost: { intervalsMicro: number[]; totalMinor: number; vatMinor: number; tariffName: string };
    }>(r);
    expect(b.cost.tariffName).toBe('Simple Flat');
    expect(b.cost.intervalsMicro.slice(0, 3)).toEqual([6_250_000, 6_250_000, 6_250_000]);
    expect(b.cost).toMatchObject({
      netMinor: DAY_NET,
      vatMinor: vat5(DAY_NET),
      totalMinor: DAY_NET + vat5(DAY_NET),
    });
    const d = body<{ cost: { days: { day: string; totalMinor: number }[]; totalMinor: number } }>(
      await get(c.h1A!, `/api/meters/KW1A/daily?from=${addDays(today, -7)}&to=${addDays(today, -1)}`),
    );
    expect(d.cost.days).toHaveLength(7);
    expect(d.cost.totalMinor).toBe(2573);
    const op = body<{ cost: unknown }>(await get(c.opA!, `/api/meters/KW1A/intervals?date=${day}`));
    expect(op.cost).toBeNull();
  });
});

describe('home money', () => {
  const period = billingPeriod(today, 7);
  // Days of the period with readings, plus today's standing charge.
  const first = period.start > addDays(today, -7) ? period.start : addDays(today, -7);
  const daysWithReadings = Math.round((Date.parse(today) - Date.parse(first)) / 86_400_000);
  const periodNet = DAY_NET * daysWithReadings + 50;
  const recentDaily = Math.round(2573 / 7); // 368p

  it('prepayment: credit, emergency credit, debt, days left at the recent rate, friendly hours', async () => {
    const b = body<{ cost: Record<string, unknown>; prepayment: Record<string, unknown> }>(
      await get(c.h1B!, '/api/home'),
    );
    expect(b.cost).toMatchObject({
      tariffName: 'Simple Flat',
      todayMinor: 50 + vat5(50),
      periodMinor: periodNet + vat5(periodNet),
      recentDailyMinor: recentDaily,
      recentDays: 7,
      projection: null,
    });
    expect(b.prepayment).toEqual({
      creditMinor: 1234,
      emergencyInUse: false,
      emergencyAvailableMinor: 500,
      debtMinor: 0,
      daysLeft: 3.3, // 1234 / 368 = 3.35 -> 3.3 (never rounded up)
      friendlyHours: { from: '18:00', to: '08:00' },
      lowCreditMinor: null,
    });
    await db.pool.query('UPDATE meters SET credit_minor = -120 WHERE id = $1', [w.h1B.meterId]);
    const owed = body<{ prepayment: Record<string, unknown> }>(await get(c.h1B!, '/api/home'));
    expect(owed.prepayment).toMatchObject({
      creditMinor: -120,
      emergencyInUse: true,
      debtMinor: 120,
      daysLeft: 0,
    });
    await db.pool.query('UPDATE meters SET credit_minor = 1234 WHERE id = $1', [w.h1B.meterId]);
  });

  it('credit: a projected bill = so far + recent daily cost × days left', async () => {
    const b = body<{
      cost: { periodMinor: number; projection: { totalMinor: number; daysLeft: number; periodEnd: string } };
    }>(await get(c.h1A!, '/api/home'));
    const daysLeft = Math.round((Date.parse(addDays(period.end, -1)) - Date.parse(today)) / 86_400_000);
    expect(b.cost.projection).toEqual({
      totalMinor: b.cost.periodMinor + recentDaily * daysLeft,
      daysLeft,
      periodEnd: addDays(period.end, -1),
    });
  });
});

describe('low-credit level', () => {
  it('is saved and sent to the meter as thresholds.set, once per change', async () => {
    const put = await json(c.h1B!, 'PUT', '/api/meters/KW1B/limits', {
      dailyLimitWh: null,
      hourlyLimitWh: null,
      lowCreditMinor: 500,
    });
    expect(put.statusCode, put.body).toBe(200);
    expect(body(put)).toMatchObject({ lowCreditMinor: 500, lowCreditCommand: { status: 'queued' } });
    const again = await json(c.h1B!, 'PUT', '/api/meters/KW1B/limits', {
      dailyLimitWh: 9000,
      hourlyLimitWh: null,
    });
    expect(body(again)).toMatchObject({ dailyLimitWh: 9000, lowCreditMinor: 500 });
    const cmds = await db.pool.query<{ cmd: { lowCreditMinor: number } }>(
      "SELECT cmd FROM commands WHERE meter_id = $1 AND type = 'thresholds.set'",
      [w.h1B.meterId],
    );
    expect(cmds.rows.map((r) => r.cmd.lowCreditMinor)).toEqual([500]);
    const home = body<{ prepayment: { lowCreditMinor: number } }>(await get(c.h1B!, '/api/home'));
    expect(home.prepayment.lowCreditMinor).toBe(500);
  });

  it("the low-credit alert tells the household's own level", async () => {
    await db.pool.query(
      `INSERT INTO meter_events (meter_id, seq, idx, ts, code, data)
       VALUES ($1, 1, 0, now(), 'credit.low', '{"creditMinor": 420}')`,
      [w.h1B.meterId],
    );
    await evaluateEvents(db.pool, [{ meterId: w.h1B.meterId, seq: 1 }]);
    const a = await db.pool.query<{ message: string }>(
      "SELECT message FROM alerts WHERE meter_id = $1 AND type = 'credit_low'",
      [w.h1B.meterId],
    );
    expect(a.rows[0]!.message).toContain('is £4.20, below the low-credit threshold of £5.00');
  });
});

describe('tariff-change requests', () => {
  it('request -> decline with a reason -> the household is told', async () => {
    const r = await json(c.h1A!, 'POST', '/api/tariff-change-requests', {
      serial: 'KW1A',
      toTariffId: cheapId,
    });
    expect(r.statusCode, r.body).toBe(201);
    const id = body<{ id: number }>(r).id;
    const dup = await json(c.h1A!, 'POST', '/api/tariff-change-requests', {
      serial: 'KW1A',
      toTariffId: cheapId,
    });
    expect(dup.statusCode).toBe(409);
    const noReason = await json(c.sup1!, 'POST', `/api/tariff-change-requests/${id}/decision`, {
      decision: 'decline',
    });
    expect(noReason.statusCode).toBe(400);
    const d = await json(c.sup1!, 'POST', `/api/tariff-change-requests/${id}/decision`, {
      decision: 'decline',
      reason: 'Cheap Flat needs a smart export meter',
    });
    expect(d.statusCode, d.body).toBe(200);
    expect(body(d)).toMatchObject({ status: 'declined', reason: 'Cheap Flat needs a smart export meter' });
    const twice = await json(c.sup1!, 'POST', `/api/tariff-change-requests/${id}/decision`, {
      decision: 'approve',
    });
    expect(twice.statusCode).toBe(409);
    await handleEvents();
    const a = await db.pool.query<{ title: string; message: string }>(
      "SELECT title, message FROM alerts WHERE meter_id = $1 AND type = 'tariff_request'",
      [w.h1A.meterId],
    );
    expect(a.rows).toEqual([
      {
        title: 'Tariff change declined',
        message:
          'Your request to move meter KW1A to "Cheap Flat" was declined. Reason: Cheap Flat needs a smart export meter',
      },
    ]);
  });

  it('request -> approve -> the meter moves from its next local midnight, gets tariff.set, the household is told', async () => {
    const r = await json(c.h1A!, 'POST', '/api/tariff-change-requests', {
      serial: 'KW1A',
      toTariffId: cheapId,
    });
    const id = body<{ id: number }>(r).id;
    const before = await db.pool.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM commands WHERE meter_id = $1 AND type = 'tariff.set'",
      [w.h1A.meterId],
    );
    const d = await json(c.sup1!, 'POST', `/api/tariff-change-requests/${id}/decision`, {
      decision: 'approve',
    });
    expect(d.statusCode, d.body).toBe(200);
    const tomorrow = addDays(today, 1);
    expect(body(d)).toMatchObject({ status: 'approved', effectiveFrom: tomorrow });
    const after = await db.pool.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM commands WHERE meter_id = $1 AND type = 'tariff.set'",
      [w.h1A.meterId],
    );
    expect(after.rows[0]!.n).toBe(before.rows[0]!.n + 1);
    const mt = body<{ tariffId: number; next: { tariffId: number; from: string } }>(
      await get(c.h1A!, '/api/meters/KW1A/tariff'),
    );
    expect(mt).toMatchObject({ tariffId: flatId, next: { tariffId: cheapId, from: tomorrow } });
    await handleEvents();
    const a = await db.pool.query<{ type: string; message: string }>(
      "SELECT type, message FROM alerts WHERE meter_id = $1 AND type IN ('tariff_request', 'tariff_changed') ORDER BY id",
      [w.h1A.meterId],
    );
    const approved = a.rows.find((x) => x.type === 'tariff_request' && x.message.includes('approved'));
    expect(approved?.message).toContain(`applies from ${Number(tomorrow.slice(8))} `);
    const changed = a.rows.filter((x) => x.type === 'tariff_changed').pop()!;
    expect(changed.message).toContain('changes to "Cheap Flat"');
    expect(changed.message).toContain('New prices: unit rate 20p/kWh, standing charge 60p/day, VAT 5%.');
    expect(changed.message).toContain(
      'Until then: "Simple Flat", unit rate 25p/kWh, standing charge 50p/day, VAT 5%.',
    );
  });
});
