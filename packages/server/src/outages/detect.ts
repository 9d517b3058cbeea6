import { tx, type Pool, type PoolClient } from '../db/pool.ts';
import { emitEvent } from '../events/emit.ts';
import type { DomainEvent, Subscriber } from '../events/types.ts';
import { raiseAlertsIn, raiseOperatorAlerts, type NewAlert } from '../alerts/raise.ts';
import type { Logger } from '../log.ts';
import { meterIdsInActivationWindow } from '../firmware/windows.ts';

/**
 * Outage detection (#9 N2). Power-fail (last gasp) and power-restored events of meters move
 * each meter's power state (meter_power_state) and group meters of one feeder into an
 * incident; a periodic sweep (jobs.ts) handles what only the passing of time reveals: meters
 * gone silent, a meter off alone long enough to be a single incident, stragglers, the SLA
 * clock and closing.
 *
 * Every change to a feeder's incidents runs under a transaction-scoped advisory lock on the
 * feeder, so two jobs processes (or a handler and the sweep) never both decide to open an
 * incident; the partial unique indexes of migration 014 refuse a second open incident
 * anyway. Every handler is idempotent: a power event already applied (its seq:idx at or
 * below the meter's last applied one) changes nothing, and every alert has a dedupe key.
 */

export const POWER_CODES = ['power.fail', 'power.restored', 'power.restored_long'] as const;
export const OPEN_STATUSES = ['detected', 'acknowledged', 'dispatched'] as const;
const OPEN_SQL = `('detected', 'acknowledged', 'dispatched')`;

export interface PowerEvent {
  meterId: number;
  seq: number;
  idx: number;
  code: string;
  /** The meter's own time of the event, epoch s. */
  t: number;
  /**
   * A failure handed over together with the meter's restore (a meter whose last gasp never
   * left reports it once back): it joins the incident for the record, but its household is
   * not told of a cut that is already over.
   */
  backInBatch?: boolean;
}

/**
 * Meters in a firmware activation window reboot on purpose: their power events are not
 * outages (#10: a planned activation from a minute before its instant until its confirmation
 * time and a grace are over, see firmware/windows.ts).
 */
export function inActivationWindow(c: PoolClient, meterIds: readonly number[]): Promise<Set<number>> {
  return meterIdsInActivationWindow(c, meterIds);
}

interface Rules {
  operator_id: number;
  outage_min_meters: number;
  outage_min_share_pct: string;
  outage_window_s: number;
  silent_after_s: number;
  sla_feeder_min: number;
  sla_single_min: number;
  sla_at_risk_pct: number;
  outage_restore_grace_s: number;
  outage_auto_close_h: number;
}

interface MeterCtx extends Rules {
  id: number;
  serial: string;
  area_id: string;
  feeder_id: string | null;
  counts: boolean;
}

/** The advisory lock that serialises every incident decision about one feeder (or feeder-less meter). */
async function lockFeeder(c: PoolClient, feederId: string | null, meterId: number): Promise<void> {
  const key = feederId !== null ? `kw-outage:feeder:${feederId}` : `kw-outage:meter:${meterId}`;
  await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [key]);
}

/**
 * Which meters count for outages: active, not remotely disconnected (their supply is off on
 * purpose), not in a firmware activation window.
 */
const COUNTS_SQL = (m: string) => `(${m}.status = 'active' AND ${m}.relay IS DISTINCT FROM 'disconnected')`;

async function meterCtx(c: PoolClient, meterId: number): Promise<MeterCtx | null> {
  const { rows } = await c.query<MeterCtx>(
    `SELECT m.id, m.serial, m.area_id, m.feeder_id, ${COUNTS_SQL('m')} AS counts, s.*
       FROM meters m JOIN network_areas na ON na.id = m.area_id
       JOIN network_settings s ON s.operator_id = na.operator_id
      WHERE m.id = $1`,
    [meterId],
  );
  const r = rows[0];
  if (!r) return null;
  if (r.counts && (await inActivationWindow(c, [meterId])).has(meterId)) r.counts = false;
  return r;
}

function fmtEtr(etr: Date | null): string {
  return etr ? ` We expect power back by ${etr.toISOString().slice(0, 16).replace('T', ' ')} UTC.` : '';
}

/** The household's alert that its meter joined an incident (once per incident). */
export function joinedAlert(meterId: number, incidentId: number, etr: Date | null): NewAlert {
  return {
    meterId,
    type: 'outage',
    dedupeKey: `incident:${incidentId}`,
    title: 'Power cut',
    message: `Your electricity supply is off: the network operator knows and is working on it.${fmtEtr(etr)}`,
    figures: { incidentId, etr: etr?.toISOString() ?? null },
  };
}

