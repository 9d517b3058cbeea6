import { type KeyObject } from 'node:crypto';
import {
  METER_ID_RE,
  OBIS,
  ProtocolError,
  decodeDown,
  encodeUp,
  inWindow,
  localDate,
  localMinuteOfDay,
  openCommand,
  publicKeyFromB64,
  rateRegister,
  replyMessage,
  type AckMessage,
  type Command,
  type CommandBody,
  type EventCode,
  type EventsMessage,
  type MeterEvent,
  type MeterMode,
  type ReadingsMessage,
  type Registers,
  type ReplyMessage,
  type StatusMessage,
  type TariffSpec,
} from '@kilowire/protocol';
import { defaultProfile, hashString, intervalEnergy, type HouseholdProfile } from './load.ts';
import type { MeterState, MeterStore, OutboxEntry, RelayReason } from './store.ts';

export const DEFAULT_TARIFF: TariffSpec = {
  id: 'default',
  version: 1,
  currency: 'GBP',
  rates: { '1': 24_500, '2': 12_000 },
  band2Windows: [{ from: '00:00', to: '07:00' }],
  standingChargeMinorPerDay: 50,
  effectiveFrom: 946_684_800,
};

/** Day batches when catching up a backlog: one message per day of half-hours. */
export const BACKLOG_BATCH = 48;
const TOPUP_MEMORY = 200;
const REPLY_MEMORY = 100;
/** GB rule: an outage of 3 minutes or more is a "long" one that the network operator must hear about. */
const LONG_OUTAGE_S = 180;
const MICRO = 1_000_000;

export interface MeterOptions {
  id: string;
  /** IANA zone; load shape, time-of-use bands, friendly hours and standing-charge days follow it. */
  tz: string;
  hardwareClass?: string;
  intervalS?: 900 | 1800;
  /** The head-end's command key, base64 raw Ed25519. */
  serverPublicKey: string;
  store: MeterStore;
  /** Seed of the consumption noise; defaults to a hash of the id, so each meter differs yet repeats. */
  seed?: number;
  profile?: Partial<HouseholdProfile>;
  mode?: MeterMode;
  /** For a meter with no saved state: the first interval starts here (aligned down). Default: now. */
  startS?: number;
  initialCreditMinor?: number;
  firmwareVersion?: string;
  /** Intervals per readings message in steady state. */
  batchIntervals?: number;
  /** Close a partly filled batch at the end of every advanceTo call. */
  flushPartial?: boolean;
  /** First resend delay for an unacknowledged message; doubles per attempt. */
  resendAfterMs?: number;
  maxResendAfterMs?: number;
}

export type OutgoingKind = 'readings' | 'events' | 'replies';
export interface OutgoingMessage {
  kind: OutgoingKind;
  /** Identifies the message for `delivered`: the seq for readings/events, the command id for replies. */
  key: string;
  payload: Buffer;
}

export interface CommandOutcome {
  result: 'ok' | 'rejected' | 'failed' | 'unanswerable';
  code?: string;
  reply?: ReplyMessage;
  body?: CommandBody;
}

interface SendState {
  sentAtMs: number;
  attempts: number;
  resend: boolean;
}

type ApplyResult = { result: 'ok' | 'rejected' | 'failed'; code?: string; detail?: string };

/**
 * A software smart meter. It owns registers, relay, prepayment credit and an outbox, and
 * does no I/O except through its store: a transport feeds it time, acks and commands, and
 * carries what it returns. Every public mutation ends in exactly one store write, so what
 * was promised to the head-end (seqs, counters) is never forgotten by a restart.
 */
