import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { localDate } from '@kilowire/protocol';
import { raiseAlerts, raiseOperatorAlerts } from '../src/alerts/raise.ts';
import { tx } from '../src/db/pool.ts';
import { createTestDb, type TestDb } from './support/db.ts';
import { as, buildWorld, login, PASSWORD, testApi, type World } from './support/api.ts';

/** The consumer portal's routes: home, limits, profile, password, alerts, outbox. */
let db: TestDb;
let app: FastifyInstance;
let w: World;
const c = {} as Record<'h1A' | 'h1B' | 'h2A' | 'sup1' | 'sup2' | 'opA' | 'opB' | 'admin', string>;

beforeAll(async () => {
  db = await createTestDb();
  w = await buildWorld(db.pool);
  app = await testApi(db.pool);
  for (const k of ['h1A', 'h1B', 'h2A', 'sup1', 'sup2', 'opA', 'opB', 'admin'] as const)
    c[k] = await login(app, w.login[k]);
});
afterAll(async () => {
  await app?.close();
  await db?.drop();
});

const json = (cookie: string, method: InjectOptions['method'], url: string, payload?: unknown) =>
  app.inject(
    as(cookie, {
      method,
      url,
      headers: { 'content-type': 'application/json' },
      ...(payload === undefined ? {} : { payload: payload as object }),
    }),
  );
const body = <T = Record<string, unknown>>(r: { body: string }) => JSON.parse(r.body) as T;
const today = () => localDate(Math.floor(Date.now() / 1000), 'Europe/London');

const PROFILE = {
  name: 'Anna Example',
  email: 'anna@example.test',
  mobile: '+447700900123',
  quietHours: { from: '22:00', to: '07:00' },
  channels: {
    daily_limit: { email: true, sms: true, web: true },
    hourly_limit: { email: false, sms: false, web: true },
    tamper: { email: true, sms: true, web: true },
    disconnected: { email: true, sms: true, web: true },
    credit_low: { email: true, sms: false, web: true },
    tariff_changed: { email: false, sms: false, web: false },
    bill_ready: { email: true, sms: false, web: true },
    tariff_request: { email: true, sms: true, web: true },
    payment: { email: false, sms: false, web: true },
    supply_armed: { email: true, sms: true, web: true },
    supply_restored: { email: true, sms: false, web: true },
    outage: { email: false, sms: true, web: true },
  },
};

describe('GET /api/home', () => {
  it('returns the contract: meter, today, billing period, unread', async () => {
    const t = today();
    await db.pool.query(
      'INSERT INTO daily_rollups (meter_id, day, wh, intervals) VALUES ($1, $2, 3456, 20)',
      [w.h1A.meterId, t],
    );
    await db.pool.query(
      `INSERT INTO interval_readings (meter_id, ts, wh) VALUES ($1, date_trunc('hour', now()) - interval '1 hour', 100)`,
      [w.h1A.meterId],
    );
    const r = await app.inject(as(c.h1A, { method: 'GET', url: '/api/home' }));
    expect(r.statusCode, r.body).toBe(200);
    const b = body(r);
    expect(b).toEqual({
      meter: {
        serial: 'KW1A',
        tz: 'Europe/London',
        mode: 'credit',
        relay: null,
        creditMinor: null,
        currency: 'GBP',
        intervalS: 1800,
      },
      lastReadingAt: expect.stringMatching(/Z$/) as string,
      today: { date: t, wh: 3456, dailyLimitWh: null, hourlyLimitWh: null },
      billingPeriod: {
        start: expect.stringMatching(/^\d{4}-\d{2}-07$/) as string,
        wh: expect.any(Number) as number,
      },
      unreadAlerts: 0,
      outage: null,
      // No tariff in this world: no money to show; a credit meter has no prepayment figures.
      cost: null,
      prepayment: null,
    });
    const start = (b.billingPeriod as { start: string }).start;
    expect(start <= t).toBe(true);
    expect((Date.parse(t) - Date.parse(start)) / 86_400_000).toBeLessThan(31);
    expect((b.billingPeriod as { wh: number }).wh).toBeGreaterThanOrEqual(3456);
  });

  it("serial picks the meter; another household's serial is 404; staff are 403", async () => {
    expect((await app.inject(as(c.h1A, { method: 'GET', url: '/api/home?serial=KW1A' }))).statusCode).toBe(
      200,
    );
    expect((await app.inject(as(c.h2A, { method: 'GET', url: '/api/home?serial=KW1A' }))).statusCode).toBe(
      404,
    );
    expect((await app.inject(as(c.sup1, { method: 'GET', url: '/api/home' }))).statusCode).toBe(403);
  });
});

