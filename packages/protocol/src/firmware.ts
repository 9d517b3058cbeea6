import { createHash, type KeyObject } from 'node:crypto';
import { FW_DEFAULT_BLOCK_SIZE } from './enums.ts';
import { ProtocolError } from './errors.ts';
import { firmwareManifest, type FirmwareManifest } from './messages.ts';
import { signBytes, verifyBytes } from './signing.ts';

/**
 * Firmware images and their manifests, shared by the CLI that signs an image, the head-end
 * that checks an upload and serves blocks, and the meter that checks every block. The
 * manifest is signed with the firmware key, never the command key: a stolen command key
 * must not be enough to put code on a meter (and the other way round).
 */

export const sha256 = (data: Uint8Array | string): string => createHash('sha256').update(data).digest('hex');

export function blockCount(size: number, blockSize: number): number {
  return Math.ceil(size / blockSize);
}

/** Bytes of block `n` of an image held whole (the CLI, tests, the simulator). */
export function imageBlock(image: Uint8Array, blockSize: number, n: number): Uint8Array {
  return image.subarray(n * blockSize, Math.min(image.length, (n + 1) * blockSize));
}

export interface ManifestInput {
  version: string;
  sequence: number;
  hardwareClass: string;
  blockSize?: number;
}

/** The manifest of an image held whole: its size, SHA-256 and one SHA-256 per block. */
export function buildManifest(image: Uint8Array, m: ManifestInput): FirmwareManifest {
  const blockSize = m.blockSize ?? FW_DEFAULT_BLOCK_SIZE;
  const n = blockCount(image.length, blockSize);
  const blockHashes: string[] = [];
  for (let i = 0; i < n; i++) blockHashes.push(sha256(imageBlock(image, blockSize, i)));
  return firmwareManifest.parse({
    version: m.version,
    sequence: m.sequence,
    hardwareClass: m.hardwareClass,
    size: image.length,
    sha256: sha256(image),
    blockSize,
    blockHashes,
  });
}

/** The exact text that is signed and travels in `firmware.offer` (never re-serialised after signing). */
export function manifestText(m: FirmwareManifest): string {
  return JSON.stringify(firmwareManifest.parse(m));
}

export interface SignedManifest {
  manifest: string;
  signature: string;
}

export function signManifest(m: FirmwareManifest, firmwareKey: KeyObject): SignedManifest {
  const manifest = manifestText(m);
  return { manifest, signature: signBytes(manifest, firmwareKey) };
}

/**
 * Authenticate a manifest: the signature first (nothing unauthenticated is parsed), then its
 * schema. Throws ProtocolError BAD_SIGNATURE / BAD_JSON / SCHEMA; hardware class and
 * sequence are the receiver's to judge.
 */
export function verifyManifest(
  text: string,
  signature: string,
  firmwarePublicKey: KeyObject,
): FirmwareManifest {
  if (!verifyBytes(text, signature, firmwarePublicKey))
    throw new ProtocolError('BAD_SIGNATURE', 'manifest signature is not the firmware key’s');
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new ProtocolError('BAD_JSON', 'manifest is not JSON');
  }
  const r = firmwareManifest.safeParse(raw);
  if (!r.success) throw new ProtocolError('SCHEMA', `manifest: ${r.error.issues[0]?.message ?? 'invalid'}`);
  return r.data;
}
