import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { generateSigningKeyPair, privateKeyFromB64 } from '@kilowire/protocol';
import type { SupplyResult, SupplySettingsBody } from '@kilowire/contract';
import { createStaffUser } from '../src/accounts/repo.ts';
import { evaluateEvents } from '../src/alerts/rules.ts';
import { withTx } from '../src/db/pool.ts';
import type { Actor } from '../src/policies.ts';
import { expireRequests, requestSupply, type SupplyRequest } from '../src/supply/actions.ts';
import { DEFAULT_SETTINGS, protectedBy } from '../src/supply/settings.ts';
import { createTestDb, type TestDb } from './support/db.ts';
import { startTestJobs } from './support/jobs.ts';
import { as, buildWorld, login, PASSWORD, testApi, type World } from './support/api.ts';

/**
 * Remote supply control and its safeguards, on a real database through the real routes (and
 * the domain with a pinned clock where protected hours matter): what waits for approval, who
 * may approve, what reaches the meter and when, quotas, expiry, and the household's words.
 */
let db: TestDb;
let app: FastifyInstance;
let w: World;
const c: Record<string, string> = {};
const ids: Record<string, number> = {};
const key = privateKeyFromB64(generateSigningKeyPair().privateKey);

const json = (res: { body: string }) => JSON.parse(res.body) as Record<string, unknown>;
const post = (who: string, url: string, payload: Record<string, unknown>) =>
  app.inject(as(c[who], { method: 'POST', url, headers: { 'content-type': 'application/json' }, payload }));
const get = (who: string, url: string) => app.inject(as(c[who], { method: 'GET', url }));

/** A weekday noon in London (Wednesday 25 Nov 2026, 12:00 GMT): nothing is protected. */
const WEEKDAY_NOON = Date.UTC(2026, 10, 25, 12, 0) / 1000;
/** The same Wednesday at 21:00 London: inside the default 20:00-08:00 nights. */
const WEEKDAY_NIGHT = Date.UTC(2026, 10, 25, 21, 0) / 1000;

function actor(name: 'sup1' | 'sup1b' | 'agent1'): Actor {
  return {
    userId: ids[name]!,
    role: 'supplier',
    orgId: w.sup1,
    staffRole: name === 'agent1' ? 'agent' : 'admin',
  };
}

async function act(
  who: 'sup1' | 'sup1b' | 'agent1',
  req: SupplyRequest,
  nowS: number,
): Promise<SupplyResult> {
  return withTx(db.pool, { actorId: ids[who]! }, (t) => requestSupply(t, key, actor(who), req, { nowS }));
}

/** `n` fresh meters of supplier 1 with a connected relay, no household. */
async function meters(prefix: string, n: number): Promise<string[]> {
  const { rows } = await db.pool.query<{ serial: string }>(
    `INSERT INTO meters (serial, supplier_id, area_id, feeder_id, tz, interval_s, credential_hash, mode, relay)
     SELECT $1 || g, supplier_id, area_id, feeder_id, tz, interval_s, credential_hash, mode, 'connected'
       FROM meters, generate_series(1, $2) g WHERE serial = 'KW1A'
     RETURNING serial`,
    [prefix, n],
  );
  return rows.map((r) => r.serial).sort();
}

/**
 * Supplier 1's settings: the defaults, but a quota high enough for every disconnection this
 * file asks for (the quota test sets its own).
 */
async function resetSettings(): Promise<void> {
  await db.pool.query('DELETE FROM supplier_settings');
  await db.pool.query(
    `INSERT INTO supplier_settings (supplier_id, tz, nights_enabled, night_from, night_to, weekends,
                                    bulk_threshold, hourly_disconnect_quota, approval_ttl_hours)
     VALUES ($1, 'Europe/London', true, '20:00', '08:00', true, 10, 10000, 24)`,
    [w.sup1],
  );
}

async function commandsOf(serials: string[]) {
  const { rows } = await db.pool.query<{
    serial: string;
    type: string;
    status: string;
    counter: number | null;
    request_id: number | null;
    reason: string | null;
  }>(
    `SELECT m.serial, c.type, c.status, c.counter::int, c.request_id::int, c.reason
       FROM commands c JOIN meters m ON m.id = c.meter_id WHERE m.serial = ANY($1) ORDER BY m.serial, c.created_at`,
    [serials],
  );
  return rows;
}

