import type {
  FeedersResponse,
  IncidentDetail,
  IncidentEventKind,
  IncidentKind,
  IncidentStatus,
  IncidentSummary,
  IncidentTransition,
  OutageSettings,
  OutageSettingsBody,
  SlaMonth,
  SlaState,
} from '@kilowire/contract';
import type { Q, Tx } from '../db/pool.ts';
import { AppError } from '../errors.ts';
import { raiseAlertsIn } from '../alerts/raise.ts';
import { scopeSql, type Actor } from '../policies.ts';
import { addTimeline, etrAlert, OPEN_STATUSES, restoreByHand } from './detect.ts';

/**
 * The operator's console over outages: feeders with their status, incidents with their
 * timeline, the transitions the control room makes, the SLA dashboard and the outage
 * settings. Reads are scoped by policies.ts (an operator sees its own areas only; admins
 * all); a household appears as a postcode, never a name. Nothing here touches a meter.
 */

const OPEN_SQL = `('detected', 'acknowledged', 'dispatched')`;
const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

export async function listFeeders(q: Q, actor: Actor, o: { area?: string }): Promise<FeedersResponse> {
  const s = scopeSql(actor, 'network_areas', 'na', 2);
  const { rows } = await q.query<{
    id: string;
    name: string;
    area_id: string;
    area_name: string;
    meters: number;
    off: number;
    incident_id: string | null;
    sla_state: SlaState | null;
  }>(
    `SELECT f.id, f.name, f.area_id, na.name AS area_name,
            coalesce(m.meters, 0) AS meters, coalesce(m.off, 0) AS off, i.id AS incident_id, i.sla_state
       FROM feeders f JOIN network_areas na ON na.id = f.area_id
       LEFT JOIN LATERAL (
         SELECT count(*)::int AS meters, count(ps.off_since)::int AS off
           FROM meters mm LEFT JOIN meter_power_state ps ON ps.meter_id = mm.id
          WHERE mm.feeder_id = f.id AND mm.status = 'active' AND mm.relay IS DISTINCT FROM 'disconnected') m ON TRUE
       LEFT JOIN outage_incidents i ON i.feeder_id = f.id AND i.kind = 'feeder' AND i.status IN ${OPEN_SQL}
      WHERE ($1::text IS NULL OR f.area_id = $1) AND ${s.sql}
      ORDER BY (i.id IS NULL), f.area_id, f.name`,
    [o.area ?? null, ...s.params],
  );
  const si = scopeSql(actor, 'incidents', 'i', 2);
  const c = (
    await q.query<{ open: number; at_risk: number; breached: number }>(
      `SELECT count(*)::int AS open, count(*) FILTER (WHERE sla_state = 'at_risk')::int AS at_risk,
              count(*) FILTER (WHERE sla_state = 'breached')::int AS breached
         FROM outage_incidents i WHERE i.status IN ${OPEN_SQL} AND ($1::text IS NULL OR i.area_id = $1) AND ${si.sql}`,
      [o.area ?? null, ...si.params],
    )
  ).rows[0]!;
  return {
    items: rows.map((r) => ({
      id: r.id,
      name: r.name,
      areaId: r.area_id,
      areaName: r.area_name,
      meters: r.meters,
      metersOff: r.off,
      incidentId: r.incident_id === null ? null : Number(r.incident_id),
      slaState: r.sla_state,
    })),
    counters: {
      feeders: rows.length,
      feedersOut: rows.filter((r) => r.incident_id !== null).length,
      metersOff: rows.reduce((n, r) => n + r.off, 0),
      openIncidents: c.open,
      atRisk: c.at_risk,
      breached: c.breached,
    },
  };
}

interface IncidentRow {
  id: string;
  kind: IncidentKind;
  status: IncidentStatus;
  area_id: string;
  feeder_id: string | null;
  serial: string | null;
  first_failure_at: Date;
  detected_at: Date;
  restored_at: Date | null;
  closed_at: Date | null;
  etr: Date | null;
  sla_target_at: Date;
  sla_state: SlaState;
  meters: number;
  meters_off: number;
}

