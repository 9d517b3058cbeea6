import {
  METER_ID_RE,
  decodeDown,
  encodeUp,
  publicKeyFromB64,
  type AckMessage,
  type MeterEvent,
  type MeterMode,
  type Registers,
  type ReplyMessage,
  type StatusMessage,
  type TariffSpec,
} from '@kilowire/protocol';
import { CommandHandler, type CommandOutcome } from './commands.ts';
import { FW_PACE_MAX_UNACKED, Firmware, type FirmwarePacing, type FirmwareTickAction } from './firmware.ts';
import { defaultProfile, hashString, type HouseholdProfile } from './load.ts';
import { Outbox, type OutgoingKind, type OutgoingMessage } from './outbox.ts';
import { Prepayment, type CreditView } from './prepayment.ts';
import { Production } from './production.ts';
import { Relay } from './relay.ts';
import {
  upgradeState,
  type MeterState,
  type OutboxEntry,
  type PendingImage,
  type RelaySlice,
} from './state.ts';
import { MemoryImageBlocks, type MeterStore } from './store.ts';
import type { Emit } from './shared.ts';

export { ANSWERED_MEMORY, type CommandOutcome } from './commands.ts';
export type { OutgoingKind, OutgoingMessage } from './outbox.ts';
export { BACKLOG_BATCH, DEFAULT_TARIFF, bandOf, type Band } from './production.ts';

export interface MeterOptions {
  id: string;
  /** IANA zone; load shape, time-of-use bands, friendly hours and standing-charge days follow it. */
  tz: string;
  hardwareClass?: string;
  intervalS?: 900 | 1800;
  /** The head-end's command key, base64 raw Ed25519. */
  serverPublicKey: string;
  /**
   * The firmware key, base64 raw Ed25519: the only key a firmware manifest may be signed
   * with (never the command key). Without it the meter refuses every firmware offer.
   */
  firmwarePublicKey?: string;
  /** Block request timeouts and bad-copy limit (tests shorten them). */
  firmwarePacing?: Partial<FirmwarePacing>;
  store: MeterStore;
  /** Seed of the consumption noise; defaults to a hash of the id, so each meter differs yet repeats. */
  seed?: number;
  profile?: Partial<HouseholdProfile>;
  mode?: MeterMode;
  /** For a meter with no saved state: the first interval starts here (aligned down). Default: now. */
  startS?: number;
  initialCreditMinor?: number;
  /** For a meter with no saved state: the tariff it is made with (default DEFAULT_TARIFF). */
  tariff?: TariffSpec;
  firmwareVersion?: string;
  /** Security sequence of the factory image of a meter with no saved state (default 0). */
  firmwareSequence?: number;
  /** Intervals per readings message in steady state. */
  batchIntervals?: number;
  /** Close a partly filled batch at the end of every advanceTo call. */
  flushPartial?: boolean;
  /** Catching up a backlog, close a batch at every local midnight too (see `ProductionConfig`). */
  backlogByLocalDay?: boolean;
  /** First resend delay for an unacknowledged message; doubles per attempt. */
  resendAfterMs?: number;
  maxResendAfterMs?: number;
}

/**
 * A software smart meter. It does no I/O except through its store: a transport feeds it
 * time, acks and commands, and carries what it returns.
 *
 * This class is a facade. The rules live in collaborators, each owning one slice of the
 * persisted state: `Production` (intervals, registers, tariff, power), `Prepayment`,
 * `Relay`, `CommandHandler`, `Firmware` and `Outbox`. The facade wires them, buffers the
 * events they raise, and ends every public mutation with at most one store write (exactly
 * one when anything changed), so what was promised to the head-end (seqs, counters,
 * replies) is never forgotten by a restart and never half-written.
 */
