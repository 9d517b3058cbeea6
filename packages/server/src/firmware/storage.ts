import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { FirmwareManifest } from '@kilowire/protocol';
import type { Config } from '../config.ts';
import { AppError } from '../errors.ts';

/**
 * The firmware folder: one file per image, named by its SHA-256 (`<sha256>.bin`), written
 * once and never changed (the rows of firmware_images are immutable too). Uploads stream to
 * a `.part` file beside it and are renamed into place only once every byte has been checked.
 */

export function imageFileName(sha256: string): string {
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw new Error('not a SHA-256');
  return `${sha256}.bin`;
}

export function imagePath(dir: string, storageKey: string): string {
  // The key comes from our own rows, but a path is only ever a name inside the folder.
  if (!/^[0-9a-f]{64}\.bin$/.test(storageKey)) throw new Error(`bad firmware storage key ${storageKey}`);
  return path.join(dir, storageKey);
}

/** The whole image (the gateway's block cache reads it once per image). */
export async function readImage(dir: string, storageKey: string): Promise<Buffer> {
  return readFile(imagePath(dir, storageKey));
}

const mismatch = (n: number, blocks: number) =>
  new AppError(
    'FW_HASH_MISMATCH',
    `block ${n} (of ${blocks}) does not match its hash in the manifest: the image is not the one that was signed`,
  );

/**
 * Stream `body` to a new `.part` file, checking it against `m` on the way: each block's
 * SHA-256 as soon as the block is complete (a changed byte stops the upload at that block),
 * the byte count (reading stops one byte past the manifest's size: an extended image), and
 * the whole image's SHA-256 at the end. Only one block is held in memory. Returns the
 * fsynced part file; on any refusal the part file is gone.
 */
export async function writeVerified(
  config: Config,
  m: FirmwareManifest,
  body: Readable,
  tag: string,
): Promise<string> {
  await mkdir(config.firmwareDir, { recursive: true });
  const part = path.join(config.firmwareDir, `.upload-${tag}-${randomBytes(4).toString('hex')}.part`);
  const fh = await open(part, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o640);
  const blocks = m.blockHashes.length;
  const whole = createHash('sha256');
  let block = createHash('sha256');
  let inBlock = 0;
  let n = 0;
  let total = 0;
  let failure: unknown;
  try {
    // On a refusal the rest of the body is left unread, not destroyed: destroying an HTTP
    // request closes its socket before the error answer goes out (Node drains it after).
    for await (const raw of body.iterator({ destroyOnReturn: false })) {
      const chunk = raw as Buffer;
      if (total + chunk.length > m.size) {
        throw new AppError(
          total + chunk.length > config.firmwareMaxBytes ? 'PAYLOAD_TOO_LARGE' : 'FW_SIZE_MISMATCH',
          `the image is longer than the ${m.size} bytes its manifest says`,
        );
      }
      let off = 0;
      while (off < chunk.length) {
        const take = Math.min(chunk.length - off, m.blockSize - inBlock);
        const piece = chunk.subarray(off, off + take);
        block.update(piece);
        whole.update(piece);
        inBlock += take;
        off += take;
        if (inBlock === m.blockSize) {
          if (block.digest('hex') !== m.blockHashes[n]) throw mismatch(n, blocks);
          n++;
          block = createHash('sha256');
          inBlock = 0;
        }
      }
      await fh.write(chunk);
      total += chunk.length;
    }
    if (total < m.size)
      throw new AppError(
        'FW_SIZE_MISMATCH',
        `the image is ${total} bytes, shorter than the ${m.size} its manifest says`,
      );
    if (inBlock > 0 && block.digest('hex') !== m.blockHashes[n]) throw mismatch(n, blocks);
    if (whole.digest('hex') !== m.sha256)
      throw new AppError('FW_HASH_MISMATCH', 'the image does not match the SHA-256 of its manifest');
    // On disk before it is recorded: a crash after COMMIT must not leave a row without its bytes.
    await fh.sync();
  } catch (err) {
    failure = err;
    throw err;
  } finally {
    await fh.close();
    if (failure !== undefined) await discardPart(part);
  }
  return part;
}

export async function discardPart(part: string): Promise<void> {
  await unlink(part).catch(() => undefined);
}

/**
 * Move a checked part file to its final name. `created` says whether no file of that name
 * was there before (the same bytes may already be another supplier's image: same name, same
 * content, so replacing it is harmless, but removing it on a rollback would not be).
 */
export async function keepImage(config: Config, part: string, sha256: string): Promise<{ created: boolean }> {
  const final = path.join(config.firmwareDir, imageFileName(sha256));
  const existed = await stat(final).then(
    () => true,
    () => false,
  );
  await rename(part, final);
  // The rename itself must survive a power cut: fsync the folder.
  const dir = await open(config.firmwareDir, constants.O_RDONLY);
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
  return { created: !existed };
}

export async function removeImage(config: Config, sha256: string): Promise<void> {
  await unlink(path.join(config.firmwareDir, imageFileName(sha256))).catch(() => undefined);
}

/**
 * Part files older than `olderThanMs` (an upload whose process died mid-stream never removed
 * its own): best effort, never fails the caller.
 */
export async function sweepParts(dir: string, olderThanMs: number): Promise<number> {
  let removed = 0;
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    if (!/^\.upload-.*\.part$/.test(name)) continue;
    const p = path.join(dir, name);
    const st = await stat(p).catch(() => null);
    if (st && Date.now() - st.mtimeMs > olderThanMs) {
      await unlink(p).catch(() => undefined);
      removed++;
    }
  }
  return removed;
}