const SUMMARY = `SELECT i.*, m.serial FROM outage_incidents i LEFT JOIN meters m ON m.id = i.meter_id`;

const summary = (r: IncidentRow): IncidentSummary => ({
  id: Number(r.id),
  kind: r.kind,
  status: r.status,
  areaId: r.area_id,
  feederId: r.feeder_id,
  serial: r.serial,
  firstFailureAt: r.first_failure_at.toISOString(),
  detectedAt: r.detected_at.toISOString(),
  restoredAt: iso(r.restored_at),
  closedAt: iso(r.closed_at),
  etr: iso(r.etr),
  slaTargetAt: r.sla_target_at.toISOString(),
  slaState: r.sla_state,
  meters: r.meters,
  metersOff: r.meters_off,
});

export async function listIncidents(
  q: Q,
  actor: Actor,
  o: {
    state: 'open' | 'closed' | 'all';
    kind?: IncidentKind;
    area?: string;
    sla?: SlaState;
    limit: number;
    beforeId: number | null;
  },
): Promise<{ items: IncidentSummary[]; nextBefore: number | null }> {
  const s = scopeSql(actor, 'incidents', 'i', 6);
  const state =
    o.state === 'open'
      ? `i.status IN ${OPEN_SQL}`
      : o.state === 'closed'
        ? `i.status NOT IN ${OPEN_SQL}`
        : 'TRUE';
  const { rows } = await q.query<IncidentRow>(
    `${SUMMARY}
      WHERE ${state} AND ($1::text IS NULL OR i.kind = $1) AND ($2::text IS NULL OR i.area_id = $2)
        AND ($3::text IS NULL OR i.sla_state = $3) AND ($4::bigint IS NULL OR i.id < $4) AND ${s.sql}
      ORDER BY i.id DESC LIMIT $5`,
    [o.kind ?? null, o.area ?? null, o.sla ?? null, o.beforeId, o.limit + 1, ...s.params],
  );
  const items = rows.slice(0, o.limit).map(summary);
  return { items, nextBefore: rows.length > o.limit ? items[items.length - 1]!.id : null };
}

export async function incidentDetail(q: Q, actor: Actor, id: number): Promise<IncidentDetail | null> {
  const s = scopeSql(actor, 'incidents', 'i', 2);
  const r = (
    await q.query<
      IncidentRow & {
        acknowledged_at: Date | null;
        dispatched_at: Date | null;
        etr_version: number;
        at_risk_at: Date | null;
        breached_at: Date | null;
        follows_id: string | null;
      }
    >(`${SUMMARY} WHERE i.id = $1 AND ${s.sql}`, [id, ...s.params])
  ).rows[0];
  if (!r) return null;
  const meters = await q.query<{
    serial: string;
    feeder_id: string | null;
    source: 'last_gasp' | 'silent';
    failed_at: Date;
    restored_at: Date | null;
    straggler: boolean;
  }>(
    `SELECT m.serial, m.feeder_id, im.source, im.failed_at, im.restored_at, im.straggler
       FROM outage_incident_meters im JOIN meters m ON m.id = im.meter_id
      WHERE im.incident_id = $1 ORDER BY im.straggler DESC, (im.restored_at IS NULL) DESC, m.serial`,
    [id],
  );
  // Households as a count and their postcodes: where the crew goes, not who lives there.
  const hh = (
    await q.query<{ n: number; postcodes: string[] }>(
      `SELECT count(DISTINCT a.consumer_id)::int AS n,
              coalesce(array_agg(DISTINCT upper(c.postcode) ORDER BY upper(c.postcode)) FILTER (WHERE c.postcode IS NOT NULL), '{}') AS postcodes
         FROM outage_incident_meters im JOIN meters m ON m.id = im.meter_id
         JOIN accounts a ON a.id = m.account_id JOIN consumers c ON c.id = a.consumer_id
        WHERE im.incident_id = $1`,
      [id],
    )
  ).rows[0]!;
  const tl = await q.query<{
    id: string;
    at: Date;
    kind: IncidentEventKind;
    actor: string | null;
    text: string | null;
    data: Record<string, unknown> | null;
  }>(
    `SELECT e.id, e.at, e.kind, u.display_name AS actor, e.text, e.data
       FROM outage_incident_events e LEFT JOIN users u ON u.id = e.actor_id
      WHERE e.incident_id = $1 ORDER BY e.at, e.id`,
    [id],
  );
  const follow = await q.query<{ id: string }>(
    'SELECT id FROM outage_incidents WHERE follows_id = $1 ORDER BY id',
    [id],
  );
  return {
    ...summary(r),
    acknowledgedAt: iso(r.acknowledged_at),
    dispatchedAt: iso(r.dispatched_at),
    etrVersion: r.etr_version,
    atRiskAt: iso(r.at_risk_at),
    breachedAt: iso(r.breached_at),
    followsId: r.follows_id === null ? null : Number(r.follows_id),
    followUps: follow.rows.map((f) => Number(f.id)),
    households: { count: hh.n, postcodes: hh.postcodes },
    meterList: meters.rows.map((m) => ({
      serial: m.serial,
      feederId: m.feeder_id,
      source: m.source,
      failedAt: m.failed_at.toISOString(),
      restoredAt: iso(m.restored_at),
      straggler: m.straggler,
    })),
    timeline: tl.rows.map((e) => ({
      id: Number(e.id),
      at: e.at.toISOString(),
      kind: e.kind,
      actor: e.actor,
      text: e.text,
      data: e.data,
    })),
  };
}

