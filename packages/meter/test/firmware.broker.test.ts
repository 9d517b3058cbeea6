import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeterClient } from '../src/client.ts';
import { Meter } from '../src/meter.ts';
import { FileStore, MemoryStore, type MeterStore } from '../src/store.ts';
import { startOwnMosquitto } from './fault-broker.ts';
import { TinyHeadend } from './fw-headend.ts';
import { BS, HW, flipped, fwKeys, testImage } from './fw-support.ts';
import { T0, keys, serverKey, until } from './helpers.ts';

/**
 * The meter's side of a firmware transfer over a real broker (a Mosquitto of the test's own),
 * against a tiny head-end that answers block requests from an image held in memory: offer,
 * download, verification, activation, trial, confirmation or revert, and resumption after
 * the meter lost power — with the meter's real MQTT client.
 */
let broker: { url: string; close(): Promise<void> };
beforeAll(async () => {
  broker = await startOwnMosquitto();
});
afterAll(async () => {
  await broker?.close();
});

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function newMeter(id: string, store: MeterStore): Meter {
  return new Meter({
    id,
    tz: 'Europe/London',
    serverPublicKey: keys.publicKey,
    firmwarePublicKey: fwKeys.publicKey,
    store,
    seed: 1,
    startS: T0,
    hardwareClass: HW,
    firmwareSequence: 3,
    firmwarePacing: { requestTimeoutMs: 2_000 },
  });
}

function newClient(meter: Meter): MeterClient {
  return new MeterClient({
    meter,
    brokerUrl: broker.url,
    password: 'x',
    autoTick: false,
    reconnectPeriodMs: 100,
  });
}

async function setup(store: MeterStore = new MemoryStore()) {
  const id = `F${randomBytes(5).toString('hex')}`;
  const he = await TinyHeadend.start(broker.url, id);
  const meter = newMeter(id, store);
  const client = newClient(meter);
  client.start();
  await until('connected', () => client.connected && he.statuses.length > 0);
  return { id, he, meter, client, store };
}

