import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createTestDb, type TestDb } from './support/db.ts';
import {
  buildWorld,
  login,
  loginBody,
  nextIp,
  PASSWORD,
  sessionCookie,
  testApi,
  type World,
} from './support/api.ts';
import { tokenHash } from '../src/auth/sessions.ts';
import { FREE_FAILURES, SOURCE_FAILURES } from '../src/auth/throttle.ts';

let db: TestDb;
let app: FastifyInstance;
let w: World;

beforeAll(async () => {
  db = await createTestDb();
  w = await buildWorld(db.pool);
  app = await testApi(db.pool, { config: { sessionTtlHours: 8 } });
});
afterAll(async () => {
  await app?.close();
  await db?.drop();
});

const JSON_CT = { 'content-type': 'application/json' };

function attempt(body: Record<string, string>, opts: { ip?: string; cookie?: string } = {}) {
  return app.inject({
    method: 'POST',
    url: '/api/session',
    remoteAddress: opts.ip ?? nextIp(),
    headers: { ...JSON_CT, ...(opts.cookie ? { cookie: opts.cookie } : {}) },
    payload: body,
  });
}

const me = (cookie: string) => app.inject({ method: 'GET', url: '/api/me', headers: { cookie } });

describe('login', () => {
  test('consumer signs in with consumer ID; /api/me shows profile and accounts', async () => {
    const res = await attempt(loginBody('C1A'));
    expect(res.statusCode).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ user: { id: w.h1A.userId, role: 'consumer' } });
    const cookie = sessionCookie(res)!;
    const r = await me(cookie);
    expect(r.statusCode).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({
      user: { role: 'consumer', consumerId: 'C1A' },
      organisation: null,
      consumer: {
        id: w.h1A.consumerId,
        supplier: { id: w.sup1 },
        accounts: [{ id: w.h1A.accountId, mode: 'credit', billingCycleDay: 7, meters: ['KW1A'] }],
      },
    });
  });

  test('staff sign in with email (any case); /api/me shows the organisation', async () => {
    const res = await attempt({ email: 'Staff@SUP1.test', password: PASSWORD });
    expect(res.statusCode).toBe(200);
    const r = await me(sessionCookie(res)!);
    expect(JSON.parse(r.body)).toMatchObject({
      user: { role: 'supplier', email: 'staff@sup1.test' },
      organisation: { id: w.sup1, kind: 'supplier' },
      consumer: null,
    });
  });

  test('a consumer ID is not a staff email and vice versa', async () => {
    expect((await attempt({ email: 'C1A', password: PASSWORD })).statusCode).toBe(401);
    expect((await attempt({ consumerId: 'staff@sup1.test', password: PASSWORD })).statusCode).toBe(401);
  });

  test('session cookie: HttpOnly, SameSite=Lax, Path=/, Max-Age = TTL, 32-byte token, only its hash stored', async () => {
    const res = await attempt(loginBody('C1B'));
    const raw = ([] as string[])
      .concat(res.headers['set-cookie'] as string | string[])
      .find((c) => c.startsWith('kw_session='))!;
    expect(raw).toMatch(/;\s*HttpOnly/i);
    expect(raw).toMatch(/;\s*SameSite=Lax/i);
    expect(raw).toMatch(/;\s*Path=\/(;|$)/);
    expect(raw).toMatch(/;\s*Max-Age=28800/);
    expect(raw).not.toMatch(/;\s*Secure/i);
    const token = raw.split(';')[0]!.slice('kw_session='.length);
    expect(Buffer.from(token, 'base64url')).toHaveLength(32);
    const stored = await db.pool.query<{ id: string }>('SELECT id FROM sessions WHERE id = $1 OR id = $2', [
      token,
      tokenHash(token),
    ]);
    expect(stored.rows.map((r) => r.id)).toEqual([tokenHash(token)]);
  });

  test('Secure flag when config.cookieSecure', async () => {
    const secureApp = await testApi(db.pool, { config: { cookieSecure: true } });
    try {
      const res = await secureApp.inject({
        method: 'POST',
        url: '/api/session',
        headers: JSON_CT,
        payload: loginBody('C1B'),
      });
      expect(String(res.headers['set-cookie'])).toMatch(/;\s*Secure/i);
    } finally {
      await secureApp.close();
    }
  });

  test('unknown ID, wrong password and disabled user: identical 401 INVALID_CREDENTIALS', async () => {
    const unknown = await attempt({ consumerId: 'NO-SUCH-ID', password: PASSWORD });
    const wrong = await attempt({ consumerId: 'C2A', password: 'not the password' });
    await db.pool.query("UPDATE users SET disabled = true WHERE login_id = 'C2B'");
    const disabled = await attempt(loginBody('C2B'));
    const unknownStaff = await attempt({ email: 'nobody@sup1.test', password: PASSWORD });
    const wrongStaff = await attempt({ email: 'staff@sup2.test', password: 'nope' });
    for (const r of [unknown, wrong, disabled, unknownStaff, wrongStaff]) {
      expect(r.statusCode).toBe(401);
      expect(r.body).toBe(unknown.body);
      expect(r.headers['set-cookie']).toBeUndefined();
    }
    expect(JSON.parse(unknown.body)).toEqual({
      error: { code: 'INVALID_CREDENTIALS', message: expect.any(String) as string },
    });
  });

  test('unknown ID costs a password verification too (timing)', async () => {
    const time = async (body: Record<string, string>) => {
      const t0 = performance.now();
      await attempt(body);
      return performance.now() - t0;
    };
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const unknown: number[] = [];
    const wrong: number[] = [];
    for (let i = 0; i < 5; i++) {
      unknown.push(await time({ consumerId: `GHOST-${i}`, password: 'x' }));
      wrong.push(await time({ consumerId: 'C1B', password: `wrong-${i}` }));
    }
    // argon2id dominates both; without the dummy verification the unknown path would be ~10x faster.
    expect(median(unknown)).toBeGreaterThan(median(wrong) * 0.5);
  });

  test('failed and successful logins are audited, without passwords', async () => {
    await attempt({ consumerId: 'C1A', password: 'secret-wrong-password' }, { ip: '192.0.2.7' });
    await login(app, 'C1A');
    const { rows } = await db.pool.query<{
      action: string;
      actor_id: number | null;
      target: string;
      detail: unknown;
      ip: string;
    }>(
      "SELECT action, actor_id, target, detail, ip FROM audit_log WHERE action LIKE 'session.%' ORDER BY id",
    );
    const failed = rows.find((r) => r.action === 'session.login_failed' && r.ip === '192.0.2.7');
    expect(failed).toMatchObject({
      actor_id: w.h1A.userId,
      target: 'C1A',
      detail: { kind: 'consumer', reason: 'password' },
    });
    expect(rows.some((r) => r.action === 'session.login' && r.actor_id === w.h1A.userId)).toBe(true);
    expect(JSON.stringify(rows)).not.toContain('secret-wrong-password');
    expect(JSON.stringify(rows)).not.toContain(PASSWORD);
  });

  test('invalid login bodies -> 400 VALIDATION naming the field', async () => {
    const r1 = await attempt({ consumerId: 'C1A' });
    expect(r1.statusCode).toBe(400);
    expect(JSON.parse(r1.body)).toMatchObject({
      error: { code: 'VALIDATION', issues: [{ path: 'body.password' }] },
    });
    const r2 = await attempt({ consumerId: 'C1A', email: 'staff@sup1.test', password: PASSWORD });
    expect(JSON.parse(r2.body)).toMatchObject({
      error: { code: 'VALIDATION', issues: [{ path: 'body.consumerId' }] },
    });
  });

  test('a cross-site form post cannot sign in (CSRF rule: JSON only) -> 415', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/session',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: `consumerId=C1A&password=${encodeURIComponent(PASSWORD)}`,
    });
    expect(res.statusCode).toBe(415);
    expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'UNSUPPORTED_MEDIA_TYPE' } });
  });
});