beforeAll(async () => {
  db = await createTestDb();
  w = await buildWorld(db.pool);
  // A second supplier admin of supplier 1: the one who may approve sup1's requests.
  await createStaffUser(db.pool, {
    role: 'supplier',
    email: 'admin2@sup1.test',
    password: PASSWORD,
    orgId: w.sup1,
    name: 'Sup1 Second Admin',
  });
  await resetSettings();
  app = await testApi(db.pool);
  const logins = { ...w.login, sup1b: 'admin2@sup1.test' } as Record<string, string>;
  for (const [name, id] of Object.entries(logins)) c[name] = await login(app, id);
  const u = await db.pool.query<{ email: string; id: number }>(
    `SELECT email, id::int FROM users WHERE email IS NOT NULL`,
  );
  const byEmail = new Map(u.rows.map((r) => [r.email, r.id]));
  for (const [name, id] of Object.entries(logins)) if (byEmail.has(id)) ids[name] = byEmail.get(id)!;
});
afterAll(async () => {
  await app?.close();
  await db?.drop();
});

describe('protected hours', () => {
  it('nights, weekends and holidays in the supplier time zone', () => {
    const s: SupplySettingsBody = { ...DEFAULT_SETTINGS, holidays: ['2026-12-25'] };
    expect(protectedBy(s, WEEKDAY_NOON)).toBeNull();
    expect(protectedBy(s, WEEKDAY_NIGHT)).toBe('night');
    // 07:59 is still night, 08:00 is not (the window is [from, to)).
    expect(protectedBy(s, Date.UTC(2026, 10, 25, 7, 59) / 1000)).toBe('night');
    expect(protectedBy(s, Date.UTC(2026, 10, 25, 8, 0) / 1000)).toBeNull();
    // Summer: 19:30 UTC is 20:30 BST, a night in London.
    expect(protectedBy(s, Date.UTC(2026, 6, 15, 19, 30) / 1000)).toBe('night');
    expect(protectedBy(s, Date.UTC(2026, 10, 28, 12, 0) / 1000)).toBe('weekend'); // Saturday
    expect(protectedBy(s, Date.UTC(2026, 11, 25, 12, 0) / 1000)).toBe('holiday'); // a Friday
    expect(protectedBy({ ...s, weekends: false }, Date.UTC(2026, 10, 28, 12, 0) / 1000)).toBeNull();
    // Another zone: 12:30 UTC is 07:30 in New York (night), 14:00 UTC is 09:00 (day).
    const ny = { ...s, tz: 'America/New_York' };
    expect(protectedBy(ny, Date.UTC(2026, 10, 25, 12, 30) / 1000)).toBe('night');
    expect(protectedBy(ny, Date.UTC(2026, 10, 25, 14, 0) / 1000)).toBeNull();
    // A window inside one day.
    expect(protectedBy({ ...s, nights: { enabled: true, from: '12:00', to: '13:00' } }, WEEKDAY_NOON)).toBe(
      'night',
    );
  });

  it('a non-payment disconnection at night waits for approval; the same at noon, or for safety at night, goes', async () => {
    const [night, noon, safety] = await meters('PH', 3);
    const r1 = await act(
      'sup1',
      { serials: [night!], action: 'disconnect', reason: 'non_payment' },
      WEEKDAY_NIGHT,
    );
    expect(r1).toMatchObject({ outcome: 'awaiting_approval', needs: ['protected_hours'] });
    const r2 = await act(
      'sup1',
      { serials: [noon!], action: 'disconnect', reason: 'non_payment' },
      WEEKDAY_NOON,
    );
    expect(r2).toMatchObject({ outcome: 'sent', needs: [], requestId: null });
    const r3 = await act(
      'sup1',
      { serials: [safety!], action: 'disconnect', reason: 'safety' },
      WEEKDAY_NIGHT,
    );
    expect(r3.outcome).toBe('sent');
    const cmds = await commandsOf([night!, noon!, safety!]);
    expect(cmds.map((x) => [x.serial, x.status, x.counter === null])).toEqual([
      [night, 'awaiting_approval', true],
      [noon, 'queued', false],
      [safety, 'queued', false],
    ]);
  });

  it("the supplier's own holidays and time zone, saved through the API, decide", async () => {
    const body: SupplySettingsBody = {
      ...DEFAULT_SETTINGS,
      tz: 'Asia/Tokyo',
      holidays: ['2026-11-26'],
    };
    const put = await app.inject(
      as(c.sup1, {
        method: 'PUT',
        url: '/api/supplier/settings',
        headers: { 'content-type': 'application/json' },
        payload: body,
      }),
    );
    expect(put.statusCode, put.body).toBe(200);
    expect(json(put)).toMatchObject({ tz: 'Asia/Tokyo', holidays: ['2026-11-26'] });
    // 25 Nov 16:00 UTC is 26 Nov 01:00 in Tokyo: a holiday there (and a night).
    const [m] = await meters('HOL', 1);
    const r = await act(
      'sup1',
      { serials: [m!], action: 'disconnect', reason: 'non_payment' },
      Date.UTC(2026, 10, 25, 16) / 1000,
    );
    expect(r.needs).toEqual(['protected_hours']);
    const audit = await db.pool.query(`SELECT 1 FROM audit_log WHERE action = 'supplier.settings'`);
    expect(audit.rowCount).toBe(1);
    await resetSettings();
  });
});