export function etrAlert(meterId: number, incidentId: number, version: number, etr: Date | null): NewAlert {
  return {
    meterId,
    type: 'outage',
    dedupeKey: `incident:${incidentId}:etr:${version}`,
    title: 'Power cut: new estimated restoration time',
    message: etr
      ? `The network operator now expects power back by ${etr.toISOString().slice(0, 16).replace('T', ' ')} UTC.`
      : 'The network operator has withdrawn its estimated restoration time.',
    figures: { incidentId, etr: etr?.toISOString() ?? null, version },
  };
}

export function restoredAlert(meterId: number, incidentId: number): NewAlert {
  return {
    meterId,
    type: 'outage',
    dedupeKey: `incident:${incidentId}:restored`,
    title: 'Power is back',
    message: 'Your electricity supply is back on after the power cut.',
    figures: { incidentId },
  };
}

export async function addTimeline(
  c: PoolClient,
  incidentId: number,
  kind: string,
  text: string | null,
  data: Record<string, unknown> | null = null,
  actorId: number | null = null,
  at: Date | null = null,
): Promise<void> {
  await c.query(
    `INSERT INTO outage_incident_events (incident_id, kind, text, data, actor_id, at)
     VALUES ($1, $2, $3, $4, $5, coalesce($6, now()))`,
    [incidentId, kind, text, data ? JSON.stringify(data) : null, actorId, at],
  );
}

/** Recount an incident's meters and those still off. */
async function recount(c: PoolClient, incidentId: number): Promise<{ meters: number; off: number }> {
  const { rows } = await c.query<{ meters: number; meters_off: number }>(
    `UPDATE outage_incidents i SET meters = x.n, meters_off = x.off
       FROM (SELECT count(*)::int AS n, count(*) FILTER (WHERE restored_at IS NULL)::int AS off
               FROM outage_incident_meters WHERE incident_id = $1) x
      WHERE i.id = $1 RETURNING i.meters, i.meters_off`,
    [incidentId],
  );
  return { meters: rows[0]!.meters, off: rows[0]!.meters_off };
}

/**
 * Add meters to an incident (those already in it are skipped); the households of the new
 * ones are told, in this transaction. Returns how many joined.
 */
async function joinMeters(
  c: PoolClient,
  incidentId: number,
  meters: { id: number; source: 'last_gasp' | 'silent'; failedAt: Date }[],
  o: { tell: boolean; timeline: boolean; quiet?: readonly number[] },
): Promise<number> {
  if (!meters.length) return 0;
  const { rows } = await c.query<{ meter_id: number }>(
    `INSERT INTO outage_incident_meters (incident_id, meter_id, source, failed_at)
     SELECT $1, * FROM unnest($2::int[], $3::text[], $4::timestamptz[])
     ON CONFLICT DO NOTHING RETURNING meter_id`,
    [incidentId, meters.map((m) => m.id), meters.map((m) => m.source), meters.map((m) => m.failedAt)],
  );
  if (!rows.length) return 0;
  const inc = (
    await c.query<{ etr: Date | null }>('SELECT etr FROM outage_incidents WHERE id = $1', [incidentId])
  ).rows[0]!;
  if (o.tell)
    await raiseAlertsIn(
      c,
      rows
        .filter((r) => !o.quiet?.includes(r.meter_id))
        .map((r) => joinedAlert(r.meter_id, incidentId, inc.etr)),
    );
  if (o.timeline) {
    const serials = await c.query<{ serial: string }>(
      'SELECT serial FROM meters WHERE id = ANY($1::int[]) ORDER BY serial',
      [rows.map((r) => r.meter_id)],
    );
    const list = serials.rows.map((x) => x.serial);
    const text =
      list.length <= 5 ? `${list.join(', ')} lost power too` : `${list.length} more meters lost power`;
    await addTimeline(c, incidentId, 'meter_joined', text, {
      serials: serials.rows.map((s) => s.serial).slice(0, 50),
      count: rows.length,
    });
  }
  await recount(c, incidentId);
  return rows.length;
}

/**
 * Open an incident (feeder or single) with its first meters, alerting the operator (unless
 * it follows up a straggler already listed on its feeder's incident) and the households.
 * Returns the new id, or null when the partial unique index says one is already open.
 */
