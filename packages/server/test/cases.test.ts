import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { noteSupplyAction, tamperCasesSubscriber } from '../src/cases/cases.ts';
import { tx } from '../src/db/pool.ts';
import { emitEvents } from '../src/events/emit.ts';
import { loadEvents } from '../src/events/emit.ts';
import type { RunningJobs } from '../src/jobs/service.ts';
import { as, buildWorld, login, testApi, type World } from './support/api.ts';
import { createTestDb, type TestDb } from './support/db.ts';
import { settleEvents, startTestJobs } from './support/jobs.ts';

/**
 * Tamper cases through the real pipeline: a meter event stored and its domain event
 * committed together (as the gateway's ingest does), dispatched by the jobs service to the
 * tamper-cases subscriber. Then the staff routes: transitions, validation and scope.
 */
let db: TestDb;
let app: FastifyInstance;
let jobs: RunningJobs;
let w: World;
const c: Record<string, string> = {};
let seq = 100;

beforeAll(async () => {
  db = await createTestDb();
  w = await buildWorld(db.pool);
  app = await testApi(db.pool);
  jobs = await startTestJobs(db.pool);
  for (const k of ['h1A', 'sup1', 'agent1', 'sup2', 'opA', 'admin'] as const)
    c[k] = await login(app, w.login[k]);
}, 60_000);
afterAll(async () => {
  await jobs?.stop();
  await app?.close();
  await db?.drop();
});

/** A meter event as the gateway stores it: the row and its domain event in one transaction. */
async function meterEvent(
  meterId: number,
  code: string,
  at = new Date(),
): Promise<{ seq: number; ids: number[] }> {
  const s = seq++;
  await tx(db.pool, async (cl) => {
    await cl.query(`INSERT INTO meter_events (meter_id, seq, idx, ts, code) VALUES ($1, $2, 0, $3, $4)`, [
      meterId,
      s,
      at,
      code,
    ]);
    await emitEvents(cl, [
      {
        type: 'meter.event',
        meterId,
        payload: { seq: s, idx: 0, code, t: Math.floor(at.getTime() / 1000), data: null },
      },
    ]);
  });
  const ids = (
    await db.pool.query<{ id: number }>(
      `SELECT id FROM domain_events WHERE payload->>'seq' = $1 AND meter_id = $2`,
      [String(s), meterId],
    )
  ).rows.map((r) => r.id);
  return { seq: s, ids };
}

const get = (cookie: string, url: string) => app.inject(as(cookie, { method: 'GET', url }));
const post = (cookie: string, url: string, payload: unknown) =>
  app.inject(
    as(cookie, {
      method: 'POST',
      url,
      headers: { 'content-type': 'application/json' },
      payload: payload as object,
    }),
  );

async function casesOf(meterId: number) {
  return (
    await db.pool.query<{ id: number; status: string; events: number }>(
      `SELECT tc.id, tc.status, (SELECT count(*)::int FROM tamper_case_events e WHERE e.case_id = tc.id) AS events
         FROM tamper_cases tc WHERE meter_id = $1 ORDER BY id`,
      [meterId],
    )
  ).rows;
}

let caseId = 0;