export class Meter {
  readonly id: string;
  private readonly store: MeterStore;
  private readonly st: MeterState;
  /** Events raised since the last write; they become outbox messages in that write. */
  private pendingEvents: MeterEvent[] = [];
  private readonly emit: Emit = (code, t, data) => {
    this.pendingEvents.push(data ? { code, t, data } : { code, t });
  };
  private readonly production: Production;
  private readonly prepayment: Prepayment;
  private readonly relayPart: Relay;
  private readonly commands: CommandHandler;
  private readonly firmware: Firmware;
  private readonly outboxPart: Outbox;

  constructor(opts: MeterOptions) {
    if (!METER_ID_RE.test(opts.id)) throw new Error(`invalid meter id ${JSON.stringify(opts.id)}`);
    this.id = opts.id;
    this.store = opts.store;
    const serverKey = publicKeyFromB64(opts.serverPublicKey);

    const loaded = this.store.load();
    if (loaded) {
      if (loaded.id !== opts.id) throw new Error(`store holds meter ${loaded.id}, not ${opts.id}`);
      this.st = upgradeState(loaded);
      // Written back at once, so the migration runs once and the file is in the format this code writes.
      if (this.st !== loaded) this.store.save(this.st);
    } else {
      this.st = newState(opts);
      this.store.save(this.st);
    }

    const st = this.st;
    this.outboxPart = new Outbox(st.outbox, {
      resendAfterMs: opts.resendAfterMs ?? 10_000,
      maxResendAfterMs: opts.maxResendAfterMs ?? 300_000,
    });
    this.relayPart = new Relay(st.relay, this.emit, (t) => this.prepayment.forbidsSupply(t));
    this.prepayment = new Prepayment(st.prepayment, st.tz, this.emit, this.relayPart);
    this.production = new Production(
      st.production,
      {
        tz: st.tz,
        intervalS: st.intervalS,
        seed: st.seed,
        profile: st.profile,
        batchIntervals: Math.min(200, Math.max(1, opts.batchIntervals ?? 1)),
        flushPartial: opts.flushPartial ?? false,
        backlogByLocalDay: opts.backlogByLocalDay ?? false,
      },
      this.emit,
      { relay: this.relayPart, prepayment: this.prepayment, readings: this.outboxPart },
    );
    this.firmware = new Firmware(st.firmware, {
      hardwareClass: st.hardwareClass,
      tz: st.tz,
      firmwarePublicKey: opts.firmwarePublicKey ? publicKeyFromB64(opts.firmwarePublicKey) : null,
      blocks: this.store.blocks?.() ?? new MemoryImageBlocks(),
      emit: this.emit,
      pacing: opts.firmwarePacing,
    });
    this.commands = new CommandHandler(st.commands, {
      meterId: this.id,
      serverKey,
      targets: {
        relay: this.relayPart,
        production: this.production,
        prepayment: this.prepayment,
        firmware: this.firmware,
      },
      replies: this.outboxPart,
      emit: this.emit,
    });
  }

  // ------------------------------------------------------------------ read-only views

  get cursor(): number {
    return this.production.cursor;
  }
  get intervalS(): 900 | 1800 {
    return this.st.intervalS;
  }
  get tz(): string {
    return this.st.tz;
  }
  get registers(): Registers {
    return this.production.registers;
  }
  get relay(): RelaySlice {
    return { state: this.relayPart.state, reason: this.relayPart.reason };
  }
  get mode(): MeterMode {
    return this.prepayment.mode;
  }
  get lastCounter(): number {
    return this.commands.lastCounter;
  }
  get powerOn(): boolean {
    return this.production.powerOn;
  }
  get credit(): CreditView {
    return this.prepayment.view;
  }
  get tariff(): TariffSpec {
    return this.production.tariff;
  }
  get profile(): HouseholdProfile {
    return { ...this.st.profile };
  }
  /** Unacknowledged readings and events messages, oldest first. */
  get outbox(): readonly OutboxEntry[] {
    return this.outboxPart.entries;
  }
  get pendingReplies(): readonly ReplyMessage[] {
    return this.outboxPart.replies;
  }
  get firmwareVersion(): string {
    return this.firmware.activeVersion;
  }
  get firmwareSlot(): 'A' | 'B' {
    return this.firmware.activeSlot;
  }
  /** The image being received, verified, scheduled or tried; null when none. */
  get firmwarePending(): Readonly<PendingImage> | null {
    return this.firmware.pending;
  }
  /** Whether the running image can bring the radio up (the transport stays offline while it cannot). */
  get radioWorks(): boolean {
    return this.firmware.radioWorks;
  }
  /** A deep copy of the persistent state, for tests and diagnostics. */
  snapshot(): MeterState {
    return structuredClone(this.st);
  }