describe('firmware over a real broker', () => {
  it('downloads, verifies, activates on trial and confirms a good image', async () => {
    const { he, meter, client } = await setup();
    try {
      const img = testImage({ version: '2.0.0', sequence: 5 });
      expect(await he.offer(img)).toMatchObject({ result: 'ok' });
      await until('verified', () => he.codes().includes('firmware.verified'), 15_000);
      expect(he.requests[0]).toEqual({ image: img.sha, block: 0, count: 8 });
      expect(meter.firmwarePending?.state).toBe('verified');
      await until('verified status', () => he.statuses.some((s) => s.firmware.pending?.state === 'verified'));

      const at = T0 + 3600;
      expect(
        await he.command({ type: 'firmware.activate', sha256: img.sha, at, confirmS: 120 }),
      ).toMatchObject({
        result: 'ok',
      });
      client.tick(at - 1);
      expect(client.counters.fwReboots).toBe(0);
      const connectsBefore = client.counters.connects;
      client.tick(at);
      expect(client.counters.fwReboots).toBe(1);
      await until('confirmed', () => he.codes().includes('firmware.changed'), 15_000);
      expect(client.counters.connects).toBe(connectsBefore + 1);
      expect(he.events.find((e) => e.code === 'firmware.changed')?.data).toEqual({
        from: '1.0.0',
        to: '2.0.0',
        image: img.sha,
      });
      await until('status without pending', () =>
        he.statuses.some((s) => s.firmware.version === '2.0.0' && !s.firmware.pending),
      );
      expect(he.statuses.at(-1)?.firmware).toEqual({ slot: 'B', version: '2.0.0', sequence: 5 });
      expect(he.codes()).not.toContain('firmware.boot_failed');
    } finally {
      await client.stop();
      await he.end();
    }
  });

  it('refuses wrong hardware, a lower or equal sequence and the wrong key before any block is asked for', async () => {
    const { he, client } = await setup();
    try {
      const refused = [
        testImage({ hardwareClass: 'KW-3P-B' }),
        testImage({ sequence: 2 }),
        testImage({ sequence: 3 }),
        testImage({ key: serverKey }),
      ];
      const codes = [];
      for (const img of refused) codes.push((await he.offer(img)).code);
      expect(codes).toEqual(['FW_WRONG_HARDWARE', 'FW_ROLLBACK', 'FW_ROLLBACK', 'FW_BAD_SIGNATURE']);
      // A good offer after them: its first request proves the meter has handled all of the above.
      const good = testImage({ seed: 77 });
      await he.offer(good);
      await until('first request of the good image', () => he.requests.length > 0);
      expect(new Set(he.requests.map((r) => r.image))).toEqual(new Set([good.sha]));
    } finally {
      await client.stop();
      await he.end();
    }
  });

  it('reverts an image that cannot reconnect once confirmS has passed, and reports boot_failed', async () => {
    const { he, meter, client } = await setup();
    try {
      const img = testImage({ behaviour: 'no_reconnect' });
      await he.offer(img);
      await until('verified', () => he.codes().includes('firmware.verified'), 15_000);
      await he.command({ type: 'firmware.activate', sha256: img.sha, at: T0 + 100, confirmS: 60 });
      client.tick(T0 + 100);
      expect(meter.firmwareVersion).toBe('2.0.0');
      expect(meter.radioWorks).toBe(false);
      expect(client.connected).toBe(false);
      client.tick(T0 + 159);
      expect(client.connected).toBe(false);
      expect(client.counters.fwReverts).toBe(0);
      client.tick(T0 + 160);
      expect(client.counters.fwReverts).toBe(1);
      expect(meter.firmwareVersion).toBe('1.0.0');
      await until('boot_failed reported', () => he.codes().includes('firmware.boot_failed'), 15_000);
      expect(he.events.find((e) => e.code === 'firmware.boot_failed')).toEqual({
        code: 'firmware.boot_failed',
        t: T0 + 160,
        data: { image: img.sha, version: '2.0.0', reason: 'no_reconnect' },
      });
      expect(he.codes()).not.toContain('firmware.changed');
      // No status ever showed the new version: the trial image never came online.
      expect(he.statuses.some((s) => s.firmware.version === '2.0.0')).toBe(false);
    } finally {
      await client.stop();
      await he.end();
    }
  });

  it('refuses an image served with one changed byte: verify_failed, never activated', async () => {
    const { he, meter, client } = await setup();
    try {
      const img = testImage();
      await he.offer(img, flipped(img.bytes, 6 * BS + 3));
      await until('verify_failed', () => he.codes().includes('firmware.verify_failed'), 15_000);
      expect(he.events.find((e) => e.code === 'firmware.verify_failed')?.data).toMatchObject({
        image: img.sha,
        reason: 'block_hash',
        block: 6,
      });
      expect(await he.command({ type: 'firmware.activate', sha256: img.sha })).toMatchObject({
        code: 'FW_UNKNOWN_IMAGE',
      });
      expect(meter.firmwareVersion).toBe('1.0.0');
    } finally {
      await client.stop();
      await he.end();
    }
  });

  it('after a power loss mid-transfer the meter boots from its files and resumes from the first missing block', async () => {
    const d = mkdtempSync(join(tmpdir(), 'kw-fwb-'));
    dirs.push(d);
    const store = new FileStore(join(d, 'm.json'), { fsync: false });
    const { id, he, client } = await setup(store);
    let second: MeterClient | null = null;
    try {
      const img = testImage({ size: 40 * BS });
      he.answerAtMost = 2;
      await he.offer(img);
      await until('16 blocks held', () => client.meter.status().firmware.pending?.blocks === 16, 15_000);
      client.dropConnection(); // power gone: no clean shutdown
      const held = he.requests.length;
      second = newClient(newMeter(id, store));
      expect(second.meter.status().firmware.pending).toMatchObject({
        state: 'downloading',
        blocks: 16,
        of: 40,
      });
      const resumeFrom = 16;
      he.answerAtMost = Infinity;
      second.start();
      await until('verified after resume', () => he.codes().includes('firmware.verified'), 15_000);
      expect(he.requests[held]?.block).toBe(resumeFrom);
      expect(he.requests.slice(held).every((r) => r.block >= resumeFrom)).toBe(true);
    } finally {
      await client.stop();
      await second?.stop();
      await he.end();
    }
  });
});