describe('vulnerable households', () => {
  it('a non-payment disconnection waits for approval and nothing is queued; another reason goes', async () => {
    await db.pool.query('UPDATE consumers SET vulnerable = true WHERE id = $1', [w.h1B.consumerId]);
    const before = await db.pool.query<{ last_counter: number }>(
      'SELECT last_counter FROM meters WHERE id = $1',
      [w.h1B.meterId],
    );
    const r = await act(
      'agent1',
      { serials: ['KW1B'], action: 'disconnect', reason: 'non_payment' },
      WEEKDAY_NOON,
    );
    expect(r).toMatchObject({ outcome: 'awaiting_approval', needs: ['vulnerable'] });
    expect(r.requestId).toEqual(expect.any(Number));
    const cmds = await commandsOf(['KW1B']);
    expect(cmds).toEqual([
      {
        serial: 'KW1B',
        type: 'supply.off',
        status: 'awaiting_approval',
        counter: null,
        request_id: r.requestId,
        reason: 'non_payment',
      },
    ]);
    const after = await db.pool.query<{ last_counter: number }>(
      'SELECT last_counter FROM meters WHERE id = $1',
      [w.h1B.meterId],
    );
    expect(after.rows[0]!.last_counter).toBe(before.rows[0]!.last_counter);
    const q = await db.pool.query(
      `SELECT 1 FROM commands WHERE meter_id = $1 AND status IN ('queued', 'sent')`,
      [w.h1B.meterId],
    );
    expect(q.rowCount).toBe(0);
    // A second request on the same meter while one waits is refused, not stacked.
    const again = await post('agent1', '/api/meters/KW1B/supply', { action: 'disconnect', reason: 'safety' });
    expect(again.statusCode).toBe(409);
    // The agent sees the request as theirs in the list.
    const list = json(await get('agent1', '/api/approvals?status=awaiting_approval')) as {
      items: { id: number; mine: boolean; needs: string[]; requestedBy: { name: string } }[];
    };
    expect(list.items.find((i) => i.id === r.requestId)).toMatchObject({
      mine: true,
      needs: ['vulnerable'],
      requestedBy: { name: 'Sup1 Agent' },
    });
    // The meter page asks for the requests of one meter: this one, and nothing for another meter.
    const ofMeter = json(await get('sup1', '/api/approvals?status=awaiting_approval&serial=KW1B')) as {
      items: { id: number }[];
    };
    expect(ofMeter.items.map((i) => i.id)).toEqual([r.requestId]);
    const none = json(await get('sup1', '/api/approvals?serial=KW1A')) as { items: unknown[] };
    expect(none.items).toEqual([]);
  });
});

describe('the raw command API is no way round the safeguards', () => {
  it('a non-payment supply.off to a vulnerable household: 409 APPROVAL_REQUIRED, nothing queued', async () => {
    const [m] = await meters('RAW', 1);
    await db.pool.query(
      `UPDATE meters SET account_id = (SELECT account_id FROM meters WHERE serial = 'KW1B') WHERE serial = $1`,
      [m],
    );
    const r = await post('sup1', `/api/meters/${m}/commands`, { type: 'supply.off', reason: 'non_payment' });
    expect(r.statusCode).toBe(409);
    expect(json(r)).toMatchObject({ error: { code: 'APPROVAL_REQUIRED' } });
    expect(await commandsOf([m!])).toEqual([]);
    // Through the supply route it waits for approval instead.
    const ok = await post('sup1', `/api/meters/${m}/supply`, { action: 'disconnect', reason: 'non_payment' });
    const waits = json(ok) as SupplyResult;
    expect(waits.outcome).toBe('awaiting_approval');
    expect(waits.needs).toContain('vulnerable');
  });
});