  status(nowS: number = this.production.cursor): StatusMessage {
    // Fields in the schema's order, so that a decoded status encodes to the very same bytes.
    const prepaid = this.prepayment.mode === 'prepayment';
    return {
      v: 1,
      t: nowS,
      relay: this.relayPart.state,
      mode: this.prepayment.mode,
      ...(prepaid
        ? {
            creditMinor: this.prepayment.view.creditMinor,
            emergencyCreditMinor: this.prepayment.emergencyAvailableMinor,
          }
        : {}),
      firmware: this.firmware.status(),
      lastCounter: this.commands.lastCounter,
      outbox: this.outboxPart.entries.length,
      registers: this.production.registers,
    };
  }

  statusPayload(nowS?: number): Buffer {
    return encodeUp('status', this.status(nowS));
  }

  // ------------------------------------------------------------------ time

  /**
   * Produce every whole interval ending at or before `epochS` (see `Production.advanceTo`).
   * Returns how many were produced.
   */
  advanceTo(epochS: number): number {
    const produced = this.production.advanceTo(epochS);
    if (produced > 0 || this.pendingEvents.length > 0) this.commit();
    return produced;
  }

  /** Close a partly filled readings batch now (e.g. before a planned shutdown). */
  flush(): void {
    if (this.production.flush()) this.commit();
  }

  // ------------------------------------------------------------------ consumer, tamper, power

  /**
   * The consumer presses the button: closes an armed relay. Refused while a prepayment
   * meter has no credit left, unless friendly hours allow it.
   */
  pressButton(at: number): boolean {
    if (!this.relayPart.buttonWouldClose(at)) return false;
    this.production.advanceTo(at); // the intervals before the press were metered with the relay open
    this.relayPart.pressButton(at);
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
    if (!this.production.powerOn) return [];
    this.production.advanceTo(at);
    // What metering up to now raised goes in messages of its own, so the last gasp carries
    // power.fail alone: the smallest message, for the little energy left.
    this.queueEvents();
    this.production.powerFail(at);
    const [gaspSeq] = this.commit();
    const gasp = gaspSeq === undefined ? null : this.outboxPart.sendNow(gaspSeq, nowMs);
    return gasp ? [gasp] : [];
  }

  powerRestore(at: number): void {
    if (!this.production.powerRestore(at)) return;
    this.production.advanceTo(at);
    this.commit();
  }

  // ------------------------------------------------------------------ outbox

  /** Apply an ack or a resend request. Returns how many messages the ack released. */
  handleAck(msg: AckMessage): number {
    const dropped = this.outboxPart.handleAck(msg);
    if (dropped > 0) this.commit();
    return dropped;
  }

  /**
   * What to (re)send now: replies first (someone is waiting on them), then events, then
   * readings, each oldest first. Returned messages count as sent at `nowMs`. A meter
   * without mains sends nothing (its last gasp went out with `powerFail`).
   */
  due(nowMs: number, max = 50): OutgoingMessage[] {
    if (!this.production.powerOn) return [];
    return this.outboxPart.due(nowMs, max);
  }

  /** The transport confirms the broker has a message. Only replies end there; readings and events wait for the ack. */
  delivered(kind: OutgoingKind, key: string): void {
    if (this.outboxPart.delivered(kind, key)) this.commit();
  }

  /** After a reconnect nothing can be assumed in flight: make everything due again. */
  resetSendState(): void {
    this.outboxPart.resetSendState();
    this.firmware.resetSendState();
  }

  // ------------------------------------------------------------------ firmware

