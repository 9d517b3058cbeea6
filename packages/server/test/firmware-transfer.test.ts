import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { FileStore, Meter, MeterClient, makeSimImage } from '@kilowire/meter';
import mqtt from 'mqtt';
import {
  decodeUp,
  generateSigningKeyPair,
  privateKeyFromB64,
  topics,
  type FwRequestMessage,
  type KeyPairB64,
} from '@kilowire/protocol';
import type { CreatedHousehold } from '../src/accounts/repo.ts';
import { tx } from '../src/db/pool.ts';
import { activateImage } from '../src/firmware/commands.ts';
import { startGatewayWorld, type GatewayWorld } from './support/gateway-world.ts';
import { HEADEND, HEADEND_2 } from './support/brokers.ts';
import { sleep, waitFor } from './support/world.ts';
import {
  campaignMeter,
  offer,
  runningCampaign,
  storeImage,
  supplierOfMeter,
  type StoredImage,
} from './support/firmware-transfer.ts';

/**
 * #10 firmware transfers end to end: real meters (packages/meter, durable file state), the
 * real broker, the real gateway serving blocks from the firmware folder, PostgreSQL. An
 * image goes offer -> download -> verification -> activation -> confirmation; a damaged
 * stored image is caught by the meter and never activated; an offer the meter must refuse
 * moves no block; a meter that loses power mid-download resumes where it was.
 */

const HW = 'KW-1P-A';
const cmdKeys = generateSigningKeyPair();
const fwKeys = generateSigningKeyPair();
const cmdKey = privateKeyFromB64(cmdKeys.privateKey);
const fwKey = privateKeyFromB64(fwKeys.privateKey);
const SIZE = 40_000; // 10 blocks of 4 KiB, the last one short
const BS = 4096;

let dir: string;
let stateDir: string;
let world: GatewayWorld;
let supplier: number;
let next = 0;
let images = 0;
const clients: MeterClient[] = [];

interface Live {
  h: CreatedHousehold;
  client: MeterClient;
  meter: Meter;
  stateFile: string;
}

function startMeter(
  h: CreatedHousehold,
  o: { sequence?: number; fwKey?: KeyPairB64; delayMs?: number } = {},
): Live {
  const stateFile = path.join(stateDir, `${h.meterSerial}.json`);
  const meter = new Meter({
    id: h.meterSerial,
    tz: 'Europe/London',
    hardwareClass: HW,
    serverPublicKey: cmdKeys.publicKey,
    firmwarePublicKey: (o.fwKey ?? fwKeys).publicKey,
    firmwareVersion: '1.0.0',
    firmwareSequence: o.sequence ?? 1,
    firmwarePacing: { requestTimeoutMs: 400, maxRequestTimeoutMs: 1_000 },
    store: new FileStore(stateFile),
    startS: Math.floor(Date.now() / 1000) - 1800,
  });
  const client = new MeterClient({
    meter,
    brokerUrl: world.broker.url,
    password: h.meterCredential,
    reconnectPeriodMs: 100,
    tickMs: 100,
    ...(o.delayMs ? { fwBlockDelayMs: o.delayMs } : {}),
  });
  client.start();
  clients.push(client);
  return { h, client, meter, stateFile };
}

/** A meter of its own for each case (the world has 22). */
function household(): CreatedHousehold {
  const h = world.hh[next++];
  if (!h) throw new Error('out of households: raise the count in startGatewayWorld');
  return h;
}

async function image(o: Parameters<typeof storeImage>[4] = {}): Promise<StoredImage> {
  const version = o.version ?? `2.0.${next}`;
  const bytes = o.bytes ?? Buffer.from(makeSimImage({ version, size: SIZE, seed: next + 1 }));
  return storeImage(world.db.pool, dir, supplier, fwKey, {
    hardwareClass: HW,
    blockSize: BS,
    // Each image of the supplier its own (class, sequence); all above the meters' 1.
    sequence: 10 + ++images,
    ...o,
    version,
    bytes,
  });
}

async function events(meterId: number, code: string): Promise<Record<string, unknown>[]> {
  const { rows } = await world.db.pool.query<{ data: Record<string, unknown> }>(
    'SELECT data FROM meter_events WHERE meter_id = $1 AND code = $2 ORDER BY ts, seq, idx',
    [meterId, code],
  );
  return rows.map((r) => r.data);
}

