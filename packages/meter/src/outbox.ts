import {
  encodeUp,
  type AckMessage,
  type EventsMessage,
  type MeterEvent,
  type ReadingsMessage,
  type Registers,
  type ReplyMessage,
} from '@kilowire/protocol';
import { keepNewest } from './shared.ts';
import type { OutboxEntry, OutboxState } from './state.ts';

/** Replies to a meter that has been offline for long are of little use; the queue keeps the newest. */
const REPLY_QUEUE = 100;
/** The protocol's limit of events per message. */
const EVENTS_PER_MESSAGE = 50;

export type OutgoingKind = 'readings' | 'events' | 'replies';
export interface OutgoingMessage {
  kind: OutgoingKind;
  /** Identifies the message for `delivered`: the seq for readings/events, the command id for replies. */
  key: string;
  payload: Buffer;
}

export interface OutboxOptions {
  /** First resend delay for an unacknowledged message, ms; doubles per attempt. */
  resendAfterMs: number;
  /** Cap of the resend delay, ms. */
  maxResendAfterMs: number;
}

interface SendState {
  /** Wall-clock ms of the last hand-over to the transport. */
  sentAtMs: number;
  attempts: number;
  /** The head-end asked for it: due now, whatever the backoff says. */
  resend: boolean;
}

/**
 * What the meter has promised the head-end: readings and events under per-stream sequence
 * numbers, kept until acknowledged (after the head-end's COMMIT), and command replies, kept
 * until the broker has them. Send bookkeeping is volatile on purpose: after a restart or a
 * reconnect everything unacknowledged is due at once (duplicates are harmless at the head-end).
 */
export class Outbox {
  private readonly sending = new Map<string, SendState>();
  /** Replies already handed to the transport and awaiting its delivery confirmation: id -> ms. */
  private readonly replyInFlight = new Map<string, number>();
  /**
   * Nothing in the outbox is due before this instant, so a fleet ticking thousands of meters
   * with long unacked backlogs does not rescan every outbox on every tick. 0 = look now.
   */
  private nextDueAtMs = 0;

  constructor(
    private readonly st: OutboxState,
    private readonly opts: OutboxOptions,
  ) {}

  static initial(): OutboxState {
    return { nextReadingsSeq: 1, nextEventsSeq: 1, entries: [], replies: [] };
  }

  get entries(): readonly OutboxEntry[] {
    return this.st.entries;
  }
  get replies(): readonly ReplyMessage[] {
    return this.st.replies;
  }

  // ---------------------------------------------------------------- filling

  /** Close one readings message under the next seq. */
  addReadings(intervalS: 900 | 1800, intervals: ReadingsMessage['intervals'], registers: Registers): number {
    const msg: ReadingsMessage = { v: 1, seq: this.st.nextReadingsSeq++, intervalS, intervals, registers };
    encodeUp('readings', msg); // a meter bug must surface here, not at the head-end
    this.st.entries.push({ stream: 'readings', seq: msg.seq, msg });
    this.nextDueAtMs = 0;
    return msg.seq;
  }

  /** Events in messages of at most 50, one seq each. Returns the seqs used, in order. */
  addEvents(events: readonly MeterEvent[]): number[] {
    const seqs: number[] = [];
    for (let i = 0; i < events.length; i += EVENTS_PER_MESSAGE) {
      const msg: EventsMessage = {
        v: 1,
        seq: this.st.nextEventsSeq++,
        events: events.slice(i, i + EVENTS_PER_MESSAGE),
      };
      encodeUp('events', msg);
      this.st.entries.push({ stream: 'events', seq: msg.seq, msg });
      seqs.push(msg.seq);
    }
    if (seqs.length > 0) this.nextDueAtMs = 0;
    return seqs;
  }

  /**
   * Queue a reply. A reply for a command id already queued takes its place and is due at
   * once: the head-end resent the command because it has not seen the answer.
   */
  queueReply(reply: ReplyMessage): void {
    encodeUp('replies', reply);
    const i = this.st.replies.findIndex((r) => r.id === reply.id);
    if (i >= 0) {
      this.st.replies[i] = reply;
      this.replyInFlight.delete(reply.id);
    } else {
      this.st.replies.push(reply);
      keepNewest(this.st.replies, REPLY_QUEUE);
    }
    this.nextDueAtMs = 0;
  }

  // ---------------------------------------------------------------- head-end and transport

  /** Apply an ack or a resend request. Returns how many messages the ack released (then state changed). */
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
    const before = this.st.entries.length;
    this.st.entries = this.st.entries.filter((e) => {
      const drop = e.stream === msg.stream && (e.seq <= msg.upTo || listed.has(e.seq));
      if (drop) this.sending.delete(`${e.stream}:${e.seq}`);
      return !drop;
    });
    return before - this.st.entries.length;
  }

  /**
   * What to (re)send now: replies first (someone is waiting on them), then events, then
   * readings, each oldest first. Returned messages count as sent at `nowMs`.
   */
  due(nowMs: number, max: number): OutgoingMessage[] {
    if (nowMs < this.nextDueAtMs) return [];
    const { resendAfterMs } = this.opts;
    const out: OutgoingMessage[] = [];
    let next = Infinity;
    for (const r of this.st.replies) {
      if (out.length >= max) break;
      const sentAt = this.replyInFlight.get(r.id);
      if (sentAt !== undefined && nowMs - sentAt < resendAfterMs) {
        next = Math.min(next, sentAt + resendAfterMs);
        continue;
      }
      this.replyInFlight.set(r.id, nowMs);
      next = Math.min(next, nowMs + resendAfterMs);
      out.push({ kind: 'replies', key: r.id, payload: encodeUp('replies', r) });
    }
    for (const stream of ['events', 'readings'] as const) {
      for (const e of this.st.entries) {
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
        out.push(outgoing(e));
      }
    }
    this.nextDueAtMs = out.length >= max ? 0 : next;
    return out;
  }

  /** Hand one events message over now, outside `due` (the last gasp cannot wait for the next tick). */
  sendNow(seq: number, nowMs: number): OutgoingMessage | null {
    const e = this.st.entries.find((x) => x.stream === 'events' && x.seq === seq);
    if (!e) return null;
    this.sending.set(`events:${seq}`, { sentAtMs: nowMs, attempts: 1, resend: false });
    return outgoing(e);
  }

  /**
   * The transport confirms the broker has a message. Only replies end there; readings and
   * events wait for the ack. Returns whether the persistent state changed.
   */
  delivered(kind: OutgoingKind, key: string): boolean {
    if (kind !== 'replies') return false;
    this.replyInFlight.delete(key);
    const before = this.st.replies.length;
    this.st.replies = this.st.replies.filter((r) => r.id !== key);
    return this.st.replies.length !== before;
  }

  /** After a reconnect nothing can be assumed in flight: make everything due again. */
  resetSendState(): void {
    this.sending.clear();
    this.replyInFlight.clear();
    this.nextDueAtMs = 0;
  }

  private resendDelay(attempts: number): number {
    return Math.min(this.opts.maxResendAfterMs, this.opts.resendAfterMs * 2 ** Math.max(0, attempts - 1));
  }
}

function outgoing(e: OutboxEntry): OutgoingMessage {
  return {
    kind: e.stream,
    key: String(e.seq),
    payload: e.stream === 'events' ? encodeUp('events', e.msg) : encodeUp('readings', e.msg),
  };
}