describe('bulk threshold', () => {
  it('11 meters wait for approval; 10 go at once', async () => {
    const eleven = await meters('B11-', 11);
    const ten = await meters('B10-', 10);
    const r11 = await post('sup1', '/api/supply/actions', {
      serials: eleven,
      action: 'disconnect',
      reason: 'safety',
    });
    expect(r11.statusCode, r11.body).toBe(202);
    expect(json(r11)).toMatchObject({ outcome: 'awaiting_approval', needs: ['bulk'] });
    const r10 = await post('sup1', '/api/supply/actions', {
      serials: ten,
      action: 'disconnect',
      reason: 'safety',
    });
    expect(r10.statusCode, r10.body).toBe(202);
    expect(json(r10)).toMatchObject({ outcome: 'sent', needs: [] });
    expect(
      (await commandsOf(eleven)).every((x) => x.status === 'awaiting_approval' && x.counter === null),
    ).toBe(true);
    const sent = await commandsOf(ten);
    expect(sent).toHaveLength(10);
    expect(sent.every((x) => x.status === 'queued' && x.counter !== null)).toBe(true);
    const audit = await db.pool.query(
      `SELECT target FROM audit_log WHERE action = 'supply.disconnect' AND target LIKE 'B10-%'`,
    );
    expect(audit.rowCount).toBe(10);
  });

  it('agents, operators, admins and households may not act in bulk (403); a serial of another supplier is 404', async () => {
    for (const who of ['agent1', 'opA', 'admin', 'h1A']) {
      const r = await post(who, '/api/supply/actions', {
        serials: ['KW1A'],
        action: 'disconnect',
        reason: 'safety',
      });
      expect(r.statusCode, who).toBe(403);
    }
    const [mine] = await meters('MIX', 1);
    const r = await post('sup1', '/api/supply/actions', {
      serials: [mine, 'KW2A'],
      action: 'disconnect',
      reason: 'safety',
    });
    expect(r.statusCode).toBe(404);
    expect(r.body).not.toContain(mine);
    expect(await commandsOf([mine!, 'KW2A'])).toEqual([]);
  });

  it('"other" needs a text (400)', async () => {
    const r = await post('sup1', '/api/meters/KW1A/supply', { action: 'disconnect', reason: 'other' });
    expect(r.statusCode).toBe(400);
    expect(json(r)).toMatchObject({ error: { code: 'VALIDATION' } });
  });
});