/**
 * Lock an incident the actor may see (404 otherwise), taking the feeder's advisory lock first
 * as detection does, so an operator's change and the detector never deadlock.
 */
async function lockIncident(
  t: Tx,
  actor: Actor,
  id: number,
): Promise<{
  status: IncidentStatus;
  kind: IncidentKind;
  feederId: string | null;
  meterId: number | null;
  etrVersion: number;
}> {
  const s = scopeSql(actor, 'incidents', 'i', 2);
  const pre = (
    await t.c.query<{ feeder_id: string | null; meter_id: number | null }>(
      `SELECT i.feeder_id, i.meter_id FROM outage_incidents i WHERE i.id = $1 AND ${s.sql}`,
      [id, ...s.params],
    )
  ).rows[0];
  if (!pre) throw new AppError('NOT_FOUND', 'incident not found');
  const key =
    pre.feeder_id !== null ? `kw-outage:feeder:${pre.feeder_id}` : `kw-outage:meter:${pre.meter_id}`;
  await t.c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [key]);
  const r = (
    await t.c.query<{
      status: IncidentStatus;
      kind: IncidentKind;
      feeder_id: string | null;
      meter_id: number | null;
      etr_version: number;
    }>(
      'SELECT status, kind, feeder_id, meter_id, etr_version FROM outage_incidents WHERE id = $1 FOR UPDATE',
      [id],
    )
  ).rows[0]!;
  return {
    status: r.status,
    kind: r.kind,
    feederId: r.feeder_id,
    meterId: r.meter_id,
    etrVersion: r.etr_version,
  };
}

/** Which status each transition may start from. */
const FROM: Record<IncidentTransition, readonly IncidentStatus[]> = {
  acknowledged: ['detected'],
  // A crew may go out before anyone pressed "acknowledge": dispatching acknowledges too.
  dispatched: ['detected', 'acknowledged'],
  restored: ['detected', 'acknowledged', 'dispatched'],
  closed: ['restored'],
};

export async function moveIncident(
  t: Tx,
  actor: Actor,
  id: number,
  to: IncidentTransition,
  note: string | undefined,
): Promise<void> {
  const inc = await lockIncident(t, actor, id);
  if (!FROM[to].includes(inc.status))
    throw new AppError('CONFLICT', `an incident that is ${inc.status} cannot become ${to}`);
  if (to === 'acknowledged') {
    await t.c.query(
      `UPDATE outage_incidents SET status = 'acknowledged', acknowledged_at = now() WHERE id = $1`,
      [id],
    );
  } else if (to === 'dispatched') {
    await t.c.query(
      `UPDATE outage_incidents SET status = 'dispatched', dispatched_at = now(), acknowledged_at = coalesce(acknowledged_at, now())
        WHERE id = $1`,
      [id],
    );
  } else if (to === 'restored') {
    // The crew says power is back. On a feeder, meters that say otherwise (no restore from
    // them) are listed as stragglers and followed up as single incidents, as the detector does.
    await restoreByHand(t.c, id, actor.userId);
  } else {
    await t.c.query(`UPDATE outage_incidents SET status = 'closed', closed_at = now() WHERE id = $1`, [id]);
  }
  if (to !== 'restored') await addTimeline(t.c, id, to, note ?? null, { from: inc.status }, actor.userId);
  else if (note) await addTimeline(t.c, id, 'note', note, null, actor.userId);
  await t.audit(`incident.${to}`, String(id), { from: inc.status });
}