describe('the pipeline', () => {
  test('a tamper event opens a case; a second joins it; other events do not', async () => {
    const first = await meterEvent(w.h1A.meterId, 'tamper.cover', new Date('2026-11-20T10:00:00Z'));
    await meterEvent(w.h1A.meterId, 'power.fail');
    await settleEvents(db.pool, jobs);
    let cases = await casesOf(w.h1A.meterId);
    expect(cases.map((x) => [x.status, x.events])).toEqual([['open', 1]]);
    caseId = Number(cases[0]!.id);
    const second = await meterEvent(w.h1A.meterId, 'tamper.magnetic');
    await settleEvents(db.pool, jobs);
    cases = await casesOf(w.h1A.meterId);
    expect(cases).toEqual([{ id: caseId, status: 'open', events: 2 }]);

    // Redelivery (a job run again after a crash): the same events change nothing.
    const again = await loadEvents(db.pool, [...first.ids, ...second.ids]);
    await tamperCasesSubscriber(db.pool).handle(again);
    await tamperCasesSubscriber(db.pool).handle(again);
    expect(await casesOf(w.h1A.meterId)).toEqual([{ id: caseId, status: 'open', events: 2 }]);
    const opened = await db.pool.query(
      `SELECT 1 FROM audit_log WHERE action = 'tamper_case.open' AND target = $1`,
      [String(caseId)],
    );
    expect(opened.rowCount).toBe(1);
    // The opening time is the event's, not the handler's.
    const d = await get(c.sup1!, `/api/tamper-cases/${caseId}`);
    expect(d.statusCode).toBe(200);
    const body = d.json<{ openedAt: string; household: string; timeline: { events: { code: string }[] } }>();
    expect(body.openedAt).toBe('2026-11-20T10:00:00.000Z');
    expect(body.household).toBe('Household C1A');
    expect(body.timeline.events.map((e) => e.code).sort()).toEqual(['tamper.cover', 'tamper.magnetic']);
  });

  test('noteSupplyAction adds an action to the unresolved case only', async () => {
    const cmd = '00000000-0000-4000-8000-000000000001';
    const got = await tx(db.pool, (cl) => noteSupplyAction(cl, w.h1A.meterId, 'disconnect', cmd, null));
    expect(got).toBe(caseId);
    const none = await tx(db.pool, (cl) => noteSupplyAction(cl, w.h1B.meterId, 'reconnect', cmd, null));
    expect(none).toBeNull();
    const e = await db.pool.query(
      `SELECT action, data FROM tamper_case_entries WHERE case_id = $1 AND kind = 'action'`,
      [caseId],
    );
    expect(e.rows).toEqual([{ action: 'disconnect', data: { commandId: cmd } }]);
  });
});

