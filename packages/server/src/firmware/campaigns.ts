import type { KeyObject } from 'node:crypto';
import { FW_FAILURE_STATES } from '@kilowire/contract';
import type { FwCampaignBody, FwCampaignSummary, FwTarget, FwTargetPreview } from '@kilowire/contract';
import type { PoolClient, Q, Tx } from '../db/pool.ts';
import { AppError } from '../errors.ts';
import { scopeSql, type Actor } from '../policies.ts';
import { getSettings } from '../supply/settings.ts';
import { cancelImage } from './commands.ts';
import { campaignSummary } from './queries.ts';

/**
 * Firmware campaigns, the supplier admin's side: which meters a target reaches, creating a
 * campaign (its stages decided once, at creation, so what the approving admin sees is what
 * runs), its approval by a second supplier admin (through the action requests of #8; see
 * supply/actions.ts), and pause / resume / cancel. The engine (engine.ts) moves meters on.
 */

/** A meter with one of these is taking an image: a second campaign may not touch it. */
export const LIVE_STATES = ['offered', 'downloading', 'verified', 'activating'] as const;
/** Not started yet: waiting for its turn, or passed over for now (retried). */
export const WAITING_STATES = ['pending', 'skipped'] as const;
/** A meter in one of these is done with the campaign. */
export const END_STATES = ['confirmed', ...FW_FAILURE_STATES, 'cancelled'] as const;
/** Campaigns that still hold their meters (a meter is in at most one of them, unfinished). */
export const HOLDING_STATUSES = ['awaiting_approval', 'running', 'paused'] as const;

const sqlList = (xs: readonly string[]) => `(${xs.map((x) => `'${x}'`).join(', ')})`;
export const LIVE_SQL = sqlList(LIVE_STATES);
/** The states that count against a stage's threshold, as an SQL list. */
export const FAILURES_SQL = sqlList(FW_FAILURE_STATES);
export const WAITING_SQL = sqlList(WAITING_STATES);
export const HOLDING_SQL = sqlList(HOLDING_STATUSES);

export interface ImageRow {
  id: number;
  supplier_id: number;
  version: string;
  sequence: number;
  hardware_class: string;
  sha256: string;
  manifest: string;
  signature: string;
  blocks: number;
}

/** The image, if the actor may see it (its supplier's own). */
export async function scopedImage(q: Q, actor: Actor, imageId: number): Promise<ImageRow> {
  const scope = scopeSql(actor, 'firmware_images', 'i', 2);
  const { rows } = await q.query<ImageRow>(
    `SELECT i.id::int, i.supplier_id, i.version, i.sequence, i.hardware_class, i.sha256, i.manifest, i.signature,
            cardinality(i.block_hashes) AS blocks
       FROM firmware_images i WHERE i.id = $1 AND (${scope.sql})`,
    [imageId, ...scope.params],
  );
  const r = rows[0];
  if (!r) throw new AppError('NOT_FOUND', 'firmware image not found');
  return r;
}

export interface Resolved {
  /** Meters that can take the image, in staging order (round robin over feeders). */
  eligible: { id: number; serial: string; feeder_id: string | null }[];
  otherHardware: number;
  notNewer: number;
  busy: number;
  notFound: string[];
}

/**
 * The supplier's active meters a target selects, and why some of them cannot take the image:
 * another hardware class, already at or above its security sequence (no rollback, and no
 * point), or held by another unfinished campaign. Named serials that are not the supplier's
 * active meters are listed (never revealing whose they are).
 */
