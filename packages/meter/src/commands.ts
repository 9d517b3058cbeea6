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
import type { CommandResult, Emit } from './shared.ts';

export interface CommandOutcome {
  /** `unanswerable`: no reply was queued (nothing readable to address it to). */
  result: 'ok' | 'rejected' | 'failed' | 'unanswerable';
  code?: string;
  reply?: ReplyMessage;
  body?: CommandBody;
}

/** Each command type is applied by the collaborator that owns the state it changes. */
export interface CommandTargets {
  relay: Pick<Relay, 'supplyOff' | 'supplyOn' | 'supplyArm'>;
  production: Pick<Production, 'setTariff'>;
  prepayment: Pick<Prepayment, 'topUp' | 'setThresholds' | 'setMode'>;
  firmware: Pick<Firmware, 'offer' | 'activate'>;
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
 * the meter id check out (protocol's `verifyCommand`); the counter must be above the last
 * one; the command must not have expired. Whatever passes authentication and the counter
 * consumes the counter, whether it was applied or refused (EXPIRED, DUPLICATE_TOPUP).
 */
export class CommandHandler {
  constructor(
    private readonly st: CommandState,
    private readonly deps: CommandHandlerDeps,
  ) {}

  static initial(): CommandState {
    return { lastCounter: 0 };
  }

  get lastCounter(): number {
    return this.st.lastCounter;
  }

  /**
   * Verify and act on one envelope at meter time `nowS` (epoch s). The caller persists the
   * result in one write: the new counter, the effect and the queued reply.
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

    if (body.counter <= this.st.lastCounter) {
      // The counter is untouched: this command was never acted on.
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
    this.deps.replies.queueReply(reply);
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
        return firmware.activate(cmd);
    }
  }

  /** A body that failed verification is read only for an id and counter to address the refusal to. */
  private refuseUnverified(err: unknown, bodyText: string, nowS: number): CommandOutcome {
    const code = errorCode(err);
    const ref = peekIdAndCounter(bodyText);
    if (!ref) return this.unanswerable(code, nowS);
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
