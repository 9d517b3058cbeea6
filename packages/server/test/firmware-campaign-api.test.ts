import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance, InjectOptions } from 'fastify';
import type {
  ActivationWindowsResponse,
  Approval,
  FwCampaignDetail,
  FwCampaignMetersResponse,
  FwCampaignSummary,
} from '@kilowire/contract';
import { localMinuteOfDay } from '@kilowire/protocol';
import { createStaffUser } from '../src/accounts/repo.ts';
import { tickCampaigns } from '../src/firmware/engine.ts';
import { as, buildWorld, login, PASSWORD, testApi, type World } from './support/api.ts';
import { createTestDb, type TestDb } from './support/db.ts';
import { commandKey, insertImage, seedFleet, type TestImage } from './support/firmware-campaign.ts';

/**
 * The campaign routes end to end over HTTP: creating (supplier admins only, validated),
 * approval through the existing approvals routes by a second supplier admin, progress per
 * state and per meter with paging, pause / resume / cancel, and the planned activations the
 * network operator sees for its own feeders only.
 */
let db: TestDb;
let app: FastifyInstance;
let w: World;
let image: TestImage;
let fleet: { id: number; serial: string; feeder: string }[];
const c: Record<string, string> = {};
const key = commandKey();

const json = (cookie: string, method: InjectOptions['method'], url: string, payload?: unknown) =>
  app.inject(
    as(cookie, {
      method,
      url,
      ...(payload === undefined
        ? {}
        : { headers: { 'content-type': 'application/json' }, payload: payload as object }),
    }),
  );
const parse = <T>(r: { body: string }) => JSON.parse(r.body) as T;

beforeAll(async () => {
  db = await createTestDb();
  w = await buildWorld(db.pool);
  await createStaffUser(db.pool, {
    role: 'supplier',
    email: 'second@sup1.test',
    password: PASSWORD,
    orgId: w.sup1,
    name: 'Sup1 Second Admin',
  });
  app = await testApi(db.pool);
  for (const [k, id] of Object.entries({ ...w.login, second: 'second@sup1.test' }))
    c[k] = await login(app, id);
  image = await insertImage(db.pool, w.sup1, { version: '2.1.0', sequence: 2 });
  fleet = await seedFleet(db.pool, {
    supplierId: w.sup1,
    areaId: 'A',
    feeders: ['A-F1'],
    n: 8,
    prefix: 'API',
  });
});

afterAll(async () => {
  await app?.close();
  await db?.drop();
});

/** A window starting three hours from now in London: activations are planned well ahead. */
const hhmm = (min: number) =>
  `${String(Math.floor((min % 1440) / 60)).padStart(2, '0')}:${String(min % 60).padStart(2, '0')}`;
const nowMin = localMinuteOfDay(Date.now() / 1000, 'Europe/London');

const create = (over: Record<string, unknown> = {}) => ({
  name: 'API campaign',
  imageId: image.id,
  target: { serials: fleet.map((m) => m.serial) },
  canaryCount: 3,
  waveSize: 5,
  failureThresholdPct: 20,
  windowFrom: hhmm(nowMin + 180),
  windowTo: hhmm(nowMin + 240),
  reason: 'fixes the clock drift',
  ...over,
});