export class Meter {
  readonly id: string;
  private readonly store: MeterStore;
  private readonly serverKey: KeyObject;
  private readonly st: MeterState;
  private readonly batchIntervals: number;
  private readonly flushPartial: boolean;
  private readonly resendAfterMs: number;
  private readonly maxResendAfterMs: number;
  /** Send bookkeeping is volatile on purpose: after a restart everything unacked is due at once. */
  private readonly sending = new Map<string, SendState>();
  private pendingEvents: MeterEvent[] = [];
  /** Replies already handed to the transport and awaiting its delivery confirmation. */
  private readonly replyInFlight = new Map<string, number>();
  /**
   * Nothing in the outbox is due before this instant, so a fleet ticking thousands of meters
   * with long unacked backlogs does not rescan every outbox on every tick. 0 = look now.
   */
  private nextDueAtMs = 0;

  constructor(opts: MeterOptions) {
    if (!METER_ID_RE.test(opts.id)) throw new Error(`invalid meter id ${JSON.stringify(opts.id)}`);
    this.id = opts.id;
    this.store = opts.store;
    this.serverKey = publicKeyFromB64(opts.serverPublicKey);
    this.batchIntervals = Math.min(200, Math.max(1, opts.batchIntervals ?? 1));
    this.flushPartial = opts.flushPartial ?? false;
    this.resendAfterMs = opts.resendAfterMs ?? 10_000;
    this.maxResendAfterMs = opts.maxResendAfterMs ?? 300_000;

    const loaded = this.store.load();
    if (loaded) {
      if (loaded.id !== opts.id) throw new Error(`store holds meter ${loaded.id}, not ${opts.id}`);
      this.st = loaded;
      return;
    }
    new Intl.DateTimeFormat('en-GB', { timeZone: opts.tz }); // throws on an unknown zone
    const intervalS = opts.intervalS ?? 1800;
    const seed = (opts.seed ?? hashString(opts.id)) >>> 0;
    const start = opts.startS ?? Math.floor(Date.now() / 1000);
    const mode = opts.mode ?? 'credit';
    this.st = {
      format: 1,
      id: opts.id,
      tz: opts.tz,
      hardwareClass: opts.hardwareClass ?? 'KW-1P-A',
      intervalS,
      seed,
      profile: { ...defaultProfile(seed), ...opts.profile },
      cursor: start - (start % intervalS),
      registers: { [OBIS.importTotal]: 0, [OBIS.importRate1]: 0, [OBIS.importRate2]: 0, [OBIS.exportTotal]: 0 },
      relay: 'connected',
      relayReason: null,
      mode,
      prepay: {
        creditMinor: opts.initialCreditMinor ?? (mode === 'prepayment' ? 2_000 : 0),
        remainderMicro: 0,
        emergencyLimitMinor: 500,
        emergencyInUse: false,
        lowThresholdMinor: 300,
        friendlyHours: { from: '18:00', to: '08:00' },
        lowNotified: false,
        exhaustedNotified: false,
        standingChargedFor: null,
      },
      tariff: DEFAULT_TARIFF,
      pendingTariff: null,
      appliedTopups: [],
      lastCounter: 0,
      firmware: { slot: 'A', version: opts.firmwareVersion ?? '1.0.0' },
      nextReadingsSeq: 1,
      nextEventsSeq: 1,
      openBatch: [],
      outbox: [],
      replies: [],
      powerOn: true,
      outages: [],
    };
    this.store.save(this.st);
  }

  // ------------------------------------------------------------------ read-only views

