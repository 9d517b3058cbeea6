import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStaffUser } from '../src/accounts/repo.ts';
import { withTx } from '../src/db/pool.ts';
import { createCampaign } from '../src/firmware/campaigns.ts';
import { firmwareSubscriber, tickCampaigns } from '../src/firmware/engine.ts';
import { campaignDetail } from '../src/firmware/queries.ts';
import type { Actor } from '../src/policies.ts';
import { approveRequest } from '../src/supply/actions.ts';
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
 * A campaign to 1,000 meters over ten feeders: a 5% canary (50 meters) with a 10% threshold
 * (at most 5 failures). The canary's meters take the offer; some verify and are planned for
 * activation; then verification failures come in one by one. The fifth changes nothing; the
 * sixth halts the campaign at once, inside its canary stage: no meter outside the canary was
 * ever offered or activated, the 950 others are cancelled, the canary's unfinished meters are
 * told to drop the image, and the supplier's staff get one alert naming the meter that
 * tipped it.
 */
let db: TestDb;
let w: World;
let admin1: Actor;
let admin2: Actor;
const key = commandKey();
let answers: MeterAnswers;
let image: TestImage;
let fleet: { id: number; serial: string; feeder: string }[];
let id: number;

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
  image = await insertImage(db.pool, w.sup1, { version: '5.0.0', sequence: 5 });
  fleet = await seedFleet(db.pool, {
    supplierId: w.sup1,
    areaId: 'A',
    feeders: Array.from({ length: 10 }, (_, i) => `A-H${i}`),
    n: 1000,
    prefix: 'HALT',
  });
});

afterAll(async () => {
  await db?.drop();
});

const byId = (meterId: number) => fleet.find((m) => m.id === meterId)!;

describe('a 1,000-meter campaign with failures above the threshold', () => {
  it('halts within its canary stage and nothing outside the canary is offered or activated', async () => {
    const s = await withTx(db.pool, { actorId: admin1.userId }, (t) =>
      createCampaign(t, admin1, {
        name: 'Fleet 5.0.0',
        imageId: image.id,
        target: { filter: { area: 'A', hardwareClass: 'KW-1P-100A' } },
        canaryPct: 5,
        waveSize: 400,
        failureThresholdPct: 10,
        windowFrom: '00:00',
        windowTo: '23:59',
        feederMax: 5,
        feederSpacingS: 300,
        confirmS: 600,
        reason: 'fleet update',
      }),
    );
    id = s.id;
    // World meter KW1A (supplier 1, area A) is part of the filter too: 1,001 meters, canary ceil(5% x 1001) = 51.
    expect(s).toMatchObject({ meters: 1001, stages: 4 });
    await withTx(db.pool, { actorId: admin2.userId }, (t) =>
      approveRequest(t, key, admin2, s.requestId!, 'ok'),
    );

    const first = await tickCampaigns(db.pool, key, { offerBatch: 1000 });
    let rows = await campaignRows(db.pool, id);
    const canary = rows.filter((r) => r.stage === 0);
    expect(canary).toHaveLength(51);
    // KW1A has never been heard from: skipped as offline; the other 50 are offered.
    expect(first).toMatchObject({ offered: 50, skipped: 1 });
    const offered = canary.filter((r) => r.state === 'offered');
    for (const r of offered) await answers.reply(r.meter_id, r.offer_command_id!);
    await answers.pump();

    // 30 verify and are planned for activation; five fail verification: at the threshold, not past it.
    for (const r of offered.slice(0, 30)) {
      await answers.event(byId(r.meter_id), 'firmware.verified', { image: image.sha256 });
    }
    await answers.pump();
    expect((await tickCampaigns(db.pool, key)).activations).toBe(30);
    const failing = offered.slice(30, 36);
    for (const r of failing.slice(0, 5)) {
      await answers.event(byId(r.meter_id), 'firmware.verify_failed', {
        image: image.sha256,
        reason: 'block 7 hash mismatch',
      });
    }
    await answers.pump();
    expect((await campaignDetail(db.pool, admin1, id)).status).toBe('running');

    // The sixth failure (more than floor(10% x 51) = 5) halts it at once, with no tick.
    const tipping = failing[5]!.meter_id;
    await answers.event(byId(tipping), 'firmware.verify_failed', {
      image: image.sha256,
      reason: 'bad signature',
    });
    await answers.pump();
    const d = await campaignDetail(db.pool, admin1, id);
    expect(d.status).toBe('halted');
    expect(d.stage).toBe(0);
    expect(d.haltedReason).toMatch(/^6 of 51 meters of the canary stage failed/);
    expect(d.stagesDetail[0]).toMatchObject({ meters: 51, failures: 6, maxFailures: 5 });

    rows = await campaignRows(db.pool, id);
    const outside = rows.filter((r) => r.stage > 0);
    expect(outside).toHaveLength(950);
    expect(
      outside.every(
        (r) => r.state === 'cancelled' && r.offer_command_id === null && r.activate_command_id === null,
      ),
    ).toBe(true);
    const outsideIds = outside.map((r) => r.meter_id);
    expect(await commandsOf(db.pool, 'firmware.offer', outsideIds)).toEqual([]);
    expect(await commandsOf(db.pool, 'firmware.activate', outsideIds)).toEqual([]);
    expect(await commandsOf(db.pool, 'firmware.cancel', outsideIds)).toEqual([]);
    // The canary: 30 planned activations still to come and 14 downloads under way are cancelled on the meters.
    const cancels = await commandsOf(db.pool, 'firmware.cancel');
    expect(cancels).toHaveLength(44);
    expect(rows.filter((r) => r.stage === 0 && r.state === 'verify_failed')).toHaveLength(6);
    expect(rows.filter((r) => r.stage === 0 && r.state === 'cancelled')).toHaveLength(45);

    const alerts = await db.pool.query<{ meter_id: number; supplier_id: number; consumer_id: number | null }>(
      `SELECT meter_id, supplier_id, consumer_id FROM alerts WHERE type = 'campaign_halted'`,
    );
    expect(alerts.rows).toEqual([{ meter_id: tipping, supplier_id: w.sup1, consumer_id: null }]);

    // Later ticks and late answers start nothing.
    const after = await tickCampaigns(db.pool, key, { offerBatch: 1000 });
    expect(after).toMatchObject({ offered: 0, activations: 0 });
    await answers.event(byId(offered[40]!.meter_id), 'firmware.verified', { image: image.sha256 });
    await answers.pump();
    expect((await commandsOf(db.pool, 'firmware.offer')).length).toBe(50);
    expect((await commandsOf(db.pool, 'firmware.activate')).length).toBe(30);
    expect((await campaignDetail(db.pool, admin1, id)).timeline.map((e) => e.kind)).toEqual([
      'created',
      'started',
      'stage_started',
      'halted',
    ]);
  });
});