export async function resolveTarget(
  q: Q,
  supplierId: number,
  image: ImageRow,
  target: FwTarget,
): Promise<Resolved> {
  const f = 'filter' in target ? target.filter : null;
  const serials = 'serials' in target ? [...new Set(target.serials)] : null;
  const { rows } = await q.query<{
    id: number;
    serial: string;
    feeder_id: string | null;
    hardware_class: string;
    firmware_sequence: number | null;
    busy: boolean;
  }>(
    `SELECT m.id, m.serial, m.feeder_id, m.hardware_class, m.firmware_sequence,
            EXISTS (SELECT 1 FROM firmware_campaign_meters x JOIN firmware_campaigns xc ON xc.id = x.campaign_id
                     WHERE x.meter_id = m.id AND xc.status IN ${HOLDING_SQL}
                       AND x.state IN ${sqlList([...WAITING_STATES, ...LIVE_STATES])}) AS busy
       FROM meters m
       LEFT JOIN accounts a ON a.id = m.account_id
      WHERE m.supplier_id = $1 AND m.status = 'active'
        AND ($2::text[] IS NULL OR m.serial = ANY($2::text[]))
        AND ($3::text IS NULL OR m.hardware_class = $3)
        AND ($4::text IS NULL OR m.firmware_version = $4)
        AND ($5::text IS NULL OR m.area_id = $5)
        AND ($6::text IS NULL OR m.feeder_id = $6)
        AND ($7::text IS NULL OR coalesce(a.mode, m.mode) = $7)
        AND ($8::int IS NULL OR (SELECT mt.tariff_id FROM meter_tariffs mt
                                   WHERE mt.meter_id = m.id AND mt.from_day <= (now() AT TIME ZONE m.tz)::date
                                   ORDER BY mt.from_day DESC LIMIT 1) = $8)
      ORDER BY m.id`,
    [
      supplierId,
      serials,
      f?.hardwareClass ?? null,
      f?.version ?? null,
      f?.area ?? null,
      f?.feeder ?? null,
      f?.mode ?? null,
      f?.tariffId ?? null,
    ],
  );
  const out: Resolved = { eligible: [], otherHardware: 0, notNewer: 0, busy: 0, notFound: [] };
  for (const r of rows) {
    if (r.hardware_class !== image.hardware_class) out.otherHardware++;
    else if ((r.firmware_sequence ?? 0) >= image.sequence) out.notNewer++;
    else if (r.busy) out.busy++;
    else out.eligible.push({ id: r.id, serial: r.serial, feeder_id: r.feeder_id });
  }
  if (serials) {
    const found = new Set(rows.map((r) => r.serial));
    out.notFound = serials.filter((s) => !found.has(s)).sort();
  }
  // Round robin over feeders: the canary (the first meters) samples every feeder of the
  // target rather than filling up on the first one.
  const rank = new Map<string, number>();
  const keyed = out.eligible.map((m) => {
    const k = m.feeder_id ?? '';
    const n = rank.get(k) ?? 0;
    rank.set(k, n + 1);
    return { m, n, k };
  });
  keyed.sort((a, b) => a.n - b.n || (a.k < b.k ? -1 : a.k > b.k ? 1 : 0) || a.m.id - b.m.id);
  out.eligible = keyed.map((x) => x.m);
  return out;
}

function supplierOf(actor: Actor): number {
  if (actor.role !== 'supplier' || actor.orgId === null) throw new AppError('FORBIDDEN', 'not permitted');
  return actor.orgId;
}

/** What a target would reach, before creating the campaign. */
export async function previewTarget(
  q: Q,
  actor: Actor,
  body: { imageId: number; target: FwTarget },
): Promise<FwTargetPreview> {
  const supplierId = supplierOf(actor);
  const image = await scopedImage(q, actor, body.imageId);
  const r = await resolveTarget(q, supplierId, image, body.target);
  return {
    meters: r.eligible.length,
    excluded: { otherHardware: r.otherHardware, notNewer: r.notNewer, busy: r.busy, notFound: r.notFound },
  };
}

/**
 * The size of each stage for `n` meters: the canary (canaryCount, or canaryPct per cent of
 * n rounded up, at least 1 and at most n), then waves of waveSize.
 */