  get cursor(): number {
    return this.st.cursor;
  }
  get intervalS(): 900 | 1800 {
    return this.st.intervalS;
  }
  get tz(): string {
    return this.st.tz;
  }
  get registers(): Registers {
    return { ...this.st.registers };
  }
  get relay() {
    return { state: this.st.relay, reason: this.st.relayReason };
  }
  get mode(): MeterMode {
    return this.st.mode;
  }
  get lastCounter(): number {
    return this.st.lastCounter;
  }
  get powerOn(): boolean {
    return this.st.powerOn;
  }
  get credit() {
    const p = this.st.prepay;
    return {
      creditMinor: p.creditMinor,
      remainderMicro: p.remainderMicro,
      emergencyInUse: p.emergencyInUse,
      emergencyAvailableMinor: this.emergencyAvailable(),
      emergencyLimitMinor: p.emergencyLimitMinor,
      lowThresholdMinor: p.lowThresholdMinor,
      friendlyHours: p.friendlyHours,
    };
  }
  get tariff(): TariffSpec {
    return this.st.tariff;
  }
  get profile(): HouseholdProfile {
    return { ...this.st.profile };
  }
  /** Unacknowledged readings and events messages, oldest first. */
  get outbox(): readonly OutboxEntry[] {
    return this.st.outbox;
  }
  get pendingReplies(): readonly ReplyMessage[] {
    return this.st.replies;
  }
  /** A deep copy of the persistent state, for tests and diagnostics. */
  snapshot(): MeterState {
    return structuredClone(this.st);
  }

  status(nowS: number = this.st.cursor): StatusMessage {
    const msg: StatusMessage = {
      v: 1,
      t: nowS,
      relay: this.st.relay,
      mode: this.st.mode,
      firmware: { ...this.st.firmware },
      lastCounter: this.st.lastCounter,
      outbox: this.st.outbox.length,
      registers: { ...this.st.registers },
    };
    if (this.st.mode === 'prepayment') {
      msg.creditMinor = this.st.prepay.creditMinor;
      msg.emergencyCreditMinor = this.emergencyAvailable();
    }
    return msg;
  }

  statusPayload(nowS?: number): Buffer {
    return encodeUp('status', this.status(nowS));
  }

  // ------------------------------------------------------------------ time

  /**
   * Produce every whole interval ending at or before `epochS`. A backlog larger than one
   * batch (a restart after days, a fast-forwarding simulator) goes out in day batches so
   * the head-end receives a few large messages rather than hundreds of tiny ones.
   */
  advanceTo(epochS: number): number {
    const n = Math.floor((epochS - this.st.cursor) / this.st.intervalS);
    let produced = 0;
    if (n > 0) {
      const batch = n > this.batchIntervals ? Math.max(BACKLOG_BATCH, this.batchIntervals) : this.batchIntervals;
      for (let i = 0; i < n; i++) {
        this.produceInterval();
        produced++;
        if (this.st.openBatch.length >= batch) this.closeBatch();
      }
      if (this.st.openBatch.length >= this.batchIntervals) this.closeBatch();
    }
    if (this.flushPartial && this.st.openBatch.length > 0) this.closeBatch();
    if (produced > 0 || this.pendingEvents.length > 0) this.commit();
    return produced;
  }

  /** Close a partly filled readings batch now (e.g. before a planned shutdown). */
  flush(): void {
    if (this.st.openBatch.length === 0) return;
    this.closeBatch();
    this.commit();
  }

  private produceInterval(): void {
    const st = this.st;
    const t = st.cursor;
    const end = t + st.intervalS;

    if (st.pendingTariff && t >= st.pendingTariff.effectiveFrom) {
      st.tariff = st.pendingTariff;
      st.pendingTariff = null;
      this.emit('tariff.applied', t, { tariff: st.tariff.id, version: st.tariff.version });
    }

    const day = localDate(t, st.tz);
    if (st.prepay.standingChargedFor !== day) {
      st.prepay.standingChargedFor = day;
      if (st.mode === 'prepayment') this.debitMicro(st.tariff.standingChargeMinorPerDay * MICRO);
    }

    const powered = this.poweredFraction(t, end);
    let wh = 0;
    let exp = 0;
    if (st.relay === 'connected' && powered > 0) {
      const e = intervalEnergy(st.profile, st.seed, st.tz, t, st.intervalS);
      wh = Math.round(e.importWh * powered);
      exp = Math.round(e.exportWh * powered);
    }

    const band = this.band(t);
    st.registers[OBIS.importTotal] += wh;
    st.registers[rateRegister(band)] += wh;
    st.registers[OBIS.exportTotal] += exp;
    st.openBatch.push(exp > 0 ? { t, wh, exp } : { t, wh });
    st.cursor = end;
    st.outages = st.outages.filter((o) => o.to === null || o.to > end);

    if (st.mode === 'prepayment') {
      this.debitMicro(wh * st.tariff.rates[String(band) as '1' | '2']);
      this.checkCredit(end);
    }
  }

