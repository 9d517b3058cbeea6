import {
  OBIS,
  addDays,
  inWindow,
  localDate,
  localMidnight,
  localMinuteOfDay,
  rateRegister,
  type ObisCode,
  type Registers,
  type TariffSpec,
} from '@kilowire/protocol';
import { intervalEnergy, type HouseholdProfile } from './load.ts';
import type { ProductionState } from './state.ts';
import type { Band, CommandResult, Emit } from './shared.ts';
export type { Band } from './shared.ts';

/**
 * Production has its own file rather than living in the facade: it is the largest body of
 * rules (load shape, time-of-use bands, tariff switch-over, outages, batching), and with it
 * out the facade is left with wiring and the one store write per public call, which is what
 * makes that invariant easy to check by reading.
 */

export const DEFAULT_TARIFF: TariffSpec = {
  id: 'default',
  version: 1,
  currency: 'GBP',
  rates: { '1': 24_500, '2': 12_000 },
  band2Windows: [{ from: '00:00', to: '07:00' }],
  standingChargeMinorPerDay: 50,
  effectiveFrom: 946_684_800,
};

/** Whether a tariff has a third (peak) band: then the meter keeps and reports register 1.0.1.8.3. */
export function hasBand3(t: TariffSpec): boolean {
  return t.rates['3'] !== undefined;
}

/**
 * The band an instant falls in under `tariff`, by local minute of day: peak wins over band 2
 * where both match (the same rule as the head-end's `bandAt`).
 */
export function bandOf(tariff: TariffSpec, minuteOfDay: number): Band {
  if (hasBand3(tariff) && tariff.band3Windows?.some((w) => inWindow(minuteOfDay, w.from, w.to))) return 3;
  return tariff.band2Windows.some((w) => inWindow(minuteOfDay, w.from, w.to)) ? 2 : 1;
}

/** Registers in the order of the wire schema, so a decoded message encodes to the very same bytes. */
const REGISTER_ORDER: readonly ObisCode[] = [
  OBIS.importTotal,
  OBIS.importRate1,
  OBIS.importRate2,
  OBIS.importRate3,
  OBIS.exportTotal,
];
export function orderedRegisters(r: Registers): Registers {
  const out: Record<string, number> = {};
  for (const k of REGISTER_ORDER) {
    const v = r[k];
    if (v !== undefined) out[k] = v;
  }
  return out as Registers;
}

/** Day batches when catching up a backlog: one message per day of half-hours. */
export const BACKLOG_BATCH = 48;
/** GB rule: an outage of 3 minutes or more is a "long" one that the network operator must hear about. */
const LONG_OUTAGE_S = 180;

export interface ProductionConfig {
  /** IANA zone: load shape and time-of-use bands follow local time. */
  tz: string;
  intervalS: 900 | 1800;
  seed: number;
  profile: HouseholdProfile;
  /** Intervals per readings message in steady state (1..200). */
  batchIntervals: number;
  /** Close a partly filled batch at the end of every `advanceTo`. */
  flushPartial: boolean;
  /**
   * When catching up a backlog, also close a batch at every local midnight, so the registers
   * of the history are read at the ends of local days (a real meter's daily read log), as a
   * bill's period boundaries need. Off by default: batches of exactly 48 then.
   */
  backlogByLocalDay?: boolean;
}

/** What production needs from the others: whether energy flows, what it costs, where readings go. */
export interface ProductionDeps {
  relay: { readonly closed: boolean };
  prepayment: {
    startInterval(t: number, tariff: TariffSpec): void;
    chargeInterval(wh: number, band: Band, tariff: TariffSpec, end: number): void;
  };
  readings: {
    addReadings(intervalS: 900 | 1800, intervals: ProductionState['openBatch'], registers: Registers): number;
  };
}

/**
 * Interval energy from the household's load shape, registers by time-of-use band, the
 * tariff in force, and the mains: intervals overlapping an outage are scaled by the
 * fraction of the interval that was powered.
 */
export class Production {
  /** The local midnight that ends the day of the last interval produced (epoch s); not persisted. */
  private dayEndS = -Infinity;

  constructor(
    private readonly st: ProductionState,
    private readonly cfg: ProductionConfig,
    private readonly emit: Emit,
    private readonly deps: ProductionDeps,
  ) {}

  static initial(startS: number, intervalS: number, tariff: TariffSpec = DEFAULT_TARIFF): ProductionState {
    return {
      cursor: startS - (startS % intervalS),
      registers: orderedRegisters({
        [OBIS.importTotal]: 0,
        [OBIS.importRate1]: 0,
        [OBIS.importRate2]: 0,
        ...(hasBand3(tariff) ? { [OBIS.importRate3]: 0 } : {}),
        [OBIS.exportTotal]: 0,
      }),
      openBatch: [],
      tariff,
      pendingTariff: null,
      powerOn: true,
      outages: [],
    };
  }

  get cursor(): number {
    return this.st.cursor;
  }
  get registers(): Registers {
    return orderedRegisters(this.st.registers);
  }
  get tariff(): TariffSpec {
    return this.st.tariff;
  }
  get powerOn(): boolean {
    return this.st.powerOn;
  }