async function command(id: string): Promise<{ status: string; result_code: string | null }> {
  const { rows } = await world.db.pool.query<{ status: string; result_code: string | null }>(
    'SELECT status, result_code FROM commands WHERE id = $1',
    [id],
  );
  return rows[0]!;
}

async function offered(l: Live, img: StoredImage): Promise<{ campaign: number; offerId: string }> {
  const campaign = await runningCampaign(world.db.pool, supplier, img, [l.h.meterId]);
  const offerId = await offer(
    world.db.pool,
    cmdKey,
    campaign,
    { id: l.h.meterId, serial: l.h.meterSerial },
    img,
  );
  return { campaign, offerId };
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'kw-fw-e2e-'));
  stateDir = await mkdtemp(path.join(tmpdir(), 'kw-fw-meters-'));
  world = await startGatewayWorld(22, {
    gateway: {
      firmwareDir: dir,
      commands: { retryS: 1, maxRetryS: 2 },
      firmware: { progressMs: 100, offerTtlMs: 200 },
    },
  });
  supplier = await supplierOfMeter(world.db.pool, world.hh[0]!.meterId);
});
afterAll(async () => {
  for (const c of clients) await c.stop().catch(() => undefined);
  await world?.close();
  await rm(dir, { recursive: true, force: true });
  await rm(stateDir, { recursive: true, force: true });
});

describe('a good image', () => {
  test('is offered, downloaded, verified, activated and confirmed: the meter runs it and the head-end sees it', async () => {
    const l = startMeter(household());
    const img = await image({ version: '2.1.0' });
    const { campaign, offerId } = await offered(l, img);
    await waitFor(async () => (await command(offerId)).status === 'ok', 20_000, 'offer accepted');
    await waitFor(() => l.meter.firmwarePending?.state === 'verified', 30_000, 'verified on the meter');
    const verified = await waitFor(async () => (await events(l.h.meterId, 'firmware.verified'))[0], 10_000);
    expect(verified).toMatchObject({ image: img.sha256 });
    await waitFor(
      async () => (await campaignMeter(world.db.pool, campaign, l.h.meterId)).blocks_done === 10,
      10_000,
      'progress 10 of 10',
    );
    expect(l.meter.firmwareVersion).toBe('1.0.0');

    const now = Math.floor(Date.now() / 1000);
    const act = await tx(world.db.pool, (c) =>
      activateImage(c, cmdKey, campaign, { id: l.h.meterId, serial: l.h.meterSerial }, img.sha256, now, 60),
    );
    await waitFor(() => l.meter.firmwareVersion === '2.1.0' && !l.meter.firmwarePending, 30_000, 'confirmed');
    expect(l.meter.firmwareSlot).toBe('B');
    await waitFor(
      async () => {
        const { rows } = await world.db.pool.query<{ firmware_version: string; firmware_sequence: number }>(
          'SELECT firmware_version, firmware_sequence FROM meters WHERE id = $1',
          [l.h.meterId],
        );
        return rows[0]!.firmware_version === '2.1.0' && rows[0]!.firmware_sequence === img.m.sequence;
      },
      20_000,
      'the new version and sequence on the head-end',
    );
    expect(await events(l.h.meterId, 'firmware.boot_failed')).toEqual([]);
    expect((await command(act.id)).status).toBe('ok');
    const changed = await waitFor(async () => (await events(l.h.meterId, 'firmware.changed'))[0], 10_000);
    expect(changed).toMatchObject({ to: '2.1.0' });
  });
});

describe('the largest manifest', () => {
  test('an image of 1,024 blocks (every hash in the offer) is offered, downloaded and verified', async () => {
    const l = startMeter(household());
    const version = '2.4.0';
    const size = 1024 * 256 - 100;
    const img = await image({
      version,
      blockSize: 256,
      bytes: Buffer.from(makeSimImage({ version, size, seed: 1024 })),
    });
    expect(img.m.blockHashes).toHaveLength(1024);
    const { campaign, offerId } = await offered(l, img);
    await waitFor(async () => (await command(offerId)).status === 'ok', 20_000, 'offer accepted');
    await waitFor(() => l.meter.firmwarePending?.state === 'verified', 60_000, 'verified');
    await waitFor(
      async () => (await campaignMeter(world.db.pool, campaign, l.h.meterId)).blocks_done === 1024,
      10_000,
      'progress 1,024 of 1,024',
    );
  });
});

