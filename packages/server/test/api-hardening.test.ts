import http from 'node:http';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { freePort } from '../src/net.ts';
import { startMetricsServer } from '../src/api/metrics-server.ts';
import { createTestDb, type TestDb } from './support/db.ts';
import { as, buildWorld, login, testApi } from './support/api.ts';

/**
 * What an outside probe found, each now a test: input that used to give 500s, CSRF resting
 * on the content type alone, missing response headers, an open /metrics, a cookie that was
 * not Secure behind HTTPS, and an OpenAPI document that did not say what is public.
 */
let db: TestDb;
let app: FastifyInstance;
let consumer: string;
const JSON_CT = { 'content-type': 'application/json' };

beforeAll(async () => {
  db = await createTestDb();
  await buildWorld(db.pool);
  app = await testApi(db.pool);
  consumer = await login(app, 'C1A');
});
afterAll(async () => {
  await app?.close();
  await db?.drop();
});

describe('input that used to reach PostgreSQL and fail with 500 gets 400 with a stable code', () => {
  test.each([
    ['NUL in the consumer ID', { consumerId: 'C1\u0000A', password: 'x' }, 'body.consumerId'],
    ['NUL in the password', { consumerId: 'C1A', password: 'a\u0000b' }, 'body.password'],
    ['NUL in the email', { email: 'a\u0000@x.test', password: 'x' }, 'body.email'],
  ])('%s', async (_name, payload, path) => {
    const r = await app.inject({ method: 'POST', url: '/api/session', headers: JSON_CT, payload });
    expect(r.statusCode).toBe(400);
    expect(r.json()).toMatchObject({ error: { code: 'VALIDATION', issues: [{ path }] } });
  });

  test.each([
    ['NUL in a cursor', `/api/alerts?cursor=${encodeURIComponent('\u0000')}`],
    ['NUL in a meter cursor', `/api/meters?cursor=${encodeURIComponent('A\u0000')}`],
    ['year 0000', `/api/meters/${'KW1A'}/daily?from=0000-01-01&to=0000-01-31`],
    ['year 9999 in a day view', `/api/meters/KW1A/intervals?date=9999-12-31`],
    ['a month in year 0', `/api/meters/KW1A/monthly?from=0000-01&to=0000-02`],
    ['an instant before 2000', `/api/meters/KW1A/events?from=1899-01-01T00:00:00Z`],
    ['alerts from year 0', `/api/alerts?from=0000-01-01`],
    ['NUL in a serial', `/api/meters/${encodeURIComponent('KW\u00001A')}`],
  ])('%s', async (_name, url) => {
    const r = await app.inject(as(consumer, { method: 'GET', url }));
    expect(r.statusCode, r.body).toBe(400);
    expect(r.json()).toMatchObject({ error: { code: 'VALIDATION' } });
  });

  test('a path parameter longer than any serial gets 414 URI_TOO_LONG', async () => {
    const r = await app.inject(as(consumer, { method: 'GET', url: `/api/meters/${'A'.repeat(500)}` }));
    expect(r.statusCode).toBe(414);
    expect(r.json()).toMatchObject({ error: { code: 'URI_TOO_LONG' } });
  });
});

describe('CSRF: state-changing requests must come from this origin', () => {
  const put = (headers: Record<string, string>) =>
    app.inject(
      as(consumer, {
        method: 'PUT',
        url: '/api/meters/KW1A/limits',
        headers: { ...JSON_CT, host: 'kilowire.test', ...headers },
        payload: { dailyLimitWh: 9000, hourlyLimitWh: null },
      }),
    );

  test('a foreign Origin is refused with 403 FOREIGN_ORIGIN and changes nothing', async () => {
    const r = await put({ origin: 'https://evil.example' });
    expect(r.statusCode).toBe(403);
    expect(r.json()).toMatchObject({ error: { code: 'FOREIGN_ORIGIN' } });
    expect((await db.pool.query('SELECT 1 FROM meter_limits WHERE daily_limit_wh = 9000')).rowCount).toBe(0);
  });

  test('Origin "null" (sandboxed frames, data: URLs) is refused', async () => {
    expect((await put({ origin: 'null' })).statusCode).toBe(403);
  });

  test('Sec-Fetch-Site cross-site or same-site without an Origin is refused', async () => {
    expect((await put({ 'sec-fetch-site': 'cross-site' })).statusCode).toBe(403);
    expect((await put({ 'sec-fetch-site': 'same-site' })).statusCode).toBe(403);
  });

  test('the same origin, and clients that send neither header (curl), pass', async () => {
    expect((await put({ origin: 'http://kilowire.test', 'sec-fetch-site': 'same-origin' })).statusCode).toBe(
      200,
    );
    expect((await put({})).statusCode).toBe(200);
  });

  test('a configured extra origin passes; a text/plain body is still 415', async () => {
    const other = await testApi(db.pool, { config: { allowedOrigins: ['https://portal.example.com'] } });
    try {
      const ok = await other.inject(
        as(consumer, {
          method: 'PUT',
          url: '/api/meters/KW1A/limits',
          headers: { ...JSON_CT, origin: 'https://portal.example.com' },
          payload: { dailyLimitWh: 8000, hourlyLimitWh: null },
        }),
      );
      expect(ok.statusCode).toBe(200);
    } finally {
      await other.close();
    }
    const plain = await app.inject(
      as(consumer, {
        method: 'PUT',
        url: '/api/meters/KW1A/limits',
        headers: { 'content-type': 'text/plain' },
        payload: '{"dailyLimitWh":1,"hourlyLimitWh":null}',
      }),
    );
    expect(plain.statusCode).toBe(415);
  });
});