describe('approvals', () => {
  let request = 0;
  let serials: string[] = [];
  beforeAll(async () => {
    serials = await meters('AP', 12);
    const r = await post('sup1', '/api/supply/actions', {
      serials,
      action: 'disconnect',
      reason: 'other',
      reasonText: 'Site works on the estate',
    });
    request = (json(r) as SupplyResult).requestId!;
  });

  it('the requester cannot approve (403 SELF_APPROVAL), an agent cannot (403), another supplier sees nothing (404)', async () => {
    const self = await post('sup1', `/api/approvals/${request}/approve`, { reason: 'looks fine' });
    expect(self.statusCode).toBe(403);
    expect(json(self)).toMatchObject({ error: { code: 'SELF_APPROVAL' } });
    const agent = await post('agent1', `/api/approvals/${request}/approve`, { reason: 'looks fine' });
    expect(agent.statusCode).toBe(403);
    expect(json(agent)).toMatchObject({ error: { code: 'FORBIDDEN' } });
    for (const url of [`/api/approvals/${request}/approve`, `/api/approvals/${request}/reject`]) {
      const other = await post('sup2', url, { reason: 'not mine' });
      expect(other.statusCode).toBe(404);
    }
    expect((await get('sup2', `/api/approvals/${request}`)).statusCode).toBe(404);
    const list2 = json(await get('sup2', '/api/approvals')) as { items: unknown[] };
    expect(list2.items).toEqual([]);
    for (const who of ['opA', 'admin', 'h1A'])
      expect((await get(who, '/api/approvals')).statusCode).toBe(403);
    expect((await commandsOf(serials)).every((x) => x.status === 'awaiting_approval')).toBe(true);
  });

  it('a second admin approves: every command is queued with a counter, in one transaction with the decision and its audit row', async () => {
    const r = await post('sup1b', `/api/approvals/${request}/approve`, {
      reason: 'Works confirmed by the DNO',
    });
    expect(r.statusCode, r.body).toBe(200);
    const body = json(r) as {
      status: string;
      decidedBy: { name: string };
      meters: { commandStatus: string }[];
    };
    expect(body.status).toBe('approved');
    expect(body.decidedBy.name).toBe('Sup1 Second Admin');
    expect(body.meters.map((m) => m.commandStatus)).toEqual(serials.map(() => 'queued'));
    const cmds = await commandsOf(serials);
    expect(cmds.every((x) => x.status === 'queued' && x.counter !== null)).toBe(true);
    // The same transaction: the audit row, the request and the commands carry one xmin.
    const tx = await db.pool.query<{ xid: string }>(
      `SELECT DISTINCT x.xid FROM (
         SELECT xmin::text AS xid FROM audit_log WHERE action = 'approval.approved' AND target = $1
         UNION ALL SELECT xmin::text FROM action_requests WHERE id = $2
         UNION ALL SELECT xmin::text FROM commands WHERE request_id = $2) x`,
      [`request:${request}`, request],
    );
    expect(tx.rows).toHaveLength(1);
    const audit = await db.pool.query<{ actor_id: number; detail: { commands: unknown[]; reason: string } }>(
      `SELECT actor_id::int, detail FROM audit_log WHERE action = 'approval.approved' AND target = $1`,
      [`request:${request}`],
    );
    expect(audit.rows[0]!.actor_id).toBe(ids.sup1b);
    expect(audit.rows[0]!.detail.commands).toHaveLength(12);
    // Decided once: a second decision is a conflict.
    const again = await post('sup1b', `/api/approvals/${request}/reject`, { reason: 'changed my mind' });
    expect(again.statusCode).toBe(409);
  });

  it('a rejection cancels the commands; so does the requester withdrawing', async () => {
    const a = await meters('RJ', 11);
    const b = await meters('WD', 11);
    const ra = (
      json(
        await post('sup1', '/api/supply/actions', { serials: a, action: 'disconnect', reason: 'safety' }),
      ) as SupplyResult
    ).requestId!;
    const rb = (
      json(
        await post('sup1', '/api/supply/actions', { serials: b, action: 'disconnect', reason: 'safety' }),
      ) as SupplyResult
    ).requestId!;
    const rej = await post('sup1b', `/api/approvals/${ra}/reject`, { reason: 'Wrong estate' });
    expect(rej.statusCode, rej.body).toBe(200);
    expect(json(rej)).toMatchObject({ status: 'rejected', decisionReason: 'Wrong estate' });
    const wd = await post('sup1', `/api/approvals/${rb}/reject`, { reason: 'Asked by mistake' });
    expect(json(wd)).toMatchObject({ status: 'cancelled' });
    expect(
      (await commandsOf([...a, ...b])).every((x) => x.status === 'cancelled' && x.counter === null),
    ).toBe(true);
    const audit = await db.pool.query<{ action: string }>(
      `SELECT action FROM audit_log WHERE target = ANY($1) ORDER BY id`,
      [[`request:${ra}`, `request:${rb}`]],
    );
    expect(audit.rows.map((x) => x.action)).toEqual([
      'approval.requested',
      'approval.requested',
      'approval.rejected',
      'approval.withdrawn',
    ]);
  });

  it('an approval nobody decided expires with its commands, and cannot be approved afterwards', async () => {
    const s = await meters('EX', 11);
    const r = json(
      await post('sup1', '/api/supply/actions', { serials: s, action: 'disconnect', reason: 'safety' }),
    ) as SupplyResult;
    // Not yet: the default lifetime is 24 hours.
    expect(await expireRequests(db.pool, Math.floor(Date.now() / 1000) + 23 * 3600)).toBe(0);
    expect(await expireRequests(db.pool, Math.floor(Date.now() / 1000) + 25 * 3600)).toBeGreaterThanOrEqual(
      1,
    );
    const st = await db.pool.query<{ status: string }>('SELECT status FROM action_requests WHERE id = $1', [
      r.requestId,
    ]);
    expect(st.rows[0]!.status).toBe('expired');
    expect((await commandsOf(s)).every((x) => x.status === 'expired' && x.counter === null)).toBe(true);
    const late = await post('sup1b', `/api/approvals/${r.requestId}/approve`, { reason: 'too late' });
    expect(late.statusCode).toBe(409);
    const audit = await db.pool.query(
      `SELECT actor_id FROM audit_log WHERE action = 'approval.expired' AND target = $1`,
      [`request:${r.requestId}`],
    );
    expect(audit.rows).toEqual([{ actor_id: null }]);
  });
});