describe('an image that cannot reconnect', () => {
  test(
    'the meter boots it on trial, stays dark, reverts after the confirmation time and reports why',
    { timeout: 120_000 },
    async () => {
      const l = startMeter(household());
      const version = '2.9.0';
      const img = await image({
        version,
        bytes: Buffer.from(makeSimImage({ version, size: SIZE, behaviour: 'no_reconnect', seed: 99 })),
      });
      const { campaign, offerId } = await offered(l, img);
      await waitFor(async () => (await command(offerId)).status === 'ok', 20_000, 'offer accepted');
      await waitFor(() => l.meter.firmwarePending?.state === 'verified', 30_000, 'verified');
      const now = Math.floor(Date.now() / 1000);
      // 30 s, the shortest confirmation time a command may ask for.
      await tx(world.db.pool, (c) =>
        activateImage(c, cmdKey, campaign, { id: l.h.meterId, serial: l.h.meterSerial }, img.sha256, now, 30),
      );
      await waitFor(() => l.meter.firmwarePending?.state === 'trial', 20_000, 'trial boot');
      expect(l.meter.radioWorks).toBe(false);
      const failed = await waitFor(
        async () => (await events(l.h.meterId, 'firmware.boot_failed'))[0],
        90_000,
        'boot_failed reported after the revert',
      );
      expect(failed).toMatchObject({ image: img.sha256 });
      expect(l.meter.firmwareVersion).toBe('1.0.0');
      expect(l.meter.firmwareSlot).toBe('A');
      expect(l.client.counters.fwReverts).toBe(1);
      const { rows } = await world.db.pool.query<{ firmware_version: string }>(
        'SELECT firmware_version FROM meters WHERE id = $1',
        [l.h.meterId],
      );
      expect(rows[0]!.firmware_version).toBe('1.0.0');
    },
  );
});

describe('a damaged stored image is caught by the meter and never activated', () => {
  const damage: [string, (b: Buffer) => Buffer][] = [
    ['one changed byte in the first block', (b) => flip(b, 100)],
    ['one changed byte in the middle block', (b) => flip(b, 5 * BS + 17)],
    ['one changed byte in the last block', (b) => flip(b, SIZE - 1)],
    ['truncated', (b) => b.subarray(0, SIZE - 100)],
    ['extended', (b) => Buffer.concat([b, Buffer.from('tail')])],
  ];
  test.each(damage)('%s -> firmware.verify_failed, old image still running', async (_what, fileBytes) => {
    const l = startMeter(household());
    const img = await image({ fileBytes });
    const { campaign, offerId } = await offered(l, img);
    await waitFor(async () => (await command(offerId)).status === 'ok', 20_000, 'offer accepted');
    const failed = await waitFor(
      async () => (await events(l.h.meterId, 'firmware.verify_failed'))[0],
      30_000,
      'verify_failed event',
    );
    expect(failed).toMatchObject({ image: img.sha256 });
    expect(l.meter.firmwarePending).toBeNull();
    expect(await events(l.h.meterId, 'firmware.verified')).toEqual([]);
    // An activation anyway (a confused campaign) is refused: the meter holds no such image.
    const now = Math.floor(Date.now() / 1000);
    const act = await tx(world.db.pool, (c) =>
      activateImage(c, cmdKey, campaign, { id: l.h.meterId, serial: l.h.meterSerial }, img.sha256, now, 60),
    );
    await waitFor(async () => (await command(act.id)).status === 'rejected', 20_000, 'activation refused');
    expect((await command(act.id)).result_code).toBe('FW_UNKNOWN_IMAGE');
    expect(l.meter.firmwareVersion).toBe('1.0.0');
    expect(l.meter.firmwareSlot).toBe('A');
    expect(l.client.counters.fwReboots).toBe(0);
  });
});

describe('an offer the meter must refuse moves no block', () => {
  const cases: [string, string, () => Promise<{ l: Live; img: StoredImage }>][] = [
    [
      'wrong hardware class',
      'FW_WRONG_HARDWARE',
      async () => ({ l: startMeter(household()), img: await image({ hardwareClass: 'KW-3P-Z' }) }),
    ],
    [
      'lower security sequence',
      'FW_ROLLBACK',
      async () => ({ l: startMeter(household(), { sequence: 9 }), img: await image({ sequence: 4 }) }),
    ],
    [
      'signed with another key',
      'FW_BAD_SIGNATURE',
      // The meter trusts another firmware key: to it, this image is signed by a stranger.
      async () => ({ l: startMeter(household(), { fwKey: generateSigningKeyPair() }), img: await image() }),
    ],
  ];
  test.each(cases)('%s -> rejected %s, and the gateway got no request', async (_what, code, make) => {
    const { l, img } = await make();
    const before = world.gw.firmwareStats!.requests;
    const { campaign, offerId } = await offered(l, img);
    await waitFor(async () => (await command(offerId)).status === 'rejected', 20_000, 'offer refused');
    expect((await command(offerId)).result_code).toBe(code);
    // The refusal is the meter's last word on it: a few ticks later it has still asked nothing.
    await waitFor(() => l.client.counters.published > 2 && l.client.counters.published, 10_000);
    expect(l.client.counters.fwRequests).toBe(0);
    expect(world.gw.firmwareStats!.requests).toBe(before);
    expect(l.meter.firmwarePending).toBeNull();
    expect((await campaignMeter(world.db.pool, campaign, l.h.meterId)).blocks_done).toBe(0);
  });
});