export function stageSizes(
  n: number,
  o: { canaryCount?: number | null | undefined; canaryPct?: number | null | undefined; waveSize: number },
): number[] {
  if (n <= 0) return [];
  const canary = Math.min(
    n,
    Math.max(1, o.canaryCount ?? Math.ceil((Math.round((o.canaryPct ?? 100) * 100) * n) / 10_000)),
  );
  const sizes = [canary];
  for (let left = n - canary; left > 0; left -= o.waveSize) sizes.push(Math.min(o.waveSize, left));
  return sizes;
}

/** Most failures a stage of `n` meters may have: floor(threshold% x n). One more halts the campaign. */
export function maxFailures(thresholdPct: number, n: number): number {
  return Math.floor((Math.round(thresholdPct * 100) * n) / 10_000);
}

export async function timeline(
  c: PoolClient,
  campaignId: number,
  kind: string,
  actorId: number | null,
  detail: string | null = null,
): Promise<void> {
  await c.query(
    'INSERT INTO firmware_campaign_events (campaign_id, kind, actor_id, detail) VALUES ($1, $2, $3, $4)',
    [campaignId, kind, actorId, detail === null ? null : detail.slice(0, 1000)],
  );
}

/**
 * Create a campaign: the target resolved to its meters now, split into the canary (stage 0)
 * and waves, and an approval request for a second supplier admin. Nothing reaches a meter
 * before that approval. In the caller's transaction, with its audit rows.
 */
export async function createCampaign(t: Tx, actor: Actor, body: FwCampaignBody): Promise<FwCampaignSummary> {
  const supplierId = supplierOf(actor);
  const image = await scopedImage(t.c, actor, body.imageId);
  // Two admins creating campaigns over the same meters at once: the second sees the first's.
  await t.c.query(`SELECT pg_advisory_xact_lock(hashtext('kw-fw-target'), $1::int)`, [supplierId]);
  const r = await resolveTarget(t.c, supplierId, image, body.target);
  if (!r.eligible.length) {
    throw new AppError(
      'CONFLICT',
      `no meter of the target can take this image (other hardware ${r.otherHardware}, already at or above its sequence ${r.notNewer}, in another campaign ${r.busy}, not found ${r.notFound.length})`,
    );
  }
  const sizes = stageSizes(r.eligible.length, body);
  const ins = await t.c.query<{ id: number }>(
    `INSERT INTO firmware_campaigns (supplier_id, image_id, name, target, status, canary_count, canary_pct, wave_size,
            failure_threshold_pct, window_from, window_to, feeder_max, feeder_spacing_s, confirm_s, stages, created_by)
     VALUES ($1, $2, $3, $4, 'awaiting_approval', $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
     RETURNING id::int`,
    [
      supplierId,
      image.id,
      body.name,
      JSON.stringify(body.target),
      body.canaryCount ?? null,
      body.canaryPct ?? null,
      body.waveSize,
      body.failureThresholdPct,
      body.windowFrom,
      body.windowTo,
      body.feederMax,
      body.feederSpacingS,
      body.confirmS,
      sizes.length,
      actor.userId,
    ],
  );
  const id = ins.rows[0]!.id;
  const stageOf: number[] = [];
  sizes.forEach((n, s) => {
    for (let i = 0; i < n; i++) stageOf.push(s);
  });
  await t.c.query(
    `INSERT INTO firmware_campaign_meters (campaign_id, meter_id, stage, blocks_total)
     SELECT $1, m, s, $4 FROM unnest($2::int[], $3::int[]) AS x(m, s)`,
    [id, r.eligible.map((m) => m.id), stageOf, image.blocks],
  );
  const settings = await getSettings(t.c, supplierId);
  const req = await t.c.query<{ id: number }>(
    `INSERT INTO action_requests (supplier_id, kind, requested_by, reason, reason_text, needs, expires_at)
     VALUES ($1, 'firmware.campaign', $2, 'firmware_campaign', $3, '{firmware}', now() + make_interval(hours => $4))
     RETURNING id::int`,
    [supplierId, actor.userId, `${body.name}: ${body.reason}`.slice(0, 500), settings.approvalTtlHours],
  );
  const requestId = req.rows[0]!.id;
  await t.c.query('UPDATE firmware_campaigns SET request_id = $2 WHERE id = $1', [id, requestId]);
  await timeline(
    t.c,
    id,
    'created',
    actor.userId,
    `${r.eligible.length} meters in ${sizes.length} stages (canary ${sizes[0]}); ${body.reason}`,
  );
  const detail = {
    campaignId: id,
    imageId: image.id,
    version: image.version,
    meters: r.eligible.length,
    stages: sizes,
    reason: body.reason,
  };
  await t.audit('firmware.campaign.created', `campaign:${id}`, detail);
  await t.audit('approval.requested', `request:${requestId}`, {
    kind: 'firmware.campaign',
    needs: ['firmware'],
    ...detail,
  });
  return campaignSummary(t.c, actor, id);
}