/**
 * Set (or withdraw) the estimated time of restoration. Each change is a version; every
 * household still without power is told once per version.
 */
export async function setEtr(t: Tx, actor: Actor, id: number, etr: Date | null): Promise<number> {
  const inc = await lockIncident(t, actor, id);
  if (!(OPEN_STATUSES as readonly string[]).includes(inc.status))
    throw new AppError('CONFLICT', `an incident that is ${inc.status} has no restoration to estimate`);
  const v = (
    await t.c.query<{ etr_version: number }>(
      `UPDATE outage_incidents SET etr = $2, etr_version = etr_version + 1 WHERE id = $1 AND etr IS DISTINCT FROM $2
       RETURNING etr_version`,
      [id, etr],
    )
  ).rows[0];
  if (!v) return inc.etrVersion; // the same estimate again: nobody is told twice
  const off = await t.c.query<{ meter_id: number }>(
    'SELECT meter_id FROM outage_incident_meters WHERE incident_id = $1 AND restored_at IS NULL',
    [id],
  );
  await raiseAlertsIn(
    t.c,
    off.rows.map((m) => etrAlert(m.meter_id, id, v.etr_version, etr)),
  );
  await addTimeline(
    t.c,
    id,
    'etr_set',
    etr ? `Estimated restoration ${etr.toISOString()}` : 'Estimated restoration withdrawn',
    { etr: iso(etr), version: v.etr_version, households: off.rows.length },
    actor.userId,
  );
  await t.audit('incident.etr', String(id), { etr: iso(etr), version: v.etr_version });
  return v.etr_version;
}

export async function addIncidentNote(t: Tx, actor: Actor, id: number, text: string): Promise<void> {
  await lockIncident(t, actor, id);
  await addTimeline(t.c, id, 'note', text, null, actor.userId);
  await t.audit('incident.note', String(id), null);
}

// ------------------------------------------------------------------ SLA dashboard

export async function slaMonths(
  q: Q,
  actor: Actor,
  o: { month: string; months: number },
): Promise<SlaMonth[]> {
  const s = scopeSql(actor, 'incidents', 'i', 3);
  const { rows } = await q.query<{
    month: string;
    incidents: number;
    feeder: number;
    single: number;
    breaches: number;
    at_risk: number;
    d50: number | null;
    d95: number | null;
    r50: number | null;
    r95: number | null;
    restored: number;
  }>(
    `WITH months AS (
       SELECT generate_series(($1 || '-01')::date - make_interval(months => $2 - 1), ($1 || '-01')::date, interval '1 month')::date AS m)
     SELECT to_char(months.m, 'YYYY-MM') AS month,
            count(i.id)::int AS incidents,
            count(i.id) FILTER (WHERE i.kind = 'feeder')::int AS feeder,
            count(i.id) FILTER (WHERE i.kind = 'single')::int AS single,
            count(i.id) FILTER (WHERE i.breached_at IS NOT NULL OR i.restored_at > i.sla_target_at)::int AS breaches,
            count(i.id) FILTER (WHERE i.at_risk_at IS NOT NULL)::int AS at_risk,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM i.detected_at - i.first_failure_at)) AS d50,
            percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM i.detected_at - i.first_failure_at)) AS d95,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM i.restored_at - i.first_failure_at) / 60) AS r50,
            percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM i.restored_at - i.first_failure_at) / 60) AS r95,
            count(i.restored_at)::int AS restored
       FROM months
       LEFT JOIN outage_incidents i ON i.first_failure_at >= (months.m::timestamp AT TIME ZONE 'UTC')
            AND i.first_failure_at < ((months.m + interval '1 month')::timestamp AT TIME ZONE 'UTC') AND ${s.sql}
      GROUP BY months.m ORDER BY months.m`,
    [o.month, o.months, ...s.params],
  );
  const r1 = (x: number | null) => (x === null ? null : Math.round(x * 10) / 10);
  return rows.map((r) => ({
    month: r.month,
    incidents: r.incidents,
    feeder: r.feeder,
    single: r.single,
    breaches: r.breaches,
    atRisk: r.at_risk,
    detectP50S: r1(r.d50),
    detectP95S: r1(r.d95),
    restoreP50Min: r1(r.r50),
    restoreP95Min: r1(r.r95),
    restored: r.restored,
  }));
}

