import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import Stripe from 'stripe';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, defaultPaymentsConfig, loadConfig } from '../src/config.ts';
import { as, buildWorld, login, testApi, type World } from './support/api.ts';
import { createTestDb, type TestDb } from './support/db.ts';

/**
 * The Stripe provider through the official library, against a local HTTP server standing in
 * for api.stripe.com (there is no internet here): it checks each request as Stripe would see
 * it (secret key, Idempotency-Key, amount, currency, metadata) and answers as Stripe does,
 * replaying the first answer for a repeated key. Webhooks are verified by the library with the
 * configured endpoint secret, signed here by the library's own test helper.
 */
const SECRET_KEY = 'sk_test_kilowire123';
const WEBHOOK_SECRET = 'whsec_kilowire_test_endpoint_secret';

interface Seen {
  method: string;
  path: string;
  key: string | undefined;
  auth: string | undefined;
  form: URLSearchParams;
}

let db: TestDb;
let app: FastifyInstance;
let w: World;
let stripeApi: Server;
let cookie: string;
const seen: Seen[] = [];
const replays = new Map<string, string>();
let down = false;

function body(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let s = '';
    req.on('data', (d: Buffer) => (s += d.toString()));
    req.on('end', () => resolve(s));
  });
}

beforeAll(async () => {
  stripeApi = createServer((req, res) => {
    void body(req).then((raw) => {
      const s: Seen = {
        method: req.method!,
        path: req.url!,
        key: req.headers['idempotency-key'] as string | undefined,
        auth: req.headers.authorization,
        form: new URLSearchParams(raw),
      };
      seen.push(s);
      res.setHeader('content-type', 'application/json');
      res.setHeader('request-id', `req_${seen.length}`);
      if (down) {
        res.statusCode = 500;
        res.end(JSON.stringify({ error: { type: 'api_error', message: 'down for the test' } }));
        return;
      }
      const replay = s.key ? replays.get(s.key) : undefined;
      if (replay) {
        res.setHeader('idempotent-replayed', 'true');
        res.end(replay);
        return;
      }
      let out: Record<string, unknown>;
      if (s.path === '/v1/checkout/sessions') {
        const id = `cs_test_${seen.length}`;
        out = {
          id,
          object: 'checkout.session',
          url: `https://checkout.stripe.com/c/pay/${id}`,
          client_reference_id: s.form.get('client_reference_id'),
          amount_total: Number(s.form.get('line_items[0][price_data][unit_amount]')),
          currency: s.form.get('line_items[0][price_data][currency]'),
          payment_status: 'unpaid',
        };
      } else if (s.path === '/v1/refunds') {
        out = {
          id: `re_${seen.length}`,
          object: 'refund',
          amount: Number(s.form.get('amount')),
          status: 'succeeded',
        };
      } else {
        res.statusCode = 404;
        out = { error: { type: 'invalid_request_error', message: 'unknown path' } };
      }
      const text = JSON.stringify(out);
      if (s.key) replays.set(s.key, text);
      res.end(text);
    });
  });
  await new Promise<void>((r) => stripeApi.listen(0, '127.0.0.1', r));
  const port = (stripeApi.address() as AddressInfo).port;

  db = await createTestDb();
  w = await buildWorld(db.pool);
  app = await testApi(db.pool, {
    config: {
      payments: defaultPaymentsConfig({
        stripeSecretKey: SECRET_KEY,
        stripeWebhookSecret: WEBHOOK_SECRET,
        stripeApiUrl: `http://127.0.0.1:${port}`,
        publicUrl: 'https://portal.example.test',
      }),
    },
  });
  cookie = await login(app, w.login.h1B);
});
afterAll(async () => {
  await app?.close();
  await db?.drop();
  await new Promise<void>((r) => stripeApi?.close(() => r()));
});

const start = (key: string, amountMinor = 1500) =>
  app.inject(
    as(cookie, {
      method: 'POST',
      url: '/api/top-ups',
      headers: { 'content-type': 'application/json', 'idempotency-key': key },
      payload: { meterSerial: w.h1B.meterSerial, amountMinor },
    }),
  );

