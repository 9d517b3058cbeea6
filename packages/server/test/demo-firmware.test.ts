import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSimHeader } from '@kilowire/meter';
import { generateSigningKeyPair, publicKeyFromB64, verifyManifest } from '@kilowire/protocol';
import { DEMO_FW_SEQUENCE, DEMO_FW_VERSION, demoFirmware } from '../src/demo/firmware.ts';
import { DEMO_HARDWARE_CLASS, seedDemo, type FleetFile } from '../src/demo/seed.ts';
import { createTestDb, type TestDb } from './support/db.ts';

/**
 * The demo's firmware seed against real PostgreSQL: a simulated "good" image signed with the
 * firmware key, stored where uploads are stored, and a four-meter campaign (one canary, one
 * wave) asked for by one supplier admin and approved by the other, running and ready for
 * the engine; once only, and nothing at all when the firmware key is kept offline.
 */
let db: TestDb;
let dir: string;
const fw = generateSigningKeyPair();
const cmd = generateSigningKeyPair();
const lines: string[] = [];
const log = { info: (...a: unknown[]) => void lines.push(a.map(String).join(' ')) };

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'kw-demo-fw-'));
  db = await createTestDb();
  await seedDemo(db.pool, dir, cmd.publicKey, { households: 6, historyDays: 0 });
});
afterAll(async () => {
  await db.drop();
  rmSync(dir, { recursive: true, force: true });
});

describe('demo firmware', () => {
  it('makes nothing when the firmware key is kept offline', async () => {
    const r = await demoFirmware(
      db.pool,
      { firmwareSigningKey: null, firmwareDir: path.join(dir, 'fw') },
      log,
    );
    expect(r).toBeNull();
    expect(lines.at(-1)).toMatch(/no firmware signing key/);
    const { rows } = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM firmware_images');
    expect(rows[0]!.n).toBe(0);
  });

  it('seeds a signed image and an approved four-meter campaign, once', async () => {
    const fwDir = path.join(dir, 'firmware');
    const r = await demoFirmware(db.pool, { firmwareSigningKey: fw.privateKey, firmwareDir: fwDir }, log);
    expect(r).toMatchObject({ created: true });

    // The image: signed with the firmware key, the file beside it is exactly the image.
    const img = (
      await db.pool.query<{
        version: string;
        sequence: number;
        hardware_class: string;
        size: number;
        sha256: string;
        manifest: string;
        signature: string;
        storage_key: string;
        uploaded_by: string;
      }>('SELECT * FROM firmware_images WHERE id = $1', [r!.imageId])
    ).rows[0]!;
    expect(img).toMatchObject({
      version: DEMO_FW_VERSION,
      sequence: DEMO_FW_SEQUENCE,
      hardware_class: DEMO_HARDWARE_CLASS,
    });
    const m = verifyManifest(img.manifest, img.signature, publicKeyFromB64(fw.publicKey));
    expect(m).toMatchObject({ sha256: img.sha256, size: img.size, hardwareClass: DEMO_HARDWARE_CLASS });
    // Another key does not verify it: the firmware key signed it, not the command key.
    expect(() => verifyManifest(img.manifest, img.signature, publicKeyFromB64(cmd.publicKey))).toThrow();
    const bytes = readFileSync(path.join(fwDir, img.storage_key));
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(img.sha256);
    expect(readdirSync(fwDir)).toEqual([img.storage_key]);
    // A simulated meter boots it as a good image.
    expect(readSimHeader(bytes)).toEqual({ version: DEMO_FW_VERSION, behaviour: 'good' });

    // The simulated meters report the class the image names.
    const fleet = JSON.parse(readFileSync(path.join(dir, 'fleet.json'), 'utf8')) as FleetFile;
    expect(new Set(fleet.meters.map((x) => x.hardwareClass))).toEqual(new Set([DEMO_HARDWARE_CLASS]));

    // The campaign: running, one canary then a wave of three, the first four demo meters.
    const c = (
      await db.pool.query<{
        status: string;
        stage: number;
        stages: number;
        request_id: string;
        canary_count: number;
      }>('SELECT status, stage, stages, request_id, canary_count FROM firmware_campaigns WHERE id = $1', [
        r!.campaignId,
      ])
    ).rows[0]!;
    expect(c).toMatchObject({ status: 'running', stage: 0, stages: 2, canary_count: 1 });
    const meters = (
      await db.pool.query<{ serial: string; stage: number; state: string; blocks_total: number }>(
        `SELECT m.serial, cm.stage, cm.state, cm.blocks_total FROM firmware_campaign_meters cm
           JOIN meters m ON m.id = cm.meter_id WHERE cm.campaign_id = $1 ORDER BY m.serial`,
        [r!.campaignId],
      )
    ).rows;
    expect(meters).toEqual([
      { serial: 'KW000001', stage: 0, state: 'pending', blocks_total: 16 },
      { serial: 'KW000002', stage: 1, state: 'pending', blocks_total: 16 },
      { serial: 'KW000003', stage: 1, state: 'pending', blocks_total: 16 },
      { serial: 'KW000004', stage: 1, state: 'pending', blocks_total: 16 },
    ]);
    // Asked for by the first supplier admin, approved by the second.
    const req = (
      await db.pool.query<{ kind: string; status: string; asked: string; decided: string; needs: string[] }>(
        `SELECT r.kind, r.status, a.email AS asked, d.email AS decided, r.needs FROM action_requests r
           JOIN users a ON a.id = r.requested_by JOIN users d ON d.id = r.decided_by WHERE r.id = $1`,
        [c.request_id],
      )
    ).rows[0]!;
    expect(req).toEqual({
      kind: 'firmware.campaign',
      status: 'approved',
      asked: 'supplier@kilowire.demo',
      decided: 'supplier2@kilowire.demo',
      needs: ['firmware'],
    });
    const kinds = (
      await db.pool.query<{ kind: string }>(
        'SELECT kind FROM firmware_campaign_events WHERE campaign_id = $1 ORDER BY id',
        [r!.campaignId],
      )
    ).rows.map((x) => x.kind);
    expect(kinds).toEqual(['created', 'started', 'stage_started']);

    // A restart: the same image and campaign, nothing new.
    const again = await demoFirmware(db.pool, { firmwareSigningKey: fw.privateKey, firmwareDir: fwDir }, log);
    expect(again).toEqual({ imageId: r!.imageId, campaignId: r!.campaignId, created: false });
    const n = await db.pool.query<{ i: number; c: number }>(
      'SELECT (SELECT count(*)::int FROM firmware_images) AS i, (SELECT count(*)::int FROM firmware_campaigns) AS c',
    );
    expect(n.rows[0]).toEqual({ i: 1, c: 1 });
    expect(readdirSync(fwDir)).toEqual([img.storage_key]);
  });
});
