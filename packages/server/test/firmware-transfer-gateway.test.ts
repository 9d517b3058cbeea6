import { mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  decodeDown,
  encodeUp,
  generateSigningKeyPair,
  privateKeyFromB64,
  sha256,
  topics,
  type FwBlockMessage,
  type StatusMessage,
} from '@kilowire/protocol';
import { startGatewayWorld, type GatewayWorld } from './support/gateway-world.ts';
import { readingsMsg, waitFor, type RawMeter } from './support/world.ts';
import {
  campaignMeter,
  offer,
  runningCampaign,
  storeImage,
  supplierOfMeter,
  type StoredImage,
} from './support/firmware-transfer.ts';

/**
 * #10 the gateway's block serving, with hand-driven meters on the real broker: only the
 * offered image, only to the meter it was offered to, only blocks inside it; progress from
 * requests and from the meter's status; and blocks never hold up readings acks.
 */

const fwKey = privateKeyFromB64(generateSigningKeyPair().privateKey);
const cmdKey = privateKeyFromB64(generateSigningKeyPair().privateKey);
let dir: string;
let world: GatewayWorld;
let supplier: number;
let img: StoredImage;
let campaign: number;
/** Blocks each hand-driven meter received, in arrival order. */
const blocks = new Map<string, FwBlockMessage[]>();

function listen(m: RawMeter): void {
  blocks.set(m.id, []);
  m.client.on('message', (topic, payload) => {
    if (topic === topics.down(m.id, 'fw')) blocks.get(m.id)!.push(decodeDown('fw', payload));
  });
}

async function ask(m: RawMeter, image: string, block: number, count?: number): Promise<void> {
  await m.raw('fw', encodeUp('fw', { v: 1, image, block, ...(count ? { count } : {}) }));
}

