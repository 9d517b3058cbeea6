import {
  addDays,
  inWindow,
  localDate,
  localMidnight,
  localMinuteOfDay,
  type MeterMode,
  type TariffSpec,
} from '@kilowire/protocol';
import type { PrepaymentState } from './state.ts';
import { keepNewest, type Band, type CommandOf, type CommandResult, type Emit } from './shared.ts';

/** Top-up ids remembered to refuse a duplicate; a top-up is retried within hours, not after 200 others. */
const TOPUP_MEMORY = 200;
/** Debits are kept in millionths of a minor unit: `wh * rate` (rate in thousandths per kWh) is exact there. */
const MICRO = 1_000_000;

/** The standing charge per local day in millionths of a minor unit; the exact field wins. */
export function standingMicroPerDay(t: TariffSpec): number {
  return t.standingChargeMilliPerDay !== undefined
    ? t.standingChargeMilliPerDay * 1000
    : t.standingChargeMinorPerDay * MICRO;
}

/** A band's rate (thousandths per kWh). Band 3 only occurs under a tariff with rate '3'; day otherwise. */
export function rateOfBand(t: TariffSpec, band: Band): number {
  if (band === 3) return t.rates['3'] ?? t.rates['1'];
  return band === 2 ? t.rates['2'] : t.rates['1'];
}

/** What prepayment may do to the relay: cut it for lack of credit, and arm it once credit is back. */
export interface CreditRelay {
  cutForCredit(t: number): void;
  creditRestored(t: number): void;
}

export interface CreditView {
  creditMinor: number;
  remainderMicro: number;
  emergencyInUse: boolean;
  emergencyAvailableMinor: number;
  emergencyLimitMinor: number;
  lowThresholdMinor: number;
  friendlyHours: PrepaymentState['friendlyHours'];
}

/**
 * Payment mode and prepaid credit: debits by the tariff, emergency credit, the low-credit
 * alert, friendly hours and top-ups. Credit can go negative while emergency credit is in
 * use; a top-up repays it first. Events are raised once per crossing, not per interval.
 */
export class Prepayment {
  /**
   * Where the local day whose standing charge was taken ends (epoch s); not persisted. Until
   * then no interval needs its local date looked up, which is a third of the time-zone work
   * a meter does per interval (it matters when a fleet catches up a year).
   */
  private chargedDayEndS = -Infinity;

  constructor(
    private readonly st: PrepaymentState,
    /** The premises' IANA zone: standing-charge days and friendly hours are local. */
    private readonly tz: string,
    private readonly emit: Emit,
    private readonly relay: CreditRelay,
  ) {}

  static initial(mode: MeterMode, creditMinor?: number): PrepaymentState {
    return {
      mode,
      creditMinor: creditMinor ?? (mode === 'prepayment' ? 2_000 : 0),
      remainderMicro: 0,
      emergencyLimitMinor: 500,
      emergencyInUse: false,
      lowThresholdMinor: 300,
      friendlyHours: { from: '18:00', to: '08:00' },
      lowNotified: false,
      exhaustedNotified: false,
      standingChargedFor: null,
      appliedTopups: [],
    };
  }

  get mode(): MeterMode {
    return this.st.mode;
  }

  get view(): CreditView {
    const p = this.st;
    return {
      creditMinor: p.creditMinor,
      remainderMicro: p.remainderMicro,
      emergencyInUse: p.emergencyInUse,
      emergencyAvailableMinor: this.emergencyAvailableMinor,
      emergencyLimitMinor: p.emergencyLimitMinor,
      lowThresholdMinor: p.lowThresholdMinor,
      friendlyHours: p.friendlyHours,
    };
  }

  /** Emergency credit still available, minor units: the whole limit until it is taken, then `limit + credit`. */
  get emergencyAvailableMinor(): number {
    const p = this.st;
    if (!p.emergencyInUse) return p.emergencyLimitMinor;
    return Math.max(0, p.emergencyLimitMinor + Math.min(0, p.creditMinor));
  }

  /** The relay's button asks this: a prepayment meter with nothing left may not reconnect outside friendly hours. */
  forbidsSupply(t: number): boolean {
    return this.st.mode === 'prepayment' && this.isExhausted() && !this.inFriendlyHours(t);
  }

  // ---------------------------------------------------------------- metering (called by production)

