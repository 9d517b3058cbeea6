/**
 * Simulated firmware images. A real meter boots whatever code the image holds; the simulated
 * one reads a small header at the start of the image to know how the new "code" behaves,
 * so a test or a demo can ship an image whose radio never comes up (the meter must revert)
 * next to a good one, both signed and transferred exactly like real images.
 */

/** How the simulated image behaves once booted. */
export type SimBehaviour = 'good' | 'no_reconnect';
export const SIM_BEHAVIOURS: readonly SimBehaviour[] = ['good', 'no_reconnect'];

const MAGIC = 'KWSIM1 ';

export interface SimImageOptions {
  version: string;
  size: number;
  behaviour?: SimBehaviour;
  /** Filler bytes are drawn from this seed, so one (version, size, behaviour, seed) gives the same image. */
  seed?: number;
}

/**
 * `size` bytes: the header (`KWSIM1 {"v":version,"b":behaviour}\n`), then pseudo-random
 * filler, so that blocks differ and a changed byte anywhere changes a block hash.
 */
export function makeSimImage(o: SimImageOptions): Uint8Array {
  const header = Buffer.from(`${MAGIC}${JSON.stringify({ v: o.version, b: o.behaviour ?? 'good' })}\n`);
  if (!Number.isSafeInteger(o.size) || o.size < header.length)
    throw new Error(`a simulated image needs at least ${header.length} bytes`);
  const out = new Uint8Array(o.size);
  out.set(header, 0);
  // xorshift32: cheap, deterministic, good enough for filler.
  let x = (o.seed ?? 0x9e3779b9) >>> 0 || 1;
  for (let i = header.length; i < o.size; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/**
 * The header of a simulated image, from its first bytes (block 0); null for an image that is
 * not simulated (e.g. one signed by the CLI from any file), which then boots as a good one.
 */
export function readSimHeader(first: Uint8Array): { version: string; behaviour: SimBehaviour } | null {
  const text = Buffer.from(first.subarray(0, 200)).toString('latin1');
  if (!text.startsWith(MAGIC)) return null;
  const end = text.indexOf('\n');
  if (end < 0) return null;
  try {
    const h = JSON.parse(text.slice(MAGIC.length, end)) as { v?: unknown; b?: unknown };
    if (typeof h.v !== 'string' || !SIM_BEHAVIOURS.includes(h.b as SimBehaviour)) return null;
    return { version: h.v, behaviour: h.b as SimBehaviour };
  } catch {
    return null;
  }
}
