import {
  FW_METER_STATES,
  type FwCampaignDetail,
  type FwCampaignMeter,
  type FwCampaignStatus,
  type FwCampaignSummary,
  type FwMeterState,
  type FwSkipReason,
  type FwStage,
  type FwTarget,
} from '@kilowire/contract';
import type { Q } from '../db/pool.ts';
import { FAILURES_SQL } from './campaigns.ts';
import { AppError } from '../errors.ts';
import { scopeSql, type Actor } from '../policies.ts';

/**
 * What the console shows of campaigns: the list, one campaign with its stages, failure
 * reasons and timeline, and its meters one by one. Scoped to the actor's supplier (admins
 * all); another supplier's campaign is 404 as if it did not exist.
 */

type Counts = Record<FwMeterState, number>;

function counts(raw: Record<string, number> | null): Counts {
  const out = Object.fromEntries(FW_METER_STATES.map((s) => [s, 0])) as Counts;
  for (const [k, v] of Object.entries(raw ?? {})) if (k in out) out[k as FwMeterState] = v;
  return out;
}

interface SummaryRow {
  id: number;
  name: string;
  image_id: number;
  version: string;
  hardware_class: string;
  status: FwCampaignStatus;
  stage: number;
  stages: number;
  meters: number;
  counts: Record<string, number> | null;
  created_by: string | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  halted_reason: string | null;
  request_id: number | null;
}

const SELECT_SUMMARY = `
  SELECT c.id::int, c.name, i.id::int AS image_id, i.version, i.hardware_class, c.status, c.stage, c.stages,
         (SELECT count(*)::int FROM firmware_campaign_meters x WHERE x.campaign_id = c.id) AS meters,
         (SELECT jsonb_object_agg(s.state, s.n) FROM (
            SELECT x.state, count(*)::int AS n FROM firmware_campaign_meters x WHERE x.campaign_id = c.id GROUP BY x.state
          ) s) AS counts,
         u.display_name AS created_by, c.created_at, c.started_at, c.finished_at, c.halted_reason,
         c.request_id::int
    FROM firmware_campaigns c
    JOIN firmware_images i ON i.id = c.image_id
    LEFT JOIN users u ON u.id = c.created_by`;

function present(r: SummaryRow): FwCampaignSummary {
  return {
    id: r.id,
    name: r.name,
    image: { id: r.image_id, version: r.version, hardwareClass: r.hardware_class },
    status: r.status,
    stage: r.stage,
    stages: r.stages,
    meters: r.meters,
    counts: counts(r.counts),
    createdBy: r.created_by,
    createdAt: r.created_at.toISOString(),
    startedAt: r.started_at?.toISOString() ?? null,
    finishedAt: r.finished_at?.toISOString() ?? null,
    haltedReason: r.halted_reason,
    requestId: r.status === 'awaiting_approval' ? r.request_id : null,
  };
}

export async function campaignSummary(q: Q, actor: Actor, id: number): Promise<FwCampaignSummary> {
  const scope = scopeSql(actor, 'firmware_campaigns', 'c', 2);
  const { rows } = await q.query<SummaryRow>(`${SELECT_SUMMARY} WHERE c.id = $1 AND (${scope.sql})`, [
    id,
    ...scope.params,
  ]);
  const r = rows[0];
  if (!r) throw new AppError('NOT_FOUND', 'campaign not found');
  return present(r);
}

/** Newest first, before `beforeId` (the page cursor). */
export async function listCampaigns(
  q: Q,
  actor: Actor,
  f: { status?: FwCampaignStatus | undefined; limit: number; beforeId: number | null },
): Promise<{ items: FwCampaignSummary[]; nextBefore: number | null }> {
  const scope = scopeSql(actor, 'firmware_campaigns', 'c', 4);
  const { rows } = await q.query<SummaryRow>(
    `${SELECT_SUMMARY}
      WHERE ($1::text IS NULL OR c.status = $1) AND ($2::bigint IS NULL OR c.id < $2) AND (${scope.sql})
      ORDER BY c.id DESC LIMIT $3`,
    [f.status ?? null, f.beforeId, f.limit + 1, ...scope.params],
  );
  const more = rows.length > f.limit;
  const items = rows.slice(0, f.limit).map(present);
  return { items, nextBefore: more ? items[items.length - 1]!.id : null };
}