describe('sessions', () => {
  test('rotation: a login carrying an old session revokes it', async () => {
    const first = await login(app, 'C1A');
    expect((await me(first)).statusCode).toBe(200);
    const second = await login(app, 'C1A', { cookie: first });
    expect(second).not.toBe(first);
    expect((await me(first)).statusCode).toBe(401);
    expect((await me(second)).statusCode).toBe(200);
  });

  test('logout revokes the session and clears the cookie; audited', async () => {
    const cookie = await login(app, 'staff@opa.test');
    const res = await app.inject({ method: 'DELETE', url: '/api/session', headers: { ...JSON_CT, cookie } });
    expect(res.statusCode).toBe(204);
    expect(String(res.headers['set-cookie'])).toMatch(/kw_session=;.*(Max-Age=0|Expires=Thu, 01 Jan 1970)/i);
    const r = await me(cookie);
    expect(r.statusCode).toBe(401);
    expect(JSON.parse(r.body)).toMatchObject({ error: { code: 'UNAUTHENTICATED' } });
    const token = cookie.slice('kw_session='.length);
    const row = await db.pool.query<{ revoked_at: Date | null }>(
      'SELECT revoked_at FROM sessions WHERE id = $1',
      [tokenHash(token)],
    );
    expect(row.rows[0]?.revoked_at).toBeInstanceOf(Date);
    const audit = await db.pool.query("SELECT 1 FROM audit_log WHERE action = 'session.logout'");
    expect(audit.rowCount).toBeGreaterThan(0);
  });

  test('logout without content-type: application/json is refused (CSRF) and the session lives on', async () => {
    const cookie = await login(app, 'staff@opb.test');
    const res = await app.inject({
      method: 'DELETE',
      url: '/api/session',
      headers: { cookie, 'content-type': 'text/plain' },
    });
    expect(res.statusCode).toBe(415);
    expect((await me(cookie)).statusCode).toBe(200);
  });

  test('an expired session is rejected', async () => {
    const cookie = await login(app, 'staff@sup2.test');
    const token = cookie.slice('kw_session='.length);
    await db.pool.query("UPDATE sessions SET expires_at = now() - interval '1 second' WHERE id = $1", [
      tokenHash(token),
    ]);
    const r = await me(cookie);
    expect(r.statusCode).toBe(401);
    expect(JSON.parse(r.body)).toMatchObject({ error: { code: 'UNAUTHENTICATED' } });
  });

  test('a disabled user loses their live sessions', async () => {
    const cookie = await login(app, 'C1B');
    await db.pool.query("UPDATE users SET disabled = true WHERE login_id = 'C1B'");
    try {
      expect((await me(cookie)).statusCode).toBe(401);
    } finally {
      await db.pool.query("UPDATE users SET disabled = false WHERE login_id = 'C1B'");
    }
  });
});