async function openIncident(
  c: PoolClient,
  r: Rules,
  o: {
    kind: 'feeder' | 'single';
    areaId: string;
    feederId: string | null;
    meterId: number | null;
    followsId?: number | null;
    detectedAt?: Date | null;
    meters: { id: number; source: 'last_gasp' | 'silent'; failedAt: Date }[];
    /** Meters whose households are not told (their power is already back). */
    quiet?: readonly number[];
  },
): Promise<number | null> {
  const first = new Date(Math.min(...o.meters.map((m) => m.failedAt.getTime())));
  const targetMin = o.kind === 'feeder' ? r.sla_feeder_min : r.sla_single_min;
  const conflict =
    o.kind === 'feeder'
      ? `(feeder_id) WHERE kind = 'feeder' AND status IN ${OPEN_SQL}`
      : `(meter_id) WHERE kind = 'single' AND status IN ${OPEN_SQL}`;
  const ins = await c.query<{ id: string; detected_at: Date }>(
    `INSERT INTO outage_incidents (operator_id, area_id, feeder_id, meter_id, kind, first_failure_at,
                                   detected_at, sla_target_at, follows_id)
     VALUES ($1, $2, $3, $4, $5, $6, coalesce($7, now()), $6::timestamptz + make_interval(mins => $8), $9)
     ON CONFLICT ${conflict} DO NOTHING RETURNING id, detected_at`,
    [
      r.operator_id,
      o.areaId,
      o.feederId,
      o.meterId,
      o.kind,
      first,
      o.detectedAt ?? null,
      targetMin,
      o.followsId ?? null,
    ],
  );
  const row = ins.rows[0];
  if (!row) return null;
  const id = Number(row.id);
  const serialOf = async (meterId: number) =>
    (await c.query<{ serial: string }>('SELECT serial FROM meters WHERE id = $1', [meterId])).rows[0]
      ?.serial ?? '';
  const n = o.meters.length;
  const text =
    o.kind === 'feeder'
      ? `${n} ${n === 1 ? 'meter' : 'meters'} lost power on feeder ${o.feederId}`
      : o.followsId != null
        ? `Meter ${await serialOf(o.meterId!)} did not come back after incident #${o.followsId}`
        : `Meter ${await serialOf(o.meterId!)} has been without power alone`;
  await addTimeline(
    c,
    id,
    'detected',
    text,
    { meters: n, followsId: o.followsId ?? null },
    null,
    row.detected_at,
  );
  // Others may react to an outage (a domain event in this transaction).
  await emitEvent(c, {
    type: 'incident.opened',
    meterId: o.meterId,
    payload: { incidentId: id, operatorId: r.operator_id, kind: o.kind, feederId: o.feederId },
  });
  // A straggler's follow-up is already listed on its feeder's incident, and its household
  // was told then: no second "power cut" message and no page to the control room.
  const followUp = o.followsId != null;
  await joinMeters(c, id, o.meters, { tell: !followUp, quiet: o.quiet ?? [], timeline: false });
  if (!followUp) {
    const serial =
      o.meterId !== null
        ? (await c.query<{ serial: string }>('SELECT serial FROM meters WHERE id = $1', [o.meterId])).rows[0]
            ?.serial
        : null;
    await raiseOperatorAlerts(c, [
      {
        operatorId: r.operator_id,
        type: 'incident_opened',
        dedupeKey: `incident:${id}`,
        title: o.kind === 'feeder' ? `Outage on feeder ${o.feederId}` : `Single outage: meter ${serial}`,
        message:
          o.kind === 'feeder'
            ? `${o.meters.length} meter(s) on feeder ${o.feederId} (area ${o.areaId}) lost power from ${first.toISOString()}.`
            : `Meter ${serial} (area ${o.areaId}) has been without power since ${first.toISOString()}.`,
        figures: { incidentId: id, kind: o.kind, feederId: o.feederId, meters: o.meters.length },
        meterId: o.meterId,
      },
    ]);
  }
  return id;
}

/** The meter's open memberships (incident open, meter not yet back). */
async function openMemberships(
  c: PoolClient,
  meterId: number,
): Promise<{ incident_id: number; kind: 'feeder' | 'single'; status: string }[]> {
  const { rows } = await c.query<{ incident_id: string; kind: 'feeder' | 'single'; status: string }>(
    `SELECT im.incident_id, i.kind, i.status FROM outage_incident_meters im
       JOIN outage_incidents i ON i.id = im.incident_id
      WHERE im.meter_id = $1 AND im.restored_at IS NULL AND i.status <> 'closed'`,
    [meterId],
  );
  return rows.map((r) => ({ ...r, incident_id: Number(r.incident_id) }));
}

/** Mark an incident restored (its meters are back, or the rest are stragglers). */
async function markRestored(
  c: PoolClient,
  incidentId: number,
  at: Date | null,
  text: string,
  actorId: number | null = null,
): Promise<void> {
  const up = await c.query<{ operator_id: number; meter_id: number | null; stragglers: number }>(
    `UPDATE outage_incidents SET status = 'restored',
            restored_at = coalesce($2, (SELECT max(restored_at) FROM outage_incident_meters WHERE incident_id = $1), now())
      WHERE id = $1 AND status IN ${OPEN_SQL}
      RETURNING operator_id, meter_id,
                (SELECT count(*)::int FROM outage_incident_meters WHERE incident_id = $1 AND straggler) AS stragglers`,
    [incidentId, at],
  );
  const r = up.rows[0];
  if (!r) return;
  await addTimeline(c, incidentId, 'restored', text, null, actorId);
  await emitEvent(c, {
    type: 'incident.restored',
    meterId: r.meter_id,
    payload: { incidentId, operatorId: r.operator_id, stragglers: r.stragglers },
  });
}