  private band(t: number): 1 | 2 {
    const m = localMinuteOfDay(t, this.st.tz);
    return this.st.tariff.band2Windows.some((w) => inWindow(m, w.from, w.to)) ? 2 : 1;
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
    const st = this.st;
    const msg: ReadingsMessage = {
      v: 1,
      seq: st.nextReadingsSeq++,
      intervalS: st.intervalS,
      intervals: st.openBatch,
      registers: { ...st.registers },
    };
    encodeUp('readings', msg); // a meter bug must surface here, not at the head-end
    st.outbox.push({ stream: 'readings', seq: msg.seq, msg });
    st.openBatch = [];
  }

  // ------------------------------------------------------------------ prepayment

  private emergencyAvailable(): number {
    const p = this.st.prepay;
    if (!p.emergencyInUse) return p.emergencyLimitMinor;
    return Math.max(0, p.emergencyLimitMinor + Math.min(0, p.creditMinor));
  }

  private debitMicro(micro: number): void {
    const p = this.st.prepay;
    p.remainderMicro += micro;
    const whole = Math.floor(p.remainderMicro / MICRO);
    p.creditMinor -= whole;
    p.remainderMicro -= whole * MICRO;
  }

  private inFriendlyHours(t: number): boolean {
    const f = this.st.prepay.friendlyHours;
    return f !== null && inWindow(localMinuteOfDay(t, this.st.tz), f.from, f.to);
  }

  private isExhausted(): boolean {
    const p = this.st.prepay;
    return p.creditMinor <= -(p.emergencyInUse ? p.emergencyLimitMinor : 0);
  }

  /** Alerts once per crossing; disconnection waits for the end of friendly hours. */
  private checkCredit(t: number): void {
    const p = this.st.prepay;
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
    if (this.st.relay === 'connected' && !this.inFriendlyHours(t)) this.setRelay('disconnected', 'credit', t);
  }

  private addCredit(amountMinor: number): void {
    const p = this.st.prepay;
    p.creditMinor += amountMinor;
    if (p.creditMinor > 0) p.emergencyInUse = false;
    if (!this.isExhausted()) p.exhaustedNotified = false;
    if (p.creditMinor >= p.lowThresholdMinor) p.lowNotified = false;
  }

  // ------------------------------------------------------------------ relay, power, tamper

  private setRelay(state: MeterState['relay'], reason: RelayReason | null, t: number): void {
    const st = this.st;
    const changed = st.relay !== state;
    st.relay = state;
    st.relayReason = state === 'connected' ? null : reason;
    if (!changed) return;
    const code: EventCode =
      state === 'connected' ? 'relay.connected' : state === 'armed' ? 'relay.armed' : 'relay.disconnected';
    this.emit(code, t, reason && state !== 'connected' ? { reason } : undefined);
  }

  /**
   * The consumer presses the button: closes an armed relay. Refused while a prepayment
   * meter has no credit left, unless friendly hours allow it.
   */
  pressButton(at: number): boolean {
    if (this.st.relay !== 'armed') return false;
    if (this.st.mode === 'prepayment' && this.isExhausted() && !this.inFriendlyHours(at)) return false;
    this.advanceTo(at);
    this.setRelay('connected', null, at);
    this.commit();
    return true;
  }

  injectTamper(kind: 'cover' | 'terminal' | 'magnetic', at: number): void {
    this.emit(`tamper.${kind}`, at);
    this.commit();
  }