  /**
   * Produce every whole interval ending at or before `epochS`. A backlog larger than one
   * batch (a restart after days, a fast-forwarding simulator) goes out in day batches so
   * the head-end receives a few large messages rather than hundreds of tiny ones.
   * Returns how many intervals were produced.
   */
  advanceTo(epochS: number): number {
    const { intervalS, batchIntervals } = this.cfg;
    const n = Math.floor((epochS - this.st.cursor) / intervalS);
    let produced = 0;
    if (n > 0) {
      const backlog = n > batchIntervals;
      const batch = backlog ? Math.max(BACKLOG_BATCH, batchIntervals) : batchIntervals;
      const byDay = backlog && this.cfg.backlogByLocalDay === true;
      for (let i = 0; i < n; i++) {
        this.produceInterval();
        produced++;
        if (this.st.openBatch.length >= batch || (byDay && this.endedLocalDay())) this.closeBatch();
      }
      if (this.st.openBatch.length >= batchIntervals) this.closeBatch();
    }
    if (this.cfg.flushPartial && this.st.openBatch.length > 0) this.closeBatch();
    return produced;
  }

  /** Close a partly filled readings batch now. Returns whether there was one. */
  flush(): boolean {
    if (this.st.openBatch.length === 0) return false;
    this.closeBatch();
    return true;
  }

  /** `tariff.set`: now, or at its effectiveFrom when that is after the intervals already produced. */
  setTariff(tariff: TariffSpec, t: number): CommandResult {
    if (tariff.effectiveFrom > this.st.cursor) {
      this.st.pendingTariff = tariff;
      return { result: 'ok', detail: 'scheduled' };
    }
    this.activate(tariff);
    this.emit('tariff.applied', t, { tariff: tariff.id, version: tariff.version });
    return { result: 'ok' };
  }

  /**
   * Put a tariff in force. The first three-band tariff creates register 1.0.1.8.3 (at 0);
   * from then on it is always reported, also under a later two-band tariff — a register
   * never disappears, so the head-end's band-3 figures stay continuous.
   */
  private activate(tariff: TariffSpec): void {
    this.st.tariff = tariff;
    this.st.pendingTariff = null;
    if (hasBand3(tariff) && this.st.registers[OBIS.importRate3] === undefined) {
      this.st.registers = orderedRegisters({ ...this.st.registers, [OBIS.importRate3]: 0 });
    }
  }

  /** Mains lost at `at` (production must already be up to `at`). Returns false if it was already off. */
  powerFail(at: number): boolean {
    if (!this.st.powerOn) return false;
    this.st.powerOn = false;
    this.st.outages.push({ from: at, to: null });
    this.emit('power.fail', at);
    return true;
  }

  /** Mains back at `at`; the intervals of the outage are produced afterwards, scaled down. */
  powerRestore(at: number): boolean {
    if (this.st.powerOn) return false;
    const outage = this.st.outages.find((o) => o.to === null);
    const from = outage?.from ?? at;
    if (outage) outage.to = Math.max(at, outage.from);
    this.st.powerOn = true;
    const offS = Math.max(0, at - from);
    this.emit(offS >= LONG_OUTAGE_S ? 'power.restored_long' : 'power.restored', at, { offS });
    return true;
  }

  private produceInterval(): void {
    const st = this.st;
    const { tz, intervalS, profile, seed } = this.cfg;
    const t = st.cursor;
    const end = t + intervalS;

    if (st.pendingTariff && t >= st.pendingTariff.effectiveFrom) {
      this.activate(st.pendingTariff);
      this.emit('tariff.applied', t, { tariff: st.tariff.id, version: st.tariff.version });
    }
    this.deps.prepayment.startInterval(t, st.tariff);

    const powered = this.poweredFraction(t, end);
    let wh = 0;
    let exp = 0;
    if (this.deps.relay.closed && powered > 0) {
      const e = intervalEnergy(profile, seed, tz, t, intervalS);
      wh = Math.round(e.importWh * powered);
      exp = Math.round(e.exportWh * powered);
    }

    const band = this.band(t);
    st.registers[OBIS.importTotal] += wh;
    const rateReg = rateRegister(band);
    st.registers[rateReg] = (st.registers[rateReg] ?? 0) + wh;
    st.registers[OBIS.exportTotal] += exp;
    st.openBatch.push(exp > 0 ? { t, wh, exp } : { t, wh });
    st.cursor = end;
    st.outages = st.outages.filter((o) => o.to === null || o.to > end);

    this.deps.prepayment.chargeInterval(wh, band, st.tariff, end);
  }

  /** Whether the interval just produced ended a local day (the cursor is at a local midnight). */
  private endedLocalDay(): boolean {
    const t = this.st.cursor - this.cfg.intervalS;
    if (t >= this.dayEndS) this.dayEndS = localMidnight(addDays(localDate(t, this.cfg.tz), 1), this.cfg.tz);
    return this.st.cursor >= this.dayEndS;
  }

  /** The band of the interval starting at `t` (its start decides, as for the head-end's bills). */
  private band(t: number): Band {
    return bandOf(this.st.tariff, localMinuteOfDay(t, this.cfg.tz));
  }

  private poweredFraction(from: number, to: number): number {
    let off = 0;
    for (const o of this.st.outages) {
      const a = Math.max(from, o.from);
      const b = Math.min(to, o.to ?? to);
      if (b > a) off += b - a;
    }
    return Math.max(0, 1 - off / (to - from));
  }

  private closeBatch(): void {
    this.deps.readings.addReadings(
      this.cfg.intervalS,
      this.st.openBatch,
      orderedRegisters(this.st.registers),
    );
    this.st.openBatch = [];
  }
}
