import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { FastifyInstance, InjectOptions } from 'fastify';
import type {
  AuditList,
  MeterExchanged,
  MeterIssued,
  Organisation,
  StaffUserIssued,
  StaffUserList,
  SystemHealth,
} from '@kilowire/contract';
import { startEmbeddedBroker, type EmbeddedBroker } from '../src/broker/embedded.ts';
import { credentialHash } from '../src/accounts/repo.ts';
import { Gateway } from '../src/gateway/gateway.ts';
import { logger } from '../src/log.ts';
import { freePort } from '../src/net.ts';
import { createTestDb, type TestDb } from './support/db.ts';
import { as, buildWorld, login, nextIp, sessionCookie, testApi, type World } from './support/api.ts';
import { HEADEND } from './support/brokers.ts';
import { RawMeter, readingsMsg, waitFor } from './support/world.ts';

/**
 * The administrator's platform against a real database, the real embedded broker (with its
 * credential LISTEN) and the real gateway: organisations, staff users and their scope,
 * invitations, initial passwords, meter provisioning through to stored readings, the audit
 * log and the health figures.
 */
let db: TestDb;
let app: FastifyInstance;
let w: World;
let broker: EmbeddedBroker;
let gw: Gateway;
let brokerUrl: string;
const c: Record<keyof World['login'], string> = {} as Record<keyof World['login'], string>;

beforeAll(async () => {
  db = await createTestDb();
  w = await buildWorld(db.pool);
  app = await testApi(db.pool);
  for (const [name, id] of Object.entries(w.login) as [keyof World['login'], string][]) {
    c[name] = await login(app, id);
  }
  const port = await freePort();
  broker = await startEmbeddedBroker({
    port,
    pool: db.pool,
    headendUsername: HEADEND.username,
    headendPassword: HEADEND.password,
    log: logger('test-broker'),
    databaseUrl: db.url,
  });
  brokerUrl = `mqtt://127.0.0.1:${port}`;
  gw = new Gateway({
    pool: db.pool,
    log: logger('test-gateway'),
    mqttUrl: brokerUrl,
    username: HEADEND.username,
    password: HEADEND.password,
    clientId: `kw-admin-test-${process.pid}`,
    flushMs: 2,
  });
  await gw.start();
  await waitFor(() => broker.listening(), 10_000, 'broker LISTEN');
});

afterAll(async () => {
  await gw?.stop();
  await broker?.close();
  await app?.close();
  await db?.drop();
});

const JSON_HEADERS = { 'content-type': 'application/json' };
function req(cookie: string | undefined, method: InjectOptions['method'], url: string, payload?: unknown) {
  return app.inject(
    as(cookie, {
      method,
      url,
      ...(method === 'GET' ? {} : { headers: JSON_HEADERS }),
      ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
    }),
  );
}
const body = <T>(res: { body: string }) => JSON.parse(res.body) as T;
const code = (res: { body: string }) => body<{ error: { code: string } }>(res).error.code;

async function loginWith(email: string, password: string) {
  return app.inject({
    method: 'POST',
    url: '/api/session',
    remoteAddress: nextIp(),
    headers: JSON_HEADERS,
    payload: { email, password },
  });
}

/** Whether the broker accepts a meter connection with this credential. */
async function canConnect(serial: string, password: string): Promise<boolean> {
  try {
    const m = await RawMeter.connect(brokerUrl, serial, password);
    await m.close();
    return true;
  } catch {
    return false;
  }
}

/**
 * A changed credential reaches the broker by NOTIFY, delivered just after the change commits:
 * the old one must stop working within moments (not within the cache's minute), so wait a
 * little for it rather than racing the notification.
 */
async function refusedSoon(serial: string, password: string): Promise<boolean> {
  await waitFor(
    async () => !(await canConnect(serial, password)),
    5_000,
    `${serial}'s old credential refused`,
  );
  return true;
}