describe('power loss', () => {
  test('mid-download: the meter rebuilt from its state resumes from the first missing block', async () => {
    const h = household();
    // The requests as the broker carries them, seen by a head-end observer of this meter's up/fw.
    const seen: FwRequestMessage[] = [];
    // Mosquitto takes the username as the client id: the gateway's login would be kicked off.
    const login = world.broker.kind === 'mosquitto' ? HEADEND_2 : HEADEND;
    const observer = await mqtt.connectAsync(world.broker.url, {
      protocolVersion: 4,
      clientId: `kw-fw-observer-${process.pid}`,
      username: login.username,
      password: login.password,
      clean: true,
      reconnectPeriod: 0,
    });
    observer.on('message', (_t, payload) => seen.push(decodeUp('fw', payload)));
    await observer.subscribeAsync(topics.up(h.meterSerial, 'fw'), { qos: 1 });
    try {
      // A slow link, so the cut lands mid-transfer.
      let l = startMeter(h, { delayMs: 40 });
      const img = await image({ version: '2.2.0' });
      const { offerId } = await offered(l, img);
      await waitFor(async () => (await command(offerId)).status === 'ok', 20_000, 'offer accepted');
      const count = (have: string | undefined) => (have ?? '').split('').filter((c) => c === '1').length;
      await waitFor(() => count(l.meter.firmwarePending?.have) >= 4, 30_000, '4 blocks held');
      // Power gone: no DISCONNECT, nothing more written; the process's objects are dropped.
      l.client.dropConnection();
      const held = l.meter.snapshot().firmware.pending!.have;
      expect(count(held)).toBeLessThan(10);
      const firstMissing = held.indexOf('0');
      const before = seen.length;

      l = startMeter(h);
      // What the rebuilt meter knows came from its file.
      expect(l.meter.firmwarePending?.have).toBe(held);
      await waitFor(
        () => l.meter.firmwarePending?.state === 'verified',
        30_000,
        'verified after the restart',
      );
      // Its first request after the restart is for the first block it lacked, not block 0.
      await waitFor(() => seen.length > before, 10_000, 'a request after the restart');
      expect(seen[before]).toMatchObject({ image: img.sha256, block: firstMissing });
      expect(seen.slice(before).every((r) => r.block >= firstMissing)).toBe(true);
      expect(l.client.counters.fwBlocks).toBe(10 - count(held));
      const verified = await waitFor(async () => (await events(h.meterId, 'firmware.verified'))[0], 10_000);
      expect(verified).toMatchObject({ image: img.sha256 });
    } finally {
      await observer.endAsync();
    }
  });
});

describe('network drop', () => {
  test('the broker goes away mid-download and comes back: the meter resumes and verifies', async () => {
    const h = household();
    const l = startMeter(h, { delayMs: 40 });
    // 40 blocks of 1 KiB: more than one request's worth is still missing when the link goes.
    const img = await image({ version: '2.3.0', blockSize: 1024 });
    expect(img.m.blockHashes).toHaveLength(40);
    const { offerId } = await offered(l, img);
    await waitFor(async () => (await command(offerId)).status === 'ok', 20_000, 'offer accepted');
    const held = () => (l.meter.firmwarePending?.have ?? '').split('').filter((c) => c === '1').length;
    await waitFor(() => held() >= 3, 30_000, '3 blocks held');
    const connects = l.client.counters.connects;
    await world.broker.kill();
    // What was already on its way still lands; then nothing more without a link.
    await sleep(1_000);
    expect(held()).toBeLessThan(40);
    const sentBefore = world.gw.firmwareStats!.blocksSent;
    await world.broker.restart();
    await waitFor(() => l.meter.firmwarePending?.state === 'verified', 60_000, 'verified after the drop');
    // It came back through a new connection and the gateway served the rest after the restart.
    expect(l.client.counters.connects).toBeGreaterThan(connects);
    expect(world.gw.firmwareStats!.blocksSent).toBeGreaterThan(sentBefore);
    const verified = await waitFor(async () => (await events(h.meterId, 'firmware.verified'))[0], 20_000);
    expect(verified).toMatchObject({ image: img.sha256 });
  });
});

