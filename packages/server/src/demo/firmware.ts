import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { blockCount, buildManifest, privateKeyFromB64, signManifest } from '@kilowire/protocol';
import type { Config } from '../config.ts';
import { withTx, type Pool } from '../db/pool.ts';
import type { Logger } from '../log.ts';
import { DEMO } from './seed.ts';

/**
 * The demo's firmware (#10): one image signed with the firmware key, and a small campaign of
 * a few demo meters, created by the demo's supplier admin and approved by the second one, with
 * an activation window that covers the whole day. The live system (the campaign engine, the
 * gateway's block serving and the simulated meters) takes it to the end, so a newcomer opens
 * Firmware and finds an image and a campaign that ran: offered, downloaded, verified,
 * activated and confirmed. Safe to call on every start: once the demo image exists, nothing
 * new is made.
 */

/** The demo image's version and security sequence (the simulated meters start on 1.0.0). */
export const DEMO_FW_VERSION = '1.1.0';
export const DEMO_FW_SEQUENCE = 2;
const DEMO_FW_NOTES = 'Demo build: faster register reads and a fixed DST edge case.';
/** Small on purpose: the demo's campaign finishes in a minute or two on a laptop. */
const DEMO_FW_SIZE = 64 * 1024;
/** Meters in the demo campaign: one canary, then one wave of the rest. */
const DEMO_CAMPAIGN_METERS = 4;

/**
 * The demo image's bytes: a simulated meter's "good" image (a small header the simulated
 * meter boots by, then filler), signed and transferred like any real image.
 */
export async function demoImageBytes(size = DEMO_FW_SIZE): Promise<Uint8Array> {
  // Loaded here only, as the demo seed does: the meter model is the simulator's.
  const { makeSimImage } = await import('@kilowire/meter');
  return makeSimImage({ version: DEMO_FW_VERSION, size, behaviour: 'good' });
}

export interface DemoFirmwareResult {
  imageId: number;
  campaignId: number | null;
  /** False when both were already there (a restart). */
  created: boolean;
}

/**
 * Seed the demo's image and campaign. Returns null (and logs why) when the firmware key is
 * kept offline: the demo then has no image of its own.
 */