describe('organisations', () => {
  test('only administrators list, create, rename and add areas', async () => {
    for (const who of [c.sup1, c.agent1, c.opA, c.h1A]) {
      const list = await req(who, 'GET', '/api/admin/organisations');
      expect(list.statusCode).toBe(403);
      const create = await req(who, 'POST', '/api/admin/organisations', {
        kind: 'supplier',
        slug: 'sneaky',
        name: 'Sneaky',
      });
      expect(create.statusCode).toBe(403);
    }
    expect((await db.pool.query(`SELECT 1 FROM organisations WHERE slug = 'sneaky'`)).rowCount).toBe(0);

    const created = await req(c.admin, 'POST', '/api/admin/organisations', {
      kind: 'network_operator',
      slug: 'gridco',
      name: 'GridCo',
    });
    expect(created.statusCode).toBe(201);
    const org = body<Organisation>(created);
    expect(org).toMatchObject({
      kind: 'network_operator',
      slug: 'gridco',
      name: 'GridCo',
      staffCount: 0,
      areas: [],
    });
    const dup = await req(c.admin, 'POST', '/api/admin/organisations', {
      kind: 'supplier',
      slug: 'gridco',
      name: 'Another',
    });
    expect(dup.statusCode).toBe(409);

    const renamed = await req(c.admin, 'PATCH', `/api/admin/organisations/${org.id}`, {
      name: 'GridCo Networks',
    });
    expect(body<Organisation>(renamed).name).toBe('GridCo Networks');
    const area = await req(c.admin, 'POST', `/api/admin/organisations/${org.id}/areas`, {
      id: 'G1',
      name: 'Gridland',
      feeders: [
        { id: 'G1-F1', name: 'North' },
        { id: 'G1-F2', name: 'South' },
      ],
    });
    expect(area.statusCode).toBe(201);
    expect(body<Organisation>(area).areas).toEqual([
      {
        id: 'G1',
        name: 'Gridland',
        feeders: [
          { id: 'G1-F1', name: 'North' },
          { id: 'G1-F2', name: 'South' },
        ],
      },
    ]);
    // Areas are a network operator's; a supplier has none.
    const onSupplier = await req(c.admin, 'POST', `/api/admin/organisations/${w.sup1}/areas`, {
      id: 'S1X',
      name: 'Nope',
      feeders: [],
    });
    expect(onSupplier.statusCode).toBe(409);
    const again = await req(c.admin, 'POST', `/api/admin/organisations/${org.id}/areas`, {
      id: 'G1',
      name: 'Again',
      feeders: [],
    });
    expect(again.statusCode).toBe(409);
    const list = body<{ items: Organisation[] }>(await req(c.admin, 'GET', '/api/admin/organisations'));
    expect(list.items.find((o) => o.id === w.sup1)).toMatchObject({
      kind: 'supplier',
      staffCount: 2,
      meterCount: 2,
    });
  });
});