const rejected = () => world.gw.rejectedByCode.get('FW_NOT_OFFERED') ?? 0;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'kw-fw-gw-'));
  world = await startGatewayWorld(3, {
    rawMeters: true,
    gateway: {
      firmwareDir: dir,
      firmware: { progressMs: 50, offerTtlMs: 100, blocksPerSecond: 100, maxInFlight: 4 },
    },
  });
  for (const m of world.meters) listen(m);
  supplier = await supplierOfMeter(world.db.pool, world.hh[0]!.meterId);
  img = await storeImage(world.db.pool, dir, supplier, fwKey, { size: 40_000, blockSize: 4096 });
  campaign = await runningCampaign(world.db.pool, supplier, img, [world.hh[0]!.meterId]);
  await offer(
    world.db.pool,
    cmdKey,
    campaign,
    { id: world.hh[0]!.meterId, serial: world.hh[0]!.meterSerial },
    img,
  );
});
afterAll(async () => {
  await world?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('serving blocks', () => {
  test('the offered meter gets exactly the blocks it asks for, each the image’s bytes', async () => {
    const m = world.meters[0]!;
    await ask(m, img.sha256, 0, 8);
    const got = await waitFor(() => blocks.get(m.id)!.length >= 8 && blocks.get(m.id)!, 10_000, '8 blocks');
    expect(got.map((b) => b.block).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    for (const b of got) {
      expect(b.image).toBe(img.sha256);
      expect(sha256(Buffer.from(b.data, 'base64'))).toBe(img.m.blockHashes[b.block]);
    }
    // The last block is short (40,000 = 9 x 4096 + 3,136) and a count past the end is clipped.
    await ask(m, img.sha256, 9, 8);
    const last = await waitFor(() => blocks.get(m.id)!.find((b) => b.block === 9), 10_000, 'block 9');
    expect(Buffer.from(last.data, 'base64')).toEqual(img.bytes.subarray(9 * 4096));
    await ask(m, img.sha256, 8);
    await waitFor(() => blocks.get(m.id)!.find((b) => b.block === 8), 10_000, 'block 8');
    expect(blocks.get(m.id)!.length).toBe(10);
    const whole = Buffer.concat(
      [...blocks.get(m.id)!].sort((a, b) => a.block - b.block).map((b) => Buffer.from(b.data, 'base64')),
    );
    expect(sha256(whole)).toBe(img.sha256);
  });

  test('a block past the end, another image, or a meter with no offer -> FW_NOT_OFFERED, nothing sent', async () => {
    const [m0, m1] = world.meters as [RawMeter, RawMeter];
    const sent0 = blocks.get(m0.id)!.length;
    let before = rejected();
    await ask(m0, img.sha256, 10);
    await waitFor(() => rejected() === before + 1, 10_000, 'past-the-end refusal');
    before = rejected();
    await ask(m0, 'f'.repeat(64), 0);
    await waitFor(() => rejected() === before + 1, 10_000, 'other-image refusal');
    before = rejected();
    // Meter 1 was never offered anything, though it names the image exactly.
    await ask(m1, img.sha256, 0, 8);
    await waitFor(() => rejected() === before + 1, 10_000, 'no-offer refusal');
    // A round trip on meter 0 after them: anything sent for them would have arrived by now.
    await ask(m0, img.sha256, 3);
    await waitFor(() => blocks.get(m0.id)!.length === sent0 + 1, 10_000, 'block 3 again');
    expect(blocks.get(m1.id)).toEqual([]);
    expect(
      blocks
        .get(m0.id)!
        .slice(sent0)
        .map((b) => b.block),
    ).toEqual([3]);
  });

  test('progress: requests move the row to downloading with the blocks held; the meter’s status corrects it', async () => {
    const h = world.hh[0]!;
    // It asked for block 9 above: it holds 0..8.
    await waitFor(
      async () => {
        const r = await campaignMeter(world.db.pool, campaign, h.meterId);
        return r.state === 'downloading' && r.blocks_done === 9;
      },
      10_000,
      'progress from requests',
    );
    const status: StatusMessage = {
      v: 1,
      t: Math.floor(Date.now() / 1000),
      relay: 'connected',
      mode: 'credit',
      firmware: {
        slot: 'A',
        version: '1.0.0',
        sequence: 42,
        pending: { image: img.sha256, version: img.m.version, state: 'downloading', blocks: 10, of: 10 },
      },
      lastCounter: 0,
      outbox: 0,
      registers: { '1.0.1.8.0': 0, '1.0.1.8.1': 0, '1.0.1.8.2': 0, '1.0.2.8.0': 0 },
    };
    await world.meters[0]!.raw('status', encodeUp('status', status));
    await waitFor(
      async () => (await campaignMeter(world.db.pool, campaign, h.meterId)).blocks_done === 10,
      10_000,
      'progress from status',
    );
    const { rows } = await world.db.pool.query<{ firmware_sequence: number }>(
      'SELECT firmware_sequence FROM meters WHERE id = $1',
      [h.meterId],
    );
    expect(rows[0]!.firmware_sequence).toBe(42);
  });

  test('a halted campaign serves nothing more, and serves again once it runs', async () => {
    const m = world.meters[0]!;
    /** Ask once; whether the gateway refused or sent the block. */
    const outcome = async (): Promise<'refused' | 'served'> => {
      const before = rejected();
      const sent = blocks.get(m.id)!.length;
      await ask(m, img.sha256, 0);
      await waitFor(() => rejected() > before || blocks.get(m.id)!.length > sent, 5_000, 'an answer');
      return rejected() > before ? 'refused' : 'served';
    };
    await world.db.pool.query(`UPDATE firmware_campaigns SET status = 'halted' WHERE id = $1`, [campaign]);
    // The offer (or its absence) is remembered for offerTtlMs (100 ms here): ask until it shows.
    await waitFor(async () => (await outcome()) === 'refused', 10_000, 'refusal after the halt');
    await world.db.pool.query(`UPDATE firmware_campaigns SET status = 'running' WHERE id = $1`, [campaign]);
    await waitFor(async () => (await outcome()) === 'served', 10_000, 'served again');
  });
});

describe('a missing image file', () => {
  test('is no crash: nothing is sent until the file is back, then the same request is served', async () => {
    const m = world.meters[1]!;
    const lost = await storeImage(world.db.pool, dir, supplier, fwKey, { size: 5_000, blockSize: 1024 });
    const bytes = await readFile(lost.file);
    await unlink(lost.file);
    const c = await runningCampaign(world.db.pool, supplier, lost, [world.hh[1]!.meterId]);
    await offer(world.db.pool, cmdKey, c, { id: world.hh[1]!.meterId, serial: m.id }, lost);
    const asked = world.gw.firmwareStats!.requests;
    await ask(m, lost.sha256, 0, 5);
    await waitFor(() => world.gw.firmwareStats!.requests > asked, 10_000, 'the request seen');
    // The gateway is still serving others: meter 0 gets a block of its own image meanwhile.
    const sent0 = blocks.get(world.meters[0]!.id)!.length;
    await ask(world.meters[0]!, img.sha256, 2);
    await waitFor(() => blocks.get(world.meters[0]!.id)!.length > sent0, 10_000, 'meter 0 served');
    expect(blocks.get(m.id)).toEqual([]);
    await writeFile(lost.file, bytes);
    await ask(m, lost.sha256, 0, 5);
    await waitFor(() => blocks.get(m.id)!.length === 5, 10_000, 'all 5 blocks once the file is back');
  });
});

describe('pacing', () => {
  test('readings are acknowledged while a long queue of blocks is still being sent', async () => {
    const m = world.meters[0]!;
    const r = world.meters[2]!;
    // 4 blocks in flight at 100/s, and a few hundred asked for: the queue lasts a while.
    const big = await storeImage(world.db.pool, dir, supplier, fwKey, { size: 256 * 1024, blockSize: 1024 });
    await world.db.pool.query(
      `UPDATE firmware_campaign_meters SET state = 'confirmed' WHERE campaign_id = $1`,
      [campaign],
    );
    const c2 = await runningCampaign(world.db.pool, supplier, big, [world.hh[0]!.meterId]);
    await offer(world.db.pool, cmdKey, c2, { id: world.hh[0]!.meterId, serial: m.id }, big);
    const before = blocks.get(m.id)!.length;
    for (let b = 0; b < 256; b += 8) await ask(m, big.sha256, b, 8);
    await waitFor(() => blocks.get(m.id)!.length > before, 10_000, 'first block of the big image');
    const now = Math.floor(Date.now() / 1000);
    const start = now - (now % 1800) - 1800;
    await r.readings(readingsMsg(1, start, [100], 0));
    await r.waitAck((a) => a.kind === 'ack' && a.stream === 'readings' && a.upTo >= 1);
    const atAck = blocks.get(m.id)!.length - before;
    // The ack did not wait for the firmware queue to drain.
    expect(atAck).toBeLessThan(256);
    await waitFor(() => blocks.get(m.id)!.length - before >= 256, 30_000, 'all 256 blocks');
    expect(world.gw.firmwareStats!.dropped).toBe(0);
  });
});