// ------------------------------------------------------------------ settings

interface SettingsRow {
  outage_min_meters: number;
  outage_min_share_pct: string;
  outage_window_s: number;
  silent_after_s: number;
  outage_restore_grace_s: number;
  outage_auto_close_h: number;
  sla_feeder_min: number;
  sla_single_min: number;
  sla_at_risk_pct: number;
  oncall_emails: string[];
  oncall_mobiles: string[];
  updated_at: Date;
}

const presentSettings = (r: SettingsRow): OutageSettings => ({
  outageMinMeters: r.outage_min_meters,
  outageMinSharePct: Number(r.outage_min_share_pct),
  outageWindowS: r.outage_window_s,
  silentAfterS: r.silent_after_s,
  outageRestoreGraceS: r.outage_restore_grace_s,
  outageAutoCloseH: r.outage_auto_close_h,
  slaFeederMin: r.sla_feeder_min,
  slaSingleMin: r.sla_single_min,
  slaAtRiskPct: r.sla_at_risk_pct,
  oncallEmails: r.oncall_emails,
  oncallMobiles: r.oncall_mobiles,
  updatedAt: r.updated_at.toISOString(),
});

export async function getOutageSettings(q: Q, operatorId: number): Promise<OutageSettings> {
  const r = (
    await q.query<SettingsRow>('SELECT * FROM network_settings WHERE operator_id = $1', [operatorId])
  ).rows[0];
  if (!r) throw new AppError('NOT_FOUND', 'no settings for this operator');
  return presentSettings(r);
}

/**
 * Replace the outage rules, SLA targets and on-call contacts. New targets apply to
 * incidents opened from now on; an open incident keeps the target it was opened with.
 */
export async function putOutageSettings(
  t: Tx,
  actor: Actor,
  operatorId: number,
  b: Omit<OutageSettingsBody, 'oncallMobiles'> & { oncallMobiles: string[] },
): Promise<OutageSettings> {
  const r = (
    await t.c.query<SettingsRow>(
      `UPDATE network_settings SET outage_min_meters = $2, outage_min_share_pct = $3, outage_window_s = $4,
              silent_after_s = $5, outage_restore_grace_s = $6, outage_auto_close_h = $7, sla_feeder_min = $8,
              sla_single_min = $9, sla_at_risk_pct = $10, oncall_emails = $11, oncall_mobiles = $12,
              updated_by = $13, updated_at = now()
        WHERE operator_id = $1 RETURNING *`,
      [
        operatorId,
        b.outageMinMeters,
        b.outageMinSharePct,
        b.outageWindowS,
        b.silentAfterS,
        b.outageRestoreGraceS,
        b.outageAutoCloseH,
        b.slaFeederMin,
        b.slaSingleMin,
        b.slaAtRiskPct,
        [...new Set(b.oncallEmails.map((e) => e.toLowerCase()))],
        [...new Set(b.oncallMobiles)],
        actor.userId,
      ],
    )
  ).rows[0];
  if (!r) throw new AppError('NOT_FOUND', 'no settings for this operator');
  await t.audit('network.outage_settings', String(operatorId), {
    ...b,
    oncallEmails: b.oncallEmails.length,
    oncallMobiles: b.oncallMobiles.length,
  });
  return presentSettings(r);
}
