import type { KeyObject } from 'node:crypto';
import {
  METER_REPLY_CODES,
  ProtocolError,
  commandExpired,
  decodeDown,
  replyMessage,
  verifyCommand,
  type Command,
  type CommandBody,
  type CommandEnvelope,
  type MeterReplyCode,
  type ReplyMessage,
} from '@kilowire/protocol';
import type { Firmware } from './firmware.ts';
import type { Prepayment } from './prepayment.ts';
import type { Production } from './production.ts';
import type { Relay } from './relay.ts';
import type { CommandState } from './state.ts';
import { keepNewest, type CommandResult, type Emit } from './shared.ts';

/**
 * Replies remembered per meter. The head-end sends only the oldest open command of a meter
 * and resends it until it hears back, so a resend is always of a very recent command; 100
 * is far beyond that, while keeping the state file (rewritten on every change) small.
 */
export const ANSWERED_MEMORY = 100;

export interface CommandOutcome {
  /** `unanswerable`: no reply was queued (nothing readable to address it to, or it would contradict an earlier one). */
  result: 'ok' | 'rejected' | 'failed' | 'unanswerable';
  code?: string;
  reply?: ReplyMessage;
  body?: CommandBody;
  /** The command had been answered before: its stored reply was queued again and nothing was applied. */
  repeated?: boolean;
}

/** Each command type is applied by the collaborator that owns the state it changes. */
export interface CommandTargets {
  relay: Pick<Relay, 'supplyOff' | 'supplyOn' | 'supplyArm'>;
  production: Pick<Production, 'setTariff'>;
  prepayment: Pick<Prepayment, 'topUp' | 'setThresholds' | 'setMode'>;
  firmware: Pick<Firmware, 'offer' | 'activate' | 'cancel'>;
}

export interface CommandHandlerDeps {
  meterId: string;
  /** The head-end's command key. */
  serverKey: KeyObject;
  targets: CommandTargets;
  replies: { queueReply(reply: ReplyMessage): void };
  emit: Emit;
}

/**
 * Signed commands. In order: the envelope decodes; the signature, the body's schema and
 * the meter id check out (protocol's `verifyCommand`); a command id already answered gets
 * its stored reply again; the counter must be above the last one; the command must not
 * have expired. Whatever passes authentication and the counter consumes the counter and is
 * remembered with its reply, whether it was applied or refused (EXPIRED, DUPLICATE_TOPUP).
 */
export class CommandHandler {
  constructor(
    private readonly st: CommandState,
    private readonly deps: CommandHandlerDeps,
  ) {}

  static initial(): CommandState {
    return { lastCounter: 0, answered: [] };
  }

  get lastCounter(): number {
    return this.st.lastCounter;
  }

  /** The stored reply to command `id`, if it is still remembered. */
  answered(id: string): ReplyMessage | undefined {
    return this.st.answered.find((r) => r.id === id);
  }

  /**
   * Verify and act on one envelope at meter time `nowS` (epoch s). The caller persists the
   * result in one write: the new counter, the effect, the memory and the queued reply.
   */
  handle(envelope: Uint8Array | string, nowS: number): CommandOutcome {
    let env: CommandEnvelope;
    try {
      env = decodeDown('commands', envelope);
    } catch (err) {
      return this.unanswerable(errorCode(err), nowS);
    }
    let body: CommandBody;
    try {
      body = verifyCommand(env, this.deps.serverKey, this.deps.meterId);
    } catch (err) {
      return this.refuseUnverified(err, env.body, nowS);
    }

    const known = this.answered(body.id);
    if (known) {
      this.deps.replies.queueReply({ ...known });
      return { ...outcomeOf(known), body, repeated: true };
    }
    if (body.counter <= this.st.lastCounter) {
      // Not remembered and the counter is untouched: this id was never acted on.
      const reply = replyTo(body, nowS, { result: 'rejected', code: 'STALE_COUNTER' });
      this.deps.replies.queueReply(reply);
      return { ...outcomeOf(reply), body };
    }

    // Expiry is judged after the counter, and an expired command consumes it like any
    // command answered after authentication (protocol's openCommand would not): the head-end
    // gets a definite result for that counter, and the command can never run later.
    const r: CommandResult = commandExpired(body, nowS)
      ? { result: 'rejected', code: 'EXPIRED' }
      : this.apply(body.cmd, nowS);
    this.st.lastCounter = body.counter;
    const reply = replyTo(body, nowS, r);
    this.st.answered.push(reply);
    keepNewest(this.st.answered, ANSWERED_MEMORY);
    this.deps.replies.queueReply({ ...reply });
    return { ...outcomeOf(reply), body };
  }

  private apply(cmd: Command, nowS: number): CommandResult {
    const { relay, production, prepayment, firmware } = this.deps.targets;
    switch (cmd.type) {
      case 'supply.off':
        return relay.supplyOff(cmd.reason, nowS);
      case 'supply.on':
        return relay.supplyOn(nowS);
      case 'supply.arm':
        return relay.supplyArm(nowS);
      case 'tariff.set':
        return production.setTariff(cmd.tariff, nowS);
      case 'credit.add':
        return prepayment.topUp(cmd.topupId, cmd.amountMinor, nowS);
      case 'thresholds.set':
        return prepayment.setThresholds(cmd);
      case 'mode.set':
        return prepayment.setMode(cmd.mode, nowS);
      case 'firmware.offer':
        return firmware.offer(cmd);
      case 'firmware.activate':
        return firmware.activate(cmd, nowS);
      case 'firmware.cancel':
        return firmware.cancel(cmd);
    }
  }

  /**
   * A body that failed verification is read only for an id and counter to address the
   * refusal to. Not when that id names a command already answered: a refusal under its id
   * could overwrite the authentic result at the head-end (an altered copy of a command whose
   * reply is still on its way), so that one is reported as an event instead.
   */
  private refuseUnverified(err: unknown, bodyText: string, nowS: number): CommandOutcome {
    const code = errorCode(err);
    const ref = peekIdAndCounter(bodyText);
    if (!ref || this.answered(ref.id)) return this.unanswerable(code, nowS);
    const reply: ReplyMessage = {
      v: 1,
      id: ref.id,
      counter: ref.counter,
      t: nowS,
      result: 'rejected',
      code: isReplyCode(code) ? code : 'SCHEMA',
    };
    this.deps.replies.queueReply(reply);
    return { result: 'rejected', code: reply.code, reply };
  }

  private unanswerable(code: string, nowS: number): CommandOutcome {
    this.deps.emit('command.rejected', nowS, { code });
    return { result: 'unanswerable', code };
  }
}

function replyTo(body: CommandBody, nowS: number, r: CommandResult): ReplyMessage {
  const reply: ReplyMessage = { v: 1, id: body.id, counter: body.counter, t: nowS, result: r.result };
  if (r.code) reply.code = r.code;
  if (r.detail) reply.detail = r.detail;
  return reply;
}

function outcomeOf(reply: ReplyMessage): CommandOutcome {
  return reply.code ? { result: reply.result, code: reply.code, reply } : { result: reply.result, reply };
}

function errorCode(err: unknown): string {
  return err instanceof ProtocolError ? err.code : 'SCHEMA';
}

/** verifyCommand only throws codes a reply may carry; should that change, the head-end hears SCHEMA. */
function isReplyCode(code: string): code is MeterReplyCode {
  return (METER_REPLY_CODES as readonly string[]).includes(code);
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