/** Apply one power event in its own transaction. Returns what happened, for logs and tests. */
export async function applyPowerEvent(pool: Pool, e: PowerEvent): Promise<string> {
  return tx(pool, async (c) => {
    const m = await meterCtx(c, e.meterId);
    if (!m) return 'no meter';
    await lockFeeder(c, m.feeder_id, m.id);
    const fail = e.code === 'power.fail';
    // The meter's time, but never in the future of the head-end's clock.
    const at = new Date(Math.min(e.t * 1000, Date.now()));
    const off = fail && m.counts;
    const st = await c.query(
      `INSERT INTO meter_power_state (meter_id, off_since, source, last_seq, last_idx, updated_at)
       VALUES ($1, $2, $3, $4, $5, now())
       ON CONFLICT (meter_id) DO UPDATE SET off_since = EXCLUDED.off_since, source = EXCLUDED.source,
              last_seq = EXCLUDED.last_seq, last_idx = EXCLUDED.last_idx, updated_at = now()
        WHERE (meter_power_state.last_seq, meter_power_state.last_idx) < (EXCLUDED.last_seq, EXCLUDED.last_idx)`,
      [m.id, off ? at : null, off ? 'last_gasp' : null, e.seq, e.idx],
    );
    if (!st.rowCount) return 'already applied';
    if (!fail) return restoreMeter(c, m.id, at);
    if (!m.counts) return 'not counted';

    const open = await openMemberships(c, m.id);
    if (open.length) return 'already in an incident';
    if (m.feeder_id === null) return 'off (no feeder)';
    const feederInc = await c.query<{ id: string }>(
      `SELECT id FROM outage_incidents WHERE feeder_id = $1 AND kind = 'feeder' AND status IN ${OPEN_SQL}`,
      [m.feeder_id],
    );
    if (feederInc.rows[0]) {
      await joinMeters(c, Number(feederInc.rows[0].id), [{ id: m.id, source: 'last_gasp', failedAt: at }], {
        tell: !e.backInBatch,
        timeline: true,
      });
      return 'joined';
    }
    return (await tryOpenFeeder(c, m, m.feeder_id, at, e.backInBatch ? [m.id] : [])) !== null
      ? 'opened'
      : 'off';
  });
}

/**
 * Open the feeder's incident if enough of its meters are off within the window around `at`
 * (a count or a share of the meters that count). Runs under the feeder's lock.
 */
