import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet } from '../src/fleet.ts';
import { seeded, startOwnMosquitto } from './fault-broker.ts';
import { TinyHeadend } from './fw-headend.ts';
import { HW, fwKeys, testImage } from './fw-support.ts';
import { keys, until } from './helpers.ts';

/**
 * The simulator's firmware faults: every meter of the fleet loses power once at a random
 * point of the transfer or the activation (half of them on a slow link), and every one still
 * ends on the new image, confirmed — never without one.
 */
let broker: { url: string; close(): Promise<void> };
const dir = mkdtempSync(join(tmpdir(), 'kw-fwfleet-'));
beforeAll(async () => {
  broker = await startOwnMosquitto();
});
afterAll(async () => {
  await broker?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('fleet firmware faults', () => {
  it('power loss at a random point of transfer or activation on every meter: all end on the new image', async () => {
    const prefix = `FF${randomBytes(3).toString('hex')}`;
    const ids = [1, 2, 3, 4].map((i) => `${prefix}${i}`);
    const fleet = new Fleet({
      brokerUrl: broker.url,
      serverPublicKey: keys.publicKey,
      firmwarePublicKey: fwKeys.publicKey,
      meters: ids.map((id) => ({ id, password: 'x', hardwareClass: HW, firmwareSequence: 3 })),
      stateDir: dir,
      fsync: false,
      tickMs: 50,
      faults: { fwPowerLossShare: 1, slowLinkShare: 0.5, slowLinkBlockDelayMs: 20 },
      random: seeded(11),
    });
    const hes = await Promise.all(ids.map((id) => TinyHeadend.start(broker.url, id)));
    fleet.start();
    try {
      await until('all connected', () => ids.every((id) => fleet.client(id)?.connected), 15_000);
      const img = testImage({ size: 30 * 256 });
      const offers = await Promise.all(hes.map((he) => he.offer(img)));
      expect(offers.map((r) => r.result)).toEqual(['ok', 'ok', 'ok', 'ok']);
      // Each meter's activation goes once its image is verified (a power loss may come in between).
      await Promise.all(
        hes.map(async (he, i) => {
          await until(
            `${ids[i]} verified`,
            () => fleet.meter(ids[i]!)?.firmwarePending?.state === 'verified',
            30_000,
          );
          expect(await he.command({ type: 'firmware.activate', sha256: img.sha })).toMatchObject({
            result: 'ok',
          });
        }),
      );
      await until(
        'every meter confirmed the new image',
        () =>
          ids.every(
            (id) => fleet.meter(id)?.firmwareVersion === '2.0.0' && !fleet.meter(id)?.firmwarePending,
          ),
        30_000,
      );
      await until(
        'changed reported by all',
        () => hes.every((he) => he.codes().includes('firmware.changed')),
        15_000,
      );
      expect(fleet.stats().faults.fwPowerLoss).toBe(4);
      for (const he of hes) {
        expect(he.codes()).not.toContain('firmware.boot_failed');
        expect(he.codes()).not.toContain('firmware.verify_failed');
      }
    } finally {
      await fleet.stop();
      await Promise.all(hes.map((he) => he.end()));
    }
  });
});
