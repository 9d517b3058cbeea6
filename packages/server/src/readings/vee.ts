import type { ReadingsMessage } from '@kilowire/protocol';
import { OBIS } from '@kilowire/protocol';

/** Interval reading flags, stored in interval_readings.flags. */
export const FLAG = { estimated: 1, spike: 2, sumCheck: 4 } as const;

/** How far ahead of the head-end's clock a meter may be before its data counts as "future". */
export const FUTURE_TOLERANCE_S = 300;
/** Shared all-zero flags by length (never written: see `writable`). */
const ZEROS: Uint8Array[] = [];
function noFlags(n: number): Uint8Array {
  return (ZEROS[n] ??= new Uint8Array(n));
}
/** The flags to write a flag into: the shared zeros are copied first. */
function writable(flags: Uint8Array): Uint8Array {
  return flags === ZEROS[flags.length] ? new Uint8Array(flags.length) : flags;
}
/** Longest gap (in intervals) that is filled with estimates: a week of half-hours. */
const MAX_ESTIMATED_INTERVALS = 336;

export interface MeterVeeState {
  /** End of the last interval covered by the newest register snapshot (epoch s), or null. */
  lastRegAt: number | null;
  lastRegImport: number | null;
}

export interface MeterInfo extends MeterVeeState {
  id: number;
  serial: string;
  tz: string;
  intervalS: number;
  maxPowerW: number;
}

export interface IntervalRow {
  meterId: number;
  ts: number;
  wh: number;
  expWh: number | null;
  flags: number;
}

export interface VeeIssue {
  meterId: number;
  ts: number;
  rule:
    | 'spike'
    | 'sum_check'
    | 'register_reset'
    | 'gap_estimated'
    | 'future'
    | 'interval_size'
    | 'seq_conflict'
    | 'future_event';
  detail: Record<string, number | string>;
  /** A person must look at it (a register reset or meter exchange, a reused sequence number). */
  needsReview?: boolean;
}

export interface VeeResult {
  /**
   * The flags of each of the message's intervals, in its order (its own values are the
   * rows: no object per interval, which cost more than the rest of VEE in a day batch).
   * Read-only: messages without a flag share one array of zeros.
   */
  flags: Uint8Array;
  /** Estimated rows for a gap before the message (FLAG.estimated), usually none. */
  estimates: IntervalRow[];
  issues: VeeIssue[];
  /** The register snapshot to store (null when the message was refused as a whole). */
  register: {
    ts: number;
    import: number;
    rate1: number;
    rate2: number;
    /** Band 3 (peak); 0 from meters that do not send 1.0.1.8.3 (never had a three-band tariff). */
    rate3: number;
    export: number;
  } | null;
  /** Set when the message is refused (still acknowledged, so the meter stops resending). */
  refused?: 'FUTURE_READING' | 'INTERVAL_SIZE';
}

/**
 * Validation, estimation and editing for one readings message, in the order an MDM runs it:
 * refuse what cannot be true (future data, wrong interval size), flag what is suspicious
 * (spikes, register delta not matching the interval sum, registers going backwards),
 * and fill gaps between the previous register snapshot and this message with estimates
 * that share out the register delta (replaced when actual data arrives).
 * Mutates `m` (the cached VEE state) to this message's end snapshot when it is newer.
 */
export function runVee(meter: MeterInfo, msg: ReadingsMessage, nowS: number): VeeResult {
  const issues: VeeIssue[] = [];
  const first = msg.intervals[0]!;
  const last = msg.intervals[msg.intervals.length - 1]!;
  const endS = last.t + msg.intervalS;
  if (msg.intervalS !== meter.intervalS) {
    issues.push({
      meterId: meter.id,
      ts: first.t,
      rule: 'interval_size',
      detail: { got: msg.intervalS, expected: meter.intervalS },
    });
    return { flags: noFlags(0), estimates: [], issues, register: null, refused: 'INTERVAL_SIZE' };
  }
  if (endS > nowS + FUTURE_TOLERANCE_S) {
    issues.push({ meterId: meter.id, ts: first.t, rule: 'future', detail: { end: endS, now: nowS } });
    return { flags: noFlags(0), estimates: [], issues, register: null, refused: 'FUTURE_READING' };
  }

  const maxWh = Math.floor((meter.maxPowerW * msg.intervalS) / 3600);
  // Nearly every message has no flag at all: it shares a read-only array of zeros.
  let flags = noFlags(msg.intervals.length);
  const estimates: IntervalRow[] = [];
  let sum = 0;
  for (let i = 0; i < msg.intervals.length; i++) {
    const iv = msg.intervals[i]!;
    if (iv.wh > maxWh) {
      flags = writable(flags);
      flags[i] = FLAG.spike;
      issues.push({ meterId: meter.id, ts: iv.t, rule: 'spike', detail: { wh: iv.wh, maxWh } });
    }
    sum += iv.wh;
  }

  const reg = msg.registers;
  const importNow = reg[OBIS.importTotal];
  if (meter.lastRegAt !== null && meter.lastRegImport !== null && endS > meter.lastRegAt) {
    const delta = importNow - meter.lastRegImport;
    if (delta < 0) {
      // Registers only grow. Going down means the meter was reset or exchanged: a case for a
      // person, not a data error of these intervals. The new value becomes the baseline, and
      // neither the sum check nor gap estimation runs across the reset (their delta is meaningless).
      issues.push({
        meterId: meter.id,
        ts: endS,
        rule: 'register_reset',
        detail: { before: meter.lastRegImport, now: importNow, previousAt: meter.lastRegAt },
        needsReview: true,
      });
    } else if (first.t === meter.lastRegAt) {
      // Contiguous with the previous snapshot: the intervals must add up to the register delta.
      if (Math.abs(delta - sum) > Math.max(1, Math.floor(delta / 100))) {
        issues.push({
          meterId: meter.id,
          ts: first.t,
          rule: 'sum_check',
          detail: { registerDelta: delta, intervalSum: sum },
        });
        flags = writable(flags);
        for (let i = 0; i < flags.length; i++) flags[i] = flags[i]! | FLAG.sumCheck;
      }
    } else if (first.t > meter.lastRegAt) {
      const missing = (first.t - meter.lastRegAt) / msg.intervalS;
      const energy = delta - sum;
      if (Number.isInteger(missing) && missing <= MAX_ESTIMATED_INTERVALS && energy >= 0) {
        // Share the unexplained register delta evenly; the remainder goes to the last interval.
        const each = Math.floor(energy / missing);
        for (let k = 0; k < missing; k++) {
          const wh = k === missing - 1 ? energy - each * (missing - 1) : each;
          estimates.push({
            meterId: meter.id,
            ts: meter.lastRegAt + k * msg.intervalS,
            wh,
            expWh: null,
            flags: FLAG.estimated,
          });
        }
        issues.push({
          meterId: meter.id,
          ts: meter.lastRegAt,
          rule: 'gap_estimated',
          detail: { intervals: missing, wh: energy },
        });
      }
    }
  }
  if (meter.lastRegAt === null || endS > meter.lastRegAt) {
    meter.lastRegAt = endS;
    meter.lastRegImport = importNow;
  }
  return {
    flags,
    estimates,
    issues,
    register: {
      ts: endS,
      import: importNow,
      rate1: reg[OBIS.importRate1],
      rate2: reg[OBIS.importRate2],
      rate3: reg[OBIS.importRate3] ?? 0,
      export: reg[OBIS.exportTotal],
    },
  };
}