describe('limits', () => {
  it("GET/PUT round trip; lowering under today's use raises the alert at once", async () => {
    const get = await app.inject(as(c.h1A, { method: 'GET', url: '/api/meters/KW1A/limits' }));
    expect(body(get)).toEqual({
      dailyLimitWh: null,
      hourlyLimitWh: null,
      lowCreditMinor: null,
      lowCreditCommand: null,
    });
    const put = await json(c.h1A, 'PUT', '/api/meters/KW1A/limits', {
      dailyLimitWh: 3000,
      hourlyLimitWh: null,
    });
    expect(put.statusCode, put.body).toBe(200);
    expect(body(put)).toEqual({
      dailyLimitWh: 3000,
      hourlyLimitWh: null,
      lowCreditMinor: null,
      lowCreditCommand: null,
    });
    const alerts = await app.inject(as(c.h1A, { method: 'GET', url: '/api/alerts?type=daily_limit' }));
    const items = body<{ items: { message: string; meterSerial: string; readAt: null }[]; unread: number }>(
      alerts,
    );
    expect(items.items).toHaveLength(1);
    expect(items.items[0]!.message).toContain('You used 3.5 kWh on');
    expect(items.items[0]!.message).toContain('above your daily limit of 3.0 kWh');
    expect(items.items[0]!.meterSerial).toBe('KW1A');
    // Saving again (same crossing) raises nothing new.
    await json(c.h1A, 'PUT', '/api/meters/KW1A/limits', { dailyLimitWh: 2000, hourlyLimitWh: 500 });
    expect(
      body<{ items: unknown[] }>(
        await app.inject(as(c.h1A, { method: 'GET', url: '/api/alerts?type=daily_limit' })),
      ).items,
    ).toHaveLength(1);
    const home = body<{ today: { dailyLimitWh: number; hourlyLimitWh: number }; unreadAlerts: number }>(
      await app.inject(as(c.h1A, { method: 'GET', url: '/api/home' })),
    );
    expect(home.today).toMatchObject({ dailyLimitWh: 2000, hourlyLimitWh: 500 });
    expect(home.unreadAlerts).toBeGreaterThanOrEqual(1);
  });

  it('validates: out of range and non-integers are 400 VALIDATION; staff 403; another consumer 404', async () => {
    const bad = await json(c.h1A, 'PUT', '/api/meters/KW1A/limits', { dailyLimitWh: 0, hourlyLimitWh: 1.5 });
    expect(bad.statusCode).toBe(400);
    const paths = body<{ error: { code: string; issues: { path: string }[] } }>(bad).error;
    expect(paths.code).toBe('VALIDATION');
    expect(paths.issues.map((i) => i.path).sort()).toEqual(['body.dailyLimitWh', 'body.hourlyLimitWh']);
    expect(
      (await json(c.sup1, 'PUT', '/api/meters/KW1A/limits', { dailyLimitWh: 1, hourlyLimitWh: null }))
        .statusCode,
    ).toBe(403);
    expect(
      (await json(c.h2A, 'PUT', '/api/meters/KW1A/limits', { dailyLimitWh: 1, hourlyLimitWh: null }))
        .statusCode,
    ).toBe(404);
  });
});

