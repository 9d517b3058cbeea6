import { randomUUID, type KeyObject } from 'node:crypto';
import { signCommand, type Command, type ReplyMessage } from '@kilowire/protocol';
import type { CommandStatus } from '@kilowire/contract/enums';
import type { PoolClient, Q } from '../db/pool.ts';
import { AppError } from '../errors.ts';
import { emitEvents } from '../events/emit.ts';
import type { NewEvent } from '../events/types.ts';

/**
 * One lifecycle for every command a meter receives:
 *
 *   requested -> (awaiting_approval) -> queued -> sent -> ok | rejected | failed
 *                                          \------------> expired | cancelled
 *
 * Every transition is stored with its time and actor (command_transitions). The counter and
 * the signed envelope are allocated when a command is queued, so a command that waited for
 * approval still has a counter above every command queued before it (meters refuse stale
 * counters). Sending is claimed with FOR UPDATE SKIP LOCKED, so any number of gateways never
 * send one command concurrently; a command is resent only after a backoff AND once its meter
 * has been seen since the last copy, so retries never stack copies in an offline meter's
 * broker session. The signed body carries `expiresAt`, which the meter enforces; a meter
 * answers a duplicate with its stored reply, and here a final result is never overwritten,
 * so a result cannot flip from ok to rejected.
 */
export { COMMAND_STATUSES, type CommandStatus } from '@kilowire/contract/enums';

/** NOTIFY channel: a command was queued, gateways send at once instead of at their next tick. */
export const COMMANDS_CHANNEL = 'kw_commands';

export interface CommandTiming {
  /** Seconds from queueing until the meter must refuse the command. */
  ttlS: number;
  /** First resend delay (s); doubles per attempt up to maxRetryS. */
  retryS: number;
  maxRetryS: number;
}

export const DEFAULT_TIMING: CommandTiming = { ttlS: 86_400, retryS: 30, maxRetryS: 900 };
/** Meter clocks drift: the head-end calls a command expired only this long after its expiry. */
export const EXPIRY_GRACE_S = 60;
/** A command waiting for a second person's approval is dropped after this long (s). */
export const APPROVAL_TTL_S = 24 * 3600;

async function transition(
  c: PoolClient,
  id: string,
  from: CommandStatus | null,
  to: CommandStatus,
  actorId: number | null,
  detail: string | null = null,
): Promise<void> {
  await c.query(
    'INSERT INTO command_transitions (command_id, from_status, to_status, actor_id, detail) VALUES ($1, $2, $3, $4, $5)',
    [id, from, to, actorId, detail],
  );
}

export interface RequestOptions {
  actorId: number | null;
  /** Why (audit log, household message); supply.off carries it to the meter as well. */
  reason?: string | null;
  /** Hold the command until a second person approves it (safeguards). */
  requireApproval?: boolean;
  timing?: Partial<CommandTiming>;
  /** Clock for the signed issuedAt/expiresAt (epoch s); tests pin it. */
  nowS?: number;
}

export interface RequestedCommand {
  id: string;
  status: CommandStatus;
  /** Null until queued. */
  counter: number | null;
}

/** Ask for a command to one meter, in the caller's transaction. */
export async function requestCommand(
  c: PoolClient,
  key: KeyObject,
  meter: { id: number; serial: string },
  cmd: Command,
  o: RequestOptions,
): Promise<RequestedCommand> {
  const id = randomUUID();
  await c.query(
    `INSERT INTO commands (id, meter_id, type, cmd, status, created_by, reason, expires_at)
     VALUES ($1, $2, $3, $4, 'requested', $5, $6, CASE WHEN $7 THEN now() + make_interval(secs => $8) END)`,
    [
      id,
      meter.id,
      cmd.type,
      JSON.stringify(cmd),
      o.actorId,
      o.reason ?? null,
      o.requireApproval === true,
      APPROVAL_TTL_S,
    ],
  );
  await transition(c, id, null, 'requested', o.actorId);
  if (o.requireApproval) {
    await c.query(`UPDATE commands SET status = 'awaiting_approval' WHERE id = $1`, [id]);
    await transition(c, id, 'requested', 'awaiting_approval', o.actorId);
    return { id, status: 'awaiting_approval', counter: null };
  }
  const counter = await queue(c, key, id, meter, cmd, 'requested', o.actorId, o);
  return { id, status: 'queued', counter };
}

