import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { KeyObject } from 'node:crypto';
import { blockCount, buildManifest, signManifest, type FirmwareManifest } from '@kilowire/protocol';
import { createStaffUser } from '../../src/accounts/repo.ts';
import { tx, type Pool } from '../../src/db/pool.ts';
import { offerImage } from '../../src/firmware/commands.ts';

/**
 * #10 B test helpers for firmware transfers: an image stored as an upload would store it (a
 * file named by its SHA-256 and an immutable row), a running campaign with its meters, and
 * the offer the campaign engine would send. Campaign decisions are not under test here.
 */

export interface StoredImage {
  id: number;
  sha256: string;
  manifest: string;
  signature: string;
  m: FirmwareManifest;
  bytes: Buffer;
  file: string;
}

let seq = 0;

/**
 * Store `bytes` (random when a size is given) as an image of `supplierId`, signed with
 * `fwKey`. `fileBytes` puts other bytes in the file than the manifest describes: a damaged
 * store, which the meter must catch.
 */
export async function storeImage(
  pool: Pool,
  dir: string,
  supplierId: number,
  fwKey: KeyObject,
  o: {
    bytes?: Buffer;
    size?: number;
    version?: string;
    sequence?: number;
    hardwareClass?: string;
    blockSize?: number;
    fileBytes?: (b: Buffer) => Buffer;
  } = {},
): Promise<StoredImage> {
  const bytes = o.bytes ?? randomBytes(o.size ?? 40_000);
  const sequence = o.sequence ?? 100 + ++seq;
  const m = buildManifest(bytes, {
    version: o.version ?? `2.0.${sequence}`,
    sequence,
    hardwareClass: o.hardwareClass ?? 'KW-1',
    blockSize: o.blockSize ?? 4096,
  });
  const signed = signManifest(m, fwKey);
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `${m.sha256}.bin`);
  await writeFile(file, o.fileBytes ? o.fileBytes(Buffer.from(bytes)) : bytes);
  const r = await pool.query<{ id: string }>(
    `INSERT INTO firmware_images (supplier_id, version, sequence, hardware_class, size, sha256, block_size,
                                  block_hashes, manifest, signature, storage_key)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id`,
    [
      supplierId,
      m.version,
      m.sequence,
      m.hardwareClass,
      m.size,
      m.sha256,
      m.blockSize,
      m.blockHashes,
      signed.manifest,
      signed.signature,
      `${m.sha256}.bin`,
    ],
  );
  return { id: Number(r.rows[0]!.id), sha256: m.sha256, ...signed, m, bytes, file };
}

let users = 0;

/** A running campaign of `image` over `meterIds` (all in the canary stage), as if approved. */
export async function runningCampaign(
  pool: Pool,
  supplierId: number,
  image: StoredImage,
  meterIds: number[],
): Promise<number> {
  const userId = await createStaffUser(pool, {
    role: 'supplier',
    email: `fw-${process.pid}-${++users}-${randomBytes(3).toString('hex')}@test`,
    password: 'not used here',
    orgId: supplierId,
    name: 'Firmware admin',
  });
  const c = await pool.query<{ id: string }>(
    `INSERT INTO firmware_campaigns (supplier_id, image_id, name, target, status, canary_count, wave_size,
                                     failure_threshold_pct, window_from, window_to, created_by, started_at)
     VALUES ($1, $2, 'test', '{"serials": []}', 'running', $3, 10, 50, '00:00', '23:59', $4, now()) RETURNING id`,
    [supplierId, image.id, Math.max(1, meterIds.length), userId],
  );
  const id = Number(c.rows[0]!.id);
  await pool.query(
    `INSERT INTO firmware_campaign_meters (campaign_id, meter_id, stage, blocks_total)
     SELECT $1, m, 0, $3 FROM unnest($2::int[]) AS m`,
    [id, meterIds, blockCount(image.m.size, image.m.blockSize)],
  );
  return id;
}

/** Offer the image to one meter (the command and the row move together, as the engine does it). */
export async function offer(
  pool: Pool,
  commandKey: KeyObject,
  campaignId: number,
  meter: { id: number; serial: string },
  image: StoredImage,
): Promise<string> {
  const r = await tx(pool, (c) => offerImage(c, commandKey, campaignId, meter, image));
  return r.id;
}

export async function campaignMeter(
  pool: Pool,
  campaignId: number,
  meterId: number,
): Promise<{ state: string; blocks_done: number; blocks_total: number; reason: string | null }> {
  const { rows } = await pool.query<{
    state: string;
    blocks_done: number;
    blocks_total: number;
    reason: string | null;
  }>(
    'SELECT state, blocks_done, blocks_total, reason FROM firmware_campaign_meters WHERE campaign_id = $1 AND meter_id = $2',
    [campaignId, meterId],
  );
  return rows[0]!;
}

export async function supplierOfMeter(pool: Pool, meterId: number): Promise<number> {
  const { rows } = await pool.query<{ supplier_id: number }>('SELECT supplier_id FROM meters WHERE id = $1', [
    meterId,
  ]);
  return rows[0]!.supplier_id;
}