  /**
   * Mains lost. The last gasp is queued and returned so that the transport can try it at
   * once, with whatever energy the supercapacitor has left.
   */
  powerFail(at: number, nowMs: number = Date.now()): OutgoingMessage[] {
    if (!this.st.powerOn) return [];
    this.advanceTo(at);
    this.st.powerOn = false;
    this.st.outages.push({ from: at, to: null });
    const seq = this.st.nextEventsSeq;
    this.emit('power.fail', at);
    this.commit();
    const key = `events:${seq}`;
    this.sending.set(key, { sentAtMs: nowMs, attempts: 1, resend: false });
    for (const e of this.st.outbox) {
      if (e.stream === 'events' && e.seq === seq) {
        return [{ kind: 'events', key: String(seq), payload: encodeUp('events', e.msg) }];
      }
    }
    return [];
  }

  powerRestore(at: number): void {
    if (this.st.powerOn) return;
    const outage = this.st.outages.find((o) => o.to === null);
    const from = outage?.from ?? at;
    if (outage) outage.to = Math.max(at, outage.from);
    this.st.powerOn = true;
    const offS = Math.max(0, at - from);
    this.emit(offS >= LONG_OUTAGE_S ? 'power.restored_long' : 'power.restored', at, { offS });
    this.advanceTo(at);
    this.commit();
  }

  // ------------------------------------------------------------------ outbox

  private emit(code: EventCode, t: number, data?: MeterEvent['data']): void {
    this.pendingEvents.push(data ? { code, t, data } : { code, t });
  }

  /** Turn buffered events into messages (one seq per message) and persist everything in one write. */
  private commit(): void {
    while (this.pendingEvents.length > 0) {
      const events = this.pendingEvents.splice(0, 50);
      const msg: EventsMessage = { v: 1, seq: this.st.nextEventsSeq++, events };
      encodeUp('events', msg);
      this.st.outbox.push({ stream: 'events', seq: msg.seq, msg });
    }
    this.nextDueAtMs = 0;
    this.store.save(this.st);
  }

  /** Apply an ack or a resend request. Returns how many messages the ack released. */
  handleAck(msg: AckMessage): number {
    if (msg.kind === 'resend') {
      for (const seq of msg.seqs) {
        const s = this.sending.get(`${msg.stream}:${seq}`);
        if (s) s.resend = true;
      }
      this.nextDueAtMs = 0;
      return 0;
    }
    const listed = new Set(msg.seqs ?? []);
    const before = this.st.outbox.length;
    this.st.outbox = this.st.outbox.filter((e) => {
      const drop = e.stream === msg.stream && (e.seq <= msg.upTo || listed.has(e.seq));
      if (drop) this.sending.delete(`${e.stream}:${e.seq}`);
      return !drop;
    });
    const dropped = before - this.st.outbox.length;
    if (dropped > 0) this.commit();
    return dropped;
  }

  private resendDelay(attempts: number): number {
    return Math.min(this.maxResendAfterMs, this.resendAfterMs * 2 ** Math.max(0, attempts - 1));
  }