export async function campaignDetail(q: Q, actor: Actor, id: number): Promise<FwCampaignDetail> {
  const summary = await campaignSummary(q, actor, id);
  const c = (
    await q.query<{
      target: FwTarget;
      canary_count: number | null;
      canary_pct: string | null;
      wave_size: number;
      failure_threshold_pct: string;
      window_from: string;
      window_to: string;
      feeder_max: number;
      feeder_spacing_s: number;
      confirm_s: number;
    }>(
      `SELECT target, canary_count, canary_pct, wave_size, failure_threshold_pct, window_from, window_to,
              feeder_max, feeder_spacing_s, confirm_s
         FROM firmware_campaigns WHERE id = $1`,
      [id],
    )
  ).rows[0]!;
  const stages = await q.query<{
    stage: number;
    meters: number;
    counts: Record<string, number>;
    failures: number;
    max_failures: number;
    done: string | null;
    total: string | null;
  }>(
    `SELECT x.stage, count(*)::int AS meters,
            (SELECT jsonb_object_agg(s.state, s.n) FROM (
               SELECT y.state, count(*)::int AS n FROM firmware_campaign_meters y
                WHERE y.campaign_id = $1 AND y.stage = x.stage GROUP BY y.state) s) AS counts,
            count(*) FILTER (WHERE x.state IN ${FAILURES_SQL})::int AS failures,
            floor(c.failure_threshold_pct * count(*) / 100)::int AS max_failures,
            sum(x.blocks_done) FILTER (WHERE x.offered_at IS NOT NULL) AS done,
            sum(x.blocks_total) FILTER (WHERE x.offered_at IS NOT NULL) AS total
       FROM firmware_campaign_meters x JOIN firmware_campaigns c ON c.id = x.campaign_id
      WHERE x.campaign_id = $1
      GROUP BY x.stage, c.failure_threshold_pct ORDER BY x.stage`,
    [id],
  );
  const reasons = await q.query<{ reason: string; meters: number }>(
    `SELECT coalesce(reason, state) AS reason, count(*)::int AS meters FROM firmware_campaign_meters
      WHERE campaign_id = $1 AND state IN ${FAILURES_SQL}
      GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 50`,
    [id],
  );
  const events = await q.query<{ at: Date; kind: string; actor: string | null; detail: string | null }>(
    `SELECT e.at, e.kind, u.display_name AS actor, e.detail FROM firmware_campaign_events e
       LEFT JOIN users u ON u.id = e.actor_id WHERE e.campaign_id = $1 ORDER BY e.id`,
    [id],
  );
  const stagesDetail: FwStage[] = stages.rows.map((s) => {
    const total = Number(s.total ?? 0);
    return {
      stage: s.stage,
      meters: s.meters,
      counts: counts(s.counts),
      failures: s.failures,
      maxFailures: s.max_failures,
      downloadPct: total > 0 ? Math.round((Number(s.done ?? 0) * 1000) / total) / 10 : 0,
    };
  });
  return {
    ...summary,
    target: c.target,
    canaryCount: c.canary_count,
    canaryPct: c.canary_pct === null ? null : Number(c.canary_pct),
    waveSize: c.wave_size,
    failureThresholdPct: Number(c.failure_threshold_pct),
    windowFrom: c.window_from,
    windowTo: c.window_to,
    feederMax: c.feeder_max,
    feederSpacingS: c.feeder_spacing_s,
    confirmS: c.confirm_s,
    stagesDetail,
    failureReasons: reasons.rows,
    timeline: events.rows.map((e) => ({
      at: e.at.toISOString(),
      kind: e.kind,
      actor: e.actor,
      detail: e.detail,
    })),
  };
}

/** The campaign's meters by serial, after `afterSerial` (the page cursor). */
export async function campaignMeters(
  q: Q,
  actor: Actor,
  id: number,
  f: {
    state?: FwMeterState | undefined;
    stage?: number | undefined;
    limit: number;
    afterSerial: string | null;
  },
): Promise<{ items: FwCampaignMeter[]; nextAfter: string | null }> {
  await campaignSummary(q, actor, id);
  const { rows } = await q.query<{
    serial: string;
    stage: number;
    state: FwMeterState;
    blocks_done: number;
    blocks_total: number;
    reason: string | null;
    skip_reason: FwSkipReason | null;
    feeder_id: string | null;
    activate_at: Date | null;
    updated_at: Date;
  }>(
    `SELECT m.serial, cm.stage, cm.state, cm.blocks_done, cm.blocks_total, cm.reason, cm.skip_reason, m.feeder_id,
            cm.activate_at, cm.updated_at
       FROM firmware_campaign_meters cm JOIN meters m ON m.id = cm.meter_id
      WHERE cm.campaign_id = $1 AND ($2::text IS NULL OR cm.state = $2) AND ($3::int IS NULL OR cm.stage = $3)
        AND ($4::text IS NULL OR m.serial > $4)
      ORDER BY m.serial LIMIT $5`,
    [id, f.state ?? null, f.stage ?? null, f.afterSerial, f.limit + 1],
  );
  const more = rows.length > f.limit;
  const items = rows.slice(0, f.limit).map((r) => ({
    serial: r.serial,
    stage: r.stage,
    state: r.state,
    blocksDone: r.blocks_done,
    blocksTotal: r.blocks_total,
    reason: r.reason,
    skipReason: r.skip_reason,
    feederId: r.feeder_id,
    activateAt: r.activate_at?.toISOString() ?? null,
    updatedAt: r.updated_at.toISOString(),
  }));
  return { items, nextAfter: more ? items[items.length - 1]!.serial : null };
}