describe('profile and password', () => {
  it('defaults, then PUT replaces everything and GET returns it', async () => {
    const r = await app.inject(as(c.h1B, { method: 'GET', url: '/api/me/profile' }));
    expect(body(r)).toEqual({
      name: 'Household C1B',
      email: null,
      mobile: null,
      quietHours: null,
      channels: {
        daily_limit: { email: true, sms: false, web: true },
        hourly_limit: { email: false, sms: false, web: true },
        tamper: { email: true, sms: true, web: true },
        disconnected: { email: true, sms: true, web: true },
        credit_low: { email: true, sms: false, web: true },
        tariff_changed: { email: true, sms: false, web: true },
        bill_ready: { email: true, sms: false, web: true },
        tariff_request: { email: true, sms: false, web: true },
        payment: { email: true, sms: false, web: true },
        supply_armed: { email: true, sms: true, web: true },
        supply_restored: { email: true, sms: true, web: true },
        outage: { email: true, sms: true, web: true },
      },
    });
    const put = await json(c.h1B, 'PUT', '/api/me/profile', PROFILE);
    expect(put.statusCode, put.body).toBe(200);
    expect(body(put)).toEqual(PROFILE);
    expect(body(await app.inject(as(c.h1B, { method: 'GET', url: '/api/me/profile' })))).toEqual(PROFILE);
    const me = body<{ user: { displayName: string } }>(
      await app.inject(as(c.h1B, { method: 'GET', url: '/api/me' })),
    );
    expect(me.user.displayName).toBe('Anna Example');
  });

  it('a UK national mobile is stored as E.164; what is not a number stays refused', async () => {
    for (const typed of ['07700 900123', '07700-900-123', '+44 (0)7700 900123', '0044 7700 900123']) {
      const r = await json(c.h1B, 'PUT', '/api/me/profile', { ...PROFILE, mobile: typed });
      expect(r.statusCode, `${typed}: ${r.body}`).toBe(200);
      expect(body(r).mobile).toBe('+447700900123');
    }
    const row = await db.pool.query<{ mobile: string }>('SELECT mobile FROM consumers WHERE id = $1', [
      w.h1B.consumerId,
    ]);
    expect(row.rows[0]!.mobile).toBe('+447700900123');
    // One digit short of a UK number, and a leading 0 after the country code: refused.
    for (const typed of ['0770090012', '+07700900123', '07700 9001x3']) {
      const r = await json(c.h1B, 'PUT', '/api/me/profile', { ...PROFILE, mobile: typed });
      expect(r.statusCode, typed).toBe(400);
    }
  });

  it('a bad mobile is 400 VALIDATION at body.mobile; bad email and quiet hours too', async () => {
    const r = await json(c.h1B, 'PUT', '/api/me/profile', { ...PROFILE, mobile: '0770090012' });
    expect(r.statusCode).toBe(400);
    const e = body<{ error: { code: string; issues: { path: string }[] } }>(r).error;
    expect(e.code).toBe('VALIDATION');
    expect(e.issues.map((i) => i.path)).toEqual(['body.mobile']);
    const r2 = await json(c.h1B, 'PUT', '/api/me/profile', {
      ...PROFILE,
      email: 'nope',
      quietHours: { from: '25:00', to: '07:00' },
    });
    expect(
      body<{ error: { issues: { path: string }[] } }>(r2)
        .error.issues.map((i) => i.path)
        .sort(),
    ).toEqual(['body.email', 'body.quietHours.from']);
    const r3 = await json(c.h1B, 'PUT', '/api/me/profile', {
      ...PROFILE,
      channels: { ...PROFILE.channels, tamper: undefined },
    });
    expect(r3.statusCode).toBe(400);
    expect((await json(c.sup1, 'PUT', '/api/me/profile', PROFILE)).statusCode).toBe(403);
  });

  it('password change: wrong current is 400 WRONG_PASSWORD; success is 204 and signs out the other sessions', async () => {
    const other = await login(app, w.login.h2A);
    const wrong = await json(c.h2A, 'POST', '/api/me/password', {
      currentPassword: 'nope',
      newPassword: 'a-new-password-1',
    });
    expect(wrong.statusCode).toBe(400);
    expect(body<{ error: { code: string } }>(wrong).error.code).toBe('WRONG_PASSWORD');
    const short = await json(c.h2A, 'POST', '/api/me/password', {
      currentPassword: PASSWORD,
      newPassword: 'short',
    });
    expect(short.statusCode).toBe(400);
    const ok = await json(c.h2A, 'POST', '/api/me/password', {
      currentPassword: PASSWORD,
      newPassword: 'a-new-password-1',
    });
    expect(ok.statusCode, ok.body).toBe(204);
    expect((await app.inject(as(c.h2A, { method: 'GET', url: '/api/me' }))).statusCode).toBe(200);
    expect((await app.inject(as(other, { method: 'GET', url: '/api/me' }))).statusCode).toBe(401);
    const relog = await app.inject({
      method: 'POST',
      url: '/api/session',
      headers: { 'content-type': 'application/json' },
      payload: { consumerId: 'C2A', password: 'a-new-password-1' },
    });
    expect(relog.statusCode).toBe(200);
  });
});