describe('campaigns over HTTP', () => {
  let id = 0;
  let requestId = 0;

  it('validates and authorises creation', async () => {
    const both = await json(c.sup1!, 'POST', '/api/firmware/campaigns', create({ canaryPct: 10 }));
    expect(both.statusCode).toBe(400);
    expect(parse<{ error: { code: string } }>(both).error.code).toBe('VALIDATION');
    const empty = await json(
      c.sup1!,
      'POST',
      '/api/firmware/campaigns',
      create({ windowTo: hhmm(nowMin + 180) }),
    );
    expect(empty.statusCode).toBe(400);
    const agent = await json(c.agent1!, 'POST', '/api/firmware/campaigns', create());
    expect(agent.statusCode).toBe(403);
    const none = await json(
      c.sup1!,
      'POST',
      '/api/firmware/campaigns',
      create({ target: { serials: ['KW2A'] } }),
    );
    expect(none.statusCode).toBe(409);
    expect(parse<{ error: { code: string } }>(none).error.code).toBe('CONFLICT');
  });

  it('waits for a second supplier admin through the approvals routes', async () => {
    const r = await json(c.sup1!, 'POST', '/api/firmware/campaigns', create());
    expect(r.statusCode, r.body).toBe(201);
    const s = parse<FwCampaignSummary>(r);
    expect(s).toMatchObject({ status: 'awaiting_approval', stage: 0, stages: 2, meters: 8 });
    expect(s.counts.pending).toBe(8);
    id = s.id;
    requestId = s.requestId!;

    const list = parse<{ items: Approval[] }>(await json(c.second!, 'GET', '/api/approvals'));
    const a = list.items.find((x) => x.id === requestId)!;
    expect(a).toMatchObject({ kind: 'firmware.campaign', needs: ['firmware'], meterCount: 8, mine: false });
    expect(a.reasonText).toContain('fixes the clock drift');

    const self = await json(c.sup1!, 'POST', `/api/approvals/${requestId}/approve`, {
      reason: 'mine, approved',
    });
    expect(self.statusCode).toBe(403);
    expect(parse<{ error: { code: string } }>(self).error.code).toBe('SELF_APPROVAL');
    const agent = await json(c.agent1!, 'POST', `/api/approvals/${requestId}/approve`, {
      reason: 'mine, approved',
    });
    expect(agent.statusCode).toBe(403);
    expect(parse<FwCampaignDetail>(await json(c.sup1!, 'GET', `/api/firmware/campaigns/${id}`)).status).toBe(
      'awaiting_approval',
    );
    const ok = await json(c.second!, 'POST', `/api/approvals/${requestId}/approve`, {
      reason: 'checked the build',
    });
    expect(ok.statusCode, ok.body).toBe(200);
    const d = parse<FwCampaignDetail>(await json(c.agent1!, 'GET', `/api/firmware/campaigns/${id}`));
    expect(d).toMatchObject({ status: 'running', requestId: null, canaryCount: 3, failureThresholdPct: 20 });
    expect(d.timeline.map((e) => [e.kind, e.actor])).toEqual([
      ['created', 'Sup1 Staff'],
      ['started', 'Sup1 Second Admin'],
      ['stage_started', null],
    ]);
  });

  it('shows progress per state and per meter, page by page', async () => {
    await tickCampaigns(db.pool, key);
    const d = parse<FwCampaignDetail>(await json(c.sup1!, 'GET', `/api/firmware/campaigns/${id}`));
    expect(d.counts).toMatchObject({ offered: 3, pending: 5 });
    expect(d.stagesDetail.map((s) => [s.stage, s.meters, s.counts.offered, s.maxFailures])).toEqual([
      [0, 3, 3, 0],
      [1, 5, 0, 1],
    ]);
    const p1 = parse<FwCampaignMetersResponse>(
      await json(c.sup1!, 'GET', `/api/firmware/campaigns/${id}/meters?stage=1&limit=3`),
    );
    expect(p1.items).toHaveLength(3);
    expect(p1.nextCursor).not.toBeNull();
    const p2 = parse<FwCampaignMetersResponse>(
      await json(
        c.sup1!,
        'GET',
        `/api/firmware/campaigns/${id}/meters?stage=1&limit=3&cursor=${p1.nextCursor}`,
      ),
    );
    expect(p2.items).toHaveLength(2);
    expect(p2.nextCursor).toBeNull();
    expect([...p1.items, ...p2.items].every((m) => m.state === 'pending' && m.feederId === 'A-F1')).toBe(
      true,
    );
    const offered = parse<FwCampaignMetersResponse>(
      await json(c.sup1!, 'GET', `/api/firmware/campaigns/${id}/meters?state=offered`),
    );
    expect(offered.items.map((m) => [m.stage, m.blocksDone, m.blocksTotal])).toEqual(
      Array(3).fill([0, 0, 10]),
    );
    const all = parse<{ items: FwCampaignSummary[] }>(await json(c.admin!, 'GET', '/api/firmware/campaigns'));
    expect(all.items.map((x) => x.id)).toContain(id);
  });

  it("tells the network operator of the planned activations on its feeders, and no one else's", async () => {
    await db.pool.query(
      `UPDATE firmware_campaign_meters SET state = 'verified', verified_at = now() WHERE campaign_id = $1 AND stage = 0`,
      [id],
    );
    expect((await tickCampaigns(db.pool, key)).activations).toBe(3);
    const a = parse<ActivationWindowsResponse>(await json(c.opA!, 'GET', '/api/network/activation-windows'));
    expect(a.items).toHaveLength(1);
    expect(a.items[0]).toMatchObject({
      campaignId: id,
      supplier: 'Supplier One',
      feederId: 'A-F1',
      areaId: 'A',
      meters: 3,
    });
    expect(Date.parse(a.items[0]!.to) - Date.parse(a.items[0]!.from)).toBeGreaterThanOrEqual(600_000);
    const b = parse<ActivationWindowsResponse>(await json(c.opB!, 'GET', '/api/network/activation-windows'));
    expect(b.items).toEqual([]);
    const admin = parse<ActivationWindowsResponse>(
      await json(c.admin!, 'GET', '/api/network/activation-windows'),
    );
    expect(admin.items).toHaveLength(1);
    const other = parse<ActivationWindowsResponse>(
      await json(c.admin!, 'GET', '/api/network/activation-windows?area=B'),
    );
    expect(other.items).toEqual([]);
    const sup = await json(c.sup1!, 'GET', '/api/network/activation-windows');
    expect(sup.statusCode).toBe(403);
    // The operator's alert, once.
    const alerts = await db.pool.query<{ operator_id: number }>(
      `SELECT operator_id FROM alerts WHERE type = 'firmware_window'`,
    );
    expect(alerts.rows).toEqual([{ operator_id: w.opA }]);
  });

  it('pauses, resumes and cancels, refusing what the status does not allow', async () => {
    const p = await json(c.sup1!, 'POST', `/api/firmware/campaigns/${id}/pause`, { reason: 'weekend' });
    expect(parse<FwCampaignSummary>(p).status).toBe('paused');
    const again = await json(c.sup1!, 'POST', `/api/firmware/campaigns/${id}/pause`, {});
    expect(again.statusCode).toBe(409);
    const agent = await json(c.agent1!, 'POST', `/api/firmware/campaigns/${id}/resume`, {});
    expect(agent.statusCode).toBe(403);
    const r = await json(c.second!, 'POST', `/api/firmware/campaigns/${id}/resume`, {});
    expect(parse<FwCampaignSummary>(r).status).toBe('running');
    const x = await json(c.sup1!, 'POST', `/api/firmware/campaigns/${id}/cancel`, { reason: 'superseded' });
    const s = parse<FwCampaignSummary>(x);
    expect(s).toMatchObject({ status: 'cancelled' });
    expect(s.counts.cancelled).toBe(8);
    const cancels = await db.pool.query(`SELECT 1 FROM commands WHERE type = 'firmware.cancel'`);
    expect(cancels.rowCount).toBe(3);
    expect((await json(c.sup1!, 'POST', `/api/firmware/campaigns/${id}/resume`, {})).statusCode).toBe(409);
    const d = parse<FwCampaignDetail>(await json(c.sup1!, 'GET', `/api/firmware/campaigns/${id}`));
    expect(d.timeline.map((e) => e.kind).slice(-3)).toEqual(['paused', 'resumed', 'cancelled']);
    // The operator no longer sees activations that will not happen.
    const a = parse<ActivationWindowsResponse>(await json(c.opA!, 'GET', '/api/network/activation-windows'));
    expect(a.items).toEqual([]);
  });
});
