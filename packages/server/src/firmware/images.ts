import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  ProtocolError,
  blockCount,
  firmwareManifest,
  publicKeyFromB64,
  verifyManifest,
  type FirmwareManifest,
} from '@kilowire/protocol';
import type { FwImage, FwUploadBody, FwUploadResponse } from '@kilowire/contract';
import type { Config } from '../config.ts';
import { withTx, type Pool, type Q, type Who } from '../db/pool.ts';
import { AppError } from '../errors.ts';
import { scopeSql, type Actor } from '../policies.ts';
import { discardPart, imageFileName, keepImage, removeImage, sweepParts, writeVerified } from './storage.ts';

/**
 * Firmware images as the supplier uploads them, in two steps: the signed manifest first
 * (signature and schema checked before any byte of the image moves), then the image itself,
 * streamed to disk and checked block by block against that manifest. Nothing is stored
 * unless every byte matches: a refused upload leaves no file and no row.
 */

/** How long the second step may wait for the first. */
const UPLOAD_TTL_S = 3600;

/** The manifest of a signed offer, or the API error that says why not. */
export function checkManifest(config: Config, manifest: string, signature: string): FirmwareManifest {
  try {
    return verifyManifest(manifest, signature, publicKeyFromB64(config.firmwarePublicKey));
  } catch (err) {
    if (err instanceof ProtocolError) {
      if (err.code === 'BAD_SIGNATURE')
        throw new AppError(
          'FW_BAD_SIGNATURE',
          'the manifest is not signed by the firmware key (sign it with `npm run firmware -- sign`)',
        );
      throw new AppError('FW_BAD_MANIFEST', `the manifest is not valid: ${err.message}`);
    }
    throw err;
  }
}

function supplierOf(actor: Actor): number {
  // firmware.manage is for supplier admins only, so there is always one.
  if (actor.role !== 'supplier' || actor.orgId === null) throw new AppError('FORBIDDEN', 'not permitted');
  return actor.orgId;
}

async function refuseDuplicate(q: Q, supplierId: number, m: FirmwareManifest): Promise<void> {
  const { rows } = await q.query<{ id: string; version: string; same_sha: boolean }>(
    `SELECT id, version, sha256 = $2 AS same_sha FROM firmware_images
      WHERE supplier_id = $1 AND (sha256 = $2 OR (hardware_class = $3 AND sequence = $4)) LIMIT 1`,
    [supplierId, m.sha256, m.hardwareClass, m.sequence],
  );
  const d = rows[0];
  if (!d) return;
  throw new AppError(
    'FW_DUPLICATE',
    d.same_sha
      ? `this image is already uploaded (image ${d.id}, version ${d.version})`
      : `image ${d.id} (version ${d.version}) already has hardware class ${m.hardwareClass} and security sequence ${m.sequence}; a new build needs a higher sequence`,
  );
}

/** Step 1: check the signed manifest and open an upload for its image. */
export async function beginUpload(
  pool: Pool,
  config: Config,
  who: Who,
  actor: Actor,
  body: FwUploadBody,
): Promise<FwUploadResponse> {
  const supplierId = supplierOf(actor);
  const m = checkManifest(config, body.manifest, body.signature);
  if (m.size > config.firmwareMaxBytes)
    throw new AppError(
      'PAYLOAD_TOO_LARGE',
      `the image is ${m.size} bytes; the largest this head-end takes is ${config.firmwareMaxBytes}`,
    );
  // A part file older than any upload may live is a crashed process's leftover.
  await sweepParts(config.firmwareDir, 2 * UPLOAD_TTL_S * 1000);
  return withTx(pool, who, async (t) => {
    await refuseDuplicate(t.c, supplierId, m);
    // Uploads nobody finished are forgotten here rather than by a job: they hold no file
    // (a PUT that fails removes its own; a crashed one's is swept above), only this row.
    await t.c.query('DELETE FROM firmware_uploads WHERE expires_at < now()');
    const id = randomUUID();
    const { rows } = await t.c.query<{ expires_at: Date }>(
      `INSERT INTO firmware_uploads (id, supplier_id, manifest, signature, sha256, notes, created_by, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, now() + make_interval(secs => $8)) RETURNING expires_at`,
      [
        id,
        supplierId,
        body.manifest,
        body.signature,
        m.sha256,
        body.notes ?? null,
        who.actorId,
        UPLOAD_TTL_S,
      ],
    );
    await t.audit('firmware.upload_begin', m.sha256, {
      uploadId: id,
      version: m.version,
      sequence: m.sequence,
      hardwareClass: m.hardwareClass,
      size: m.size,
    });
    return {
      uploadId: id,
      version: m.version,
      hardwareClass: m.hardwareClass,
      size: m.size,
      blocks: blockCount(m.size, m.blockSize),
      expiresAt: rows[0]!.expires_at.toISOString(),
    };
  });
}

interface UploadRow {
  manifest: string;
  signature: string;
  notes: string | null;
}