function webhook(event: Record<string, unknown>, timestamp?: number) {
  const payload = JSON.stringify(event);
  const header = Stripe.webhooks.generateTestHeaderString({
    payload,
    secret: WEBHOOK_SECRET,
    ...(timestamp !== undefined ? { timestamp } : {}),
  });
  return app.inject({
    method: 'POST',
    url: '/api/payments/webhook',
    headers: { 'content-type': 'application/json; charset=utf-8', 'stripe-signature': header },
    payload,
  });
}

describe('Stripe provider', () => {
  let topupId = '';

  it('creates one Checkout Session per top-up, with an idempotency key, amount, currency and metadata', async () => {
    const key = randomUUID();
    const res = await Promise.all(Array.from({ length: 5 }, () => start(key)));
    const bodies = res.map((r) => JSON.parse(r.body) as { id: string; paymentUrl: string; provider: string });
    expect(new Set(bodies.map((b) => b.id)).size).toBe(1);
    topupId = bodies[0]!.id;
    expect(new Set(bodies.map((b) => b.paymentUrl))).toEqual(
      new Set(['https://checkout.stripe.com/c/pay/cs_test_1']),
    );
    expect(bodies[0]!.provider).toBe('stripe');
    const creates = seen.filter((s) => s.path === '/v1/checkout/sessions');
    expect(creates.length).toBeGreaterThanOrEqual(1);
    for (const s of creates) {
      expect(s.method).toBe('POST');
      expect(s.auth).toBe(`Bearer ${SECRET_KEY}`);
      expect(s.key).toBe(`kw-topup-${topupId}`);
      expect(s.form.get('mode')).toBe('payment');
      expect(s.form.get('line_items[0][price_data][unit_amount]')).toBe('1500');
      expect(s.form.get('line_items[0][price_data][currency]')).toBe('gbp');
      expect(s.form.get('client_reference_id')).toBe(topupId);
      expect(s.form.get('metadata[topupId]')).toBe(topupId);
      expect(s.form.get('payment_intent_data[metadata][topupId]')).toBe(topupId);
      expect(s.form.get('success_url')).toBe(`https://portal.example.test/top-ups/${topupId}`);
    }
  });

  it('a provider that does not answer gives 502 PROVIDER_ERROR; the same key later gets the page', async () => {
    const key = randomUUID();
    down = true;
    const fail = await start(key, 2000);
    down = false;
    expect(fail.statusCode).toBe(502);
    expect((JSON.parse(fail.body) as { error: { code: string } }).error.code).toBe('PROVIDER_ERROR');
    const ok = await start(key, 2000);
    expect(ok.statusCode).toBe(200);
    expect((JSON.parse(ok.body) as { paymentUrl: string }).paymentUrl).toMatch(
      /^https:\/\/checkout\.stripe\.com\//,
    );
  });

  it('webhooks: verified with the endpoint secret and the timestamp tolerance', async () => {
    const ev = {
      id: 'evt_stripe_1',
      object: 'event',
      created: Math.floor(Date.now() / 1000),
      type: 'checkout.session.completed',
      data: {
        object: {
          id: 'cs_test_1',
          object: 'checkout.session',
          client_reference_id: topupId,
          metadata: { topupId },
          payment_status: 'paid',
          payment_intent: 'pi_test_1',
          amount_total: 1500,
        },
      },
    };
    const stale = await webhook(ev, Math.floor(Date.now() / 1000) - 600);
    expect(stale.statusCode).toBe(400);
    expect(stale.body).toContain('BAD_SIGNATURE');
    const ok = await webhook(ev);
    expect(ok.statusCode).toBe(200);
    const t = await db.pool.query<{ status: string; payment_ref: string }>(
      'SELECT status, payment_ref FROM topups WHERE id = $1',
      [topupId],
    );
    expect(t.rows[0]).toEqual({ status: 'paid', payment_ref: 'pi_test_1' });
  });

  it('refunds go to Stripe with the payment, the amount and an idempotency key', async () => {
    const staff = await login(app, w.login.sup1);
    const res = await app.inject(
      as(staff, {
        method: 'POST',
        url: `/api/top-ups/${topupId}/refund`,
        headers: { 'content-type': 'application/json' },
        payload: { amountMinor: 500 },
      }),
    );
    expect(res.statusCode, res.body).toBe(202);
    const r = seen.filter((s) => s.path === '/v1/refunds');
    expect(r).toHaveLength(1);
    expect(r[0]!.form.get('payment_intent')).toBe('pi_test_1');
    expect(r[0]!.form.get('amount')).toBe('500');
    expect(r[0]!.key).toBe(`kw-refund-${topupId}-500`);
    // Booked when Stripe's charge.refunded arrives, not before.
    const t = await db.pool.query<{ status: string }>('SELECT status FROM topups WHERE id = $1', [topupId]);
    expect(t.rows[0]!.status).toBe('paid');
    await webhook({
      id: 'evt_stripe_2',
      object: 'event',
      created: Math.floor(Date.now() / 1000),
      type: 'charge.refunded',
      data: {
        object: {
          id: 'ch_1',
          object: 'charge',
          amount: 1500,
          amount_refunded: 500,
          payment_intent: 'pi_test_1',
          metadata: { topupId },
        },
      },
    });
    const after = await db.pool.query<{ status: string; refunded_minor: number }>(
      'SELECT status, refunded_minor FROM topups WHERE id = $1',
      [topupId],
    );
    expect(after.rows[0]).toEqual({ status: 'refunded', refunded_minor: 500 });
  });

  it('the sandbox card page does not exist when Stripe is the provider', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/payments/sandbox/cs_sandbox_abcdefghij' });
    expect(res.statusCode).toBe(404);
  });
});

