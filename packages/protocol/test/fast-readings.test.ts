import { describe, expect, it } from 'vitest';
import { decodeUp } from '../src/codec.ts';
import { isPlainReadings } from '../src/fast-readings.ts';
import { readingsMessage } from '../src/messages.ts';

/**
 * The hand-written check for plain readings messages must never accept what the zod schema
 * refuses, and what it accepts must equal zod's output (key order included: the gateway
 * compares resent messages by their JSON). Thousands of seeded mutations of valid messages:
 * wrong types, edges of every range, unknown, missing and reordered keys, order of intervals.
 */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1_664_525 + 1_013_904_223) >>> 0;
    return s / 2 ** 32;
  };
}

const T0 = 1_700_006_400;
function base(
  n: number,
  opts: { exp?: boolean; band3?: boolean; step?: 900 | 1800 } = {},
): Record<string, unknown> {
  const step = opts.step ?? 1800;
  return {
    v: 1,
    seq: 7,
    intervalS: step,
    intervals: Array.from({ length: n }, (_, i) => ({
      t: T0 + i * step,
      wh: 100 + i,
      ...(opts.exp && { exp: i }),
    })),
    registers: {
      '1.0.1.8.0': 5000,
      '1.0.1.8.1': 3000,
      '1.0.1.8.2': 2000,
      ...(opts.band3 && { '1.0.1.8.3': 0 }),
      '1.0.2.8.0': 0,
    },
  };
}

const VALUES: unknown[] = [
  -1,
  0,
  1,
  1.5,
  7,
  900,
  1800,
  946_684_799,
  946_684_800,
  T0,
  T0 + 1,
  4_102_444_800,
  4_102_444_801,
  1_000_000,
  1_000_001,
  Number.MAX_SAFE_INTEGER,
  2 ** 53,
  '1',
  '',
  null,
  true,
  [],
  {},
  [{ t: T0, wh: 1 }],
];

type Obj = Record<string, unknown>;
function objects(m: Obj): Obj[] {
  const out: Obj[] = [m];
  if (Array.isArray(m.intervals))
    for (const iv of m.intervals) if (iv && typeof iv === 'object') out.push(iv as Obj);
  if (m.registers && typeof m.registers === 'object') out.push(m.registers as Obj);
  return out;
}

function mutate(m: Obj, r: () => number): void {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const objs = objects(m);
  const o = pick(objs);
  const keys = Object.keys(o);
  switch (Math.floor(r() * 8)) {
    case 0: // a value out of the pool
      if (keys.length) o[pick(keys)] = pick(VALUES);
      break;
    case 1: // an unknown key
      o[pick(['x', 'exp', 'T', '__proto__', '1.0.1.8.3', 'v'])] = pick(VALUES);
      break;
    case 2: // a key missing
      if (keys.length) delete o[pick(keys)];
      break;
    case 3: {
      // keys in another order
      const entries = Object.entries(o).sort(() => r() - 0.5);
      for (const k of keys) delete o[k];
      for (const [k, v] of entries) o[k] = v;
      break;
    }
    case 4: {
      // intervals reordered, repeated or cut
      const ivs = m.intervals as unknown[];
      if (!Array.isArray(ivs)) break;
      const c = Math.floor(r() * 4);
      if (c === 0 && ivs.length > 1) ivs.reverse();
      else if (c === 1 && ivs.length) ivs.push(structuredClone(ivs[0]));
      else if (c === 2) ivs.length = 0;
      else while (ivs.length <= 200) ivs.push({ t: T0 + ivs.length * 1800, wh: 1 });
      break;
    }
    case 5: // a time off the interval grid
      if (Array.isArray(m.intervals) && m.intervals.length)
        (pick(m.intervals) as Obj).t = T0 + 1 + Math.floor(r() * 899);
      break;
    case 6: // another interval length
      m.intervalS = pick([900, 1800, 3600, '1800']);
      break;
    default: // a whole part replaced
      m[pick(['intervals', 'registers', 'seq'])] = pick(VALUES);
  }
}

describe('the plain-readings fast path', () => {
  it('accepts the common messages', () => {
    for (const m of [base(1), base(48), base(48, { exp: true }), base(3, { band3: true, step: 900 })]) {
      expect(isPlainReadings(JSON.parse(JSON.stringify(m)))).toBe(true);
    }
  });

  it('never accepts what the schema refuses, and what it accepts equals the schema output', () => {
    const r = rng(11);
    let accepted = 0;
    let refusedByBoth = 0;
    for (let i = 0; i < 20_000; i++) {
      const m = base(1 + Math.floor(r() * 5), {
        exp: r() < 0.3,
        band3: r() < 0.3,
        step: r() < 0.5 ? 900 : 1800,
      });
      const times = Math.floor(r() * 3);
      for (let k = 0; k < times; k++) mutate(m, r);
      const text = JSON.stringify(m);
      const fast = isPlainReadings(JSON.parse(text));
      const zod = readingsMessage.safeParse(JSON.parse(text));
      if (fast) {
        accepted++;
        expect(zod.success, text).toBe(true);
        expect(JSON.stringify(zod.data), text).toBe(text);
        expect(decodeUp('readings', text)).toEqual(zod.data);
      } else if (!zod.success) refusedByBoth++;
    }
    // Both branches were exercised many times.
    expect(accepted).toBeGreaterThan(3_000);
    expect(refusedByBoth).toBeGreaterThan(3_000);
  });
});