/** Allocate the counter under the meter row's lock, sign, and queue. */
async function queue(
  c: PoolClient,
  key: KeyObject,
  id: string,
  meter: { id: number; serial: string },
  cmd: Command,
  from: CommandStatus,
  actorId: number | null,
  o: { timing?: Partial<CommandTiming>; nowS?: number },
): Promise<number> {
  const ttlS = o.timing?.ttlS ?? DEFAULT_TIMING.ttlS;
  const { rows } = await c.query<{ last_counter: number }>(
    'UPDATE meters SET last_counter = last_counter + 1 WHERE id = $1 RETURNING last_counter',
    [meter.id],
  );
  const counter = rows[0]!.last_counter;
  const issuedAt = o.nowS ?? Math.floor(Date.now() / 1000);
  const body = { v: 1 as const, id, meter: meter.serial, counter, issuedAt, expiresAt: issuedAt + ttlS, cmd };
  const env = signCommand(body, key);
  await c.query(
    `UPDATE commands SET status = 'queued', counter = $2, body = $3, envelope = $4, queued_at = now(),
            expires_at = to_timestamp($5)
      WHERE id = $1`,
    [id, counter, JSON.stringify(body), JSON.stringify(env), body.expiresAt],
  );
  await transition(c, id, from, 'queued', actorId);
  await c.query(`SELECT pg_notify('${COMMANDS_CHANNEL}', $1)`, [String(meter.id)]);
  return counter;
}

/** Approve a command awaiting approval: only a different person than the one who asked. */
export async function approveCommand(
  c: PoolClient,
  key: KeyObject,
  id: string,
  approverId: number,
  o: { timing?: Partial<CommandTiming>; nowS?: number } = {},
): Promise<RequestedCommand> {
  const { rows } = await c.query<{
    status: CommandStatus;
    created_by: number | null;
    meter_id: number;
    serial: string;
    cmd: Command;
  }>(
    `SELECT c.status, c.created_by, c.meter_id, m.serial, c.cmd FROM commands c JOIN meters m ON m.id = c.meter_id
      WHERE c.id = $1 FOR UPDATE OF c`,
    [id],
  );
  const r = rows[0];
  if (!r) throw new AppError('NOT_FOUND', 'command not found');
  if (r.status !== 'awaiting_approval')
    throw new AppError('CONFLICT', `command is ${r.status}, not awaiting approval`);
  if (r.created_by === approverId) {
    throw new AppError('FORBIDDEN', 'the person who asked for a command cannot approve it');
  }
  await c.query('UPDATE commands SET approved_by = $2 WHERE id = $1', [id, approverId]);
  const counter = await queue(
    c,
    key,
    id,
    { id: r.meter_id, serial: r.serial },
    r.cmd,
    'awaiting_approval',
    approverId,
    o,
  );
  return { id, status: 'queued', counter };
}

/** Cancel a command that has not been sent yet (a sent one may already be in the meter's hands). */
export async function cancelCommand(
  c: PoolClient,
  id: string,
  actorId: number | null,
  reason: string | null,
): Promise<void> {
  const { rows } = await c.query<{ status: CommandStatus }>(
    'SELECT status FROM commands WHERE id = $1 FOR UPDATE',
    [id],
  );
  const r = rows[0];
  if (!r) throw new AppError('NOT_FOUND', 'command not found');
  if (!['requested', 'awaiting_approval', 'queued'].includes(r.status)) {
    throw new AppError('CONFLICT', `command is ${r.status}; only a command not yet sent can be cancelled`);
  }
  await c.query(`UPDATE commands SET status = 'cancelled' WHERE id = $1`, [id]);
  await transition(c, id, r.status, 'cancelled', actorId, reason);
}