describe('staff users', () => {
  test('supplier admins see and manage only their own organisation; agents, operators and households nothing', async () => {
    const mine = body<StaffUserList>(await req(c.sup1, 'GET', '/api/staff-users'));
    expect(mine.items.map((u) => u.email).sort()).toEqual(['agent@sup1.test', 'staff@sup1.test']);
    const all = body<StaffUserList>(await req(c.admin, 'GET', '/api/staff-users?limit=200'));
    expect(all.items.map((u) => u.email)).toEqual(
      expect.arrayContaining(['staff@sup2.test', 'staff@opa.test', 'admin@kilowire.test']),
    );
    expect(all.items.every((u) => u.role !== ('consumer' as string))).toBe(true);
    for (const who of [c.agent1, c.opA, c.h1A]) {
      expect((await req(who, 'GET', '/api/staff-users')).statusCode).toBe(403);
      const r = await req(who, 'POST', '/api/staff-users', {
        email: 'x@sup1.test',
        name: 'X',
        access: { method: 'invite' },
      });
      expect(r.statusCode).toBe(403);
    }

    // A supplier admin creates their own staff only, and never a platform administrator.
    const made = await req(c.sup1, 'POST', '/api/staff-users', {
      email: 'New.Agent@Sup1.test',
      name: 'New Agent',
      staffRole: 'agent',
      access: { method: 'invite' },
    });
    expect(made.statusCode).toBe(201);
    const issued = body<StaffUserIssued>(made);
    expect(issued.user).toMatchObject({
      email: 'new.agent@sup1.test',
      role: 'supplier',
      staffRole: 'agent',
      status: 'invited',
      organisation: { id: w.sup1 },
    });
    expect(made.headers['cache-control']).toBe('no-store');
    expect(issued.invitePath).toMatch(/^\/invite\/[A-Za-z0-9_-]{43}$/);
    const platform = await req(c.sup1, 'POST', '/api/staff-users', {
      email: 'boss@sup1.test',
      name: 'Boss',
      platformAdmin: true,
      access: { method: 'invite' },
    });
    expect(platform.statusCode).toBe(403);
    const other = await req(c.sup1, 'POST', '/api/staff-users', {
      email: 'spy@sup2.test',
      name: 'Spy',
      orgId: w.sup2,
      access: { method: 'invite' },
    });
    expect(other.statusCode).toBe(404);
    const dup = await req(c.admin, 'POST', '/api/staff-users', {
      email: 'new.agent@sup1.test',
      name: 'Dup',
      orgId: w.sup1,
      access: { method: 'invite' },
    });
    expect(dup.statusCode).toBe(409);

    // Another supplier's admin: the user does not exist for them.
    const id = issued.user.id;
    for (const path of ['disable', 'enable', 'reset']) {
      const r = await req(
        c.sup2,
        'POST',
        `/api/staff-users/${id}/${path}`,
        path === 'reset' ? { method: 'invite' } : undefined,
      );
      expect(r.statusCode, path).toBe(404);
    }
    expect((await req(c.sup2, 'PATCH', `/api/staff-users/${id}`, { staffRole: 'admin' })).statusCode).toBe(
      404,
    );
    const adminId = (
      await db.pool.query<{ id: number }>(`SELECT id FROM users WHERE email = 'admin@kilowire.test'`)
    ).rows[0]!.id;
    expect((await req(c.sup1, 'POST', `/api/staff-users/${adminId}/disable`)).statusCode).toBe(404);
    const still = await db.pool.query<{ disabled: boolean }>('SELECT disabled FROM users WHERE id = $1', [
      id,
    ]);
    expect(still.rows[0]!.disabled).toBe(false);

    // The role follows the organisation's kind.
    const op = await req(c.admin, 'POST', '/api/staff-users', {
      email: 'field@opa.test',
      name: 'Field Engineer',
      orgId: w.opA,
      access: { method: 'invite' },
    });
    expect(body<StaffUserIssued>(op).user).toMatchObject({ role: 'operator', staffRole: 'agent' });
    const pa = await req(c.admin, 'POST', '/api/staff-users', {
      email: 'second-admin@kilowire.test',
      name: 'Second Admin',
      platformAdmin: true,
      access: { method: 'invite' },
    });
    expect(body<StaffUserIssued>(pa).user).toMatchObject({
      role: 'admin',
      staffRole: null,
      organisation: null,
    });
  });

  test('nobody disables, resets or demotes themselves', async () => {
    const me = (await db.pool.query<{ id: number }>(`SELECT id FROM users WHERE email = 'staff@sup1.test'`))
      .rows[0]!.id;
    expect(code(await req(c.sup1, 'POST', `/api/staff-users/${me}/disable`))).toBe('FORBIDDEN');
    expect(code(await req(c.sup1, 'POST', `/api/staff-users/${me}/reset`, { method: 'invite' }))).toBe(
      'FORBIDDEN',
    );
    expect(code(await req(c.sup1, 'PATCH', `/api/staff-users/${me}`, { staffRole: 'agent' }))).toBe(
      'FORBIDDEN',
    );
    const row = await db.pool.query('SELECT disabled, staff_role FROM users WHERE id = $1', [me]);
    expect(row.rows[0]).toEqual({ disabled: false, staff_role: 'admin' });
    // ...but promotes another.
    const agent = (
      await db.pool.query<{ id: number }>(`SELECT id FROM users WHERE email = 'agent@sup1.test'`)
    ).rows[0]!.id;
    const promoted = await req(c.sup1, 'PATCH', `/api/staff-users/${agent}`, { staffRole: 'admin' });
    expect(promoted.statusCode).toBe(200);
    await req(c.sup1, 'PATCH', `/api/staff-users/${agent}`, { staffRole: 'agent' });
  });

  test('disabling ends every session at once; enabling does not bring them back', async () => {
    const made = body<StaffUserIssued>(
      await req(c.sup1, 'POST', '/api/staff-users', {
        email: 'leaver@sup1.test',
        name: 'Leaver',
        access: { method: 'password', password: 'initial-pass-123' },
      }),
    );
    const s = sessionCookie(await loginWith('leaver@sup1.test', 'initial-pass-123'))!;
    expect(
      (
        await req(s, 'POST', '/api/me/password', {
          currentPassword: 'initial-pass-123',
          newPassword: 'my-own-pass-456',
        })
      ).statusCode,
    ).toBe(204);
    expect((await req(s, 'GET', '/api/alerts')).statusCode).toBe(200);
    const d = await req(c.sup1, 'POST', `/api/staff-users/${made.user.id}/disable`);
    expect(body<StaffUserIssued['user']>(d).status).toBe('disabled');
    expect((await req(s, 'GET', '/api/alerts')).statusCode).toBe(401);
    expect((await loginWith('leaver@sup1.test', 'my-own-pass-456')).statusCode).toBe(401);
    await req(c.sup1, 'POST', `/api/staff-users/${made.user.id}/enable`);
    expect((await req(s, 'GET', '/api/alerts')).statusCode).toBe(401);
    expect((await loginWith('leaver@sup1.test', 'my-own-pass-456')).statusCode).toBe(200);
    // A reset to an invite ends sessions and the old password with them.
    const s2 = sessionCookie(await loginWith('leaver@sup1.test', 'my-own-pass-456'))!;
    const reset = body<StaffUserIssued>(
      await req(c.sup1, 'POST', `/api/staff-users/${made.user.id}/reset`, { method: 'invite' }),
    );
    expect(reset.invitePath).toMatch(/^\/invite\//);
    expect(reset.user.status).toBe('invited');
    expect((await req(s2, 'GET', '/api/alerts')).statusCode).toBe(401);
    expect((await loginWith('leaver@sup1.test', 'my-own-pass-456')).statusCode).toBe(401);
  });
});

describe('invitations', () => {
  async function invite(email: string): Promise<{ token: string; id: number }> {
    const r = body<StaffUserIssued>(
      await req(c.admin, 'POST', '/api/staff-users', {
        email,
        name: 'Invited Person',
        orgId: w.sup2,
        access: { method: 'invite' },
      }),
    );
    return { token: r.invitePath!.split('/').pop()!, id: r.user.id };
  }

  test('shows who it is for, sets the password once, and is then gone', async () => {
    const { token } = await invite('invited@sup2.test');
    // The token is stored only as its hash.
    const stored = await db.pool.query<{ token_hash: string }>(
      'SELECT token_hash FROM staff_invites i JOIN users u ON u.id = i.user_id WHERE u.email = $1',
      ['invited@sup2.test'],
    );
    expect(stored.rows[0]!.token_hash).not.toContain(token);
    expect(JSON.stringify(await db.pool.query('SELECT * FROM audit_log'))).not.toContain(token);
    // Nobody can sign in before accepting, whatever they guess.
    expect((await loginWith('invited@sup2.test', '!invited')).statusCode).toBe(401);

    const info = await app.inject({ method: 'GET', url: `/api/invites/${token}` });
    expect(info.statusCode).toBe(200);
    expect(body<Record<string, unknown>>(info)).toMatchObject({
      email: 'invited@sup2.test',
      name: 'Invited Person',
      organisation: 'Supplier Two',
    });
    const short = await app.inject({
      method: 'POST',
      url: `/api/invites/${token}`,
      headers: JSON_HEADERS,
      payload: { password: 'short' },
    });
    expect(short.statusCode).toBe(400);
    const ok = await app.inject({
      method: 'POST',
      url: `/api/invites/${token}`,
      headers: JSON_HEADERS,
      payload: { password: 'a password of my own' },
    });
    expect(ok.statusCode).toBe(204);
    const signedIn = await loginWith('invited@sup2.test', 'a password of my own');
    expect(signedIn.statusCode).toBe(200);
    // The audit row names the person who accepted (nobody was signed in).
    const accepted = await db.pool.query<{ actor_id: number; target: string }>(
      `SELECT actor_id, target FROM audit_log WHERE action = 'staff.invite_accepted'`,
    );
    const newId = body<{ user: { id: number } }>(signedIn).user.id;
    expect(accepted.rows).toEqual([{ actor_id: newId, target: `user:${newId}` }]);
    expect(body<{ user: { mustChangePassword: boolean } }>(signedIn).user.mustChangePassword).toBe(false);

    const used = await app.inject({ method: 'GET', url: `/api/invites/${token}` });
    const unknown = await app.inject({ method: 'GET', url: `/api/invites/${'x'.repeat(43)}` });
    expect(used.statusCode).toBe(404);
    expect(unknown.statusCode).toBe(404);
    expect(used.body).toBe(unknown.body);
    const twice = await app.inject({
      method: 'POST',
      url: `/api/invites/${token}`,
      headers: JSON_HEADERS,
      payload: { password: 'someone elses password' },
    });
    expect(twice.statusCode).toBe(404);
    expect((await loginWith('invited@sup2.test', 'someone elses password')).statusCode).toBe(401);
  });

  test('an expired invitation answers exactly like an unknown one', async () => {
    const { token, id } = await invite('late@sup2.test');
    await db.pool.query(
      `UPDATE staff_invites SET expires_at = now() - interval '1 second' WHERE user_id = $1`,
      [id],
    );
    const get = await app.inject({ method: 'GET', url: `/api/invites/${token}` });
    const unknown = await app.inject({ method: 'GET', url: `/api/invites/${'y'.repeat(43)}` });
    expect(get.statusCode).toBe(404);
    expect(get.body).toBe(unknown.body);
    const post = await app.inject({
      method: 'POST',
      url: `/api/invites/${token}`,
      headers: JSON_HEADERS,
      payload: { password: 'too late for this' },
    });
    expect(post.statusCode).toBe(404);
    expect((await loginWith('late@sup2.test', 'too late for this')).statusCode).toBe(401);
    // A new invite (reset) replaces it; the old link stays dead.
    const reset = body<StaffUserIssued>(
      await req(c.admin, 'POST', `/api/staff-users/${id}/reset`, { method: 'invite' }),
    );
    const fresh = reset.invitePath!.split('/').pop()!;
    expect(fresh).not.toBe(token);
    expect((await app.inject({ method: 'GET', url: `/api/invites/${fresh}` })).statusCode).toBe(200);
  });

  test('concurrent accepts: exactly one sets the password', async () => {
    const { token } = await invite('racer@sup2.test');
    const passwords = [
      'racer password one',
      'racer password two',
      'racer password three',
      'racer password four',
    ];
    const results = await Promise.all(
      passwords.map((password) =>
        app.inject({
          method: 'POST',
          url: `/api/invites/${token}`,
          headers: JSON_HEADERS,
          payload: { password },
        }),
      ),
    );
    expect(results.map((r) => r.statusCode).sort()).toEqual([204, 404, 404, 404]);
    const winner = passwords[results.findIndex((r) => r.statusCode === 204)]!;
    for (const p of passwords)
      expect((await loginWith('racer@sup2.test', p)).statusCode).toBe(p === winner ? 200 : 401);
    const audit = await db.pool.query(`SELECT 1 FROM audit_log WHERE action = 'staff.invite_accepted'`);
    expect(audit.rowCount).toBe(2); // this one and the first test's
  });
});

describe('an initial password must be changed first', () => {
  test('403 PASSWORD_CHANGE_REQUIRED on everything but session, me and the password change, until changed', async () => {
    await req(c.admin, 'POST', '/api/staff-users', {
      email: 'newboss@sup1.test',
      name: 'New Boss',
      orgId: w.sup1,
      staffRole: 'admin',
      access: { method: 'password', password: 'given-by-admin-1' },
    });
    const res = await loginWith('newboss@sup1.test', 'given-by-admin-1');
    expect(res.statusCode).toBe(200);
    expect(body<{ user: { mustChangePassword: boolean } }>(res).user.mustChangePassword).toBe(true);
    const s = sessionCookie(res)!;
    for (const url of ['/api/meters', '/api/staff-users', '/api/alerts', '/api/meters/KW1A']) {
      const r = await req(s, 'GET', url);
      expect(r.statusCode, url).toBe(403);
      expect(code(r)).toBe('PASSWORD_CHANGE_REQUIRED');
    }
    expect(code(await req(s, 'POST', `/api/meters/KW1A/commands`, { type: 'supply.off' }))).toBe(
      'PASSWORD_CHANGE_REQUIRED',
    );
    const me = await req(s, 'GET', '/api/me');
    expect(me.statusCode).toBe(200);
    expect(body<{ user: { mustChangePassword: boolean } }>(me).user.mustChangePassword).toBe(true);
    const state = await req(s, 'GET', '/api/session');
    expect(body<{ user: { mustChangePassword: boolean } }>(state).user.mustChangePassword).toBe(true);

    const change = await req(s, 'POST', '/api/me/password', {
      currentPassword: 'given-by-admin-1',
      newPassword: 'chosen-by-me-2',
    });
    expect(change.statusCode).toBe(204);
    expect((await req(s, 'GET', '/api/staff-users')).statusCode).toBe(200);
    expect(
      body<{ user: { mustChangePassword: boolean } }>(await req(s, 'GET', '/api/me')).user.mustChangePassword,
    ).toBe(false);
    expect((await loginWith('newboss@sup1.test', 'given-by-admin-1')).statusCode).toBe(401);
  });
});

describe('meter provisioning', () => {
  const now = Math.floor(Date.now() / 1000);
  const start = Math.floor(now / 1800) * 1800 - 4 * 1800;

  test('a registered meter connects with the credential shown once and its reading lands', async () => {
    for (const who of [c.sup1, c.agent1, c.opA, c.h1A]) {
      const r = await req(who, 'POST', '/api/admin/meters', {
        serial: 'SNEAK1',
        supplierId: w.sup1,
        areaId: 'A',
      });
      expect(r.statusCode).toBe(403);
    }
    // Tried before it exists: refused (and the refusal is cached by the broker).
    expect(await canConnect('NEW001', 'anything-at-all')).toBe(false);
    const res = await req(c.admin, 'POST', '/api/admin/meters', {
      serial: 'NEW001',
      hardwareClass: 'KW-3P-100A',
      tz: 'Europe/London',
      intervalS: 1800,
      areaId: 'A',
      feederId: 'A-F1',
      supplierId: w.sup1,
    });
    expect(res.statusCode).toBe(201);
    expect(res.headers['cache-control']).toBe('no-store');
    const issued = body<MeterIssued>(res);
    expect(issued.meter).toMatchObject({
      serial: 'NEW001',
      status: 'active',
      hardwareClass: 'KW-3P-100A',
      supplier: { id: w.sup1 },
      area: { id: 'A' },
      feederId: 'A-F1',
      accountId: null,
      lastSeenAt: null,
    });
    expect(issued.credential.length).toBeGreaterThanOrEqual(32);
    const row = await db.pool.query<{ credential_hash: string }>(
      `SELECT credential_hash FROM meters WHERE serial = 'NEW001'`,
    );
    expect(row.rows[0]!.credential_hash).toBe(credentialHash(issued.credential));
    // Never again: not in the list, not in the audit log.
    const list = await req(c.admin, 'GET', '/api/admin/meters?q=NEW');
    expect(list.body).not.toContain(issued.credential);
    expect(JSON.stringify((await db.pool.query('SELECT * FROM audit_log')).rows)).not.toContain(
      issued.credential,
    );
    expect(
      (await req(c.admin, 'POST', '/api/admin/meters', { serial: 'NEW001', supplierId: w.sup1, areaId: 'A' }))
        .statusCode,
    ).toBe(409);
    const badFeeder = await req(c.admin, 'POST', '/api/admin/meters', {
      serial: 'NEW002',
      supplierId: w.sup1,
      areaId: 'A',
      feederId: 'B-F1',
    });
    expect(code(badFeeder)).toBe('VALIDATION');
    const notSupplier = await req(c.admin, 'POST', '/api/admin/meters', {
      serial: 'NEW002',
      supplierId: w.opA,
      areaId: 'A',
    });
    expect(code(notSupplier)).toBe('VALIDATION');

    // The meter connects at once (no restart, no cache minute) and reports.
    const m = await RawMeter.connect(brokerUrl, 'NEW001', issued.credential);
    await m.readings(readingsMsg(1, start, [100, 200, 300], 5_000));
    await m.waitAck((a) => a.kind === 'ack' && a.stream === 'readings' && a.upTo >= 1);
    const stored = await db.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM interval_readings r JOIN meters x ON x.id = r.meter_id WHERE x.serial = 'NEW001'`,
    );
    expect(stored.rows[0]!.n).toBe(3);
    await m.close();
    const after = body<{ items: { serial: string; lastSeenAt: string | null }[] }>(
      await req(c.admin, 'GET', '/api/admin/meters?q=NEW001'),
    );
    expect(Date.parse(after.items[0]!.lastSeenAt!)).toBeGreaterThan(Date.now() - 60_000);
  });

  test('rotation: the new credential works, the old one is refused and its connection dropped', async () => {
    const first = body<MeterIssued>(
      await req(c.admin, 'POST', '/api/admin/meters', { serial: 'ROT001', supplierId: w.sup2, areaId: 'B' }),
    );
    const live = await RawMeter.connect(brokerUrl, 'ROT001', first.credential);
    const rotated = await req(c.admin, 'POST', '/api/admin/meters/ROT001/rotate-credential');
    expect(rotated.statusCode).toBe(200);
    const second = body<MeterIssued>(rotated);
    expect(second.credential).not.toBe(first.credential);
    await waitFor(() => !live.client.connected, 10_000, 'old connection dropped');
    await live.close();
    expect(await refusedSoon('ROT001', first.credential)).toBe(true);
    expect(await canConnect('ROT001', second.credential)).toBe(true);
    expect((await req(c.admin, 'POST', '/api/admin/meters/NOPE999/rotate-credential')).statusCode).toBe(404);
  });

  test('decommission: the meter can no longer connect; its readings stay', async () => {
    const issued = body<MeterIssued>(
      await req(c.admin, 'POST', '/api/admin/meters', { serial: 'DEC001', supplierId: w.sup1, areaId: 'A' }),
    );
    const m = await RawMeter.connect(brokerUrl, 'DEC001', issued.credential);
    await m.readings(readingsMsg(1, start, [50, 60], 1_000));
    await m.waitAck((a) => a.kind === 'ack' && a.stream === 'readings' && a.upTo >= 1);
    // A command still waiting for approval: nothing could ever deliver it now.
    const waiting = randomUUID();
    await db.pool.query(
      `INSERT INTO commands (id, meter_id, type, status, cmd)
       SELECT $1, id, 'supply.off', 'awaiting_approval', '{}' FROM meters WHERE serial = 'DEC001'`,
      [waiting],
    );
    const d = await req(c.admin, 'POST', '/api/admin/meters/DEC001/decommission');
    expect(d.statusCode).toBe(200);
    expect(body<MeterIssued['meter']>(d)).toMatchObject({
      status: 'decommissioned',
      decommissionedAt: expect.any(String) as string,
    });
    const cmd = await db.pool.query(
      `SELECT c.status, t.actor_id, t.detail, u.email FROM commands c
         JOIN command_transitions t ON t.command_id = c.id AND t.to_status = 'cancelled'
         JOIN users u ON u.id = t.actor_id WHERE c.id = $1`,
      [waiting],
    );
    expect(cmd.rows).toEqual([
      expect.objectContaining({
        status: 'cancelled',
        detail: 'meter decommissioned',
        email: 'admin@kilowire.test',
      }),
    ]);
    await waitFor(() => !m.client.connected, 10_000, 'decommissioned meter dropped');
    await m.close();
    expect(await refusedSoon('DEC001', issued.credential)).toBe(true);
    const kept = await db.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM interval_readings r JOIN meters x ON x.id = r.meter_id WHERE x.serial = 'DEC001'`,
    );
    expect(kept.rows[0]!.n).toBe(2);
    expect(code(await req(c.admin, 'POST', '/api/admin/meters/DEC001/decommission'))).toBe('CONFLICT');
    expect(code(await req(c.admin, 'POST', '/api/admin/meters/DEC001/rotate-credential'))).toBe('CONFLICT');
    const listed = body<{ items: { serial: string }[] }>(
      await req(c.admin, 'GET', '/api/admin/meters?status=decommissioned'),
    );
    expect(listed.items.map((x) => x.serial)).toContain('DEC001');
  });

  test('exchange: the new meter takes the account, the old one keeps its history for the household', async () => {
    const hh = w.h1B; // supplier 1, area B, prepayment
    const oldCred = hh.meterCredential;
    const old = await RawMeter.connect(brokerUrl, hh.meterSerial, oldCred);
    await old.readings(readingsMsg(1, start, [111, 222], 10_000));
    await old.waitAck((a) => a.kind === 'ack' && a.stream === 'readings' && a.upTo >= 1);
    await old.close();
    const res = await req(c.admin, 'POST', `/api/admin/meters/${hh.meterSerial}/exchange`, {
      newSerial: 'EXC001',
    });
    expect(res.statusCode).toBe(201);
    const x = body<MeterExchanged>(res);
    expect(x.old).toMatchObject({ serial: hh.meterSerial, status: 'decommissioned', replacedBy: 'EXC001' });
    expect(x.meter).toMatchObject({
      serial: 'EXC001',
      status: 'active',
      accountId: hh.accountId,
      area: { id: 'B' },
    });
    expect(await refusedSoon(hh.meterSerial, oldCred)).toBe(true);
    const fresh = await RawMeter.connect(brokerUrl, 'EXC001', x.credential);
    await fresh.readings(readingsMsg(1, start + 2 * 1800, [333], 10_333));
    await fresh.waitAck((a) => a.kind === 'ack' && a.stream === 'readings' && a.upTo >= 1);
    await fresh.close();

    // The household: its account lists both meters and the old meter's readings are still its own.
    const me = body<{ consumer: { accounts: { id: number; meters: string[] }[] } }>(
      await req(c.h1B, 'GET', '/api/me'),
    );
    expect(me.consumer.accounts.find((a) => a.id === hh.accountId)!.meters).toEqual(
      ['EXC001', hh.meterSerial].sort(),
    );
    const day = new Date(start * 1000).toISOString().slice(0, 10);
    const oldDaily = await req(c.h1B, 'GET', `/api/meters/${hh.meterSerial}/intervals?date=${day}`);
    expect(oldDaily.statusCode).toBe(200);
    expect(oldDaily.body).toContain('222');
    expect((await req(c.h1B, 'GET', `/api/meters/EXC001`)).statusCode).toBe(200);
    // Another household still sees neither.
    expect((await req(c.h2B, 'GET', `/api/meters/EXC001`)).statusCode).toBe(404);
    expect(
      code(
        await req(c.admin, 'POST', `/api/admin/meters/${hh.meterSerial}/exchange`, { newSerial: 'EXC002' }),
      ),
    ).toBe('CONFLICT');
  });
});