describe('the jobs service', () => {
  it('sweeps lapsed approval requests (once at start, then every minute)', async () => {
    const s = await meters('JOB', 11);
    const r = json(
      await post('sup1', '/api/supply/actions', { serials: s, action: 'disconnect', reason: 'safety' }),
    ) as SupplyResult;
    await db.pool.query(`UPDATE action_requests SET expires_at = now() - interval '1 minute' WHERE id = $1`, [
      r.requestId,
    ]);
    const jobs = await startTestJobs(db.pool);
    try {
      const until = Date.now() + 30_000;
      let status = '';
      while (Date.now() < until) {
        const q = await db.pool.query<{ status: string }>(
          'SELECT status FROM action_requests WHERE id = $1',
          [r.requestId],
        );
        status = q.rows[0]!.status;
        if (status === 'expired') break;
        await new Promise((res) => setTimeout(res, 200));
      }
      expect(status).toBe('expired');
      expect((await commandsOf(s)).every((x) => x.status === 'expired')).toBe(true);
    } finally {
      await jobs.stop();
    }
  }, 45_000);
});

describe('reconnect and quota', () => {
  it('reconnect arms a disconnected meter; an armed or connected one is a clear 409', async () => {
    const [off, armed, on] = await meters('RC', 3);
    await db.pool.query(`UPDATE meters SET relay = 'disconnected' WHERE serial = $1`, [off]);
    await db.pool.query(`UPDATE meters SET relay = 'armed' WHERE serial = $1`, [armed]);
    const r = await post('agent1', `/api/meters/${off}/supply`, {
      action: 'reconnect',
      reason: 'non_payment',
    });
    expect(r.statusCode, r.body).toBe(202);
    expect(json(r)).toMatchObject({ outcome: 'sent', action: 'reconnect' });
    expect((await commandsOf([off!])).map((x) => [x.type, x.status])).toEqual([['supply.arm', 'queued']]);
    const a = await post('agent1', `/api/meters/${armed}/supply`, {
      action: 'reconnect',
      reason: 'non_payment',
    });
    expect(a.statusCode).toBe(409);
    const ae = json(a) as { error: { code: string; message: string } };
    expect(ae.error.code).toBe('CONFLICT');
    expect(ae.error.message).toContain('press the button');
    const o = await post('agent1', `/api/meters/${on}/supply`, {
      action: 'reconnect',
      reason: 'non_payment',
    });
    expect(o.statusCode).toBe(409);
    expect((json(o) as { error: { message: string } }).error.message).toContain('already connected');
  });

  it('the hourly disconnection quota: 429 QUOTA_EXCEEDED, and nothing queued beyond it', async () => {
    const put = await app.inject(
      as(c.sup1, {
        method: 'PUT',
        url: '/api/supplier/settings',
        headers: { 'content-type': 'application/json' },
        payload: { ...DEFAULT_SETTINGS, hourlyDisconnectQuota: 3 },
      }),
    );
    expect(put.statusCode, put.body).toBe(200);
    // The agent asked for one disconnection already in this file (KW1B, awaiting approval).
    const s = await meters('Q', 3);
    expect(
      (await post('agent1', `/api/meters/${s[0]}/supply`, { action: 'disconnect', reason: 'safety' }))
        .statusCode,
    ).toBe(202);
    expect(
      (await post('agent1', `/api/meters/${s[1]}/supply`, { action: 'disconnect', reason: 'safety' }))
        .statusCode,
    ).toBe(202);
    const over = await post('agent1', `/api/meters/${s[2]}/supply`, {
      action: 'disconnect',
      reason: 'safety',
    });
    expect(over.statusCode).toBe(429);
    expect(json(over)).toMatchObject({ error: { code: 'QUOTA_EXCEEDED' } });
    expect(await commandsOf([s[2]!])).toEqual([]);
    // The raw command API counts against the same quota.
    const raw = await post('agent1', `/api/meters/${s[2]}/commands`, {
      type: 'supply.off',
      reason: 'safety',
    });
    expect(raw.statusCode).toBe(429);
    // Per person: another user still may.
    expect(
      (await post('sup1b', `/api/meters/${s[2]}/supply`, { action: 'disconnect', reason: 'safety' }))
        .statusCode,
    ).toBe(202);
    await resetSettings();
  });

  it('settings: agents read, only admins change; other roles 403', async () => {
    expect((await get('agent1', '/api/supplier/settings')).statusCode).toBe(200);
    const put = (who: string) =>
      app.inject(
        as(c[who], {
          method: 'PUT',
          url: '/api/supplier/settings',
          headers: { 'content-type': 'application/json' },
          payload: DEFAULT_SETTINGS,
        }),
      );
    for (const who of ['agent1', 'opA', 'admin', 'h1A']) expect((await put(who)).statusCode, who).toBe(403);
    for (const who of ['opA', 'admin', 'h1A'])
      expect((await get(who, '/api/supplier/settings')).statusCode, who).toBe(403);
    // Supplier 2 has its own (default) settings, untouched by supplier 1's changes.
    expect(json(await get('sup2', '/api/supplier/settings'))).toMatchObject({
      updatedAt: null,
      bulkThreshold: 10,
    });
  });
});