export interface DueCommand {
  id: string;
  serial: string;
  /** The signed envelope, exactly as stored (the meter verifies these bytes). */
  envelope: string;
  attempts: number;
}

/**
 * Claim what to send now, and mark it sent (attempt + 1, next attempt after the backoff) in
 * the same statement: per meter only the oldest open command (so a retry never arrives after
 * a newer command and is refused as stale), queued ones at once, sent ones only when their
 * backoff is over and the meter was seen after the last copy went out. Rows another gateway
 * is claiming are skipped, and a row it has just claimed fails the re-checked condition.
 * The caller publishes after COMMIT; a crash in between leaves a 'sent' row that is resent
 * once the meter shows up.
 */
export async function claimDueCommands(c: PoolClient, t: CommandTiming, limit = 500): Promise<DueCommand[]> {
  const { rows } = await c.query<DueCommand & { was: CommandStatus }>(
    `WITH head AS (
       SELECT DISTINCT ON (c.meter_id) c.id, c.meter_id, c.status, c.sent_at, c.next_attempt_at
         FROM commands c WHERE c.status IN ('queued', 'sent') ORDER BY c.meter_id, c.counter
     ), due AS (
       SELECT h.id FROM head h
         JOIN meters m ON m.id = h.meter_id
         LEFT JOIN meter_ingest_state st ON st.meter_id = h.meter_id
        WHERE h.status = 'queued'
           OR (h.next_attempt_at <= now() AND greatest(m.last_seen_at, st.last_data_at) > h.sent_at)
        LIMIT $1
     ), claimed AS (
       SELECT c.id, c.status AS was FROM commands c
        WHERE c.id IN (SELECT id FROM due)
          AND (c.status = 'queued' OR (c.status = 'sent' AND c.next_attempt_at <= now()))
        FOR UPDATE SKIP LOCKED
     )
     UPDATE commands c SET status = 'sent', attempts = c.attempts + 1, sent_at = now(),
            next_attempt_at = now() + make_interval(secs => least($3::float8, $2::float8 * power(2, c.attempts)))
       FROM claimed, meters m
      WHERE c.id = claimed.id AND m.id = c.meter_id
      RETURNING c.id, m.serial, c.envelope, c.attempts, claimed.was`,
    [limit, t.retryS, t.maxRetryS],
  );
  if (rows.length) {
    await c.query(
      `INSERT INTO command_transitions (command_id, from_status, to_status, detail)
       SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[])`,
      [
        rows.map((r) => r.id),
        rows.map((r) => r.was),
        rows.map(() => 'sent'),
        rows.map((r) => (r.was === 'sent' ? `resent, attempt ${r.attempts}` : null)),
      ],
    );
  }
  return rows.map(({ id, serial, envelope, attempts }) => ({ id, serial, envelope, attempts }));
}

/**
 * Give up on commands past their expiry (plus a grace for meter clock drift): queued and
 * sent ones, and requests never approved. The meter refuses them too, so a command given up
 * here never runs later. A late 'ok' from a meter whose clock lagged still wins (applyReplies).
 */
