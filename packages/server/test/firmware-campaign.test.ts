import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FwCampaignBody } from '@kilowire/contract';
import { inWindow, localMinuteOfDay } from '@kilowire/protocol';
import { createStaffUser } from '../src/accounts/repo.ts';
import { withTx } from '../src/db/pool.ts';
import { AppError } from '../src/errors.ts';
import {
  cancelCampaign,
  createCampaign,
  maxFailures,
  pauseCampaign,
  previewTarget,
  resumeCampaign,
  stageSizes,
} from '../src/firmware/campaigns.ts';
import { firmwareSubscriber, tickCampaigns } from '../src/firmware/engine.ts';
import { campaignDetail } from '../src/firmware/queries.ts';
import { nextInWindow, planActivation } from '../src/firmware/windows.ts';
import type { Actor } from '../src/policies.ts';
import { approveRequest, expireRequests, rejectRequest } from '../src/supply/actions.ts';
import { buildWorld, PASSWORD, type World } from './support/api.ts';
import { createTestDb, type TestDb } from './support/db.ts';
import {
  actorOf,
  campaignRows,
  commandKey,
  commandsOf,
  insertImage,
  MeterAnswers,
  seedFleet,
  type TestImage,
} from './support/firmware-campaign.ts';

/**
 * The campaign engine on a real database, with the meters' answers stored the way the
 * gateway stores them (replies through the command lifecycle, events through readings
 * ingest) and handed to the engine's subscriber as the dispatcher does. The tick's clock is
 * passed in where time matters (confirmation timeouts), never waited for.
 */
let db: TestDb;
let w: World;
let admin1: Actor;
let admin2: Actor;
const key = commandKey();
let answers: MeterAnswers;

const body = (o: Partial<FwCampaignBody> & Pick<FwCampaignBody, 'imageId' | 'target'>): FwCampaignBody => ({
  name: 'Test campaign',
  waveSize: 10,
  failureThresholdPct: 25,
  windowFrom: '02:00',
  windowTo: '04:00',
  feederMax: 2,
  feederSpacingS: 300,
  confirmS: 600,
  reason: 'security fix',
  ...o,
});

const create = (actor: Actor, b: FwCampaignBody) =>
  withTx(db.pool, { actorId: actor.userId }, (t) => createCampaign(t, actor, b));
const approve = (actor: Actor, requestId: number) =>
  withTx(db.pool, { actorId: actor.userId }, (t) => approveRequest(t, key, actor, requestId, 'looks right'));
const tick = (o: Parameters<typeof tickCampaigns>[2] = {}) => tickCampaigns(db.pool, key, o);
const status = async (id: number) =>
  (
    await db.pool.query<{ status: string; stage: number }>(
      'SELECT status, stage FROM firmware_campaigns WHERE id = $1',
      [id],
    )
  ).rows[0]!;

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
  admin1 = await actorOf(db.pool, w.login.sup1);
  admin2 = await actorOf(db.pool, 'second@sup1.test');
  answers = await new MeterAnswers(db.pool, firmwareSubscriber(db.pool, key)).init();
});

afterAll(async () => {
  await db?.drop();
});