  /**
   * What to (re)send now: replies first (someone is waiting on them), then events, then
   * readings, each oldest first. Returned messages count as sent at `nowMs`.
   */
  due(nowMs: number, max = 50): OutgoingMessage[] {
    if (!this.st.powerOn || nowMs < this.nextDueAtMs) return [];
    const out: OutgoingMessage[] = [];
    let next = Infinity;
    for (const r of this.st.replies) {
      if (out.length >= max) break;
      const sentAt = this.replyInFlight.get(r.id);
      if (sentAt !== undefined && nowMs - sentAt < this.resendAfterMs) {
        next = Math.min(next, sentAt + this.resendAfterMs);
        continue;
      }
      this.replyInFlight.set(r.id, nowMs);
      next = Math.min(next, nowMs + this.resendAfterMs);
      out.push({ kind: 'replies', key: r.id, payload: encodeUp('replies', r) });
    }
    for (const stream of ['events', 'readings'] as const) {
      for (const e of this.st.outbox) {
        if (e.stream !== stream) continue;
        if (out.length >= max) {
          this.nextDueAtMs = 0; // more is waiting right now
          return out;
        }
        const key = `${e.stream}:${e.seq}`;
        const s = this.sending.get(key);
        if (s && !s.resend && nowMs - s.sentAtMs < this.resendDelay(s.attempts)) {
          next = Math.min(next, s.sentAtMs + this.resendDelay(s.attempts));
          continue;
        }
        const attempts = (s?.attempts ?? 0) + 1;
        this.sending.set(key, { sentAtMs: nowMs, attempts, resend: false });
        next = Math.min(next, nowMs + this.resendDelay(attempts));
        out.push({
          kind: e.stream,
          key: String(e.seq),
          payload: e.stream === 'events' ? encodeUp('events', e.msg) : encodeUp('readings', e.msg),
        });
      }
    }
    this.nextDueAtMs = out.length >= max ? 0 : next;
    return out;
  }

  /** The transport confirms the broker has a message. Only replies end there; readings and events wait for the ack. */
  delivered(kind: OutgoingKind, key: string): void {
    if (kind !== 'replies') return;
    this.replyInFlight.delete(key);
    const before = this.st.replies.length;
    this.st.replies = this.st.replies.filter((r) => r.id !== key);
    if (this.st.replies.length !== before) this.commit();
  }

  /** After a reconnect nothing can be assumed in flight: make everything due again. */
  resetSendState(): void {
    this.sending.clear();
    this.replyInFlight.clear();
    this.nextDueAtMs = 0;
  }

  // ------------------------------------------------------------------ commands

  /**
   * Verify and apply one command envelope. Nothing changes unless the signature, meter id
   * and counter all check out; on success the new counter and the command's effect are
   * persisted in the same write, so a crash can neither apply a command twice nor lose it.
   */
  handleCommand(envelope: Uint8Array | string, nowS: number): CommandOutcome {
    let body: CommandBody;
    try {
      const env = decodeDown('commands', envelope);
      try {
        body = openCommand(env, this.serverKey, this.id, this.st.lastCounter);
      } catch (err) {
        return this.reject(err, env.body, nowS);
      }
    } catch (err) {
      return this.reject(err, null, nowS);
    }

    const r = this.apply(body.cmd, body, nowS);
    this.st.lastCounter = body.counter;
    const reply: ReplyMessage = { v: 1, id: body.id, counter: body.counter, t: nowS, result: r.result };
    if (r.code) reply.code = r.code;
    if (r.detail) reply.detail = r.detail;
    this.queueReply(reply);
    this.commit();
    return r.code ? { result: r.result, code: r.code, reply, body } : { result: r.result, reply, body };
  }

  private reject(err: unknown, bodyText: string | null, nowS: number): CommandOutcome {
    const code = err instanceof ProtocolError ? err.code : 'SCHEMA';
    const ref = bodyText === null ? null : peekIdAndCounter(bodyText);
    if (!ref) {
      this.emit('command.rejected', nowS, { code });
      this.commit();
      return { result: 'unanswerable', code };
    }
    const reply: ReplyMessage = { v: 1, id: ref.id, counter: ref.counter, t: nowS, result: 'rejected', code };
    this.queueReply(reply);
    this.commit();
    return { result: 'rejected', code, reply };
  }

  private queueReply(reply: ReplyMessage): void {
    encodeUp('replies', reply);
    this.st.replies.push(reply);
    // Replies to a meter that has been offline for long are of little use; keep the newest.
    if (this.st.replies.length > REPLY_MEMORY) this.st.replies.splice(0, this.st.replies.length - REPLY_MEMORY);
  }

