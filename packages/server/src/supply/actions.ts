import type { KeyObject } from 'node:crypto';
import type { Command } from '@kilowire/protocol';
import type {
  ActionRequestStatus,
  Approval,
  ApprovalDetail,
  ApprovalNeed,
  CommandStatus,
  RelayState,
  SupplyAction,
  SupplyReason,
  SupplyResult,
} from '@kilowire/contract';
import { approveCommand, cancelCommand, requestCommand, type CommandTiming } from '../commands/lifecycle.ts';
import { noteSupplyAction } from '../cases/cases.ts';
import { onCampaignApproved, onCampaignRefused } from '../firmware/campaigns.ts';
import { withTx, type Pool, type Q, type Tx } from '../db/pool.ts';
import { AppError } from '../errors.ts';
import { scopeSql, type Actor } from '../policies.ts';
import { getSettings, protectedBy } from './settings.ts';

/**
 * Remote disconnection and reconnection with their safeguards. One action names one or many
 * meters of the actor's supplier; it goes to the meters at once, or — when a safeguard
 * applies — becomes an action request whose commands stay 'awaiting_approval' in the
 * command lifecycle until a second supplier admin approves it. Nothing reaches a meter
 * before. Every step writes its audit rows in the transaction that makes the change.
 *
 * Safeguards (the supplier's settings, settings.ts):
 * - non-payment disconnection of a vulnerable household -> 'vulnerable';
 * - non-payment disconnection in protected hours (nights, weekends, holidays) -> 'protected_hours';
 * - more meters than the bulk threshold in one action (either direction) -> 'bulk';
 * - a user's disconnections per rolling hour are capped (429 QUOTA_EXCEEDED), counted
 *   when asked for, approved or not, so a quota cannot be dodged by asking for approval.
 */

export interface SupplyRequest {
  serials: string[];
  action: SupplyAction;
  reason: SupplyReason;
  reasonText?: string | undefined;
}

export interface ActOptions {
  /** The clock protected hours are judged by (epoch s); tests pin it. */
  nowS?: number;
  timing?: Partial<CommandTiming>;
}

interface TargetMeter {
  id: number;
  serial: string;
  relay: RelayState | null;
  status: string;
  vulnerable: boolean;
  /** A supply command of this meter already waiting for approval (its request id). */
  waiting_request: number | null;
}

const nowOf = (o: ActOptions) => o.nowS ?? Math.floor(Date.now() / 1000);

const listed = (serials: string[]) =>
  serials.length <= 5
    ? serials.join(', ')
    : `${serials.slice(0, 5).join(', ')} and ${serials.length - 5} more`;

/** What the meter is told: open the relay (with why), or arm it so the household closes it at the meter. */
function commandFor(action: SupplyAction, reason: SupplyReason): Command {
  return action === 'disconnect' ? { type: 'supply.off', reason } : { type: 'supply.arm' };
}

/**
 * The actor's meters named in the request, locked in id order (two actions on overlapping
 * meters serialise instead of deadlocking). A serial the actor cannot see is 404, as if it
 * did not exist.
 */
async function lockTargets(t: Tx, actor: Actor, serials: string[]): Promise<TargetMeter[]> {
  const scope = scopeSql(actor, 'meters', 'm', 2);
  const { rows } = await t.c.query<TargetMeter>(
    `SELECT m.id, m.serial, m.relay, m.status, coalesce(co.vulnerable, false) AS vulnerable,
            (SELECT c.request_id FROM commands c
              WHERE c.meter_id = m.id AND c.type IN ('supply.off', 'supply.arm') AND c.status = 'awaiting_approval'
              LIMIT 1)::int AS waiting_request
       FROM meters m
       LEFT JOIN accounts a ON a.id = m.account_id
       LEFT JOIN consumers co ON co.id = a.consumer_id
      WHERE m.serial = ANY($1::text[]) AND (${scope.sql})
      ORDER BY m.id
      FOR UPDATE OF m`,
    [serials, ...scope.params],
  );
  if (rows.length !== serials.length) {
    const found = new Set(rows.map((r) => r.serial));
    const missing = serials.filter((s) => !found.has(s));
    throw new AppError(
      'NOT_FOUND',
      missing.length === 1 ? 'meter not found' : `meters not found: ${listed(missing)}`,
    );
  }
  return rows;
}