describe('alerts and outbox', () => {
  it('lists with filters and cursor, marks read, scopes staff, operators see only their own', async () => {
    const keys = ['1:0', '2:0', '3:0'];
    await raiseAlerts(
      db.pool,
      keys.map((k) => ({
        meterId: w.h1A.meterId,
        type: 'credit_low' as const,
        dedupeKey: k,
        title: 'Credit low',
        message: `m ${k}`,
        figures: {},
      })),
    );
    await raiseAlerts(db.pool, [
      { meterId: w.h2B.meterId, type: 'tamper', dedupeKey: '1:0', title: 'T', message: 'other', figures: {} },
    ]);
    const p1 = body<{ items: { id: number; type: string }[]; nextCursor: string; unread: number }>(
      await app.inject(as(c.h1A, { method: 'GET', url: '/api/alerts?type=credit_low&limit=2' })),
    );
    expect(p1.items.map((i) => i.type)).toEqual(['credit_low', 'credit_low']);
    expect(p1.nextCursor).toEqual(expect.any(String));
    const p2 = body<{ items: { id: number }[]; nextCursor: string | null }>(
      await app.inject(
        as(c.h1A, { method: 'GET', url: `/api/alerts?type=credit_low&limit=2&cursor=${p1.nextCursor}` }),
      ),
    );
    expect(p2.items).toHaveLength(1);
    expect(p2.nextCursor).toBeNull();
    const id = p1.items[0]!.id;
    expect((await json(c.h2A, 'POST', `/api/alerts/${id}/read`)).statusCode).toBe(404);
    expect((await json(c.sup1, 'POST', `/api/alerts/${id}/read`)).statusCode).toBe(403);
    expect((await json(c.h1A, 'POST', `/api/alerts/${id}/read`)).statusCode).toBe(204);
    const read = body<{ items: { id: number; readAt: string }[]; unread: number }>(
      await app.inject(as(c.h1A, { method: 'GET', url: '/api/alerts?status=read' })),
    );
    expect(read.items.map((i) => i.id)).toEqual([id]);
    expect(read.items[0]!.readAt).toMatch(/Z$/);
    expect(read.unread).toBe(p1.unread - 1);
    expect((await json(c.h1A, 'POST', '/api/alerts/read-all')).statusCode).toBe(204);
    expect(
      body<{ unread: number }>(await app.inject(as(c.h1A, { method: 'GET', url: '/api/alerts' }))).unread,
    ).toBe(0);
    // Date filters (local days) and validation.
    const t = today();
    expect(
      body<{ items: unknown[] }>(
        await app.inject(as(c.h1A, { method: 'GET', url: `/api/alerts?from=${t}&to=${t}` })),
      ).items.length,
    ).toBeGreaterThan(0);
    expect(
      body<{ items: unknown[] }>(
        await app.inject(as(c.h1A, { method: 'GET', url: '/api/alerts?to=2020-01-01' })),
      ).items,
    ).toEqual([]);
    expect((await app.inject(as(c.h1A, { method: 'GET', url: '/api/alerts?type=bogus' }))).statusCode).toBe(
      400,
    );
    expect((await app.inject(as(c.h1A, { method: 'GET', url: '/api/alerts?cursor=!!' }))).statusCode).toBe(
      400,
    );
    // Staff: their supplier's meters only; operators: the alerts addressed to them, no household's.
    const s1 = body<{ items: { meterSerial: string }[] }>(
      await app.inject(as(c.sup1, { method: 'GET', url: '/api/alerts' })),
    );
    expect(new Set(s1.items.map((i) => i.meterSerial))).toEqual(new Set(['KW1A']));
    const s2 = body<{ items: { meterSerial: string }[] }>(
      await app.inject(as(c.sup2, { method: 'GET', url: '/api/alerts' })),
    );
    expect(s2.items.map((i) => i.meterSerial)).toEqual(['KW2B']);
    const opAlert = await tx(db.pool, (q) =>
      raiseOperatorAlerts(q, [
        {
          operatorId: w.opA,
          type: 'incident_opened',
          dedupeKey: 'incident:test',
          title: 'Outage on A-F1',
          message: 'Three meters lost power',
          figures: {},
        },
      ]),
    );
    expect(opAlert).toHaveLength(1);
    // Raising it again is a no-op (one alert per crossing).
    expect(
      await tx(db.pool, (q) =>
        raiseOperatorAlerts(q, [
          {
            operatorId: w.opA,
            type: 'incident_opened',
            dedupeKey: 'incident:test',
            title: 'x',
            message: 'x',
            figures: {},
          },
        ]),
      ),
    ).toEqual([]);
    const oa = body<{ items: { id: number; type: string; meterSerial: string | null }[] }>(
      await app.inject(as(c.opA, { method: 'GET', url: '/api/alerts' })),
    );
    expect(oa.items.map((i) => [i.id, i.type, i.meterSerial])).toEqual([
      [opAlert[0], 'incident_opened', null],
    ]);
    expect(
      body<{ items: unknown[] }>(await app.inject(as(c.opB, { method: 'GET', url: '/api/alerts' }))).items,
    ).toEqual([]);
    // Suppliers and households never see an operator's alert.
    const s1again = body<{ items: { id: number }[] }>(
      await app.inject(as(c.sup1, { method: 'GET', url: '/api/alerts' })),
    );
    expect(s1again.items.map((i) => i.id)).not.toContain(opAlert[0]);
    // The operator's staff get it by email.
    const d = await db.pool.query<{ recipient: string; channel: string }>(
      'SELECT recipient, channel FROM deliveries WHERE alert_id = $1',
      [opAlert[0]],
    );
    expect(d.rows).toEqual([{ recipient: 'staff@opa.test', channel: 'email' }]);
  });

  it("outbox: supplier staff see their meters' messages, admins all, consumers 403", async () => {
    const a1 = (
      await db.pool.query<{ id: number }>('SELECT id FROM alerts WHERE meter_id = $1 LIMIT 1', [
        w.h1A.meterId,
      ])
    ).rows[0]!.id;
    const a2 = (
      await db.pool.query<{ id: number }>('SELECT id FROM alerts WHERE meter_id = $1 LIMIT 1', [
        w.h2B.meterId,
      ])
    ).rows[0]!.id;
    await db.pool.query(
      `INSERT INTO outbox (channel, recipient, subject, body, alert_id) VALUES
        ('email', 'a@x.test', 'S1', 'B1', $1), ('sms', '+447700900001', NULL, 'B2', $1), ('email', 'b@x.test', 'S3', 'B3', $2)`,
      [a1, a2],
    );
    const s1 = body<{
      items: { recipient: string; alertId: number; subject: string | null; createdAt: string }[];
      nextCursor: null;
    }>(await app.inject(as(c.sup1, { method: 'GET', url: '/api/outbox' })));
    expect(s1.items.map((i) => i.recipient)).toEqual(['+447700900001', 'a@x.test']);
    expect(s1.items[0]).toMatchObject({ channel: 'sms', subject: null, body: 'B2', alertId: a1 });
    const sms = body<{ items: unknown[] }>(
      await app.inject(as(c.sup1, { method: 'GET', url: '/api/outbox?channel=email' })),
    );
    expect(sms.items).toHaveLength(1);
    const adm = body<{ items: unknown[]; nextCursor: string }>(
      await app.inject(as(c.admin, { method: 'GET', url: '/api/outbox?limit=2' })),
    );
    expect(adm.items).toHaveLength(2);
    expect(adm.nextCursor).toEqual(expect.any(String));
    expect((await app.inject(as(c.h1A, { method: 'GET', url: '/api/outbox' }))).statusCode).toBe(403);
    expect((await app.inject(as(c.opA, { method: 'GET', url: '/api/outbox' }))).statusCode).toBe(403);
  });

  it('the OpenAPI document lists the new routes', async () => {
    const doc = body<{ paths: Record<string, unknown> }>(
      await app.inject({ method: 'GET', url: '/docs/json' }),
    );
    for (const p of [
      '/api/home',
      '/api/meters/{serial}/limits',
      '/api/me/profile',
      '/api/me/password',
      '/api/alerts',
      '/api/alerts/{id}/read',
      '/api/alerts/read-all',
      '/api/outbox',
    ]) {
      expect(doc.paths[p], p).toBeDefined();
    }
  });
});