  private apply(cmd: Command, body: CommandBody, nowS: number): ApplyResult {
    const st = this.st;
    switch (cmd.type) {
      case 'supply.off':
        this.setRelay('disconnected', cmd.reason === 'tamper' ? 'tamper' : 'remote', nowS);
        return { result: 'ok' };
      case 'supply.on':
        this.setRelay('connected', null, nowS);
        return { result: 'ok' };
      case 'supply.arm':
        if (st.relay === 'disconnected') this.setRelay('armed', st.relayReason, nowS);
        return { result: 'ok' };
      case 'tariff.set':
        if (cmd.tariff.effectiveFrom > st.cursor) {
          st.pendingTariff = cmd.tariff;
          return { result: 'ok', detail: 'scheduled' };
        }
        st.tariff = cmd.tariff;
        st.pendingTariff = null;
        this.emit('tariff.applied', nowS, { tariff: cmd.tariff.id, version: cmd.tariff.version });
        return { result: 'ok' };
      case 'credit.add': {
        if (st.appliedTopups.includes(cmd.topupId)) {
          this.emit('credit.topup_duplicate', nowS, { topupId: cmd.topupId, amountMinor: cmd.amountMinor });
          return { result: 'rejected', code: 'DUPLICATE_TOPUP' };
        }
        st.appliedTopups.push(cmd.topupId);
        if (st.appliedTopups.length > TOPUP_MEMORY) st.appliedTopups.splice(0, st.appliedTopups.length - TOPUP_MEMORY);
        this.addCredit(cmd.amountMinor);
        this.emit('credit.topup_applied', nowS, {
          topupId: cmd.topupId,
          amountMinor: cmd.amountMinor,
          creditMinor: st.prepay.creditMinor,
        });
        if (st.relay === 'disconnected' && st.relayReason === 'credit' && st.prepay.creditMinor > 0) {
          this.setRelay('armed', 'credit', nowS);
        }
        return { result: 'ok' };
      }
      case 'thresholds.set': {
        const p = st.prepay;
        if (cmd.lowCreditMinor !== undefined) {
          p.lowThresholdMinor = cmd.lowCreditMinor;
          p.lowNotified = p.creditMinor < p.lowThresholdMinor && p.lowNotified;
        }
        if (cmd.emergencyCreditMinor !== undefined) p.emergencyLimitMinor = cmd.emergencyCreditMinor;
        if (cmd.friendlyHours !== undefined) p.friendlyHours = cmd.friendlyHours;
        return { result: 'ok' };
      }
      case 'mode.set':
        if (st.mode !== cmd.mode) {
          st.mode = cmd.mode;
          // A credit-mode customer is billed afterwards: lack of prepaid credit no longer cuts them off.
          if (cmd.mode === 'credit' && st.relay === 'disconnected' && st.relayReason === 'credit') {
            this.setRelay('armed', 'credit', nowS);
          }
        }
        return { result: 'ok' };
      case 'firmware.offer':
      case 'firmware.activate':
        return this.firmwareCommand(cmd, body);
    }
  }

  /** Firmware transfer lands in a later issue; this is where it plugs in. */
  private firmwareCommand(_cmd: Extract<Command, { type: `firmware.${string}` }>, _body: CommandBody): ApplyResult {
    return { result: 'failed', code: 'NOT_SUPPORTED_YET', detail: 'firmware transfer not implemented' };
  }
}

/**
 * Read id and counter from a body that failed verification, only to address the reply.
 * Nothing else from an unauthenticated body is trusted.
 */
function peekIdAndCounter(text: string): { id: string; counter: number } | null {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof raw !== 'object' || raw === null) return null;
  const { id, counter } = raw as { id?: unknown; counter?: unknown };
  if (typeof id !== 'string') return null;
  if (!replyMessage.shape.id.safeParse(id).success) return null;
  const c = typeof counter === 'number' && Number.isSafeInteger(counter) && counter >= 0 ? counter : 0;
  return { id, counter: c };
}