/** Refuse meters whose state makes the action meaningless, naming them. */
function checkStates(action: SupplyAction, meters: TargetMeter[]): void {
  const bad = (pred: (m: TargetMeter) => boolean, why: string) => {
    const hit = meters.filter(pred).map((m) => m.serial);
    if (hit.length) throw new AppError('CONFLICT', `${listed(hit)}: ${why}`);
  };
  bad((m) => m.status !== 'active', 'the meter is decommissioned');
  bad(
    (m) => m.waiting_request !== null,
    'a disconnection or reconnection is already waiting for approval; approve or reject it first',
  );
  if (action === 'disconnect') {
    bad((m) => m.relay === 'disconnected', 'the supply is already disconnected');
  } else {
    bad(
      (m) => m.relay === 'armed',
      'the supply is already armed for reconnection: the household has to press the button on the meter',
    );
    bad((m) => m.relay === 'connected', 'the supply is already connected');
    bad(
      (m) => m.relay === null,
      'the meter has not reported its relay state yet, so there is nothing known to reconnect',
    );
  }
}

/**
 * The user's disconnections in the last hour plus these must fit the quota. Serialised per
 * user (an advisory lock for the transaction), so two tabs cannot both pass the check.
 */
async function checkQuota(t: Tx, userId: number, adding: number, quota: number): Promise<void> {
  await t.c.query(`SELECT pg_advisory_xact_lock(hashtext('kw-supply-quota'), $1::int)`, [userId]);
  const { rows } = await t.c.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM commands
      WHERE type = 'supply.off' AND created_by = $1 AND created_at > now() - interval '1 hour'`,
    [userId],
  );
  const used = rows[0]!.n;
  if (used + adding > quota) {
    throw new AppError(
      'QUOTA_EXCEEDED',
      `at most ${quota} disconnections per hour per person: ${used} asked for in the last hour, ${adding} more would exceed it`,
    );
  }
}

/** Disconnect or reconnect the named meters, or hold the commands for approval. In the caller's transaction. */
export async function requestSupply(
  t: Tx,
  key: KeyObject,
  actor: Actor,
  req: SupplyRequest,
  o: ActOptions = {},
): Promise<SupplyResult> {
  if (actor.role !== 'supplier' || actor.orgId === null) throw new AppError('FORBIDDEN', 'not permitted');
  const supplierId = actor.orgId;
  const settings = await getSettings(t.c, supplierId);
  const meters = await lockTargets(t, actor, req.serials);
  checkStates(req.action, meters);
  if (req.action === 'disconnect') {
    await checkQuota(t, actor.userId, meters.length, settings.hourlyDisconnectQuota);
  }

  const needs: ApprovalNeed[] = [];
  if (req.action === 'disconnect' && req.reason === 'non_payment') {
    if (meters.some((m) => m.vulnerable)) needs.push('vulnerable');
    if (protectedBy(settings, nowOf(o))) needs.push('protected_hours');
  }
  if (meters.length > settings.bulkThreshold) needs.push('bulk');

  const cmd = commandFor(req.action, req.reason);
  const reasonText = req.reasonText?.length ? req.reasonText : null;
  // The pinned clock judges protected hours only; commands are signed with the real time.
  const commandOpts = {
    actorId: actor.userId,
    reason: req.reason,
    ...(o.timing ? { timing: o.timing } : {}),
  };

  if (!needs.length) {
    const commands: SupplyResult['commands'] = [];
    for (const m of meters) {
      const r = await requestCommand(t.c, key, m, cmd, commandOpts);
      // A meter under a tamper investigation: the case's timeline shows the supply action.
      await noteSupplyAction(t.c, m.id, req.action, r.id, actor.userId);
      await t.audit(`supply.${req.action}`, m.serial, {
        commandId: r.id,
        counter: r.counter,
        reason: req.reason,
        ...(reasonText ? { reasonText } : {}),
        ...(meters.length > 1 ? { meters: meters.length } : {}),
      });
      commands.push({ serial: m.serial, commandId: r.id, status: r.status });
    }
    return {
      action: req.action,
      reason: req.reason,
      outcome: 'sent',
      needs,
      requestId: null,
      expiresAt: null,
      commands,
    };
  }

  const { rows } = await t.c.query<{ id: number; expires_at: Date }>(
    `INSERT INTO action_requests (supplier_id, kind, requested_by, reason, reason_text, needs, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6::text[], now() + make_interval(hours => $7))
     RETURNING id::int, expires_at`,
    [
      supplierId,
      `supply.${req.action}`,
      actor.userId,
      req.reason,
      reasonText,
      needs,
      settings.approvalTtlHours,
    ],
  );
  const request = rows[0]!;
  const commands: SupplyResult['commands'] = [];
  for (const m of meters) {
    const r = await requestCommand(t.c, key, m, cmd, { ...commandOpts, requireApproval: true });
    await noteSupplyAction(t.c, m.id, req.action, r.id, actor.userId);
    commands.push({ serial: m.serial, commandId: r.id, status: r.status });
  }
  // The commands lapse with their request (the lifecycle's own expiry sweep agrees).
  await t.c.query('UPDATE commands SET request_id = $1, expires_at = $2 WHERE id = ANY($3::uuid[])', [
    request.id,
    request.expires_at,
    commands.map((c) => c.commandId),
  ]);
  await t.audit('approval.requested', `request:${request.id}`, {
    kind: `supply.${req.action}`,
    reason: req.reason,
    ...(reasonText ? { reasonText } : {}),
    needs,
    serials: meters.map((m) => m.serial),
    commandIds: commands.map((c) => c.commandId),
  });
  return {
    action: req.action,
    reason: req.reason,
    outcome: 'awaiting_approval',
    needs,
    requestId: request.id,
    expiresAt: request.expires_at.toISOString(),
    commands,
  };
}

/**
 * The raw command API (POST /api/meters/:serial/commands) may still send supply.off: it must
 * not be a way round the safeguards. It counts against the same hourly quota, and a
 * non-payment disconnection that would need approval is refused there (409
 * APPROVAL_REQUIRED) in favour of POST /api/meters/:serial/supply, which holds it for a
 * second admin. In the caller's transaction, before the command is requested.
 */
export async function guardDirectSupplyOff(
  t: Tx,
  actor: Actor,
  meterId: number,
  reason: string | null,
  o: ActOptions = {},
): Promise<void> {
  if (actor.orgId === null) throw new AppError('FORBIDDEN', 'not permitted');
  const settings = await getSettings(t.c, actor.orgId);
  await checkQuota(t, actor.userId, 1, settings.hourlyDisconnectQuota);
  if (reason !== 'non_payment') return;
  const { rows } = await t.c.query<{ vulnerable: boolean }>(
    `SELECT coalesce(co.vulnerable, false) AS vulnerable FROM meters m
       LEFT JOIN accounts a ON a.id = m.account_id LEFT JOIN consumers co ON co.id = a.consumer_id
      WHERE m.id = $1`,
    [meterId],
  );
  if (rows[0]?.vulnerable || protectedBy(settings, nowOf(o))) {
    throw new AppError(
      'APPROVAL_REQUIRED',
      'this non-payment disconnection needs a second supplier admin: ask through POST /api/meters/:serial/supply',
    );
  }
}

interface RequestRow {
  id: number;
  kind: string;
  reason: string;
  reason_text: string | null;
  needs: ApprovalNeed[];
  status: ActionRequestStatus;
  requested_by: number;
  requested_by_name: string;
  decided_by: number | null;
  decided_by_name: string | null;
  decided_at: Date | null;
  decision_reason: string | null;
  expires_at: Date;
  created_at: Date;
  meter_count: number;
}

// A request past its expiry that the sweep has not reached yet reads as expired everywhere.
const SELECT_REQUEST = `
  SELECT r.id::int, r.kind, r.reason, r.reason_text, r.needs,
         CASE WHEN r.status = 'awaiting_approval' AND r.expires_at <= now() THEN 'expired' ELSE r.status END AS status,
         r.requested_by::int, u.display_name AS requested_by_name, r.decided_by::int,
         d.display_name AS decided_by_name, r.decided_at, r.decision_reason, r.expires_at, r.created_at,
         (SELECT count(*)::int FROM commands c WHERE c.request_id = r.id)
           -- #10 C a firmware campaign's meters (it holds no commands while it waits)
           + (SELECT count(*)::int FROM firmware_campaign_meters cm JOIN firmware_campaigns fc ON fc.id = cm.campaign_id
               WHERE fc.request_id = r.id) AS meter_count
    FROM action_requests r
    JOIN users u ON u.id = r.requested_by
    LEFT JOIN users d ON d.id = r.decided_by`;

function present(r: RequestRow, actor: Actor): Approval {
  return {
    id: r.id,
    kind: r.kind,
    reason: r.reason,
    reasonText: r.reason_text,
    needs: r.needs,
    status: r.status,
    requestedBy: { id: r.requested_by, name: r.requested_by_name },
    createdAt: r.created_at.toISOString(),
    expiresAt: r.expires_at.toISOString(),
    decidedBy: r.decided_by === null ? null : { id: r.decided_by, name: r.decided_by_name ?? '' },
    decidedAt: r.decided_at ? r.decided_at.toISOString() : null,
    decisionReason: r.decision_reason,
    meterCount: r.meter_count,
    mine: r.requested_by === actor.userId,
  };
}

/** The actor's supplier's requests, newest first, optionally of one status. */
export async function listApprovals(
  q: Q,
  actor: Actor,
  f: { status?: ActionRequestStatus | undefined; serial?: string | undefined; limit: number },
): Promise<Approval[]> {
  const scope = scopeSql(actor, 'action_requests', 'r', 4);
  const { rows } = await q.query<RequestRow>(
    `SELECT * FROM (${SELECT_REQUEST} WHERE ${scope.sql}) x
      WHERE ($1::text IS NULL OR x.status = $1)
        AND ($3::text IS NULL OR EXISTS (
              SELECT 1 FROM commands c JOIN meters m ON m.id = c.meter_id WHERE c.request_id = x.id AND m.serial = $3))
      ORDER BY x.created_at DESC, x.id DESC LIMIT $2`,
    [f.status ?? null, f.limit, f.serial ?? null, ...scope.params],
  );
  return rows.map((r) => present(r, actor));
}

/** One request of the actor's supplier with its meters and their commands; 404 outside the scope. */
export async function getApproval(q: Q, actor: Actor, id: number): Promise<ApprovalDetail> {
  const scope = scopeSql(actor, 'action_requests', 'r', 2);
  const { rows } = await q.query<RequestRow>(`${SELECT_REQUEST} WHERE r.id = $1 AND (${scope.sql})`, [
    id,
    ...scope.params,
  ]);
  const r = rows[0];
  if (!r) throw new AppError('NOT_FOUND', 'approval request not found');
  const meters = await q.query<{
    serial: string;
    relay: RelayState | null;
    vulnerable: boolean;
    command_id: string;
    command_status: CommandStatus;
  }>(
    `SELECT m.serial, m.relay, coalesce(co.vulnerable, false) AS vulnerable, c.id AS command_id,
            c.status AS command_status
       FROM commands c
       JOIN meters m ON m.id = c.meter_id
       LEFT JOIN accounts a ON a.id = m.account_id
       LEFT JOIN consumers co ON co.id = a.consumer_id
      WHERE c.request_id = $1
      ORDER BY m.serial`,
    [id],
  );
  return {
    ...present(r, actor),
    meters: meters.rows.map((m) => ({
      serial: m.serial,
      relay: m.relay,
      vulnerable: m.vulnerable,
      commandId: m.command_id,
      commandStatus: m.command_status,
    })),
  };
}

/** The request, locked, if the actor may see it. */
async function lockRequest(
  t: Tx,
  actor: Actor,
  id: number,
): Promise<{
  id: number;
  kind: string;
  reason: string;
  status: string;
  requested_by: number;
  expired: boolean;
}> {
  const scope = scopeSql(actor, 'action_requests', 'r', 2);
  const { rows } = await t.c.query<{
    id: number;
    kind: string;
    reason: string;
    status: string;
    requested_by: number;
    expired: boolean;
  }>(
    `SELECT r.id::int, r.kind, r.reason, r.status, r.requested_by::int, r.expires_at <= now() AS expired
       FROM action_requests r WHERE r.id = $1 AND (${scope.sql}) FOR UPDATE`,
    [id, ...scope.params],
  );
  const r = rows[0];
  if (!r) throw new AppError('NOT_FOUND', 'approval request not found');
  if (r.status !== 'awaiting_approval') throw new AppError('CONFLICT', `the request is already ${r.status}`);
  if (r.expired) throw new AppError('CONFLICT', 'the request has expired; ask again if it is still needed');
  return r;
}

async function waitingCommands(t: Tx, requestId: number): Promise<{ id: string; serial: string }[]> {
  const { rows } = await t.c.query<{ id: string; serial: string }>(
    `SELECT c.id, m.serial FROM commands c JOIN meters m ON m.id = c.meter_id
      WHERE c.request_id = $1 AND c.status = 'awaiting_approval' ORDER BY m.id`,
    [requestId],
  );
  return rows;
}

/**
 * A second supplier admin approves: every command of the request is queued (counter and
 * signature allocated now), in one transaction with the decision and its audit row.
 */
export async function approveRequest(
  t: Tx,
  key: KeyObject,
  actor: Actor,
  id: number,
  reason: string,
  o: ActOptions = {},
): Promise<ApprovalDetail> {
  const r = await lockRequest(t, actor, id);
  if (r.requested_by === actor.userId) {
    throw new AppError('SELF_APPROVAL', 'you asked for this action: a second supplier admin must approve it');
  }
  // #10 C a firmware campaign waits for its approval itself (no commands held): it starts now.
  if (r.kind === 'firmware.campaign') await onCampaignApproved(t.c, id, actor.userId);
  const queued: { serial: string; commandId: string; counter: number | null }[] = [];
  for (const c of await waitingCommands(t, id)) {
    const q = await approveCommand(t.c, key, c.id, actor.userId, o.timing ? { timing: o.timing } : {});
    queued.push({ serial: c.serial, commandId: c.id, counter: q.counter });
  }
  await t.c.query(
    `UPDATE action_requests SET status = 'approved', decided_by = $2, decided_at = now(), decision_reason = $3
      WHERE id = $1`,
    [id, actor.userId, reason],
  );
  await t.audit('approval.approved', `request:${id}`, { kind: r.kind, reason, commands: queued });
  return getApproval(t.c, actor, id);
}

/**
 * Reject (a second admin) or withdraw (the requester): the commands are cancelled, so
 * nothing ever reaches the meters.
 */
export async function rejectRequest(
  t: Tx,
  actor: Actor,
  id: number,
  reason: string,
): Promise<ApprovalDetail> {
  const r = await lockRequest(t, actor, id);
  const own = r.requested_by === actor.userId;
  const cancelled: string[] = [];
  for (const c of await waitingCommands(t, id)) {
    await cancelCommand(t.c, c.id, actor.userId, own ? 'withdrawn by the requester' : 'approval rejected');
    cancelled.push(c.id);
  }
  // #10 C the campaign never starts.
  if (r.kind === 'firmware.campaign') {
    await onCampaignRefused(t.c, id, actor.userId, own ? 'withdrawn' : 'rejected');
  }
  await t.c.query(
    `UPDATE action_requests SET status = $4, decided_by = $2, decided_at = now(), decision_reason = $3
      WHERE id = $1`,
    [id, actor.userId, reason, own ? 'cancelled' : 'rejected'],
  );
  await t.audit(own ? 'approval.withdrawn' : 'approval.rejected', `request:${id}`, {
    kind: r.kind,
    reason,
    cancelledCommands: cancelled,
  });
  return getApproval(t.c, actor, id);
}

/**
 * The expiry sweep: requests still waiting at `nowS` become expired and their commands
 * expired with them (never sent), with an audit row by the system, per request, in the same
 * transaction. Returns how many requests expired.
 */
export async function expireRequests(pool: Pool, nowS = Math.floor(Date.now() / 1000)): Promise<number> {
  return withTx(pool, { actorId: null }, async (t) => {
    const { rows } = await t.c.query<{ id: number; kind: string }>(
      `WITH gone AS (
         SELECT id FROM action_requests
          WHERE status = 'awaiting_approval' AND expires_at <= to_timestamp($1)
          ORDER BY id LIMIT 500 FOR UPDATE SKIP LOCKED
       )
       UPDATE action_requests r SET status = 'expired' FROM gone WHERE r.id = gone.id
       RETURNING r.id::int, r.kind`,
      [nowS],
    );
    for (const r of rows) {
      // #10 C a campaign nobody approved in time never starts.
      if (r.kind === 'firmware.campaign') await onCampaignRefused(t.c, r.id, null, 'expired');
      const cmds = await t.c.query<{ id: string }>(
        `WITH c AS (
           SELECT id FROM commands WHERE request_id = $1 AND status = 'awaiting_approval' FOR UPDATE
         )
         UPDATE commands x SET status = 'expired' FROM c WHERE x.id = c.id RETURNING x.id`,
        [r.id],
      );
      if (cmds.rows.length) {
        await t.c.query(
          `INSERT INTO command_transitions (command_id, from_status, to_status, detail)
           SELECT unnest($1::uuid[]), 'awaiting_approval', 'expired', 'approval request expired'`,
          [cmds.rows.map((c) => c.id)],
        );
      }
      await t.audit('approval.expired', `request:${r.id}`, {
        kind: r.kind,
        expiredCommands: cmds.rows.map((c) => c.id),
      });
    }
    return rows.length;
  });
}