describe('stage and threshold arithmetic', () => {
  it('splits the canary and waves and allows floor(threshold% x meters) failures', () => {
    expect(stageSizes(24, { canaryCount: 4, waveSize: 10 })).toEqual([4, 10, 10]);
    expect(stageSizes(1000, { canaryPct: 5, waveSize: 400 })).toEqual([50, 400, 400, 150]);
    expect(stageSizes(3, { canaryPct: 1, waveSize: 10 })).toEqual([1, 2]);
    expect(stageSizes(5, { canaryCount: 9, waveSize: 10 })).toEqual([5]);
    expect(maxFailures(10, 50)).toBe(5);
    expect(maxFailures(25, 10)).toBe(2);
    expect(maxFailures(0, 10)).toBe(0);
    expect(maxFailures(33.33, 3)).toBe(0);
  });

  it('plans inside the local window (also across midnight and in another zone) and fills feeder slots', () => {
    // 2026-06-01 12:00 UTC = 13:00 in London (BST).
    const noon = Date.UTC(2026, 5, 1, 12, 0, 0) / 1000;
    const at = nextInWindow(noon, 'Europe/London', '02:00', '04:00');
    expect(new Date(at * 1000).toISOString()).toBe('2026-06-02T01:00:00.000Z');
    expect(nextInWindow(noon, 'Europe/London', '12:30', '14:00')).toBe(noon);
    // A window over midnight, seen from inside it after midnight.
    const late = Date.UTC(2026, 5, 1, 23, 30, 0) / 1000; // 00:30 BST
    expect(nextInWindow(late, 'Europe/London', '23:00', '01:00')).toBe(late);
    // New York is 4 h behind UTC in June: 02:00 local = 06:00 UTC.
    expect(new Date(nextInWindow(noon, 'America/New_York', '02:00', '04:00') * 1000).toISOString()).toBe(
      '2026-06-02T06:00:00.000Z',
    );
    // Two per 300 s slot: the third goes to the next slot.
    const start = Date.UTC(2026, 5, 2, 1, 0, 0) / 1000;
    const plan = { planned: [] as number[] };
    const got: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t = planActivation(noon, 'Europe/London', { from: '02:00', to: '04:00' }, plan, 2, 300)!;
      plan.planned.push(t);
      got.push(t - start);
    }
    expect(got).toEqual([0, 0, 300, 300, 600]);
    // A full window moves on to the next day's.
    const tiny = { planned: [start, start] };
    const next = planActivation(start, 'Europe/London', { from: '02:00', to: '02:05' }, tiny, 2, 300)!;
    expect(next - start).toBe(86_400);
  });
});