// ------------------------------------------------------------------ the approval hooks

/**
 * A second supplier admin approved the campaign's request (supply/actions.ts checked who):
 * it runs from now; the engine's next tick makes the first offers.
 */
export async function onCampaignApproved(c: PoolClient, requestId: number, actorId: number): Promise<void> {
  const { rows } = await c.query<{ id: number }>(
    `UPDATE firmware_campaigns SET status = 'running', started_at = now()
      WHERE request_id = $1 AND status = 'awaiting_approval' RETURNING id::int`,
    [requestId],
  );
  for (const r of rows) {
    await timeline(c, r.id, 'started', actorId, 'approved');
    await timeline(c, r.id, 'stage_started', null, 'stage 0 (canary)');
  }
}

/**
 * The request was rejected, withdrawn by its requester, or expired: the campaign never
 * starts. Its meters are released for other campaigns.
 */
export async function onCampaignRefused(
  c: PoolClient,
  requestId: number,
  actorId: number | null,
  why: 'rejected' | 'withdrawn' | 'expired',
): Promise<void> {
  const status = why === 'withdrawn' ? 'cancelled' : 'rejected';
  const { rows } = await c.query<{ id: number }>(
    `UPDATE firmware_campaigns SET status = $2, finished_at = now()
      WHERE request_id = $1 AND status = 'awaiting_approval' RETURNING id::int`,
    [requestId, status],
  );
  for (const r of rows) {
    await c.query(
      `UPDATE firmware_campaign_meters SET state = 'cancelled', reason = $2, finished_at = now(), updated_at = now()
        WHERE campaign_id = $1 AND state IN ${WAITING_SQL}`,
      [r.id, `approval ${why}`],
    );
    await timeline(c, r.id, why === 'withdrawn' ? 'withdrawn' : why, actorId);
  }
}

// ------------------------------------------------------------------ by hand

export interface CampaignLock {
  id: number;
  supplier_id: number;
  status: string;
  name: string;
  sha256: string;
}

/** The campaign, locked, if the actor may see it. */
export async function lockCampaign(c: PoolClient, actor: Actor, id: number): Promise<CampaignLock> {
  const scope = scopeSql(actor, 'firmware_campaigns', 'c', 2);
  const { rows } = await c.query<CampaignLock>(
    `SELECT c.id::int, c.supplier_id, c.status, c.name, i.sha256
       FROM firmware_campaigns c JOIN firmware_images i ON i.id = c.image_id
      WHERE c.id = $1 AND (${scope.sql}) FOR UPDATE OF c`,
    [id, ...scope.params],
  );
  const r = rows[0];
  if (!r) throw new AppError('NOT_FOUND', 'campaign not found');
  return r;
}

/**
 * Stop a campaign's unfinished meters: a meter that holds or is receiving the image, or has
 * an activation still to come, is told to drop it (firmware.cancel); a meter not offered yet
 * is simply cancelled. A meter already rebooting into the image (its instant has passed) is
 * left to confirm or revert: cancelling could not stop the reboot, and its outcome is still
 * recorded. In the caller's transaction.
 */
