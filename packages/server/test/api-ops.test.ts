import { afterAll, beforeAll, expect, test } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createPool } from '../src/db/pool.ts';
import { createTestDb, type TestDb } from './support/db.ts';
import { as, buildWorld, login, testApi } from './support/api.ts';
import { registeredRoutes } from '../src/api/app.ts';

let db: TestDb;
let app: FastifyInstance;

beforeAll(async () => {
  db = await createTestDb();
  await buildWorld(db.pool);
  app = await testApi(db.pool);
});
afterAll(async () => {
  await app?.close();
  await db?.drop();
});

interface OpenApi {
  openapi: string;
  info: { title: string };
  paths: Record<
    string,
    Record<string, { parameters?: { name: string; in: string }[]; responses: Record<string, unknown> }>
  >;
}

test('/docs/json is an OpenAPI 3 document with every API route, its parameters and responses', async () => {
  const res = await app.inject({ method: 'GET', url: '/docs/json' });
  expect(res.statusCode).toBe(200);
  const doc = JSON.parse(res.body) as OpenApi;
  expect(doc.openapi).toMatch(/^3\./);
  expect(doc.info.title).toBe('Kilowire API');
  // '/*' serves the portal's static files, not an API operation, so it is hidden from the document.
  const routes = registeredRoutes(app).filter((r) => !r.url.startsWith('/docs') && r.url !== '/*');
  expect(routes.length).toBeGreaterThan(10);
  for (const r of routes) {
    const path = r.url.replace(/:(\w+)/g, '{$1}');
    const op = doc.paths[path]?.[r.method.toLowerCase()];
    expect(op, `${r.method} ${path}`).toBeDefined();
    expect(Object.keys(op!.responses).length, `${r.method} ${path} responses`).toBeGreaterThan(0);
  }
  const daily = doc.paths['/api/meters/{serial}/daily']!.get!;
  expect(daily.parameters!.map((p) => `${p.in}:${p.name}`).sort()).toEqual([
    'path:serial',
    'query:from',
    'query:to',
  ]);
  expect(daily.responses['200']).toBeDefined();
  expect(daily.responses['404']).toBeDefined();
  const ui = await app.inject({ method: 'GET', url: '/docs/' });
  expect(ui.statusCode).toBe(200);
  expect(ui.headers['content-type']).toMatch(/text\/html/);
});

test('/metrics is Prometheus text with kilowire_ metrics, including HTTP request durations by route', async () => {
  const cookie = await login(app, 'C1A');
  await app.inject(as(cookie, { method: 'GET', url: '/api/meters/KW1A' }));
  const res = await app.inject({ method: 'GET', url: '/metrics' });
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-type']).toMatch(/^text\/plain/);
  expect(res.body).toContain('kilowire_process_cpu_seconds_total');
  expect(res.body).toMatch(
    /kilowire_http_request_duration_seconds_count\{[^}]*route="\/api\/meters\/:serial"[^}]*\} \d+/,
  );
  // Raw URLs (serials) never become label values.
  expect(res.body).not.toContain('KW1A');
});

test('/healthz 200; /readyz 200 when the database answers', async () => {
  expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  const ready = await app.inject({ method: 'GET', url: '/readyz' });
  expect(ready.statusCode).toBe(200);
  expect(JSON.parse(ready.body)).toMatchObject({ status: 'ok', db: true, mqtt: true });
});

test('/readyz 503 when the broker connection is down', async () => {
  const down = await testApi(db.pool, { ready: () => ({ mqtt: false }) });
  try {
    const res = await down.inject({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(503);
    expect(JSON.parse(res.body)).toMatchObject({ status: 'unavailable', db: true, mqtt: false });
  } finally {
    await down.close();
  }
});

test('database down: /readyz 503 within a second, API 503 UNAVAILABLE without internals, /healthz still 200', async () => {
  const deadPool = createPool('postgres://nobody:secret-pw@127.0.0.1:1/nowhere', 1);
  const dead = await testApi(deadPool);
  try {
    expect((await dead.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    expect((await dead.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(503);
    const res = await dead.inject({ method: 'GET', url: '/api/me', headers: { cookie: 'kw_session=abc' } });
    expect(res.statusCode).toBe(503);
    expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'UNAVAILABLE' } });
    expect(res.headers['retry-after']).toBe('2');
    expect(res.body).not.toMatch(/ECONNREFUSED|secret-pw|127\.0\.0\.1|stack/);
  } finally {
    await dead.close();
    await deadPool.end();
  }
});

test('unknown routes -> 404 NOT_FOUND', async () => {
  const res = await app.inject({ method: 'GET', url: '/api/nope' });
  expect(res.statusCode).toBe(404);
  expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'NOT_FOUND' } });
});

test('serves the portal shell with security headers, deep links, and never files outside the build', async () => {
  const home = await app.inject({ method: 'GET', url: '/' });
  expect(home.statusCode).toBe(200);
  expect(home.headers['content-type']).toMatch(/text\/html/);
  expect(home.body).toContain('<div id="root">');
  expect(home.headers['content-security-policy']).toContain("script-src 'self'");
  expect(home.headers['x-frame-options']).toBe('DENY');
  const deep = await app.inject({ method: 'GET', url: '/statistics?view=day' });
  expect(deep.statusCode).toBe(200);
  expect(deep.body).toBe(home.body);
  const asset = /src="(\/assets\/[^"]+\.js)"/.exec(home.body)?.[1];
  expect(asset).toBeDefined();
  const js = await app.inject({ method: 'GET', url: asset! });
  expect(js.statusCode).toBe(200);
  expect(js.headers['cache-control']).toContain('immutable');
  for (const url of [
    '/..%2f..%2f..%2fpackage.json',
    '/assets/..%2f..%2fpackage.json',
    '/.vite/manifest.json',
  ]) {
    const r = await app.inject({ method: 'GET', url });
    expect(r.body).not.toContain('"workspaces"');
    expect(r.body).not.toContain('"file"');
  }
  const api404 = await app.inject({ method: 'GET', url: '/api/no-such-thing' });
  expect(api404.statusCode).toBe(404);
  expect(api404.json()).toEqual({ error: { code: 'NOT_FOUND', message: 'no such route' } });
});