describe('a campaign from approval to completion', () => {
  let image: TestImage;
  let fleet: { id: number; serial: string; feeder: string }[];
  let campaignId: number;
  let requestId: number;

  beforeAll(async () => {
    image = await insertImage(db.pool, w.sup1, { version: '2.0.0', sequence: 2 });
    fleet = await seedFleet(db.pool, {
      supplierId: w.sup1,
      areaId: 'A',
      feeders: ['A-F1', 'A-F2'],
      n: 24,
      prefix: 'FWA',
    });
    // Left out: another hardware class, and a meter already at the image's sequence.
    await seedFleet(db.pool, {
      supplierId: w.sup1,
      areaId: 'A',
      feeders: ['A-F1'],
      n: 2,
      prefix: 'FWX',
      hardwareClass: 'KW-3P',
    });
    await seedFleet(db.pool, {
      supplierId: w.sup1,
      areaId: 'A',
      feeders: ['A-F1'],
      n: 1,
      prefix: 'FWN',
      sequence: 2,
    });
  });

  it('previews the target: eligible meters and why others are left out', async () => {
    const p = await previewTarget(db.pool, admin1, {
      imageId: image.id,
      target: { serials: [...fleet.map((m) => m.serial), 'FWX0000', 'FWX0001', 'FWN0000', 'KW2A', 'NOPE'] },
    });
    // KW2A is supplier 2's meter: not found, exactly like a serial that does not exist.
    expect(p).toEqual({
      meters: 24,
      excluded: { otherHardware: 2, notNewer: 1, busy: 0, notFound: ['KW2A', 'NOPE'] },
    });
    const byFilter = await previewTarget(db.pool, admin1, {
      imageId: image.id,
      target: { filter: { feeder: 'A-F2' } },
    });
    expect(byFilter.meters).toBe(12);
    await expect(
      previewTarget(db.pool, await actorOf(db.pool, w.login.sup2), {
        imageId: image.id,
        target: { filter: {} },
      }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('waits for a second supplier admin: the requester cannot start it', async () => {
    const s = await create(
      admin1,
      body({ imageId: image.id, target: { serials: fleet.map((m) => m.serial) }, canaryCount: 4 }),
    );
    expect(s).toMatchObject({ status: 'awaiting_approval', stages: 3, meters: 24 });
    campaignId = s.id;
    requestId = s.requestId!;
    // Round robin over feeders: the canary has two meters of each.
    const rows = await campaignRows(db.pool, campaignId);
    const canary = rows
      .filter((r) => r.stage === 0)
      .map((r) => fleet.find((m) => m.id === r.meter_id)!.feeder);
    expect(canary.sort()).toEqual(['A-F1', 'A-F1', 'A-F2', 'A-F2']);
    expect(rows.filter((r) => r.stage === 1)).toHaveLength(10);

    // Nothing happens before approval.
    await tick();
    expect(await commandsOf(db.pool, 'firmware.offer')).toEqual([]);

    await expect(approve(admin1, requestId)).rejects.toMatchObject({ code: 'SELF_APPROVAL' });
    // The meters are held: a second campaign over them finds none free.
    await expect(
      create(
        admin2,
        body({ imageId: image.id, target: { serials: fleet.map((m) => m.serial) }, canaryCount: 1 }),
      ),
    ).rejects.toMatchObject({ code: 'CONFLICT' });
    expect((await status(campaignId)).status).toBe('awaiting_approval');
    await approve(admin2, requestId);
    expect((await status(campaignId)).status).toBe('running');
  });

  it('offers the canary only, then activates it in the window, spaced per feeder', async () => {
    const r = await tick();
    expect(r.offered).toBe(4);
    const rows = await campaignRows(db.pool, campaignId);
    const canary = rows.filter((x) => x.stage === 0);
    const offers = await commandsOf(db.pool, 'firmware.offer');
    expect(offers.map((o) => o.meter_id).sort()).toEqual(canary.map((x) => x.meter_id).sort());
    expect(canary.every((x) => x.state === 'offered')).toBe(true);

    for (const x of canary) await answers.reply(x.meter_id, x.offer_command_id!);
    await answers.pump();
    expect(
      (await campaignRows(db.pool, campaignId)).filter((x) => x.stage === 0).map((x) => x.state),
    ).toEqual(Array(4).fill('downloading'));
    for (const x of canary) {
      await answers.event(
        fleet.find((m) => m.id === x.meter_id)!,
        'firmware.verified',
        { image: image.sha256 },
      );
    }
    await answers.pump();
    const t = await tick();
    expect(t.activations).toBe(4);
    const acts = await campaignRows(db.pool, campaignId);
    const nowS = Date.now() / 1000;
    for (const x of acts.filter((y) => y.stage === 0)) {
      expect(x.state).toBe('activating');
      const at = x.activate_at!.getTime() / 1000;
      expect(at).toBeGreaterThanOrEqual(nowS + 30);
      expect(inWindow(localMinuteOfDay(at, 'Europe/London'), '02:00', '04:00')).toBe(true);
    }
    const activates = await commandsOf(db.pool, 'firmware.activate');
    expect(activates).toHaveLength(4);
    expect(activates.every((a) => a.cmd.confirmS === 600)).toBe(true);
    // At most 2 per feeder per 300 s slot.
    const slots = new Map<string, number>();
    for (const x of acts.filter((y) => y.activate_at)) {
      const k = `${fleet.find((m) => m.id === x.meter_id)!.feeder}:${Math.floor(x.activate_at!.getTime() / 300_000)}`;
      slots.set(k, (slots.get(k) ?? 0) + 1);
    }
    expect(Math.max(...slots.values())).toBeLessThanOrEqual(2);
    // Operator A is told, once.
    await tick();
    const alerts = await db.pool.query<{ operator_id: number; figures: { meters: number } }>(
      `SELECT operator_id, figures FROM alerts WHERE type = 'firmware_window'`,
    );
    expect(alerts.rows).toHaveLength(1);
    expect(alerts.rows[0]).toMatchObject({ operator_id: w.opA, figures: { meters: 4 } });
    // No other stage was touched.
    expect((await commandsOf(db.pool, 'firmware.offer')).length).toBe(4);
  });

  it('confirms the canary, then skips offline, disconnected and outage meters of wave 1 and retries them', async () => {
    const canary = (await campaignRows(db.pool, campaignId)).filter((x) => x.stage === 0);
    for (const x of canary) {
      await answers.event(
        fleet.find((m) => m.id === x.meter_id)!,
        'firmware.changed',
        {
          from: '1.0.0',
          to: '2.0.0',
          image: image.sha256,
        },
      );
    }
    await answers.pump();
    const wave1 = (await campaignRows(db.pool, campaignId))
      .filter((x) => x.stage === 1)
      .map((x) => x.meter_id);
    const [off, disc, out] = wave1 as [number, number, number];
    await db.pool.query(`UPDATE meters SET last_seen_at = now() - interval '3 hours' WHERE id = $1`, [off]);
    await db.pool.query(`UPDATE meters SET relay = 'disconnected' WHERE id = $1`, [disc]);
    await db.pool.query(
      `INSERT INTO meter_power_state (meter_id, off_since, source) VALUES ($1, now(), 'last_gasp')`,
      [out],
    );
    const r = await tick();
    expect(r.advanced).toBe(1);
    expect(await status(campaignId)).toEqual({ status: 'running', stage: 1 });
    const rows = await campaignRows(db.pool, campaignId);
    expect(rows.filter((x) => x.stage === 0).every((x) => x.state === 'confirmed')).toBe(true);
    const skip = Object.fromEntries(
      rows.filter((x) => x.state === 'skipped').map((x) => [x.meter_id, x.skip_reason]),
    );
    expect(skip).toEqual({ [off]: 'offline', [disc]: 'disconnected', [out]: 'outage' });
    expect(rows.filter((x) => x.stage === 1 && x.state === 'offered')).toHaveLength(7);
    expect(rows.filter((x) => x.stage === 2).every((x) => x.state === 'pending')).toBe(true);

    // Back: seen, reconnected, power restored -> offered at the next tick.
    await db.pool.query(`UPDATE meters SET last_seen_at = now() WHERE id = $1`, [off]);
    await db.pool.query(`UPDATE meters SET relay = 'connected' WHERE id = $1`, [disc]);
    await db.pool.query(`UPDATE meter_power_state SET off_since = NULL WHERE meter_id = $1`, [out]);
    expect((await tick()).offered).toBe(3);
    expect(
      (await campaignRows(db.pool, campaignId)).filter((x) => x.stage === 1 && x.state === 'offered'),
    ).toHaveLength(10);
  });

  /** Drive every offered meter of a stage to confirmed, except the ones given other endings. */
  async function runStage(
    stage: number,
    endings: Record<number, 'verify_failed' | 'reverted'> = {},
  ): Promise<void> {
    const rows = (await campaignRows(db.pool, campaignId)).filter((x) => x.stage === stage);
    for (const x of rows) await answers.reply(x.meter_id, x.offer_command_id!);
    await answers.pump();
    for (const x of rows) {
      const m = fleet.find((y) => y.id === x.meter_id)!;
      if (endings[x.meter_id] === 'verify_failed') {
        await answers.event(m, 'firmware.verify_failed', {
          image: image.sha256,
          reason: 'image hash mismatch',
        });
      } else {
        await answers.event(m, 'firmware.verified', { image: image.sha256 });
      }
    }
    await answers.pump();
    await tick();
    for (const x of await campaignRows(db.pool, campaignId)) {
      if (x.stage !== stage || x.state !== 'activating') continue;
      const m = fleet.find((y) => y.id === x.meter_id)!;
      if (endings[x.meter_id] === 'reverted') {
        await answers.event(m, 'firmware.boot_failed', {
          image: image.sha256,
          reason: 'no broker connection',
        });
      } else {
        await answers.event(m, 'firmware.changed', { from: '1.0.0', to: '2.0.0', image: image.sha256 });
      }
    }
    await answers.pump();
  }

  it('counts failures up to the threshold without halting, advances and completes', async () => {
    await runStage(1);
    expect((await tick()).advanced).toBe(1);
    const wave2 = (await campaignRows(db.pool, campaignId)).filter((x) => x.stage === 2);
    expect(wave2.every((x) => x.state === 'offered')).toBe(true);
    // Two failures of ten: the threshold (25%) allows floor(2.5) = 2.
    await runStage(2, { [wave2[0]!.meter_id]: 'verify_failed', [wave2[1]!.meter_id]: 'reverted' });
    const r = await tick();
    expect(r.completed).toBe(1);
    expect((await status(campaignId)).status).toBe('completed');
    const d = await campaignDetail(db.pool, admin1, campaignId);
    expect(d.counts).toMatchObject({ confirmed: 22, verify_failed: 1, reverted: 1 });
    expect(d.stagesDetail.map((s) => [s.stage, s.meters, s.failures, s.maxFailures])).toEqual([
      [0, 4, 0, 1],
      [1, 10, 0, 2],
      [2, 10, 2, 2],
    ]);
    expect(d.failureReasons.map((f) => f.reason).sort()).toEqual([
      'reverted to the old image: no broker connection',
      'verification failed: image hash mismatch',
    ]);
    expect(d.timeline.map((e) => e.kind)).toEqual([
      'created',
      'started',
      'stage_started',
      'stage_started',
      'stage_started',
      'completed',
    ]);
    // The meters that failed never got the new image and were not activated.
    const failed = await campaignRows(db.pool, campaignId);
    expect(failed.find((x) => x.meter_id === wave2[0]!.meter_id)!.activate_command_id).toBeNull();
  });
});

describe('answers that do not come, and answers that come late', () => {
  let image: TestImage;
  let fleet: { id: number; serial: string; feeder: string }[];
  let id: number;

  beforeAll(async () => {
    image = await insertImage(db.pool, w.sup1, { version: '3.0.0', sequence: 3 });
    fleet = await seedFleet(db.pool, {
      supplierId: w.sup1,
      areaId: 'A',
      feeders: ['A-F3'],
      n: 3,
      prefix: 'FWL',
    });
    const s = await create(
      admin1,
      body({
        imageId: image.id,
        target: { serials: fleet.map((m) => m.serial) },
        canaryCount: 3,
        failureThresholdPct: 100,
        windowFrom: '00:00',
        windowTo: '23:59',
        feederMax: 10,
      }),
    );
    id = s.id;
    await approve(admin2, s.requestId!);
  });

  it('retries an offer that expired unanswered, and fails the meter after the third', async () => {
    await tick();
    const [a] = fleet;
    for (let attempt = 1; attempt <= 3; attempt++) {
      const row = (await campaignRows(db.pool, id)).find((x) => x.meter_id === a!.id)!;
      expect(row).toMatchObject({ state: 'offered', attempts: attempt });
      await answers.expire([row.offer_command_id!]);
      await answers.pump();
      const after = (await campaignRows(db.pool, id)).find((x) => x.meter_id === a!.id)!;
      if (attempt < 3) {
        expect(after).toMatchObject({ state: 'skipped', skip_reason: 'offline' });
        await tick();
      } else {
        expect(after).toMatchObject({ state: 'failed', reason: 'no answer to 3 offers' });
      }
    }
    expect((await commandsOf(db.pool, 'firmware.offer', [a!.id])).length).toBe(3);
  });

  it('calls a meter not returned after its confirmation time, and confirms it when it reports late', async () => {
    const [, b, c] = fleet as [unknown, { id: number; serial: string }, { id: number; serial: string }];
    for (const m of [b, c]) {
      const row = (await campaignRows(db.pool, id)).find((x) => x.meter_id === m.id)!;
      await answers.reply(m.id, row.offer_command_id!);
      await answers.event(m, 'firmware.verified', { image: image.sha256 });
    }
    await answers.pump();
    await tick();
    const rows = await campaignRows(db.pool, id);
    const rb = rows.find((x) => x.meter_id === b.id)!;
    const rc = rows.find((x) => x.meter_id === c.id)!;
    expect(rb.state).toBe('activating');
    // c refuses the activation (it lost the image): failed with the code.
    await answers.reply(c.id, rc.activate_command_id!, 'rejected', 'FW_UNKNOWN_IMAGE');
    await answers.pump();
    expect((await campaignRows(db.pool, id)).find((x) => x.meter_id === c.id)).toMatchObject({
      state: 'failed',
      reason: 'activation rejected: FW_UNKNOWN_IMAGE',
    });
    // Time passes beyond activate_at + confirm (600 s) + grace (300 s) with no word from b.
    const later = new Date(rb.activate_at!.getTime() + 901_000);
    expect((await tick({ now: new Date(rb.activate_at!.getTime() + 899_000) })).notReturned).toBe(0);
    // Every meter has ended (a and c failed, b not returned): the campaign completes.
    expect(await tick({ now: later })).toMatchObject({ notReturned: 1, completed: 1 });
    expect((await campaignRows(db.pool, id)).find((x) => x.meter_id === b.id)).toMatchObject({
      state: 'not_returned',
    });
    await answers.event(b, 'firmware.changed', { from: '1.0.0', to: '3.0.0' });
    await answers.pump();
    expect((await campaignRows(db.pool, id)).find((x) => x.meter_id === b.id)!.state).toBe('confirmed');
    // A late word still counts, after the campaign's end.
    expect((await status(id)).status).toBe('completed');
  });
});

describe('meters that do not come back halt a campaign from the tick', () => {
  it('a 0% threshold halts on the first meter not returned, and the wave is never offered', async () => {
    const image = await insertImage(db.pool, w.sup1, { version: '3.5.0', sequence: 35 });
    const fleet = await seedFleet(db.pool, {
      supplierId: w.sup1,
      areaId: 'A',
      feeders: ['A-F5'],
      n: 3,
      prefix: 'FWT',
    });
    const s = await create(
      admin1,
      body({
        imageId: image.id,
        target: { serials: fleet.map((m) => m.serial) },
        canaryCount: 1,
        failureThresholdPct: 0,
        windowFrom: '00:00',
        windowTo: '23:59',
      }),
    );
    await approve(admin2, s.requestId!);
    await tick();
    const [canary] = (await campaignRows(db.pool, s.id)).filter((x) => x.stage === 0);
    await answers.reply(canary!.meter_id, canary!.offer_command_id!);
    await answers.event(
      fleet.find((m) => m.id === canary!.meter_id)!,
      'firmware.verified',
      { image: image.sha256 },
    );
    await answers.pump();
    await tick();
    const act = (await campaignRows(db.pool, s.id)).find((x) => x.meter_id === canary!.meter_id)!;
    expect(act.state).toBe('activating');
    const r = await tick({ now: new Date(act.activate_at!.getTime() + 1_000_000) });
    expect(r).toMatchObject({ notReturned: 1, halted: 1 });
    const d = await campaignDetail(db.pool, admin1, s.id);
    expect(d).toMatchObject({ status: 'halted', stage: 0 });
    expect(d.haltedReason).toContain('1 of 1 meters of the canary stage failed');
    expect(d.counts).toMatchObject({ not_returned: 1, cancelled: 2 });
    const others = fleet.filter((m) => m.id !== canary!.meter_id).map((m) => m.id);
    expect(await commandsOf(db.pool, 'firmware.offer', others)).toEqual([]);
    const alert = await db.pool.query<{ meter_id: number }>(
      `SELECT meter_id FROM alerts WHERE type = 'campaign_halted' AND dedupe_key = $1`,
      [`campaign:${s.id}`],
    );
    expect(alert.rows).toEqual([{ meter_id: canary!.meter_id }]);
  });
});

describe('pause, resume, cancel; rejection and expiry of the approval', () => {
  let image: TestImage;
  let fleet: { id: number; serial: string; feeder: string }[];

  beforeAll(async () => {
    image = await insertImage(db.pool, w.sup1, { version: '4.0.0', sequence: 4 });
    fleet = await seedFleet(db.pool, {
      supplierId: w.sup1,
      areaId: 'A',
      feeders: ['A-F4'],
      n: 9,
      prefix: 'FWP',
    });
  });

  it('pauses offers and activations, resumes them, and cancel tells unfinished meters to drop the image', async () => {
    const s = await create(
      admin1,
      body({
        imageId: image.id,
        target: { serials: fleet.slice(0, 6).map((m) => m.serial) },
        canaryCount: 2,
        waveSize: 4,
      }),
    );
    await approve(admin2, s.requestId!);
    await tick();
    const canary = (await campaignRows(db.pool, s.id)).filter((x) => x.stage === 0);
    expect(canary.every((x) => x.state === 'offered')).toBe(true);
    await withTx(db.pool, { actorId: admin1.userId }, (t) => pauseCampaign(t, admin1, s.id, 'checking logs'));
    await expect(
      withTx(db.pool, { actorId: admin1.userId }, (t) => pauseCampaign(t, admin1, s.id, undefined)),
    ).rejects.toMatchObject({ code: 'CONFLICT' });
    for (const x of canary) {
      await answers.reply(x.meter_id, x.offer_command_id!);
      await answers.event(
        fleet.find((m) => m.id === x.meter_id)!,
        'firmware.verified',
        { image: image.sha256 },
      );
    }
    await answers.pump();
    // Paused: the answers are recorded, but no activation is planned.
    await tick();
    expect((await campaignRows(db.pool, s.id)).filter((x) => x.state === 'verified')).toHaveLength(2);
    expect(
      await commandsOf(
        db.pool,
        'firmware.activate',
        fleet.map((m) => m.id),
      ),
    ).toEqual([]);
    await withTx(db.pool, { actorId: admin1.userId }, (t) => resumeCampaign(t, admin1, s.id, undefined));
    expect((await tick()).activations).toBe(2);

    // Cancel: both canary meters have an activation still to come -> firmware.cancel each; the wave is cancelled.
    const after = await withTx(db.pool, { actorId: admin1.userId }, (t) =>
      cancelCampaign(t, key, admin1, s.id, 'wrong build'),
    );
    expect(after.status).toBe('cancelled');
    expect(after.counts.cancelled).toBe(6);
    const cancels = await commandsOf(
      db.pool,
      'firmware.cancel',
      fleet.map((m) => m.id),
    );
    expect(cancels.map((c) => c.meter_id).sort()).toEqual(canary.map((x) => x.meter_id).sort());
    expect((await tick()).offered).toBe(0);
    await expect(
      withTx(db.pool, { actorId: admin1.userId }, (t) => resumeCampaign(t, admin1, s.id, undefined)),
    ).rejects.toBeInstanceOf(AppError);
    const audit = await db.pool.query<{ action: string }>(
      `SELECT action FROM audit_log WHERE target = $1 ORDER BY id`,
      [`campaign:${s.id}`],
    );
    expect(audit.rows.map((r) => r.action)).toEqual([
      'firmware.campaign.created',
      'firmware.campaign.paused',
      'firmware.campaign.resumed',
      'firmware.campaign.cancelled',
    ]);
  });

  it('a rejected or expired approval never starts the campaign and frees its meters', async () => {
    const a = await create(
      admin1,
      body({ imageId: image.id, target: { serials: [fleet[6]!.serial, fleet[7]!.serial] }, canaryCount: 1 }),
    );
    await withTx(db.pool, { actorId: admin2.userId }, (t) =>
      rejectRequest(t, admin2, a.requestId!, 'not now'),
    );
    expect((await status(a.id)).status).toBe('rejected');
    const b = await create(
      admin1,
      body({ imageId: image.id, target: { serials: [fleet[8]!.serial] }, canaryCount: 1 }),
    );
    await db.pool.query(`UPDATE action_requests SET expires_at = now() - interval '1 minute' WHERE id = $1`, [
      b.requestId,
    ]);
    expect(await expireRequests(db.pool)).toBe(1);
    expect((await status(b.id)).status).toBe('rejected');
    await tick();
    expect(
      await commandsOf(
        db.pool,
        'firmware.offer',
        fleet.slice(6).map((m) => m.id),
      ),
    ).toEqual([]);
    // Their meters are free for a new campaign.
    const p = await previewTarget(db.pool, admin1, {
      imageId: image.id,
      target: { serials: fleet.slice(6).map((m) => m.serial) },
    });
    expect(p.meters).toBe(3);
  });

  it('does not offer meters that changed since creation (replaced, or already updated): cancelled, not failures', async () => {
    const s = await create(
      admin1,
      body({ imageId: image.id, target: { serials: [fleet[6]!.serial, fleet[7]!.serial] }, canaryCount: 2 }),
    );
    await db.pool.query(`UPDATE meters SET firmware_sequence = 4 WHERE id = $1`, [fleet[6]!.id]);
    await db.pool.query(
      `UPDATE meters SET status = 'decommissioned', decommissioned_at = now() WHERE id = $1`,
      [fleet[7]!.id],
    );
    await approve(admin2, s.requestId!);
    const r = await tick();
    expect(r.offered).toBe(0);
    expect((await campaignRows(db.pool, s.id)).map((x) => [x.meter_id, x.state, x.reason])).toEqual([
      [fleet[6]!.id, 'cancelled', "already at or above the image's security sequence"],
      [fleet[7]!.id, 'cancelled', 'meter decommissioned'],
    ]);
    expect(await commandsOf(db.pool, 'firmware.offer', [fleet[6]!.id, fleet[7]!.id])).toEqual([]);
    expect((await tick()).completed).toBe(1);
    expect((await status(s.id)).status).toBe('completed');
  });
});