export async function cancelUnfinished(
  c: PoolClient,
  key: KeyObject,
  campaign: { id: number; sha256: string },
  reason: string,
  actorId: number | null,
): Promise<number> {
  const live = await c.query<{ meter_id: number; serial: string }>(
    `SELECT cm.meter_id, m.serial FROM firmware_campaign_meters cm JOIN meters m ON m.id = cm.meter_id
      WHERE cm.campaign_id = $1
        AND (cm.state IN ('offered', 'downloading', 'verified') OR (cm.state = 'activating' AND cm.activate_at > now()))
      ORDER BY cm.meter_id FOR UPDATE OF cm`,
    [campaign.id],
  );
  for (const m of live.rows) {
    await cancelImage(c, key, campaign.id, { id: m.meter_id, serial: m.serial }, campaign.sha256, reason, {
      actorId,
    });
  }
  const waiting = await c.query(
    `UPDATE firmware_campaign_meters SET state = 'cancelled', reason = $2, finished_at = now(), updated_at = now()
      WHERE campaign_id = $1 AND state IN ${WAITING_SQL}`,
    [campaign.id, reason.slice(0, 256)],
  );
  return live.rows.length + (waiting.rowCount ?? 0);
}

/** Pause: no new offers or activations; transfers under way go on, and so do activations already sent. */
export function pauseCampaign(
  t: Tx,
  actor: Actor,
  id: number,
  reason: string | undefined,
): Promise<FwCampaignSummary> {
  return moveByHand(t, actor, id, 'running', 'paused', reason);
}

export function resumeCampaign(
  t: Tx,
  actor: Actor,
  id: number,
  reason: string | undefined,
): Promise<FwCampaignSummary> {
  return moveByHand(t, actor, id, 'paused', 'running', reason);
}

/** Pause and resume: one status to the other, on the timeline and in the audit log, in one transaction. */
async function moveByHand(
  t: Tx,
  actor: Actor,
  id: number,
  from: 'running' | 'paused',
  to: 'running' | 'paused',
  reason: string | undefined,
): Promise<FwCampaignSummary> {
  const c = await lockCampaign(t.c, actor, id);
  if (c.status !== from) throw new AppError('CONFLICT', `the campaign is ${c.status}, not ${from}`);
  await t.c.query(`UPDATE firmware_campaigns SET status = $2 WHERE id = $1`, [id, to]);
  const kind = to === 'paused' ? 'paused' : 'resumed';
  await timeline(t.c, id, kind, actor.userId, reason ?? null);
  await t.audit(`firmware.campaign.${kind}`, `campaign:${id}`, { reason: reason ?? null });
  return campaignSummary(t.c, actor, id);
}

/** Cancel a running or paused campaign for good: its unfinished meters are told to drop the image. */
export async function cancelCampaign(
  t: Tx,
  key: KeyObject,
  actor: Actor,
  id: number,
  reason: string | undefined,
): Promise<FwCampaignSummary> {
  const c = await lockCampaign(t.c, actor, id);
  if (c.status === 'awaiting_approval') {
    throw new AppError('CONFLICT', 'the campaign waits for approval: withdraw its approval request instead');
  }
  if (c.status !== 'running' && c.status !== 'paused') {
    throw new AppError('CONFLICT', `the campaign is already ${c.status}`);
  }
  const why = `cancelled by hand${reason ? `: ${reason}` : ''}`;
  const n = await cancelUnfinished(t.c, key, c, why, actor.userId);
  await t.c.query(`UPDATE firmware_campaigns SET status = 'cancelled', finished_at = now() WHERE id = $1`, [
    id,
  ]);
  await timeline(t.c, id, 'cancelled', actor.userId, reason ?? null);
  await t.audit('firmware.campaign.cancelled', `campaign:${id}`, { reason: reason ?? null, meters: n });
  return campaignSummary(t.c, actor, id);
}