describe('payment configuration', () => {
  const dir = () => mkdtempSync(path.join(os.tmpdir(), 'kw-paycfg-'));
  const problems = (env: Record<string, string>): string[] => {
    try {
      loadConfig({ DATA_DIR: dir(), ...env }, []);
      return [];
    } catch (err) {
      if (err instanceof ConfigError) return err.problems;
      throw err;
    }
  };

  it('Stripe needs both secrets and PUBLIC_URL; limits must be in order', () => {
    expect(problems({ STRIPE_SECRET_KEY: SECRET_KEY }).join('\n')).toMatch(
      /set both to take payments through Stripe, or neither/,
    );
    expect(
      problems({ STRIPE_SECRET_KEY: SECRET_KEY, STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET }).join('\n'),
    ).toMatch(/PUBLIC_URL: required with Stripe/);
    expect(problems({ STRIPE_SECRET_KEY: 'pk_test_public', STRIPE_WEBHOOK_SECRET: 'nope' })).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^STRIPE_SECRET_KEY: /),
        expect.stringMatching(/^STRIPE_WEBHOOK_SECRET: /),
      ]),
    );
    expect(problems({ TOPUP_MIN_MINOR: '3000', TOPUP_MAX_MINOR: '2000' }).join('\n')).toMatch(
      /TOPUP_MIN_MINOR: must not exceed TOPUP_MAX_MINOR/,
    );
  });

  it('defaults: the sandbox, £5 to £250, £500 a day, webhooks to this API', () => {
    const c = loadConfig({ DATA_DIR: dir(), PORT: '8123', HOST: '0.0.0.0' }, []);
    expect(c.payments).toMatchObject({
      stripeSecretKey: undefined,
      minMinor: 500,
      maxMinor: 25_000,
      dailyMaxMinor: 50_000,
      toleranceS: 300,
      sandboxWebhookUrl: 'http://127.0.0.1:8123/api/payments/webhook',
    });
    const s = loadConfig(
      {
        DATA_DIR: dir(),
        STRIPE_SECRET_KEY: SECRET_KEY,
        STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
        PUBLIC_URL: 'https://portal.example.test/',
      },
      [],
    );
    expect(s.payments).toMatchObject({
      stripeSecretKey: SECRET_KEY,
      publicUrl: 'https://portal.example.test',
    });
  });
});