describe('audit log', () => {
  test('filters by actor, action prefix, target and time; pages newest first; exports the same as CSV', async () => {
    const adminId = (
      await db.pool.query<{ id: number }>(`SELECT id FROM users WHERE email = 'admin@kilowire.test'`)
    ).rows[0]!.id;
    for (const who of [c.sup1, c.agent1, c.opA, c.h1A]) {
      expect((await req(who, 'GET', '/api/audit')).statusCode).toBe(403);
      expect((await req(who, 'GET', '/api/audit/export.csv')).statusCode).toBe(403);
    }
    const meterActs = body<AuditList>(
      await req(c.admin, 'GET', `/api/audit?actor=${adminId}&action=meter.&limit=500`),
    );
    const expected = await db.pool.query<{ id: number }>(
      `SELECT id FROM audit_log WHERE actor_id = $1 AND action LIKE 'meter.%' ORDER BY at DESC, id DESC`,
      [adminId],
    );
    expect(meterActs.items.map((e) => e.id)).toEqual(expected.rows.map((r) => r.id));
    expect(meterActs.items.length).toBeGreaterThanOrEqual(6);
    expect(meterActs.items.every((e) => e.actor?.name === 'Admin')).toBe(true);
    const byName = body<AuditList>(
      await req(c.admin, 'GET', `/api/audit?actor=Admin&action=meter.&limit=500`),
    );
    expect(byName.items.map((e) => e.id)).toEqual(meterActs.items.map((e) => e.id));
    const target = body<AuditList>(await req(c.admin, 'GET', '/api/audit?target=DEC001'));
    expect(target.items.map((e) => e.action)).toEqual(['meter.decommission', 'meter.provision']);
    const exact = body<AuditList>(await req(c.admin, 'GET', '/api/audit?action=meter.provision&limit=500'));
    expect(exact.items.every((e) => e.action === 'meter.provision')).toBe(true);

    // Paging walks every row once, newest first.
    const seen: number[] = [];
    let cursor: string | null = null;
    do {
      const page: AuditList = body<AuditList>(
        await req(c.admin, 'GET', `/api/audit?limit=7${cursor ? `&cursor=${cursor}` : ''}`),
      );
      seen.push(...page.items.map((e) => e.id));
      cursor = page.nextCursor;
    } while (cursor);
    const all = await db.pool.query<{ id: number }>('SELECT id FROM audit_log ORDER BY at DESC, id DESC');
    expect(seen).toEqual(all.rows.map((r) => r.id));

    // A time window: nothing before the first row, everything from it.
    const first = all.rows[all.rows.length - 1]!.id;
    const at = (await db.pool.query<{ at: Date }>('SELECT at FROM audit_log WHERE id = $1', [first])).rows[0]!
      .at;
    const before = body<AuditList>(
      await req(c.admin, 'GET', `/api/audit?to=${encodeURIComponent(at.toISOString())}`),
    );
    expect(before.items).toEqual([]);
    const bad = await req(c.admin, 'GET', '/api/audit?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z');
    expect(bad.statusCode).toBe(400);

    const csv = await req(c.admin, 'GET', `/api/audit/export.csv?actor=${adminId}&action=meter.`);
    expect(csv.statusCode).toBe(200);
    expect(csv.headers['content-type']).toMatch(/^text\/csv/);
    const lines = csv.body.trimEnd().split('\r\n');
    expect(lines[0]).toBe('id,at,actor_id,actor,action,target,ip,detail');
    expect(lines.slice(1).map((l) => Number(l.split(',')[0]))).toEqual(meterActs.items.map((e) => e.id));
    // The export is itself in the log.
    const exported = body<AuditList>(await req(c.admin, 'GET', '/api/audit?action=audit.export'));
    expect(exported.items.length).toBe(1);
  });

  test('a value a spreadsheet would run is exported inert', async () => {
    await db.pool.query(
      `INSERT INTO audit_log (action, target) VALUES ('test.csv', '=HYPERLINK("http://evil")')`,
    );
    const csv = await req(c.admin, 'GET', '/api/audit/export.csv?action=test.csv');
    expect(csv.body.split('\r\n')[1]).toContain(`"'=HYPERLINK(""http://evil"")"`);
  });
});