  /**
   * The next firmware block request to publish on up/fw, if one may go now. Pacing rule:
   * at most one request (of up to FW_MAX_BLOCKS_PER_REQUEST blocks) in flight, and none while
   * the meter has no mains, a command reply waits for the broker, or more than
   * FW_PACE_MAX_UNACKED readings/events messages wait for their ack — a transfer never holds
   * up metering data, it only uses a link that keeps up.
   */
  firmwareDue(nowMs: number): Buffer | null {
    const backedUp =
      !this.production.powerOn ||
      this.outboxPart.replies.length > 0 ||
      this.outboxPart.entries.length > FW_PACE_MAX_UNACKED;
    const req = this.firmware.due(nowMs, backedUp);
    return req ? encodeUp('fw', req) : null;
  }

  /**
   * A block from down/fw. A good block is durable in its slot before the state that records
   * it is saved (one write, with any event it completes: firmware.verified or verify_failed).
   * Throws ProtocolError on a payload that does not decode. `bad`: the block failed its check.
   */
  handleBlock(payload: Uint8Array | string, nowS: number): { changed: boolean; bad: boolean } {
    const msg = decodeDown('fw', payload);
    const r = this.firmware.receive(msg, nowS);
    if (r.changed || this.pendingEvents.length > 0) this.commit();
    return r;
  }

  /** Time-driven firmware steps at meter time `nowS` (see `Firmware.tick`); a revert is saved at once. */
  firmwareTick(nowS: number): FirmwareTickAction {
    const action = this.firmware.tick(nowS);
    if (action === 'reverted') this.commit();
    return action;
  }

  /** The reboot of a due activation: the new slot becomes active on trial, in one write. */
  bootFirmware(nowS: number): boolean {
    const ok = this.firmware.bootTrial(nowS);
    this.commit();
    return ok;
  }

  /** The broker accepted a status showing `version`: a trial image is kept. */
  confirmFirmware(version: string, nowS: number): boolean {
    const ok = this.firmware.confirm(version, nowS);
    if (ok) this.commit();
    return ok;
  }

  // ------------------------------------------------------------------ commands

  /**
   * Verify and act on one command envelope at meter time `nowS` (see `CommandHandler`).
   * The new counter, the command's effect, the remembered reply and the queued reply are
   * persisted in one write, so a crash can neither apply a command twice nor lose it.
   */
  handleCommand(envelope: Uint8Array | string, nowS: number): CommandOutcome {
    const out = this.commands.handle(envelope, nowS);
    this.commit();
    return out;
  }

  /** Turn buffered events into outbox messages and persist everything in one write. Returns the new events seqs. */
  private commit(): number[] {
    const seqs = this.queueEvents();
    this.store.save(this.st);
    return seqs;
  }

  private queueEvents(): number[] {
    const seqs = this.outboxPart.addEvents(this.pendingEvents);
    this.pendingEvents = [];
    return seqs;
  }
}

/** The state of a meter that has never run. Each collaborator supplies its own slice's defaults. */
function newState(opts: MeterOptions): MeterState {
  new Intl.DateTimeFormat('en-GB', { timeZone: opts.tz }); // throws on an unknown zone
  const intervalS = opts.intervalS ?? 1800;
  const seed = (opts.seed ?? hashString(opts.id)) >>> 0;
  const mode = opts.mode ?? 'credit';
  return {
    format: 2,
    id: opts.id,
    tz: opts.tz,
    hardwareClass: opts.hardwareClass ?? 'KW-1P-A',
    intervalS,
    seed,
    profile: { ...defaultProfile(seed), ...opts.profile },
    production: Production.initial(opts.startS ?? Math.floor(Date.now() / 1000), intervalS, opts.tariff),
    prepayment: Prepayment.initial(mode, opts.initialCreditMinor),
    relay: Relay.initial(),
    commands: CommandHandler.initial(),
    firmware: Firmware.initial(opts.firmwareVersion ?? '1.0.0', opts.firmwareSequence ?? 0),
    outbox: Outbox.initial(),
  };
}
