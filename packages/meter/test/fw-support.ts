import {
  buildManifest,
  decodeUp,
  encodeDown,
  generateSigningKeyPair,
  imageBlock,
  privateKeyFromB64,
  sha256,
  signManifest,
  type FirmwareManifest,
} from '@kilowire/protocol';
import { makeSimImage, type SimBehaviour } from '../src/firmware-sim.ts';
import type { Meter } from '../src/meter.ts';

/** The firmware key of these tests: a different pair from the command key in helpers.ts. */
export const fwKeys = generateSigningKeyPair();
export const fwKey = privateKeyFromB64(fwKeys.privateKey);

export const HW = 'KW-1P-A';
/** Small blocks, so an image of a few KB has enough of them to cut at first, middle and last. */
export const BS = 256;

export interface TestImage {
  bytes: Uint8Array;
  manifest: FirmwareManifest;
  sha: string;
  offer: { type: 'firmware.offer'; manifest: string; signature: string };
}

export function testImage(
  o: {
    version?: string;
    sequence?: number;
    hardwareClass?: string;
    size?: number;
    behaviour?: SimBehaviour;
    key?: ReturnType<typeof privateKeyFromB64>;
    seed?: number;
  } = {},
): TestImage {
  const version = o.version ?? '2.0.0';
  const bytes = makeSimImage({
    version,
    size: o.size ?? 10 * BS + 100,
    behaviour: o.behaviour,
    seed: o.seed,
  });
  const manifest = buildManifest(bytes, {
    version,
    sequence: o.sequence ?? 5,
    hardwareClass: o.hardwareClass ?? HW,
    blockSize: BS,
  });
  const signed = signManifest(manifest, o.key ?? fwKey);
  return { bytes, manifest, sha: sha256(bytes), offer: { type: 'firmware.offer', ...signed } };
}

/**
 * Replies leave the meter as a transport would have them delivered, and readings are
 * acknowledged; events stay in the outbox, for the test to read (a handful never holds up
 * the transfer).
 */
export function drain(m: Meter, nowMs = 0): void {
  for (const o of m.due(nowMs, 1000)) if (o.kind === 'replies') m.delivered(o.kind, o.key);
  if (m.outbox.some((e) => e.stream === 'readings'))
    m.handleAck({ v: 1, kind: 'ack', stream: 'readings', upTo: 1_000_000 });
}

/**
 * A tiny head-end: answers each block request of the meter with the blocks of `served`
 * (which may differ from the signed image), until the meter asks for nothing more or
 * `maxRequests` is reached. `onBlock` may stop the loop (a power loss) by returning false.
 * Returns the requests it answered.
 */
export function serve(
  m: () => Meter,
  served: Uint8Array,
  o: { nowS: number; nowMs?: number; maxRequests?: number; onBlock?: (n: number) => boolean } = { nowS: 0 },
): { block: number; count: number }[] {
  const seen: { block: number; count: number }[] = [];
  const nowMs = o.nowMs ?? 0;
  for (let i = 0; i < (o.maxRequests ?? 1000); i++) {
    drain(m(), nowMs);
    const payload = m().firmwareDue(nowMs);
    if (!payload) break;
    const req = decodeUp('fw', payload);
    seen.push({ block: req.block, count: req.count ?? 1 });
    for (let n = req.block; n < req.block + (req.count ?? 1); n++) {
      const data = Buffer.from(imageBlock(served, BS, n)).toString('base64');
      m().handleBlock(encodeDown('fw', { v: 1, image: req.image, block: n, data }), o.nowS);
      if (o.onBlock && !o.onBlock(n)) return seen;
    }
  }
  return seen;
}

/** `bytes` with one byte flipped at `at`. */
export function flipped(bytes: Uint8Array, at: number): Uint8Array {
  const out = Uint8Array.from(bytes);
  out[at] = out[at]! ^ 0x01;
  return out;
}