describe('system health', () => {
  test('only administrators; the figures are what this test created', async () => {
    for (const who of [c.sup1, c.agent1, c.opA, c.h1A]) {
      expect((await req(who, 'GET', '/api/admin/health')).statusCode).toBe(403);
    }
    const h0 = body<SystemHealth>(await req(c.admin, 'GET', '/api/admin/health'));
    // Readings stored in this test file: 3 (NEW001) + 2 (DEC001) + 2 (h1B) + 1 (EXC001), all within minutes.
    expect(h0.ingest.perMinute15).toBe(Math.round((8 / 15) * 10) / 10);
    expect(h0.ingest.perMinute5).toBe(Math.round((8 / 5) * 10) / 10);
    // Active meters: the world's 4 - h1B's exchanged one + NEW001, ROT001, EXC001; three reported recently.
    expect(h0.meters).toEqual({ connected: 2, total: 6 });

    const meterId = w.h2A.meterId;
    await db.pool.query(
      `INSERT INTO commands (id, meter_id, type, status, cmd) VALUES
         ($1, $4, 'supply.off', 'awaiting_approval', '{}'), ($2, $4, 'supply.off', 'awaiting_approval', '{}'),
         ($3, $4, 'supply.on', 'requested', '{}')`,
      [randomUUID(), randomUUID(), randomUUID(), meterId],
    );
    await db.pool.query(
      `INSERT INTO domain_events (type, payload, created_at) VALUES
         ('limits.changed', '{}', now() - interval '120 seconds'), ('limits.changed', '{}', now())`,
    );
    const alert = await db.pool.query<{ id: number }>(
      `INSERT INTO alerts (consumer_id, supplier_id, meter_id, type, severity, title, message, dedupe_key)
       VALUES ($1, $2, $3, 'credit_low', 'warning', 'Low', 'Low', 'health') RETURNING id`,
      [w.h2A.consumerId, w.sup2, meterId],
    );
    await db.pool.query(
      `INSERT INTO deliveries (alert_id, channel, recipient, audience, status, attempts) VALUES
         ($1, 'email', 'a@x.test', 'consumer', 'failed', 5), ($1, 'sms', '+447700900001', 'consumer', 'pending', 2),
         ($1, 'email', 'b@x.test', 'consumer', 'pending', 0)`,
      [alert.rows[0]!.id],
    );
    const h1 = body<SystemHealth>(await req(c.admin, 'GET', '/api/admin/health'));
    expect(h1.commands.awaitingApproval - h0.commands.awaitingApproval).toBe(2);
    expect(h1.commands.queued).toBe(h0.commands.queued);
    expect(h1.events.undispatched - h0.events.undispatched).toBe(2);
    expect(h1.events.oldestUndispatchedAgeS).toBeGreaterThanOrEqual(120);
    expect(h1.deliveries).toEqual({ failed: h0.deliveries.failed + 1, retrying: h0.deliveries.retrying + 1 });
    // No jobs service in this test: pg-boss has no schema yet, so no queues.
    expect(h1.queues).toEqual([]);
  });
});