describe("the household's messages, through the real alert rules", () => {
  let seq = 100;
  /** The meter reports its relay event after the command was queued; the alert rules run. */
  async function meterSays(code: string, data: Record<string, unknown> | null) {
    seq++;
    await db.pool.query(
      `INSERT INTO meter_events (meter_id, seq, idx, ts, code, data) VALUES ($1, $2, 0, now(), $3, $4)`,
      [w.h1A.meterId, seq, code, data ? JSON.stringify(data) : null],
    );
    await evaluateEvents(db.pool, [{ meterId: w.h1A.meterId, seq }]);
    const { rows } = await db.pool.query<{ type: string; title: string; message: string; web: boolean }>(
      `SELECT type, title, message, web FROM alerts WHERE meter_id = $1 AND dedupe_key = $2`,
      [w.h1A.meterId, `${seq}:0`],
    );
    return rows[0]!;
  }
  async function disconnectFor(reason: SupplyRequest['reason']) {
    await db.pool.query(`UPDATE meters SET relay = 'connected' WHERE id = $1`, [w.h1A.meterId]);
    const r = await act(
      'sup1',
      { serials: ['KW1A'], action: 'disconnect', reason, reasonText: 'x' },
      WEEKDAY_NOON,
    );
    expect(r.outcome).toBe('sent');
    await db.pool.query(`UPDATE commands SET status = 'ok' WHERE id = $1`, [r.commands[0]!.commandId]);
    return meterSays('relay.disconnected', { reason: reason === 'tamper' ? 'tamper' : 'remote' });
  }

  it.each([
    [
      'non_payment',
      'Supply disconnected: unpaid balance',
      'because of an unpaid balance on your account. Call Supplier One',
    ],
    ['tamper', 'Supply disconnected: meter interference suspected', 'may have been interfered with'],
    ['safety', 'Supply disconnected for safety', 'for safety reasons. Do not try to reconnect it yourself'],
    [
      'household_request',
      'Supply disconnected at your request',
      'as you asked. Call Supplier One when you want it back on',
    ],
    ['other', 'Supply disconnected', 'Call Supplier One to find out why'],
  ] as const)('%s', async (reason, title, words) => {
    const a = await disconnectFor(reason);
    expect(a.type).toBe('disconnected');
    expect(a.title).toBe(title);
    expect(a.message).toContain(words);
    expect(a.message).toMatch(
      /^Supplier One disconnected the supply at meter KW1A at \d\d:\d\d on \d+ \w{3}/,
    );
    expect(a.message).not.toContain('tamper alert');
    expect(a.web).toBe(true);
  });

  it('credit: the meter cut it itself; top up and press the button', async () => {
    const a = await meterSays('relay.disconnected', { reason: 'credit' });
    expect(a.message).toContain('was disconnected because the credit ran out');
    expect(a.message).toContain('press the button on the meter');
  });

  it('the supply back on: a supply_restored notice', async () => {
    const a = await meterSays('relay.connected', null);
    expect(a).toMatchObject({ type: 'supply_restored', title: 'Supply back on' });
    expect(a.message).toMatch(/^The supply at meter KW1A is back on \(at \d\d:\d\d on \d+ \w{3}\)/);
  });
});
