import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet, makeSimImage } from '@kilowire/meter';
import { generateSigningKeyPair, privateKeyFromB64 } from '@kilowire/protocol';
import { createStaffUser } from '../src/accounts/repo.ts';
import { withTx } from '../src/db/pool.ts';
import { createCampaign } from '../src/firmware/campaigns.ts';
import { campaignDetail } from '../src/firmware/queries.ts';
import type { RunningJobs } from '../src/jobs/service.ts';
import { approveRequest } from '../src/supply/actions.ts';
import { startGatewayWorld, type GatewayWorld } from './support/gateway-world.ts';
import { startTestJobs } from './support/jobs.ts';
import { actorOf, campaignRows, commandsOf } from './support/firmware-campaign.ts';
import { storeImage, supplierOfMeter } from './support/firmware-transfer.ts';
import { waitFor } from './support/world.ts';

/**
 * The campaign halt with real parts end to end: 1,000 simulated meters (packages/meter) on a
 * real broker, the real gateway serving blocks, the real jobs service running the campaign
 * engine, PostgreSQL. Eight meters of the 50-meter canary are a wrong model behind a right
 * registration (the head-end believes KW-1P-A; the meter is KW-3P-B), so they refuse the
 * offer — eight failures where the 10% threshold allows five. The campaign must halt inside
 * its canary stage, and no meter outside the canary may even be offered the image, let alone
 * run it: checked on the meters themselves, not only in the head-end's rows.
 */
const N = 1000;
const HW = 'KW-1P-A';
const cmd = generateSigningKeyPair();
const fw = generateSigningKeyPair();

let world: GatewayWorld;
let jobs: RunningJobs;
let fleet: Fleet;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'kw-fw-fleet-'));
  world = await startGatewayWorld(N, { gateway: { firmwareDir: dir } });
  await world.db.pool.query('UPDATE meters SET hardware_class = $1, firmware_sequence = 1', [HW]);
}, 180_000);

afterAll(async () => {
  await fleet?.stop();
  await jobs?.stop();
  await world?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('a campaign to 1,000 real simulated meters with failures above the threshold', () => {
  it('halts within its canary stage; no meter outside the canary is offered or activated', async () => {
    const pool = world.db.pool;
    const supplier = await supplierOfMeter(pool, world.hh[0]!.meterId);
    for (const email of ['fw-one@fleet.test', 'fw-two@fleet.test']) {
      await createStaffUser(pool, {
        role: 'supplier',
        email,
        password: 'x-x-x-x-x-x',
        orgId: supplier,
        name: email,
      });
    }
    const asker = await actorOf(pool, 'fw-one@fleet.test');
    const approver = await actorOf(pool, 'fw-two@fleet.test');
    const image = await storeImage(pool, dir, supplier, privateKeyFromB64(fw.privateKey), {
      bytes: Buffer.from(makeSimImage({ version: '3.0.0', size: 40_000, seed: 7 })),
      version: '3.0.0',
      sequence: 30,
      hardwareClass: HW,
    });
    const s = await withTx(pool, { actorId: asker.userId }, (t) =>
      createCampaign(t, asker, {
        name: 'Fleet 3.0.0',
        imageId: image.id,
        target: { filter: { hardwareClass: HW } },
        canaryCount: 50,
        waveSize: 475,
        failureThresholdPct: 10,
        windowFrom: '00:00',
        windowTo: '23:59',
        feederMax: 5,
        feederSpacingS: 60,
        confirmS: 60,
        reason: 'fleet update',
      }),
    );
    expect(s).toMatchObject({ meters: N, stages: 3 });
    const rows0 = await campaignRows(pool, s.id);
    const canary = new Set(rows0.filter((r) => r.stage === 0).map((r) => r.meter_id));
    expect(canary.size).toBe(50);
    // The wrong models: eight of the canary, and a few outside it (which must never hear of the image).
    const canaryIds = [...canary];
    const outsideIds = rows0.filter((r) => r.stage > 0).map((r) => r.meter_id);
    const wrong = new Set([...canaryIds.slice(0, 8), ...outsideIds.slice(0, 20)]);

    jobs = await startTestJobs(pool, {
      config: { commandSigningKey: cmd.privateKey, commandPublicKey: cmd.publicKey },
    });
    fleet = new Fleet({
      brokerUrl: world.broker.url,
      serverPublicKey: cmd.publicKey,
      firmwarePublicKey: fw.publicKey,
      meters: world.hh.map((h, i) => ({
        id: h.meterSerial,
        password: h.meterCredential,
        seed: i + 1,
        hardwareClass: wrong.has(h.meterId) ? 'KW-3P-B' : HW,
        firmwareVersion: '1.0.0',
        firmwareSequence: 1,
      })),
      speed: 1,
      backfillDays: 0,
      tickMs: 1000,
    });
    fleet.start();
    await waitFor(() => fleet.stats().connected === N, 120_000, 'every meter connected');
    // The engine skips meters it has not heard from: approve once every meter has said hello.
    await waitFor(
      async () =>
        (
          await pool.query<{ n: number }>(
            'SELECT count(*)::int AS n FROM meters WHERE last_seen_at IS NOT NULL',
          )
        ).rows[0]!.n === N,
      60_000,
      'every meter seen',
    );
    await withTx(pool, { actorId: approver.userId }, (t) =>
      approveRequest(t, privateKeyFromB64(cmd.privateKey), approver, s.requestId!, 'ok'),
    );

    // The jobs service's own tick offers the canary; the refusals come back through the broker,
    // the gateway and the event dispatcher, and halt it.
    const halted = await waitFor(
      async () => {
        const d = await campaignDetail(pool, asker, s.id);
        return d.status === 'halted' ? d : undefined;
      },
      120_000,
      'the campaign halted',
    );
    expect(halted.stage).toBe(0);
    expect(halted.stagesDetail[0]!.maxFailures).toBe(5);
    expect(halted.stagesDetail[0]!.failures).toBeGreaterThan(5);
    expect(halted.haltedReason).toMatch(/canary/);

    const rows = await campaignRows(pool, s.id);
    const refused = rows.filter((r) => r.state === 'refused');
    expect(refused.length).toBeGreaterThan(5);
    for (const r of refused) {
      expect(canary.has(r.meter_id) && wrong.has(r.meter_id)).toBe(true);
      expect(r.reason).toMatch(/FW_WRONG_HARDWARE/);
    }
    // Nothing outside the canary: no offer or activation in the head-end, and on the meters
    // themselves no pending image and the old version.
    expect(await commandsOf(pool, 'firmware.offer', outsideIds)).toEqual([]);
    expect(await commandsOf(pool, 'firmware.activate', outsideIds)).toEqual([]);
    const byId = new Map(world.hh.map((h) => [h.meterId, h.meterSerial]));
    for (const id of outsideIds) {
      const m = fleet.client(byId.get(id)!)!.meter;
      expect(m.firmwarePending, byId.get(id)).toBeNull();
      expect(m.firmwareVersion).toBe('1.0.0');
    }
    // Every meter of the canary still runs a whole image: the old one, or the new one if it was
    // activated before the halt (never none, never a half-written slot).
    for (const id of canaryIds) {
      const v = fleet.client(byId.get(id)!)!.meter.firmwareVersion;
      expect(['1.0.0', '3.0.0']).toContain(v);
    }
    // The supplier's staff were told, once.
    const alerts = await pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM alerts WHERE type = 'campaign_halted' AND supplier_id = $1`,
      [supplier],
    );
    expect(alerts.rows[0]!.n).toBe(1);
  }, 400_000);
});