async function tryOpenFeeder(
  c: PoolClient,
  r: Rules & { area_id: string },
  feederId: string,
  at: Date,
  quiet: readonly number[] = [],
): Promise<number | null> {
  const { rows } = await c.query<{ id: number; off_since: Date; source: 'last_gasp' | 'silent' }>(
    `SELECT m.id, ps.off_since, ps.source FROM meters m JOIN meter_power_state ps ON ps.meter_id = m.id
      WHERE m.feeder_id = $1 AND ${COUNTS_SQL('m')} AND ps.off_since IS NOT NULL
        AND ps.off_since >= $2::timestamptz - make_interval(secs => $3)
        AND NOT EXISTS (SELECT 1 FROM outage_incident_meters im JOIN outage_incidents i ON i.id = im.incident_id
                         WHERE im.meter_id = m.id AND im.restored_at IS NULL AND i.status IN ${OPEN_SQL})`,
    [feederId, at, r.outage_window_s],
  );
  const skip = await inActivationWindow(
    c,
    rows.map((x) => x.id),
  );
  const off = rows.filter((x) => !skip.has(x.id));
  const total = (
    await c.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM meters m WHERE m.feeder_id = $1 AND ${COUNTS_SQL('m')}`,
      [feederId],
    )
  ).rows[0]!.n;
  const byCount = off.length >= r.outage_min_meters;
  // A share alone needs two meters at least: one meter of a small feeder is a single outage.
  const byShare =
    off.length >= 2 && total > 0 && (off.length * 100) / total >= Number(r.outage_min_share_pct);
  if (!byCount && !byShare) return null;
  return openIncident(c, r, {
    kind: 'feeder',
    areaId: r.area_id,
    feederId,
    meterId: null,
    meters: off.map((x) => ({ id: x.id, source: x.source, failedAt: x.off_since })),
    quiet,
  });
}

/** A meter's power is back: its open memberships end, and an incident whose meters are all back is restored. */
async function restoreMeter(c: PoolClient, meterId: number, at: Date): Promise<string> {
  const open = await openMemberships(c, meterId);
  if (!open.length) return 'back';
  await c.query(
    `UPDATE outage_incident_meters SET restored_at = greatest($2::timestamptz, failed_at)
      WHERE meter_id = $1 AND restored_at IS NULL AND incident_id = ANY($3::bigint[])`,
    [meterId, at, open.map((o) => o.incident_id)],
  );
  for (const o of open) {
    const n = await recount(c, o.incident_id);
    // A straggler of an incident already restored is followed by its single incident,
    // which tells the household; the feeder incident only records the time.
    if (o.status === 'restored') continue;
    // "Power is back" only to a household that was told of the cut (by this incident, or by
    // the feeder incident a straggler's single incident follows).
    const told = await c.query(
      `SELECT 1 FROM alerts a JOIN outage_incidents i ON i.id = $2
        WHERE a.meter_id = $1 AND a.type = 'outage'
          AND a.dedupe_key IN ('incident:' || i.id, 'incident:' || coalesce(i.follows_id, 0))`,
      [meterId, o.incident_id],
    );
    if (told.rowCount) await raiseAlertsIn(c, [restoredAlert(meterId, o.incident_id)]);
    if (n.off === 0) await markRestored(c, o.incident_id, null, 'Every meter has power again');
  }
  return 'restored';
}

/** The subscriber of the jobs service: power events of meters, in order per meter. */
export function outagesSubscriber(pool: Pool, log?: Logger): Subscriber {
  return {
    name: 'outages',
    types: ['meter.event'],
    async handle(events: DomainEvent[]): Promise<void> {
      const power: PowerEvent[] = [];
      for (const e of events) {
        if (e.type !== 'meter.event' || e.meterId === null) continue;
        const p = (e as DomainEvent<'meter.event'>).payload;
        if ((POWER_CODES as readonly string[]).includes(p.code))
          power.push({ meterId: e.meterId, seq: p.seq, idx: p.idx, code: p.code, t: p.t });
      }
      power.sort((a, b) => a.meterId - b.meterId || a.seq - b.seq || a.idx - b.idx);
      power.forEach((e, i) => {
        if (e.code !== 'power.fail') return;
        const next = power[i + 1];
        if (next && next.meterId === e.meterId && next.code !== 'power.fail') e.backInBatch = true;
      });
      for (const e of power) {
        const what = await applyPowerEvent(pool, e);
        if (what === 'opened') log?.info({ meterId: e.meterId }, 'outage incident opened');
      }
    },
  };
}

// ------------------------------------------------------------------ the sweep

export interface SweepResult {
  silentJoined: number;
  opened: number;
  singles: number;
  restored: number;
  stragglers: number;
  atRisk: number;
  breached: number;
  closed: number;
  silentBack: number;
}

/**
 * What the passing of time decides, for every operator. `now` is the sweep's clock (tests
 * move it forward instead of waiting an hour for a meter to count as silent).
 */
export async function sweepOutages(pool: Pool, o: { now?: Date } = {}): Promise<SweepResult> {
  const now = o.now ?? new Date();
  const res: SweepResult = {
    silentJoined: 0,
    opened: 0,
    singles: 0,
    restored: 0,
    stragglers: 0,
    atRisk: 0,
    breached: 0,
    closed: 0,
    silentBack: 0,
  };

  // 1. Meters gone silent: no message for silent_after_s (but quiet for less than a day
  //    more: a meter dark for weeks is a comms fault, not today's outage), power state not
  //    already off, not in an open incident. Per feeder: join its open incident, or open one
  //    when enough of them went quiet.
  const silent = await pool.query<{ feeder_id: string }>(
    `SELECT DISTINCT m.feeder_id FROM meters m
       JOIN meter_ingest_state st ON st.meter_id = m.id
       JOIN network_areas na ON na.id = m.area_id JOIN network_settings s ON s.operator_id = na.operator_id
       LEFT JOIN meter_power_state ps ON ps.meter_id = m.id
      WHERE m.feeder_id IS NOT NULL AND ${COUNTS_SQL('m')} AND ps.off_since IS NULL
        AND greatest(m.last_seen_at, st.last_data_at) < $1::timestamptz - make_interval(secs => s.silent_after_s)
        AND greatest(m.last_seen_at, st.last_data_at) > $1::timestamptz - make_interval(secs => s.silent_after_s + 86400)`,
    [now],
  );
  for (const f of silent.rows) {
    const r = await tx(pool, async (c) => silentFeeder(c, f.feeder_id, now));
    res.silentJoined += r.joined;
    res.opened += r.opened;
  }

  // 2. Silent members that spoke again are back (their queued last gasp and restore may
  //    follow; applying them then changes nothing more).
  const back = await pool.query<{ meter_id: number; feeder_id: string | null; seen: Date }>(
    `SELECT im.meter_id, m.feeder_id, greatest(m.last_seen_at, st.last_data_at) AS seen
       FROM outage_incident_meters im JOIN outage_incidents i ON i.id = im.incident_id
       JOIN meters m ON m.id = im.meter_id JOIN meter_ingest_state st ON st.meter_id = m.id
      WHERE im.restored_at IS NULL AND im.source = 'silent' AND i.status <> 'closed'
        AND greatest(m.last_seen_at, st.last_data_at) > im.joined_at`,
  );
  for (const b of back.rows) {
    await tx(pool, async (c) => {
      await lockFeeder(c, b.feeder_id, b.meter_id);
      await c.query(
        `UPDATE meter_power_state SET off_since = NULL, source = NULL, updated_at = now()
          WHERE meter_id = $1 AND source = 'silent'`,
        [b.meter_id],
      );
      await restoreMeter(c, b.meter_id, b.seen);
    });
    res.silentBack++;
  }

  // 3. A meter off alone for longer than the window, in no open incident: a single incident.
  const alone = await pool.query<{ id: number; feeder_id: string | null }>(
    `SELECT m.id, m.feeder_id FROM meter_power_state ps JOIN meters m ON m.id = ps.meter_id
       JOIN network_areas na ON na.id = m.area_id JOIN network_settings s ON s.operator_id = na.operator_id
      JOIN meter_ingest_state st ON st.meter_id = m.id
      WHERE ps.off_since IS NOT NULL AND ${COUNTS_SQL('m')}
        AND ps.off_since < $1::timestamptz - make_interval(secs => s.outage_window_s)
        -- And known to the head-end for a whole window: after a jobs process restarts, the
        -- other meters' last gasps of the same instant may still wait in the queue, and the
        -- feeder incident they form must take this meter too, not a single incident first.
        AND ps.updated_at < $1::timestamptz - make_interval(secs => s.outage_window_s)
        -- A meter that spoke since its last gasp has power (its restore event is on the way).
        AND coalesce(greatest(m.last_seen_at, st.last_data_at), '-infinity') < ps.updated_at + interval '30 seconds'
        AND NOT EXISTS (SELECT 1 FROM outage_incident_meters im JOIN outage_incidents i ON i.id = im.incident_id
                         WHERE im.meter_id = m.id AND im.restored_at IS NULL AND i.status IN ${OPEN_SQL})`,
    [now],
  );
  for (const a of alone.rows) {
    const id = await tx(pool, async (c) => {
      await lockFeeder(c, a.feeder_id, a.id);
      const m = await meterCtx(c, a.id);
      if (!m || !m.counts) return null;
      // Re-read under the lock: an event or another sweep may have moved on meanwhile.
      const ps = (
        await c.query<{ off_since: Date | null; source: 'last_gasp' | 'silent' }>(
          'SELECT off_since, source FROM meter_power_state WHERE meter_id = $1',
          [a.id],
        )
      ).rows[0];
      if (
        !ps?.off_since ||
        (await openMemberships(c, a.id)).some((x) => OPEN_STATUSES.includes(x.status as never))
      )
        return null;
      // A feeder incident may form from it after all (others failed in its window).
      if (m.feeder_id !== null && (await tryOpenFeeder(c, m, m.feeder_id, ps.off_since)) !== null) return -1;
      return openIncident(c, m, {
        kind: 'single',
        areaId: m.area_id,
        feederId: m.feeder_id,
        meterId: m.id,
        detectedAt: now,
        meters: [{ id: m.id, source: ps.source, failedAt: ps.off_since }],
      });
    });
    if (id === -1) res.opened++;
    else if (id !== null) res.singles++;
  }

  // 4. Feeder incidents where some meters came back and the rest did not within the grace
  //    period: restored, with the rest listed as stragglers, each followed up as a single.
  const graced = await pool.query<{ id: string; feeder_id: string }>(
    `SELECT i.id, i.feeder_id FROM outage_incidents i JOIN network_settings s ON s.operator_id = i.operator_id
      WHERE i.kind = 'feeder' AND i.status IN ${OPEN_SQL} AND i.meters_off > 0 AND i.meters_off < i.meters
        AND (SELECT max(restored_at) FROM outage_incident_meters im WHERE im.incident_id = i.id)
            < $1::timestamptz - make_interval(secs => s.outage_restore_grace_s)`,
    [now],
  );
  for (const g of graced.rows) {
    const n = await tx(pool, async (c) => stragglers(c, Number(g.id), g.feeder_id, now));
    if (n > 0) {
      res.restored++;
      res.stragglers += n;
    }
  }

  // 5. The SLA clock, each flag once (the state guard in the UPDATE), with the operator's alert.
  for (const level of ['at_risk', 'breached'] as const) {
    const due = await pool.query<{ id: string }>(
      `SELECT i.id FROM outage_incidents i JOIN network_settings s ON s.operator_id = i.operator_id
        WHERE i.status IN ${OPEN_SQL} AND ${
          level === 'at_risk'
            ? `i.sla_state = 'ok' AND $1::timestamptz >= i.first_failure_at + (i.sla_target_at - i.first_failure_at) * s.sla_at_risk_pct / 100.0`
            : `i.sla_state <> 'breached' AND $1::timestamptz >= i.sla_target_at`
        }`,
      [now],
    );
    for (const d of due.rows) {
      if (await tx(pool, (c) => flagSla(c, Number(d.id), level, now))) {
        if (level === 'at_risk') res.atRisk++;
        else res.breached++;
      }
    }
  }

  // 6. Restored incidents close by themselves after outage_auto_close_h.
  const closing = await pool.query<{ id: string }>(
    `UPDATE outage_incidents i SET status = 'closed', closed_at = $1
       FROM network_settings s
      WHERE s.operator_id = i.operator_id AND i.status = 'restored'
        AND i.restored_at < $1::timestamptz - make_interval(hours => s.outage_auto_close_h)
      RETURNING i.id`,
    [now],
  );
  for (const cl of closing.rows)
    await pool.query(
      `INSERT INTO outage_incident_events (incident_id, kind, text) VALUES ($1, 'closed', 'Closed automatically after restoration')`,
      [cl.id],
    );
  res.closed = closing.rows.length;
  return res;
}

async function silentFeeder(
  c: PoolClient,
  feederId: string,
  now: Date,
): Promise<{ joined: number; opened: number }> {
  await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`kw-outage:feeder:${feederId}`]);
  const { rows } = await c.query<{ id: number; seen: Date }>(
    `SELECT m.id, greatest(m.last_seen_at, st.last_data_at) AS seen FROM meters m
       JOIN meter_ingest_state st ON st.meter_id = m.id
       JOIN network_areas na ON na.id = m.area_id JOIN network_settings s ON s.operator_id = na.operator_id
       LEFT JOIN meter_power_state ps ON ps.meter_id = m.id
      WHERE m.feeder_id = $1 AND ${COUNTS_SQL('m')} AND ps.off_since IS NULL
        AND greatest(m.last_seen_at, st.last_data_at) < $2::timestamptz - make_interval(secs => s.silent_after_s)
        AND greatest(m.last_seen_at, st.last_data_at) > $2::timestamptz - make_interval(secs => s.silent_after_s + 86400)`,
    [feederId, now],
  );
  const skip = await inActivationWindow(
    c,
    rows.map((r) => r.id),
  );
  const quiet = rows.filter((r) => !skip.has(r.id));
  if (!quiet.length) return { joined: 0, opened: 0 };
  const open = await c.query<{ id: string }>(
    `SELECT id FROM outage_incidents WHERE feeder_id = $1 AND kind = 'feeder' AND status IN ${OPEN_SQL}`,
    [feederId],
  );
  const members = quiet.map((q) => ({ id: q.id, source: 'silent' as const, failedAt: q.seen }));
  const markSilent = () =>
    c.query(
      `INSERT INTO meter_power_state (meter_id, off_since, source)
       SELECT * FROM unnest($1::int[], $2::timestamptz[], $3::text[])
       ON CONFLICT (meter_id) DO UPDATE SET off_since = EXCLUDED.off_since, source = 'silent', updated_at = now()`,
      [members.map((q) => q.id), members.map((q) => q.failedAt), members.map(() => 'silent')],
    );
  if (open.rows[0]) {
    await markSilent();
    return {
      joined: await joinMeters(c, Number(open.rows[0].id), members, { tell: true, timeline: true }),
      opened: 0,
    };
  }
  // Silent meters alone open an incident by the same count/share rule (no window: they all
  // went quiet within the sweep's look-back).
  const r = (
    await c.query<Rules & { area_id: string; total: number }>(
      `SELECT s.*, f.area_id, (SELECT count(*)::int FROM meters m WHERE m.feeder_id = f.id AND ${COUNTS_SQL('m')}) AS total
         FROM feeders f JOIN network_areas na ON na.id = f.area_id JOIN network_settings s ON s.operator_id = na.operator_id
        WHERE f.id = $1`,
      [feederId],
    )
  ).rows[0]!;
  const byCount = members.length >= r.outage_min_meters;
  const byShare =
    members.length >= 2 && (members.length * 100) / Math.max(1, r.total) >= Number(r.outage_min_share_pct);
  if (!byCount && !byShare) return { joined: 0, opened: 0 };
  await markSilent();
  const id = await openIncident(c, r, {
    kind: 'feeder',
    areaId: r.area_id,
    feederId,
    meterId: null,
    detectedAt: now,
    meters: members,
  });
  return { joined: 0, opened: id !== null ? 1 : 0 };
}

/**
 * The control room marks an incident restored (in its transaction, the feeder locked). A
 * single incident's meter counts as back (its household is told); a feeder incident's meters
 * still off become stragglers, each followed up as a single incident.
 */
export async function restoreByHand(c: PoolClient, incidentId: number, actorId: number): Promise<void> {
  const inc = (
    await c.query<{ kind: string; feeder_id: string | null; meter_id: number | null }>(
      'SELECT kind, feeder_id, meter_id FROM outage_incidents WHERE id = $1',
      [incidentId],
    )
  ).rows[0]!;
  if (inc.kind === 'feeder' && (await stragglers(c, incidentId, inc.feeder_id!, new Date(), actorId)) > 0)
    return;
  if (inc.meter_id !== null) {
    await c.query(
      `UPDATE outage_incident_meters SET restored_at = now() WHERE incident_id = $1 AND restored_at IS NULL`,
      [incidentId],
    );
    // Power back as far as the network knows: the sweep must not open it again.
    await c.query(`UPDATE meter_power_state SET off_since = NULL, source = NULL WHERE meter_id = $1`, [
      inc.meter_id,
    ]);
    await raiseAlertsIn(c, [restoredAlert(inc.meter_id, incidentId)]);
    await recount(c, incidentId);
  }
  await markRestored(c, incidentId, new Date(), 'Marked restored by the control room', actorId);
}

/** Restore a feeder incident without its stragglers, who each get a single incident. */
async function stragglers(
  c: PoolClient,
  incidentId: number,
  feederId: string,
  now: Date,
  actorId: number | null = null,
): Promise<number> {
  await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`kw-outage:feeder:${feederId}`]);
  const inc = (
    await c.query<Rules & { status: string; area_id: string }>(
      `SELECT s.*, i.status, i.area_id FROM outage_incidents i JOIN network_settings s ON s.operator_id = i.operator_id
        WHERE i.id = $1 FOR UPDATE OF i`,
      [incidentId],
    )
  ).rows[0];
  if (!inc || !OPEN_STATUSES.includes(inc.status as never)) return 0;
  const left = await c.query<{
    meter_id: number;
    serial: string;
    source: 'last_gasp' | 'silent';
    failed_at: Date;
  }>(
    `UPDATE outage_incident_meters im SET straggler = true FROM meters m
      WHERE im.incident_id = $1 AND im.restored_at IS NULL AND m.id = im.meter_id
      RETURNING im.meter_id, m.serial, im.source, im.failed_at`,
    [incidentId],
  );
  if (!left.rows.length) return 0;
  await markRestored(
    c,
    incidentId,
    actorId !== null ? now : null,
    actorId !== null
      ? `Marked restored by the control room; ${left.rows.length} meter(s) have not reported power`
      : `Power is back except for ${left.rows.length} meter(s)`,
    actorId,
  );
  await addTimeline(c, incidentId, 'stragglers', `${left.rows.length} meter(s) did not come back`, {
    serials: left.rows.map((l) => l.serial).sort(),
  });
  for (const l of left.rows) {
    await openIncident(c, inc, {
      kind: 'single',
      areaId: inc.area_id,
      feederId,
      meterId: l.meter_id,
      followsId: incidentId,
      detectedAt: now,
      meters: [{ id: l.meter_id, source: l.source, failedAt: l.failed_at }],
    });
  }
  return left.rows.length;
}

async function flagSla(
  c: PoolClient,
  id: number,
  level: 'at_risk' | 'breached',
  now: Date,
): Promise<boolean> {
  const { rows } = await c.query<{
    operator_id: number;
    kind: string;
    feeder_id: string | null;
    sla_target_at: Date;
  }>(
    `UPDATE outage_incidents SET sla_state = $2, ${level === 'at_risk' ? 'at_risk_at' : 'breached_at'} = $3
      WHERE id = $1 AND status IN ${OPEN_SQL} AND ${level === 'at_risk' ? `sla_state = 'ok'` : `sla_state <> 'breached'`}
      RETURNING operator_id, kind, feeder_id, sla_target_at`,
    [id, level, now],
  );
  const r = rows[0];
  if (!r) return false;
  const what = r.kind === 'feeder' ? `feeder ${r.feeder_id}` : 'a single household';
  await addTimeline(
    c,
    id,
    level === 'at_risk' ? 'sla_at_risk' : 'sla_breached',
    level === 'at_risk' ? 'Restoration target at risk' : 'Restoration target missed',
    null,
    null,
    now,
  );
  await raiseOperatorAlerts(c, [
    {
      operatorId: r.operator_id,
      type: level === 'at_risk' ? 'sla_at_risk' : 'sla_breached',
      dedupeKey: `incident:${id}`,
      title:
        level === 'at_risk'
          ? `Incident ${id} at risk of missing its target`
          : `Incident ${id} missed its target`,
      message: `The outage on ${what} is to be restored by ${r.sla_target_at.toISOString()}.`,
      figures: { incidentId: id, slaTargetAt: r.sla_target_at.toISOString() },
    },
  ]);
  return true;
}