describe('login throttling (in PostgreSQL: every API process agrees)', () => {
  test('the guesser is slowed down, the owner signing in from elsewhere is not, unknown IDs look the same', async () => {
    const guesser = '203.0.113.7';
    for (let i = 0; i < FREE_FAILURES; i++) {
      expect((await attempt({ consumerId: 'C2A', password: `guess-${i}` }, { ip: guesser })).statusCode).toBe(
        401,
      );
    }
    // One more failure starts the backoff for this (account, address)...
    expect((await attempt({ consumerId: 'C2A', password: 'guess-x' }, { ip: guesser })).statusCode).toBe(401);
    const blocked = await attempt(loginBody('C2A'), { ip: guesser });
    expect(blocked.statusCode).toBe(429);
    expect(JSON.parse(blocked.body)).toMatchObject({ error: { code: 'RATE_LIMITED' } });
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    // ...while the household itself, from its own address, signs in at once.
    expect((await attempt(loginBody('C2A'), { ip: '198.51.100.20' })).statusCode).toBe(200);
    // An unknown consumer ID is throttled exactly like a real one (no account enumeration).
    for (let i = 0; i <= FREE_FAILURES; i++)
      await attempt({ consumerId: 'NOSUCH', password: 'x' }, { ip: guesser });
    const unknown = await attempt({ consumerId: 'NOSUCH', password: 'x' }, { ip: guesser });
    expect(unknown.statusCode).toBe(429);
    expect(JSON.parse(unknown.body)).toEqual(JSON.parse(blocked.body));
  });

  test('the backoff holds across API processes; after the wait, the right password clears it', async () => {
    const ip = '203.0.113.8';
    for (let i = 0; i <= FREE_FAILURES; i++) await attempt({ consumerId: 'C1B', password: `g${i}` }, { ip });
    // A second API process on the same database refuses too.
    const other = await testApi(db.pool);
    try {
      const r = await other.inject({
        method: 'POST',
        url: '/api/session',
        remoteAddress: ip,
        headers: JSON_CT,
        payload: loginBody('C1B'),
      });
      expect(r.statusCode).toBe(429);
    } finally {
      await other.close();
    }
    // Once the wait is over, the right password from that address works and clears the count.
    await db.pool.query(
      "UPDATE login_throttle SET blocked_until = now() - interval '1 second' WHERE key LIKE 'a:c:c1b|%'",
    );
    expect((await attempt(loginBody('C1B'), { ip })).statusCode).toBe(200);
    expect(
      (await db.pool.query("SELECT 1 FROM login_throttle WHERE key = 'a:c:c1b|203.0.113.8'")).rowCount,
    ).toBe(0);
  });

  test('per address: spraying many identifiers from one address is stopped', async () => {
    const ip = '198.51.100.9';
    let limited = 0;
    for (let i = 0; i < SOURCE_FAILURES + 5; i++) {
      const r = await attempt({ consumerId: `SPRAY-${i}`, password: 'x' }, { ip });
      if (r.statusCode === 429) limited++;
      else expect(r.statusCode).toBe(401);
    }
    expect(limited).toBe(5);
    // Another address is unaffected.
    expect((await attempt(loginBody('C1A'), { ip: '198.51.100.10' })).statusCode).toBe(200);
  });
});