  /**
   * At the start of each interval: the standing charge, once per local day (a 23- or 25-hour
   * day is one day). In thousandths when the tariff gives them, so 53.35 p/day is taken exactly
   * (the fraction of a penny waits in the remainder like any other).
   */
  startInterval(t: number, tariff: TariffSpec): void {
    if (t < this.chargedDayEndS) return;
    const day = localDate(t, this.tz);
    if (this.st.standingChargedFor !== day) {
      // The day is marked in credit mode too, so switching to prepayment mid-day does not charge that day again.
      this.st.standingChargedFor = day;
      if (this.st.mode === 'prepayment') this.debitMicro(standingMicroPerDay(tariff));
    }
    this.chargedDayEndS = localMidnight(addDays(day, 1), this.tz);
  }

  /** After an interval ending at `end` used `wh` in tariff band `band`: debit it and act on the new balance. */
  chargeInterval(wh: number, band: Band, tariff: TariffSpec, end: number): void {
    if (this.st.mode !== 'prepayment') return;
    this.debitMicro(wh * rateOfBand(tariff, band));
    this.checkCredit(end);
  }

  // ---------------------------------------------------------------- commands

  topUp(topupId: string, amountMinor: number, t: number): CommandResult {
    const p = this.st;
    if (p.appliedTopups.includes(topupId)) {
      this.emit('credit.topup_duplicate', t, { topupId, amountMinor });
      return { result: 'rejected', code: 'DUPLICATE_TOPUP' };
    }
    p.appliedTopups.push(topupId);
    keepNewest(p.appliedTopups, TOPUP_MEMORY);
    p.creditMinor += amountMinor;
    if (p.creditMinor > 0) p.emergencyInUse = false;
    if (!this.isExhausted()) p.exhaustedNotified = false;
    if (p.creditMinor >= p.lowThresholdMinor) p.lowNotified = false;
    this.emit('credit.topup_applied', t, { topupId, amountMinor, creditMinor: p.creditMinor });
    if (p.creditMinor > 0) this.relay.creditRestored(t);
    return { result: 'ok' };
  }

  setThresholds(cmd: CommandOf<'thresholds.set'>): CommandResult {
    const p = this.st;
    if (cmd.lowCreditMinor !== undefined) {
      p.lowThresholdMinor = cmd.lowCreditMinor;
      p.lowNotified = p.creditMinor < p.lowThresholdMinor && p.lowNotified;
    }
    if (cmd.emergencyCreditMinor !== undefined) p.emergencyLimitMinor = cmd.emergencyCreditMinor;
    if (cmd.friendlyHours !== undefined) p.friendlyHours = cmd.friendlyHours;
    return { result: 'ok' };
  }

  setMode(mode: MeterMode, t: number): CommandResult {
    if (this.st.mode === mode) return { result: 'ok' };
    this.st.mode = mode;
    // A credit-mode customer is billed afterwards: lack of prepaid credit no longer cuts them off.
    if (mode === 'credit') this.relay.creditRestored(t);
    return { result: 'ok' };
  }

  // ---------------------------------------------------------------- rules

  private debitMicro(micro: number): void {
    const p = this.st;
    p.remainderMicro += micro;
    const whole = Math.floor(p.remainderMicro / MICRO);
    p.creditMinor -= whole;
    p.remainderMicro -= whole * MICRO;
  }

  private inFriendlyHours(t: number): boolean {
    const f = this.st.friendlyHours;
    return f !== null && inWindow(localMinuteOfDay(t, this.tz), f.from, f.to);
  }

  private isExhausted(): boolean {
    const p = this.st;
    return p.creditMinor <= -(p.emergencyInUse ? p.emergencyLimitMinor : 0);
  }

  /** Alerts once per crossing; disconnection waits for the end of friendly hours. */
  private checkCredit(t: number): void {
    const p = this.st;
    if (!p.lowNotified && p.creditMinor < p.lowThresholdMinor) {
      p.lowNotified = true;
      this.emit('credit.low', t, { creditMinor: p.creditMinor, thresholdMinor: p.lowThresholdMinor });
    }
    if (p.creditMinor <= 0 && !p.emergencyInUse && p.emergencyLimitMinor > 0 && !p.exhaustedNotified) {
      p.emergencyInUse = true;
      this.emit('credit.emergency_activated', t, { emergencyCreditMinor: p.emergencyLimitMinor });
    }
    if (!this.isExhausted()) return;
    if (!p.exhaustedNotified) {
      p.exhaustedNotified = true;
      if (p.emergencyInUse) this.emit('credit.emergency_exhausted', t, { creditMinor: p.creditMinor });
      this.emit('credit.exhausted', t, { creditMinor: p.creditMinor });
    }
    if (!this.inFriendlyHours(t)) this.relay.cutForCredit(t);
  }
}