describe('response hardening', () => {
  test('API answers are never cached or sniffed, signed in or not', async () => {
    for (const r of [
      await app.inject(as(consumer, { method: 'GET', url: '/api/me' })),
      await app.inject({ method: 'GET', url: '/api/me' }),
      await app.inject({ method: 'GET', url: '/api/session' }),
    ]) {
      expect(r.headers['cache-control']).toBe('no-store');
      expect(r.headers['x-content-type-options']).toBe('nosniff');
    }
  });

  test('/docs has a content security policy and cannot be framed', async () => {
    const r = await app.inject({ method: 'GET', url: '/docs/' });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(r.headers['content-security-policy']).toContain('script-src');
    expect(r.headers['x-frame-options']).toBe('DENY');
    expect(r.headers['x-content-type-options']).toBe('nosniff');
  });

  test('GET /api/session tells a browser whether it is signed in without a 401', async () => {
    expect((await app.inject({ method: 'GET', url: '/api/session' })).json()).toEqual({ signedIn: false });
    const r = (await app.inject(as(consumer, { method: 'GET', url: '/api/session' }))).json<{
      signedIn: boolean;
      user: { role: string };
    }>();
    expect(r).toMatchObject({ signedIn: true, user: { role: 'consumer' } });
  });

  test('with METRICS_TOKEN, /metrics needs the bearer token', async () => {
    const locked = await testApi(db.pool, {
      config: { metrics: { token: 'a-long-metrics-token-123', port: undefined, host: '127.0.0.1' } },
    });
    try {
      expect((await locked.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(401);
      const bad = await locked.inject({
        method: 'GET',
        url: '/metrics',
        headers: { authorization: 'Bearer wrong' },
      });
      expect(bad.statusCode).toBe(401);
      const ok = await locked.inject({
        method: 'GET',
        url: '/metrics',
        headers: { authorization: 'Bearer a-long-metrics-token-123' },
      });
      expect(ok.statusCode).toBe(200);
      expect(ok.body).toContain('kilowire_');
    } finally {
      await locked.close();
    }
  });

  test('with METRICS_PORT, /metrics is served there and not on the public port', async () => {
    const port = await freePort();
    const pub = await testApi(db.pool, {
      config: { metrics: { token: undefined, port, host: '127.0.0.1' } },
    });
    const close = await startMetricsServer(port, '127.0.0.1', undefined);
    try {
      expect((await pub.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(404);
      const body = await new Promise<string>((resolve, reject) => {
        http
          .get(`http://127.0.0.1:${port}/metrics`, (res) => {
            let s = '';
            res.on('data', (d: Buffer) => (s += d.toString()));
            res.on('end', () => resolve(`${res.statusCode} ${s}`));
          })
          .on('error', reject);
      });
      expect(body).toMatch(/^200 /);
      expect(body).toContain('kilowire_');
    } finally {
      await close();
      await pub.close();
    }
  });

  test('the session cookie is Secure when the request came over HTTPS through a trusted proxy', async () => {
    const proxied = await testApi(db.pool, { config: { trustProxy: true } });
    try {
      const r = await proxied.inject({
        method: 'POST',
        url: '/api/session',
        headers: { ...JSON_CT, 'x-forwarded-proto': 'https', 'x-forwarded-for': '203.0.113.50' },
        payload: { consumerId: 'C1B', password: 'correct horse battery staple' },
      });
      expect(r.statusCode).toBe(200);
      expect(String(r.headers['set-cookie'])).toMatch(/; Secure/);
      const audit = await db.pool.query<{ ip: string }>(
        "SELECT ip FROM audit_log WHERE action = 'session.login' ORDER BY id DESC LIMIT 1",
      );
      expect(audit.rows[0]?.ip).toBe('203.0.113.50');
    } finally {
      await proxied.close();
    }
    // Without a trusted proxy the header is ignored: plain HTTP, no Secure flag.
    const r = await app.inject({
      method: 'POST',
      url: '/api/session',
      headers: { ...JSON_CT, 'x-forwarded-proto': 'https' },
      payload: { consumerId: 'C1B', password: 'correct horse battery staple' },
    });
    expect(String(r.headers['set-cookie'])).not.toMatch(/Secure/);
  });
});

describe('the OpenAPI document says what is public, what is required and what can go wrong', () => {
  interface Op {
    security?: unknown[];
    requestBody?: { required?: boolean };
    responses: Record<string, unknown>;
  }
  let paths: Record<string, Record<string, Op>>;
  beforeAll(async () => {
    paths = (await app.inject({ method: 'GET', url: '/docs/json' })).json<{
      paths: Record<string, Record<string, Op>>;
    }>().paths;
  });

  test('sign-in, session state, health and readiness need no session; the rest do', () => {
    for (const [p, m] of [
      ['/api/session', 'post'],
      ['/api/session', 'get'],
      ['/healthz', 'get'],
      ['/readyz', 'get'],
    ] as const) {
      expect(paths[p]![m]!.security, `${m} ${p}`).toEqual([]);
    }
    expect(paths['/api/me']!.get!.security).toBeUndefined(); // inherits the global session requirement
  });

  test('bodies are declared required, with 413 and 415 documented; 414 everywhere', () => {
    for (const [p, ops] of Object.entries(paths)) {
      for (const [m, op] of Object.entries(ops)) {
        if (p.startsWith('/api/')) expect(op.responses['414'], `${m} ${p} 414`).toBeDefined();
        if (!op.requestBody) continue;
        expect(op.requestBody.required, `${m} ${p} body required`).toBe(true);
        expect(op.responses['413'], `${m} ${p} 413`).toBeDefined();
        expect(op.responses['415'], `${m} ${p} 415`).toBeDefined();
      }
    }
    expect(paths['/api/meters/{serial}/limits']!.put!.requestBody).toBeDefined();
  });
});