/**
 * Step 2: stream the image from `body` to the firmware folder, checking it against the
 * upload's manifest as it arrives (see storage.ts), then record it. The file is renamed to
 * its final name inside the transaction that inserts the row, so a refused or failed upload
 * leaves neither.
 */
export async function receiveImage(
  pool: Pool,
  config: Config,
  who: Who,
  actor: Actor,
  uploadId: string,
  body: Readable,
): Promise<FwImage> {
  const supplierId = supplierOf(actor);
  const { rows } = await pool.query<UploadRow>(
    `SELECT manifest, signature, notes FROM firmware_uploads
      WHERE id = $1 AND supplier_id = $2 AND expires_at > now()`,
    [uploadId, supplierId],
  );
  const up = rows[0];
  if (!up) throw new AppError('NOT_FOUND', 'no such upload, or it has expired (start again with POST)');
  // Signed when the upload began; parsed again here, never trusted from memory.
  const m = firmwareManifest.parse(JSON.parse(up.manifest));
  const part = await writeVerified(config, m, body, uploadId);
  let placed: { created: boolean } | undefined;
  try {
    const id = await withTx(pool, who, async (t) => {
      const gone = await t.c.query('DELETE FROM firmware_uploads WHERE id = $1 AND supplier_id = $2', [
        uploadId,
        supplierId,
      ]);
      if (gone.rowCount !== 1)
        throw new AppError('NOT_FOUND', 'this upload was finished or cancelled meanwhile');
      await refuseDuplicate(t.c, supplierId, m);
      const ins = await t.c.query<{ id: string }>(
        `INSERT INTO firmware_images (supplier_id, version, sequence, hardware_class, size, sha256, block_size,
                                      block_hashes, manifest, signature, storage_key, notes, uploaded_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id`,
        [
          supplierId,
          m.version,
          m.sequence,
          m.hardwareClass,
          m.size,
          m.sha256,
          m.blockSize,
          m.blockHashes,
          up.manifest,
          up.signature,
          imageFileName(m.sha256),
          up.notes,
          who.actorId,
        ],
      );
      const imageId = Number(ins.rows[0]!.id);
      await t.audit('firmware.upload', String(imageId), {
        sha256: m.sha256,
        version: m.version,
        sequence: m.sequence,
        hardwareClass: m.hardwareClass,
        size: m.size,
      });
      // Last before COMMIT: if the rename fails, the row goes too.
      placed = await keepImage(config, part, m.sha256);
      return imageId;
    });
    const img = await getImage(pool, actor, id);
    return img!;
  } catch (err) {
    await discardPart(part);
    // The COMMIT failed after the rename: take back the file only if it was ours alone (the
    // same bytes may be another supplier's image).
    if (placed?.created) await removeImage(config, m.sha256);
    throw err;
  }
}

interface ImageRow {
  id: string;
  version: string;
  sequence: number;
  hardware_class: string;
  size: number;
  sha256: string;
  block_size: number;
  blocks: number;
  notes: string | null;
  uploaded_by: string | null;
  created_at: Date;
  campaigns: number;
}

const IMAGE_COLUMNS = `i.id, i.version, i.sequence, i.hardware_class, i.size, i.sha256, i.block_size,
  cardinality(i.block_hashes) AS blocks, i.notes, u.display_name AS uploaded_by, i.created_at,
  (SELECT count(*)::int FROM firmware_campaigns c WHERE c.image_id = i.id) AS campaigns`;

function present(r: ImageRow): FwImage {
  return {
    id: Number(r.id),
    version: r.version,
    sequence: r.sequence,
    hardwareClass: r.hardware_class,
    size: r.size,
    sha256: r.sha256,
    blockSize: r.block_size,
    blocks: r.blocks,
    notes: r.notes,
    uploadedBy: r.uploaded_by,
    createdAt: r.created_at.toISOString(),
    campaigns: r.campaigns,
  };
}

/** The actor's images (a supplier's own; admins all), newest first. */
export async function listImages(q: Q, actor: Actor): Promise<FwImage[]> {
  const s = scopeSql(actor, 'firmware_images', 'i');
  const { rows } = await q.query<ImageRow>(
    `SELECT ${IMAGE_COLUMNS} FROM firmware_images i LEFT JOIN users u ON u.id = i.uploaded_by
      WHERE ${s.sql} ORDER BY i.id DESC LIMIT 500`,
    s.params,
  );
  return rows.map(present);
}

/** One image the actor may see, or null (another supplier's image is as absent as none). */
export async function getImage(q: Q, actor: Actor, id: number): Promise<FwImage | null> {
  const s = scopeSql(actor, 'firmware_images', 'i', 2);
  const { rows } = await q.query<ImageRow>(
    `SELECT ${IMAGE_COLUMNS} FROM firmware_images i LEFT JOIN users u ON u.id = i.uploaded_by
      WHERE i.id = $1 AND ${s.sql}`,
    [id, ...s.params],
  );
  return rows[0] ? present(rows[0]) : null;
}