describe('staff work a case', () => {
  test('notes, actions and the status path with its validation', async () => {
    const note = await post(c.agent1!, `/api/tamper-cases/${caseId}/notes`, { text: 'Called the household' });
    expect(note.statusCode, note.body).toBe(201);
    expect(
      note.json<{ timeline: { entries: { kind: string; text: string; actor: string }[] } }>().timeline
        .entries,
    ).toContainEqual(
      expect.objectContaining({ kind: 'note', text: 'Called the household', actor: 'Sup1 Agent' }),
    );
    expect((await post(c.sup1!, `/api/tamper-cases/${caseId}/notes`, { text: '  ' })).statusCode).toBe(400);

    // A site visit needs its date; a command must be one of this meter's.
    expect(
      (await post(c.sup1!, `/api/tamper-cases/${caseId}/actions`, { action: 'site_visit_booked' }))
        .statusCode,
    ).toBe(400);
    const visit = await post(c.sup1!, `/api/tamper-cases/${caseId}/actions`, {
      action: 'site_visit_booked',
      visitDate: '2026-12-02',
      text: 'Engineer AM slot',
    });
    expect(visit.statusCode, visit.body).toBe(201);
    const foreign = await post(c.sup1!, `/api/tamper-cases/${caseId}/actions`, {
      action: 'disconnect',
      commandId: '00000000-0000-4000-8000-0000000000ff',
    });
    expect(foreign.statusCode).toBe(400);

    // open -> resolved skips investigating: refused.
    const skip = await post(c.sup1!, `/api/tamper-cases/${caseId}/status`, { status: 'resolved', text: 'x' });
    expect(skip.statusCode).toBe(409);
    expect(skip.json<{ error: { code: string } }>().error.code).toBe('CONFLICT');
    const inv = await post(c.agent1!, `/api/tamper-cases/${caseId}/status`, { status: 'investigating' });
    expect(inv.statusCode, inv.body).toBe(200);
    expect(inv.json<{ status: string }>().status).toBe('investigating');
    // Resolving needs the resolution.
    expect(
      (await post(c.sup1!, `/api/tamper-cases/${caseId}/status`, { status: 'resolved' })).statusCode,
    ).toBe(400);
    const res = await post(c.sup1!, `/api/tamper-cases/${caseId}/status`, {
      status: 'resolved',
      text: 'Cover refitted and sealed; no energy theft',
    });
    expect(res.statusCode).toBe(200);
    expect(res.json<{ status: string; resolution: string }>()).toMatchObject({
      status: 'resolved',
      resolution: 'Cover refitted and sealed; no energy theft',
    });
    // Resolved is final.
    expect(
      (await post(c.sup1!, `/api/tamper-cases/${caseId}/status`, { status: 'investigating' })).statusCode,
    ).toBe(409);
    expect(
      (await post(c.sup1!, `/api/tamper-cases/${caseId}/actions`, { action: 'other', text: 'x' })).statusCode,
    ).toBe(409);
    const audit = await db.pool.query<{ action: string }>(
      `SELECT action FROM audit_log WHERE target = $1 AND action LIKE 'tamper_case.%' ORDER BY id`,
      [String(caseId)],
    );
    expect(audit.rows.map((r) => r.action)).toEqual([
      'tamper_case.open',
      'tamper_case.event',
      'tamper_case.note',
      'tamper_case.action',
      'tamper_case.status',
      'tamper_case.status',
    ]);
  });

  test('after resolution a new tamper event opens a new case', async () => {
    await meterEvent(w.h1A.meterId, 'tamper.terminal');
    await settleEvents(db.pool, jobs);
    const cases = await casesOf(w.h1A.meterId);
    expect(cases.map((x) => x.status)).toEqual(['resolved', 'open']);
    const list = await get(c.sup1!, '/api/tamper-cases?status=open');
    expect(list.statusCode).toBe(200);
    const page = list.json<{ items: { serial: string }[]; counts: Record<string, number> }>();
    expect(page.items.map((i) => i.serial)).toEqual(['KW1A']);
    expect(page.counts).toEqual({ open: 1, investigating: 0, resolved: 1 });
    const meter = await get(c.admin!, '/api/meters/KW1A/tamper-cases');
    expect(meter.json<{ items: unknown[] }>().items).toHaveLength(2);
  });
});

describe('scope', () => {
  test('supplier 2 sees nothing and changes nothing (404)', async () => {
    expect((await get(c.sup2!, `/api/tamper-cases/${caseId}`)).statusCode).toBe(404);
    expect((await post(c.sup2!, `/api/tamper-cases/${caseId}/notes`, { text: 'hi' })).statusCode).toBe(404);
    expect((await post(c.sup2!, `/api/tamper-cases/${caseId}/actions`, { action: 'other' })).statusCode).toBe(
      404,
    );
    expect(
      (await post(c.sup2!, `/api/tamper-cases/${caseId}/status`, { status: 'investigating' })).statusCode,
    ).toBe(404);
    expect((await get(c.sup2!, '/api/meters/KW1A/tamper-cases')).statusCode).toBe(404);
    const list = await get(c.sup2!, '/api/tamper-cases');
    expect(list.json<{ items: unknown[] }>().items).toEqual([]);
    const notes = await db.pool.query(`SELECT 1 FROM tamper_case_entries WHERE text = 'hi'`);
    expect(notes.rowCount).toBe(0);
  });

  test('households and operators may never (403); the agent may', async () => {
    for (const who of [c.h1A!, c.opA!]) {
      expect((await get(who, '/api/tamper-cases')).statusCode).toBe(403);
      expect((await get(who, `/api/tamper-cases/${caseId}`)).statusCode).toBe(403);
      expect((await post(who, `/api/tamper-cases/${caseId}/notes`, { text: 'x' })).statusCode).toBe(403);
      expect((await get(who, '/api/meters/KW1A/tamper-cases')).statusCode).toBe(403);
    }
    expect((await get(c.agent1!, '/api/tamper-cases')).statusCode).toBe(200);
  });
});