export async function demoFirmware(
  pool: Pool,
  config: Pick<Config, 'firmwareSigningKey' | 'firmwareDir'>,
  log: Pick<Logger, 'info'>,
  image: () => Uint8Array | Promise<Uint8Array> = demoImageBytes,
): Promise<DemoFirmwareResult | null> {
  if (!config.firmwareSigningKey) {
    log.info('demo: no firmware signing key here (kept offline), so no demo firmware image or campaign');
    return null;
  }
  const staff = await pool.query<{ id: string; email: string; org_id: number }>(
    'SELECT id, email, org_id FROM users WHERE email = ANY($1::text[])',
    [[DEMO.supplier.email, DEMO.supplier2.email]],
  );
  const asker = staff.rows.find((r) => r.email === DEMO.supplier.email);
  const approver = staff.rows.find((r) => r.email === DEMO.supplier2.email);
  if (!asker || !approver) {
    log.info('demo: the demo supplier admins are not here, so no demo firmware');
    return null;
  }
  const supplierId = asker.org_id;
  const had = await pool.query<{ id: string; campaign: string | null }>(
    `SELECT i.id, (SELECT min(c.id) FROM firmware_campaigns c WHERE c.image_id = i.id) AS campaign
       FROM firmware_images i WHERE i.supplier_id = $1 AND i.version = $2 AND i.notes = $3`,
    [supplierId, DEMO_FW_VERSION, DEMO_FW_NOTES],
  );
  if (had.rows[0])
    return {
      imageId: Number(had.rows[0].id),
      campaignId: had.rows[0].campaign === null ? null : Number(had.rows[0].campaign),
      created: false,
    };

  // The first demo meters, the ones the simulator runs whatever its size.
  const meters = (
    await pool.query<{ id: number; hardware_class: string }>(
      `SELECT id, hardware_class FROM meters WHERE supplier_id = $1 AND status = 'active'
        ORDER BY serial LIMIT $2`,
      [supplierId, DEMO_CAMPAIGN_METERS],
    )
  ).rows;
  const hardwareClass = meters[0]?.hardware_class;
  if (!hardwareClass) {
    log.info('demo: no demo meters, so no demo firmware');
    return null;
  }
  const sameClass = meters.filter((m) => m.hardware_class === hardwareClass);

  const bytes = await image();
  const manifest = buildManifest(bytes, {
    version: DEMO_FW_VERSION,
    sequence: DEMO_FW_SEQUENCE,
    hardwareClass,
  });
  const signed = signManifest(manifest, privateKeyFromB64(config.firmwareSigningKey));
  // Stored as an upload stores it (<firmwareDir>/<sha256>.bin): written aside, then renamed,
  // so the gateway never serves half a file.
  const storageKey = `${manifest.sha256}.bin`;
  await mkdir(config.firmwareDir, { recursive: true });
  const part = path.join(config.firmwareDir, `${storageKey}.demo-part`);
  await writeFile(part, bytes, { mode: 0o600 });
  await rename(part, path.join(config.firmwareDir, storageKey));

  const blocks = blockCount(manifest.size, manifest.blockSize);
  const askerId = Number(asker.id);
  const approverId = Number(approver.id);
  return withTx(pool, { actorId: askerId }, async (t) => {
    const img = await t.c.query<{ id: string }>(
      `INSERT INTO firmware_images (supplier_id, version, sequence, hardware_class, size, sha256, block_size,
                                    block_hashes, manifest, signature, storage_key, notes, uploaded_by)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id`,
      [
        supplierId,
        manifest.version,
        manifest.sequence,
        manifest.hardwareClass,
        manifest.size,
        manifest.sha256,
        manifest.blockSize,
        manifest.blockHashes,
        signed.manifest,
        signed.signature,
        storageKey,
        DEMO_FW_NOTES,
        askerId,
      ],
    );
    const imageId = Number(img.rows[0]!.id);
    await t.audit('firmware.upload', String(imageId), {
      sha256: manifest.sha256,
      version: manifest.version,
      demo: true,
    });

    // Asked for by the first supplier admin, approved by the second (never the same person).
    const name = `Demo ${DEMO_FW_VERSION} roll-out`;
    const reason = 'One canary meter, then the rest.';
    const req = await t.c.query<{ id: string }>(
      `INSERT INTO action_requests (supplier_id, kind, requested_by, reason, reason_text, needs, status,
                                    decided_by, decided_at, decision_reason, expires_at)
       VALUES ($1, 'firmware.campaign', $2, 'firmware_campaign', $3, ARRAY['firmware'], 'approved', $4, now(),
               'Canary plan checked', now() + interval '1 day') RETURNING id`,
      [supplierId, askerId, `${name}: ${reason}`, approverId],
    );
    // A window over the whole day: the demo runs to the end whenever it is started.
    const stages = sameClass.length > 1 ? 2 : 1;
    const camp = await t.c.query<{ id: string }>(
      `INSERT INTO firmware_campaigns (supplier_id, image_id, name, target, status, canary_count, wave_size,
                                       failure_threshold_pct, window_from, window_to, feeder_max,
                                       feeder_spacing_s, confirm_s, stage, stages, request_id, created_by,
                                       started_at)
       VALUES ($1, $2, $3, $4, 'running', 1, $5, 50, '00:00', '23:59', 5, 60, 120, 0, $6, $7, $8, now())
       RETURNING id`,
      [
        supplierId,
        imageId,
        name,
        JSON.stringify({ filter: { hardwareClass, version: '1.0.0' } }),
        Math.max(1, sameClass.length - 1),
        stages,
        req.rows[0]!.id,
        askerId,
      ],
    );
    const campaignId = Number(camp.rows[0]!.id);
    await t.c.query(
      `INSERT INTO firmware_campaign_meters (campaign_id, meter_id, stage, blocks_total)
       SELECT $1, m.id, CASE WHEN m.ord = 1 THEN 0 ELSE 1 END, $3
         FROM unnest($2::int[]) WITH ORDINALITY AS m(id, ord)`,
      [campaignId, sameClass.map((m) => m.id), blocks],
    );
    await t.c.query(
      `INSERT INTO firmware_campaign_events (campaign_id, kind, actor_id, detail) VALUES
         ($1, 'created', $2, $4), ($1, 'started', $3, 'approved'), ($1, 'stage_started', NULL, 'stage 0 (canary)')`,
      [
        campaignId,
        askerId,
        approverId,
        `${sameClass.length} meters in ${stages} stages (canary 1); ${reason}`,
      ],
    );
    await t.audit('firmware.campaign.created', String(campaignId), {
      imageId,
      meters: sameClass.length,
      demo: true,
    });
    return { imageId, campaignId, created: true };
  });
}