export async function expireCommands(c: PoolClient): Promise<number> {
  const { rows } = await c.query<{ id: string; was: CommandStatus; type: string; meter_id: number }>(
    `WITH gone AS (
       SELECT id, status FROM commands
        WHERE status IN ('requested', 'awaiting_approval', 'queued', 'sent')
          AND expires_at < now() - make_interval(secs => $1)
        FOR UPDATE SKIP LOCKED
     )
     UPDATE commands c SET status = 'expired', result_code = coalesce(c.result_code, 'NO_REPLY')
       FROM gone WHERE c.id = gone.id
     RETURNING c.id, gone.status AS was, c.type, c.meter_id`,
    [EXPIRY_GRACE_S],
  );
  if (rows.length) {
    await c.query(
      `INSERT INTO command_transitions (command_id, from_status, to_status)
       SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[])`,
      [rows.map((r) => r.id), rows.map((r) => r.was), rows.map(() => 'expired')],
    );
    // Whoever needs the command's effect (a paid top-up's credit) reacts durably: request it again.
    await emitEvents(
      c,
      rows.map((r) => ({
        type: 'command.expired' as const,
        meterId: r.meter_id,
        payload: { commandId: r.id, type: r.type },
      })),
    );
  }
  return rows.length;
}

export interface AppliedReply {
  id: string;
  type: string;
  result: ReplyMessage['result'];
}

/**
 * Store meters' replies, in arrival order, in the caller's transaction. Only the first
 * answer counts: a final status (ok, rejected, failed, cancelled) never changes again, so a
 * duplicate answered STALE_COUNTER can never overwrite an ok. 'expired' may still become a
 * result: the head-end's expiry is a guess, the meter's answer is the truth. A meter can
 * only answer its own commands (meter_id in the WHERE).
 */
export async function applyReplies(
  c: PoolClient,
  replies: { meterId: number; reply: ReplyMessage }[],
): Promise<AppliedReply[]> {
  const applied: AppliedReply[] = [];
  const events: NewEvent[] = [];
  for (const { meterId, reply: r } of replies) {
    const { rows } = await c.query<{ type: string; was: CommandStatus }>(
      `WITH prev AS (
         SELECT id, status FROM commands WHERE id = $1 AND meter_id = $2 AND status IN ('queued', 'sent', 'expired') FOR UPDATE
       )
       UPDATE commands c SET status = $3, replied_at = now(), result_code = $4, result_detail = $5
         FROM prev WHERE c.id = prev.id
       RETURNING c.type, prev.status AS was`,
      [r.id, meterId, r.result, r.code ?? null, r.detail ?? null],
    );
    const row = rows[0];
    if (!row) continue;
    await transition(c, r.id, row.was, r.result, null, r.code ?? null);
    applied.push({ id: r.id, type: row.type, result: r.result });
    events.push({
      type: 'command.replied',
      meterId,
      payload: { commandId: r.id, type: row.type, result: r.result, code: r.code ?? null },
    });
  }
  await emitEvents(c, events);
  return applied;
}

export interface CommandRow {
  id: string;
  counter: number | null;
  type: string;
  status: CommandStatus;
  attempts: number;
  reason: string | null;
  created_by: number | null;
  approved_by: number | null;
  created_at: Date;
  queued_at: Date | null;
  sent_at: Date | null;
  replied_at: Date | null;
  expires_at: Date | null;
  result_code: string | null;
  result_detail: string | null;
}

/** Commands of one meter, newest first (never the signed envelope: it is for the meter only). */
export async function listCommands(q: Q, meterId: number, limit: number): Promise<CommandRow[]> {
  const { rows } = await q.query<CommandRow>(
    `SELECT id, counter, type, status, attempts, reason, created_by, approved_by, created_at, queued_at, sent_at,
            replied_at, expires_at, result_code, result_detail
       FROM commands WHERE meter_id = $1 ORDER BY created_at DESC, counter DESC NULLS FIRST LIMIT $2`,
    [meterId, limit],
  );
  return rows;
}

export interface TransitionRow {
  at: Date;
  from_status: CommandStatus | null;
  to_status: CommandStatus;
  actor_id: number | null;
  detail: string | null;
}

/** The stored transitions of one command, oldest first. */
export async function commandHistory(q: Q, id: string): Promise<TransitionRow[]> {
  const { rows } = await q.query<TransitionRow>(
    'SELECT at, from_status, to_status, actor_id, detail FROM command_transitions WHERE command_id = $1 ORDER BY at',
    [id],
  );
  return rows;
}