describe('power loss at random points of transfer and activation', () => {
  // Seeded, so a failure names a cut that can be replayed.
  let x = 0x2545f491;
  const random = () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
  const cuts = Array.from({ length: 4 }, () => Math.floor(random() * 2_500));
  test.each(cuts)(
    'cut %i ms after the offer: the meter ends on the new image, never on none',
    async (cutMs) => {
      const h = household();
      let l = startMeter(h, { delayMs: 20 });
      const version = `3.0.${cutMs}`;
      const img = await image({ version });
      const { campaign } = await offered(l, img);
      let restarted = false;
      const cut = setTimeout(() => {
        // No DISCONNECT, nothing more written; then a new meter from the files alone (its
        // constructor throws if the active slot holds no image).
        l.client.dropConnection();
        l = startMeter(h);
        restarted = true;
      }, cutMs);
      try {
        // Activation once the meter holds the image verified (before or after the cut), at once.
        await waitFor(
          () =>
            ['verified', 'scheduled', 'trial'].includes(l.meter.firmwarePending?.state ?? '') ||
            l.meter.firmwareVersion === version,
          30_000,
          'verified',
        );
        if (l.meter.firmwarePending?.state === 'verified') {
          const now = Math.floor(Date.now() / 1000);
          await tx(world.db.pool, (c) =>
            activateImage(c, cmdKey, campaign, { id: h.meterId, serial: h.meterSerial }, img.sha256, now, 60),
          );
        }
        await waitFor(
          () => l.meter.firmwareVersion === version && !l.meter.firmwarePending,
          30_000,
          'confirmed',
        );
        await waitFor(() => restarted, 5_000, 'the cut');
        // After the restart too, if the cut came late: the saved state is the confirmed image.
        await waitFor(
          () => l.meter.firmwareVersion === version && !l.meter.firmwarePending,
          30_000,
          'settled',
        );
        expect(l.meter.radioWorks).toBe(true);
      } finally {
        clearTimeout(cut);
      }
    },
  );
});

describe('power loss during activation', () => {
  /** Cut the power the instant `when` holds (checked on every turn of the event loop), then rebuild the meter. */
  async function cutWhen(l: Live, when: () => boolean): Promise<Live> {
    await new Promise<void>((resolve, reject) => {
      const until = Date.now() + 30_000;
      const check = () => {
        if (when()) return resolve();
        if (Date.now() > until) return reject(new Error('the moment to cut never came'));
        setImmediate(check);
      };
      check();
    });
    l.client.dropConnection();
    return startMeter(l.h);
  }

  test.each([
    ['scheduled (waiting for its time)', 'scheduled', 3],
    ['on trial (booted, not yet confirmed)', 'trial', 0],
  ] as const)('%s: the rebuilt meter goes on and ends on the new image', async (_what, state, inS) => {
    const h = household();
    let l = startMeter(h);
    const version = `3.1.${inS}`;
    const img = await image({ version });
    const { campaign } = await offered(l, img);
    await waitFor(() => l.meter.firmwarePending?.state === 'verified', 30_000, 'verified');
    const at = Math.floor(Date.now() / 1000) + inS;
    await tx(world.db.pool, (c) =>
      activateImage(c, cmdKey, campaign, { id: h.meterId, serial: h.meterSerial }, img.sha256, at, 60),
    );
    l = await cutWhen(l, () => l.meter.firmwarePending?.state === state);
    // The rebuilt meter starts where the files say: still scheduled, or on trial in the new slot.
    expect(l.meter.firmwarePending?.state).toBe(state);
    await waitFor(() => l.meter.firmwareVersion === version && !l.meter.firmwarePending, 30_000, 'confirmed');
    expect(l.meter.radioWorks).toBe(true);
    expect(await events(h.meterId, 'firmware.boot_failed')).toEqual([]);
  });
});

function flip(b: Buffer, at: number): Buffer {
  const out = Buffer.from(b);
  out[at] = out[at]! ^ 0x01;
  return out;
}
