import { OBIS } from './obis.ts';
import type { ReadingsMessage } from './messages.ts';

/**
 * The gateway decodes every readings message, and zod's pass (checks plus a copy of every
 * interval object) was about a third of a day batch's decoding and a large part of its garbage
 * (docs/performance.md, "#11 Ingest"). This check accepts only the plain, common form of a
 * readings message — exactly the schema's fields, in the schema's key order, every value in
 * range — and then the parsed JSON is used as it is. Anything else (an unknown field, another
 * key order, any doubt) returns false, and the caller runs the zod schema, which stays the
 * one definition of what is valid and gives the error. So this may refuse more than zod,
 * never accept more, and what it accepts equals zod's output, key order included
 * (`codec.test.ts` checks both on thousands of mutated messages).
 */
export function isPlainReadings(raw: unknown): raw is ReadingsMessage {
  const m = raw as Record<string, unknown>;
  if (!hasKeys(m, TOP)) return false;
  if (m.v !== 1 || !safeIntIn(m.seq, 1, Number.MAX_SAFE_INTEGER)) return false;
  const step = m.intervalS;
  if (step !== 900 && step !== 1800) return false;
  const ivs = m.intervals;
  if (!Array.isArray(ivs) || ivs.length < 1 || ivs.length > 200) return false;
  let prev = -Infinity;
  for (const x of ivs as unknown[]) {
    const iv = x as Record<string, unknown>;
    if (!hasKeys(iv, iv.exp === undefined ? INTERVAL : INTERVAL_EXP)) return false;
    const t = iv.t;
    if (!safeIntIn(t, EPOCH_MIN, EPOCH_MAX) || t % step !== 0 || t <= prev) return false;
    prev = t;
    if (!safeIntIn(iv.wh, 0, 1_000_000)) return false;
    if (iv.exp !== undefined && !safeIntIn(iv.exp, 0, 1_000_000)) return false;
  }
  const r = m.registers as Record<string, unknown>;
  if (!hasKeys(r, r?.[OBIS.importRate3] === undefined ? REGISTERS : REGISTERS_BAND3)) return false;
  for (const k in r) if (!safeIntIn(r[k], 0, Number.MAX_SAFE_INTEGER)) return false;
  return true;
}

const TOP = ['v', 'seq', 'intervalS', 'intervals', 'registers'];
const INTERVAL = ['t', 'wh'];
const INTERVAL_EXP = ['t', 'wh', 'exp'];
const REGISTERS = [OBIS.importTotal, OBIS.importRate1, OBIS.importRate2, OBIS.exportTotal];
const REGISTERS_BAND3 = [
  OBIS.importTotal,
  OBIS.importRate1,
  OBIS.importRate2,
  OBIS.importRate3,
  OBIS.exportTotal,
];
const EPOCH_MIN = 946_684_800;
const EPOCH_MAX = 4_102_444_800;

/** A plain object whose own keys are exactly `keys`, in that order. */
function hasKeys(o: Record<string, unknown> | null | undefined, keys: readonly string[]): boolean {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return false;
  let i = 0;
  for (const k in o) {
    if (k !== keys[i]) return false;
    i++;
  }
  return i === keys.length;
}

function safeIntIn(x: unknown, min: number, max: number): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= min && x <= max;
}
