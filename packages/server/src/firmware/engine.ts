import type { KeyObject } from 'node:crypto';
import { raiseAlertsIn, raiseOperatorAlerts } from '../alerts/raise.ts';
import { withTx, type Pool, type PoolClient, type Tx } from '../db/pool.ts';
import type { DomainEvent, Subscriber } from '../events/types.ts';
import type { Logger } from '../log.ts';
import { cancelUnfinished, FAILURES_SQL, LIVE_SQL, maxFailures, timeline, WAITING_SQL } from './campaigns.ts';
import { activateImage, offerImage } from './commands.ts';
import { ACTIVATION_GRACE_S, ACTIVATION_LEAD_S, planActivation } from './windows.ts';

/**
 * The campaign engine. A tick (every ~10 s, one at a time across jobs processes; each
 * campaign under its row lock, taken with SKIP LOCKED) moves every running campaign on:
 *
 *   1. meters whose new image reported in (their sequence) are confirmed; meters rebooting
 *      past activate_at + confirm_s + grace with no word are `not_returned`;
 *   2. a stage whose failures exceed floor(threshold% x its meters) halts the campaign;
 *   3. a finished stage starts the next (skipped meters carried over, see advance());
 *   4. offers go to the current stage's waiting meters that can take one now (bounded per
 *      tick and by the transfers in flight, so transfers never starve readings); the others
 *      are skipped with the reason (offline, disconnected, outage) and retried next tick;
 *   5. verified meters get an activation at an instant in the campaign's local window of the
 *      meter's own zone, at most feeder_max per feeder in any feeder_spacing_s slot, and the
 *      feeder's network operator is told (once per campaign, operator and day).
 *
 * The meters' answers (command replies, firmware.* events, expiries) arrive through the
 * events subscriber below and move one meter at a time; a failure re-checks the halt rule at
 * once. Every change to a campaign's meters is made under the campaign row's lock (campaign
 * first, then meter rows: the same order everywhere, so the tick and the subscriber never
 * deadlock).
 */

export interface EngineOptions {
  /** Offers made per campaign per tick. */
  offerBatch?: number;
  /** Meters of a campaign offered or downloading at once (the gateway serves their blocks). */
  maxInFlight?: number;
  /** A meter not heard from for this long is offline: skipped, retried later. */
  offlineAfterS?: number;
  /** Skipped meters hold a finished stage back this long before they are carried over. */
  skipWaitS?: number;
  /** Offers a meter may leave unanswered (expired) before it fails. */
  maxOfferAttempts?: number;
  /** The offer command's lifetime: an offline meter's offer lapses and is made again later. */
  offerTtlS?: number;
  /** Activations planned per campaign per tick. */
  activationBatch?: number;
}

const DEFAULTS: Required<EngineOptions> = {
  offerBatch: 200,
  maxInFlight: 1000,
  offlineAfterS: 3600,
  skipWaitS: 3600,
  maxOfferAttempts: 3,
  offerTtlS: 6 * 3600,
  activationBatch: 500,
};

interface CampaignRow {
  id: number;
  supplier_id: number;
  name: string;
  status: string;
  stage: number;
  stages: number;
  failure_threshold_pct: string;
  window_from: string;
  window_to: string;
  feeder_max: number;
  feeder_spacing_s: number;
  confirm_s: number;
  image_id: number;
  version: string;
  sequence: number;
  sha256: string;
  manifest: string;
  signature: string;
  supplier: string;
}

const SELECT_CAMPAIGN = `
  SELECT c.id::int, c.supplier_id, c.name, c.status, c.stage, c.stages, c.failure_threshold_pct, c.window_from,
         c.window_to, c.feeder_max, c.feeder_spacing_s, c.confirm_s, i.id::int AS image_id, i.version, i.sequence,
         i.sha256, i.manifest, i.signature, o.name AS supplier
    FROM firmware_campaigns c JOIN firmware_images i ON i.id = c.image_id
    JOIN organisations o ON o.id = c.supplier_id`;

/** Why a meter cannot take part right now, or null. Outage first: a meter in one is silent too. */
const WHY_NOT_SQL = `
  CASE WHEN ps.off_since IS NOT NULL OR EXISTS (
              SELECT 1 FROM outage_incident_meters im JOIN outage_incidents oi ON oi.id = im.incident_id
               WHERE im.meter_id = m.id AND im.restored_at IS NULL
                 AND oi.status IN ('detected', 'acknowledged', 'dispatched')) THEN 'outage'
       WHEN m.relay = 'disconnected' THEN 'disconnected'
       WHEN coalesce(greatest(m.last_seen_at, st.last_data_at), '-infinity'::timestamptz)
              < $NOW::timestamptz - make_interval(secs => $OFFLINE::int) THEN 'offline'
  END`;

function whyNot(nowParam: number, offlineParam: number): string {
  return WHY_NOT_SQL.replace('$NOW', () => `$${nowParam}`).replace('$OFFLINE', () => `$${offlineParam}`);
}

export interface TickResult {
  offered: number;
  skipped: number;
  activations: number;
  notReturned: number;
  confirmed: number;
  halted: number;
  advanced: number;
  completed: number;
}

/**
 * One pass over every campaign with work: running and paused ones, and halted or cancelled
 * ones whose meters are still rebooting (their outcome is still recorded). `now` is the
 * engine's clock (tests move it).
 */
export async function tickCampaigns(
  pool: Pool,
  key: KeyObject,
  o: EngineOptions & { now?: Date } = {},
): Promise<TickResult> {
  const opts = { ...DEFAULTS, ...o };
  const now = o.now ?? new Date();
  const res: TickResult = {
    offered: 0,
    skipped: 0,
    activations: 0,
    notReturned: 0,
    confirmed: 0,
    halted: 0,
    advanced: 0,
    completed: 0,
  };
  const { rows } = await pool.query<{ id: number }>(
    `SELECT c.id::int FROM firmware_campaigns c
      WHERE c.status IN ('running', 'paused')
         OR (c.status IN ('halted', 'cancelled') AND EXISTS (
               SELECT 1 FROM firmware_campaign_meters cm WHERE cm.campaign_id = c.id AND cm.state = 'activating'))
      ORDER BY c.id`,
  );
  // One campaign's trouble (a deadlock victim, a bad row) must not hold the others back: each
  // is tried, and the first error is raised afterwards so the job is retried and logged.
  let failed: unknown = null;
  for (const { id } of rows) {
    try {
      await withTx(pool, { actorId: null }, (t) => tickOne(t, key, id, now, opts, res));
    } catch (err) {
      failed ??= err;
    }
  }
  if (failed) throw failed instanceof Error ? failed : new Error('firmware tick failed', { cause: failed });
  return res;
}

async function tickOne(
  t: Tx,
  key: KeyObject,
  id: number,
  now: Date,
  o: Required<EngineOptions>,
  res: TickResult,
): Promise<void> {
  const c = (
    await t.c.query<CampaignRow>(`${SELECT_CAMPAIGN} WHERE c.id = $1 FOR UPDATE OF c SKIP LOCKED`, [id])
  ).rows[0];
  if (!c) return; // another jobs process has it this instant

  // 1. Meters back on the new image (their own report of the sequence they run) are
  // confirmed even if the firmware.changed event was lost; the rest past their time are not
  // returned (a later word from them still counts: see the subscriber).
  const confirmed = await t.c.query(
    `UPDATE firmware_campaign_meters cm SET state = 'confirmed', finished_at = $3, updated_at = $3, reason = NULL
       FROM meters m
      WHERE m.id = cm.meter_id AND cm.campaign_id = $1 AND cm.state IN ('activating', 'not_returned')
        AND m.firmware_sequence >= $2`,
    [c.id, c.sequence, now],
  );
  res.confirmed += confirmed.rowCount ?? 0;
  const late = await t.c.query<{ meter_id: number }>(
    `UPDATE firmware_campaign_meters SET state = 'not_returned', finished_at = $2, updated_at = $2, reason = $5
      WHERE campaign_id = $1 AND state = 'activating'
        AND activate_at + make_interval(secs => $3::int + $4::int) < $2
      RETURNING meter_id`,
    [c.id, now, c.confirm_s, ACTIVATION_GRACE_S, `no confirmation within ${c.confirm_s} s of activation`],
  );
  res.notReturned += late.rows.length;
  if (c.status !== 'running' && c.status !== 'paused') return;

  // 2. The halt rule, for every stage so far.
  if (await checkHalt(t, key, c, late.rows.at(-1)?.meter_id ?? null)) {
    res.halted++;
    return;
  }
  if (c.status === 'paused') return;

  // 3. Stages.
  const adv = await advance(t.c, c, now, o);
  res.advanced += adv.advanced;
  if (adv.completed) {
    res.completed++;
    return;
  }

  // 4. Offers.
  const r = await makeOffers(t.c, key, c, now, o);
  res.offered += r.offered;
  res.skipped += r.skipped;

  // 5. Activations.
  res.activations += await planActivations(t.c, key, c, now, o);
}

/**
 * The halt rule: any stage (up to the current one) whose failures exceed floor(threshold% x
 * its meters) halts the campaign at once: status `halted` with the reason, every unfinished
 * meter cancelled (later stages included: they never get an offer), a timeline entry, and a
 * `campaign_halted` alert to the supplier's staff naming the meter that tipped it. Under the
 * campaign's lock. Returns whether it halted.
 */
export async function checkHalt(
  t: Tx,
  key: KeyObject,
  c: Pick<CampaignRow, 'id' | 'name' | 'status' | 'stage' | 'failure_threshold_pct' | 'sha256' | 'version'>,
  tipping: number | null,
): Promise<boolean> {
  if (c.status !== 'running' && c.status !== 'paused') return false;
  const { rows } = await t.c.query<{ stage: number; n: number; failures: number }>(
    `SELECT stage, count(*)::int AS n, count(*) FILTER (WHERE state IN ${FAILURES_SQL})::int AS failures
       FROM firmware_campaign_meters WHERE campaign_id = $1 AND stage <= $2 GROUP BY stage ORDER BY stage`,
    [c.id, c.stage],
  );
  const pct = Number(c.failure_threshold_pct);
  const over = rows.find((r) => r.failures > maxFailures(pct, r.n));
  if (!over) return false;
  const reasons = await t.c.query<{ reason: string; n: number }>(
    `SELECT coalesce(reason, state) AS reason, count(*)::int AS n FROM firmware_campaign_meters
      WHERE campaign_id = $1 AND stage = $2 AND state IN ${FAILURES_SQL} GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 3`,
    [c.id, over.stage],
  );
  const stageName = over.stage === 0 ? 'the canary stage' : `wave ${over.stage}`;
  const why =
    `${over.failures} of ${over.n} meters of ${stageName} failed, more than the ${pct}% threshold allows ` +
    `(${maxFailures(pct, over.n)}): ${reasons.rows.map((r) => `${r.reason} (${r.n})`).join(', ')}`;
  await t.c.query(
    `UPDATE firmware_campaigns SET status = 'halted', halted_reason = $2, finished_at = now() WHERE id = $1`,
    [c.id, why.slice(0, 500)],
  );
  const cancelled = await cancelUnfinished(t.c, key, c, 'campaign halted', null);
  await timeline(t.c, c.id, 'halted', null, why);
  let meterId = tipping;
  if (meterId === null) {
    meterId =
      (
        await t.c.query<{ meter_id: number }>(
          `SELECT meter_id FROM firmware_campaign_meters WHERE campaign_id = $1 AND stage = $2
              AND state IN ${FAILURES_SQL} ORDER BY updated_at DESC, meter_id LIMIT 1`,
          [c.id, over.stage],
        )
      ).rows[0]?.meter_id ?? null;
  }
  if (meterId !== null) {
    await raiseAlertsIn(t.c, [
      {
        meterId,
        type: 'campaign_halted',
        dedupeKey: `campaign:${c.id}`,
        title: `Firmware campaign "${c.name}" halted itself`,
        message:
          `${why}. ${cancelled} unfinished meters were told to drop version ${c.version}; ` +
          'no meter outside the finished stages will be offered it. Look at the failures before starting again.',
        figures: {
          campaignId: c.id,
          stage: over.stage,
          failures: over.failures,
          meters: over.n,
          thresholdPct: pct,
        },
      },
    ]);
  }
  await t.audit('firmware.campaign.halted', `campaign:${c.id}`, {
    stage: over.stage,
    failures: over.failures,
    meters: over.n,
    cancelled,
  });
  return true;
}

/**
 * Stage bookkeeping. A stage is finished when none of its meters is waiting for its turn or
 * under way. Meters skipped (offline, disconnected, in an outage) do not hold it back for
 * ever: once the stage has run `skipWaitS`, they move to the next stage (still retried there)
 * and the next stage starts; in the last stage they end `cancelled` ("not reachable during
 * the campaign") and the campaign completes. They never count as failures: they never got
 * the image.
 */
async function advance(
  c: PoolClient,
  cam: CampaignRow,
  now: Date,
  o: Required<EngineOptions>,
): Promise<{ advanced: number; completed: boolean }> {
  let advanced = 0;
  for (;;) {
    const s = (
      await c.query<{ open: number; skipped: number; since: Date | null }>(
        `SELECT count(*) FILTER (WHERE state = 'pending' OR state IN ${LIVE_SQL})::int AS open,
                count(*) FILTER (WHERE state = 'skipped')::int AS skipped,
                (SELECT max(at) FROM firmware_campaign_events WHERE campaign_id = $1 AND kind = 'stage_started') AS since
           FROM firmware_campaign_meters WHERE campaign_id = $1 AND stage = $2`,
        [cam.id, cam.stage],
      )
    ).rows[0]!;
    if (s.open > 0) return { advanced, completed: false };
    const last = cam.stage >= cam.stages - 1;
    if (s.skipped > 0) {
      const since = s.since ?? now;
      if (now.getTime() - since.getTime() < o.skipWaitS * 1000) return { advanced, completed: false };
      if (last) {
        await c.query(
          `UPDATE firmware_campaign_meters SET state = 'cancelled', reason = 'not reachable during the campaign',
                  finished_at = $3, updated_at = $3
            WHERE campaign_id = $1 AND stage = $2 AND state = 'skipped'`,
          [cam.id, cam.stage, now],
        );
      } else {
        await c.query(
          `UPDATE firmware_campaign_meters SET stage = $2 + 1, updated_at = $3
            WHERE campaign_id = $1 AND stage = $2 AND state = 'skipped'`,
          [cam.id, cam.stage, now],
        );
        await timeline(
          c,
          cam.id,
          'carried_over',
          null,
          `${s.skipped} skipped meters moved to wave ${cam.stage + 1}`,
        );
      }
    }
    if (last) {
      await c.query(`UPDATE firmware_campaigns SET status = 'completed', finished_at = $2 WHERE id = $1`, [
        cam.id,
        now,
      ]);
      await timeline(c, cam.id, 'completed', null);
      return { advanced, completed: true };
    }
    cam.stage++;
    advanced++;
    await c.query('UPDATE firmware_campaigns SET stage = $2 WHERE id = $1', [cam.id, cam.stage]);
    await c.query(
      `INSERT INTO firmware_campaign_events (campaign_id, kind, detail, at) VALUES ($1, 'stage_started', $2, $3)`,
      [cam.id, `wave ${cam.stage}`, now],
    );
  }
}

async function makeOffers(
  c: PoolClient,
  key: KeyObject,
  cam: CampaignRow,
  now: Date,
  o: Required<EngineOptions>,
): Promise<{ offered: number; skipped: number }> {
  const inFlight = (
    await c.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM firmware_campaign_meters
        WHERE campaign_id = $1 AND state IN ('offered', 'downloading')`,
      [cam.id],
    )
  ).rows[0]!.n;
  let budget = Math.min(o.offerBatch, o.maxInFlight - inFlight);
  const { rows } = await c.query<{
    meter_id: number;
    serial: string;
    state: string;
    skip_reason: string | null;
    why: 'offline' | 'disconnected' | 'outage' | null;
    gone: string | null;
    busy: boolean;
  }>(
    `SELECT cm.meter_id, m.serial, cm.state, cm.skip_reason, ${whyNot(3, 4)} AS why,
            CASE WHEN m.status <> 'active' THEN 'meter decommissioned'
                 WHEN coalesce(m.firmware_sequence, 0) >= $5 THEN 'already at or above the image''s security sequence'
            END AS gone,
            EXISTS (SELECT 1 FROM firmware_campaign_meters x WHERE x.meter_id = cm.meter_id
                      AND x.campaign_id <> cm.campaign_id AND x.state IN ${LIVE_SQL}) AS busy
       FROM firmware_campaign_meters cm
       JOIN meters m ON m.id = cm.meter_id
       LEFT JOIN meter_ingest_state st ON st.meter_id = m.id
       LEFT JOIN meter_power_state ps ON ps.meter_id = m.id
      WHERE cm.campaign_id = $1 AND cm.stage = $2 AND cm.state IN ${WAITING_SQL}
      ORDER BY cm.state DESC, cm.meter_id`,
    [cam.id, cam.stage, now, o.offlineAfterS, cam.sequence],
  );
  let offered = 0;
  let skipped = 0;
  const skip = new Map<string, number[]>();
  for (const r of rows) {
    // Changed since the campaign was created (replaced, or updated some other way): an offer
    // would only be refused and counted as a failure of the image. Not a failure: done with it.
    if (r.gone) {
      await c.query(
        `UPDATE firmware_campaign_meters SET state = 'cancelled', reason = $3, finished_at = $4, updated_at = $4
          WHERE campaign_id = $1 AND meter_id = $2`,
        [cam.id, r.meter_id, r.gone, now],
      );
      continue;
    }
    if (r.why) {
      if (r.state !== 'skipped' || r.skip_reason !== r.why) {
        skip.set(r.why, [...(skip.get(r.why) ?? []), r.meter_id]);
      }
      skipped++;
      continue;
    }
    // Still finishing another campaign's transfer (a halted or cancelled one's reboot under way): wait.
    if (r.busy || budget <= 0) continue;
    await offerImage(
      c,
      key,
      cam.id,
      { id: r.meter_id, serial: r.serial },
      { id: cam.image_id, sha256: cam.sha256, manifest: cam.manifest, signature: cam.signature },
      { timing: { ttlS: o.offerTtlS } },
    );
    budget--;
    offered++;
  }
  for (const [why, ids] of skip) {
    await c.query(
      `UPDATE firmware_campaign_meters SET state = 'skipped', skip_reason = $3, updated_at = $4
        WHERE campaign_id = $1 AND meter_id = ANY($2::int[])`,
      [cam.id, ids, why, now],
    );
  }
  return { offered, skipped };
}

/**
 * Verified meters that can reboot now get an activation: the first instant from now + lead
 * inside the campaign's window on the meter's own local clock, in a slot of its feeder with
 * room (at most feeder_max activations of the feeder, across every campaign, per
 * feeder_spacing_s). Under the feeder's advisory lock, so two campaigns (or jobs processes)
 * never overfill one slot. The feeder's operator is told.
 */
async function planActivations(
  c: PoolClient,
  key: KeyObject,
  cam: CampaignRow,
  now: Date,
  o: Required<EngineOptions>,
): Promise<number> {
  const { rows } = await c.query<{
    meter_id: number;
    serial: string;
    tz: string;
    feeder_id: string | null;
    area_id: string;
    operator_id: number;
  }>(
    `SELECT cm.meter_id, m.serial, m.tz, m.feeder_id, m.area_id, na.operator_id
       FROM firmware_campaign_meters cm
       JOIN meters m ON m.id = cm.meter_id
       JOIN network_areas na ON na.id = m.area_id
       LEFT JOIN meter_ingest_state st ON st.meter_id = m.id
       LEFT JOIN meter_power_state ps ON ps.meter_id = m.id
      WHERE cm.campaign_id = $1 AND cm.state = 'verified' AND (${whyNot(2, 3)}) IS NULL
      ORDER BY m.feeder_id NULLS LAST, cm.verified_at, cm.meter_id
      LIMIT $4`,
    [cam.id, now, o.offlineAfterS, o.activationBatch],
  );
  if (!rows.length) return 0;
  const nowS = Math.floor(now.getTime() / 1000);
  const byFeeder = new Map<string | null, typeof rows>();
  for (const r of rows) byFeeder.set(r.feeder_id, [...(byFeeder.get(r.feeder_id) ?? []), r]);
  const told = new Map<number, { feeders: Set<string>; from: number; to: number; meters: number }>();
  let planned = 0;
  for (const [feeder, meters] of byFeeder) {
    const planned_: number[] = [];
    if (feeder !== null) {
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`kw-fw-feeder:${feeder}`]);
      const p = await c.query<{ at: number }>(
        `SELECT extract(epoch FROM cm.activate_at)::bigint AS at FROM firmware_campaign_meters cm
           JOIN meters m ON m.id = cm.meter_id
          WHERE m.feeder_id = $1 AND cm.state = 'activating' AND cm.activate_at >= $2::timestamptz - make_interval(secs => $3)`,
        [feeder, now, cam.feeder_spacing_s],
      );
      planned_.push(...p.rows.map((x) => Number(x.at)));
    }
    for (const m of meters) {
      const at = planActivation(
        nowS + ACTIVATION_LEAD_S,
        m.tz,
        { from: cam.window_from, to: cam.window_to },
        // A meter on no feeder shares a slot with nobody.
        { planned: feeder === null ? [] : planned_ },
        cam.feeder_max,
        cam.feeder_spacing_s,
      );
      if (at === null) continue;
      await activateImage(
        c,
        key,
        cam.id,
        { id: m.meter_id, serial: m.serial },
        cam.sha256,
        at,
        cam.confirm_s,
        {
          nowS,
        },
      );
      planned_.push(at);
      planned++;
      const k = told.get(m.operator_id) ?? { feeders: new Set<string>(), from: at, to: at, meters: 0 };
      if (feeder !== null) k.feeders.add(feeder);
      k.from = Math.min(k.from, at);
      k.to = Math.max(k.to, at + cam.confirm_s);
      k.meters++;
      told.set(m.operator_id, k);
    }
  }
  for (const [operatorId, k] of told) {
    const day = new Date(k.from * 1000).toISOString().slice(0, 10);
    const fmt = (s: number) => new Date(s * 1000).toISOString().slice(0, 16).replace('T', ' ');
    const feeders = [...k.feeders].sort();
    await raiseOperatorAlerts(c, [
      {
        operatorId,
        type: 'firmware_window',
        dedupeKey: `campaign:${cam.id}:${day}`,
        title: `Planned meter restarts: ${cam.supplier} firmware update`,
        message:
          `${cam.supplier} restarts meters for a firmware update (campaign "${cam.name}") from ${fmt(k.from)} UTC ` +
          `to ${fmt(k.to)} UTC${feeders.length ? ` on feeders ${feeders.join(', ')}` : ''}. ` +
          'Power events of these meters in that window are restarts, not outages; see the activation windows for the full plan.',
        figures: {
          campaignId: cam.id,
          feeders,
          from: new Date(k.from * 1000).toISOString(),
          to: new Date(k.to * 1000).toISOString(),
          meters: k.meters,
        },
      },
    ]);
  }
  return planned;
}

// ------------------------------------------------------------------ the meters' answers

type MeterEventPayload = DomainEvent<'meter.event'>['payload'];

interface Move {
  campaignId: number;
  meterId: number;
  /** States the row may be in for this move (anything else: the answer is stale, ignored). */
  from: readonly string[];
  set: string;
  params: unknown[];
  failure: boolean;
}

/**
 * Apply one move under the campaign's lock (campaign row first, as the tick does), and
 * re-check the halt rule when it is a failure. Idempotent: a move whose row already left
 * `from` changes nothing (an answer handled twice, or after the row moved on).
 */
async function applyMove(pool: Pool, key: KeyObject, m: Move): Promise<boolean> {
  return withTx(pool, { actorId: null }, async (t) => {
    const c = (
      await t.c.query<CampaignRow>(`${SELECT_CAMPAIGN} WHERE c.id = $1 FOR UPDATE OF c`, [m.campaignId])
    ).rows[0];
    if (!c) return false;
    const up = await t.c.query(
      `UPDATE firmware_campaign_meters SET ${m.set}, updated_at = now()
        WHERE campaign_id = $1 AND meter_id = $2 AND state = ANY($3::text[])`,
      [m.campaignId, m.meterId, m.from, ...m.params],
    );
    if (!up.rowCount) return false;
    if (m.failure) await checkHalt(t, key, c, m.meterId);
    return true;
  });
}

/** The campaign row a meter's firmware answer is about: its image, in one of `from`. */
async function rowFor(
  pool: Pool,
  meterId: number,
  match: { sha256?: string | undefined; version?: string | undefined },
  from: readonly string[],
): Promise<number | null> {
  if (!match.sha256 && !match.version) return null;
  const { rows } = await pool.query<{ campaign_id: number }>(
    `SELECT cm.campaign_id::int FROM firmware_campaign_meters cm
       JOIN firmware_campaigns c ON c.id = cm.campaign_id JOIN firmware_images i ON i.id = c.image_id
      WHERE cm.meter_id = $1 AND cm.state = ANY($4::text[])
        AND (i.sha256 = $2 OR ($2::text IS NULL AND i.version = $3))
      ORDER BY cm.campaign_id DESC LIMIT 1`,
    [meterId, match.sha256 ?? null, match.version ?? null, from],
  );
  return rows[0]?.campaign_id ?? null;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length ? v : undefined);

async function onMeterEvent(
  pool: Pool,
  key: KeyObject,
  meterId: number,
  p: MeterEventPayload,
): Promise<void> {
  const d = p.data ?? {};
  const image = str(d.image);
  const reason = (what: string) => (str(d.reason) ? `${what}: ${str(d.reason)}` : what).slice(0, 256);
  const move = async (
    from: readonly string[],
    set: string,
    params: unknown[],
    failure: boolean,
    match: { sha256?: string | undefined; version?: string | undefined } = { sha256: image },
  ) => {
    const id = await rowFor(pool, meterId, match, from);
    if (id !== null) await applyMove(pool, key, { campaignId: id, meterId, from, set, params, failure });
  };
  switch (p.code) {
    case 'firmware.verified':
      return move(
        ['offered', 'downloading'],
        `state = 'verified', verified_at = now(), blocks_done = blocks_total, reason = NULL`,
        [],
        false,
      );
    case 'firmware.verify_failed':
      return move(
        ['offered', 'downloading', 'verified'],
        `state = 'verify_failed', reason = $4, finished_at = now()`,
        [reason('verification failed')],
        true,
      );
    case 'firmware.boot_failed':
      // A late revert report replaces "not returned": the meter is back on its old image.
      return move(
        ['activating', 'not_returned', 'verified'],
        `state = 'reverted', reason = $4, finished_at = now()`,
        [reason('reverted to the old image')],
        true,
      );
    case 'firmware.changed':
      // The new image reconnected and reported: confirmed (also after "not returned", late).
      return move(
        ['activating', 'not_returned', 'verified'],
        `state = 'confirmed', reason = NULL, finished_at = now()`,
        [],
        false,
        image ? { sha256: image } : { version: str(d.to) },
      );
    default:
      return;
  }
}

async function byCommand(
  pool: Pool,
  commandId: string,
): Promise<{ campaign_id: number; meter_id: number; which: 'offer' | 'activate'; attempts: number } | null> {
  const { rows } = await pool.query<{
    campaign_id: number;
    meter_id: number;
    which: 'offer' | 'activate';
    attempts: number;
  }>(
    `SELECT campaign_id::int, meter_id, CASE WHEN offer_command_id = $1 THEN 'offer' ELSE 'activate' END AS which, attempts
       FROM firmware_campaign_meters WHERE offer_command_id = $1 OR activate_command_id = $1 LIMIT 1`,
    [commandId],
  );
  return rows[0] ?? null;
}

async function onReplied(
  pool: Pool,
  key: KeyObject,
  p: DomainEvent<'command.replied'>['payload'],
): Promise<void> {
  if (p.type !== 'firmware.offer' && p.type !== 'firmware.activate') return;
  const r = await byCommand(pool, p.commandId);
  if (!r) return;
  const base = { campaignId: r.campaign_id, meterId: r.meter_id };
  if (r.which === 'offer') {
    if (p.result === 'ok') {
      await applyMove(pool, key, {
        ...base,
        from: ['offered'],
        set: `state = 'downloading'`,
        params: [],
        failure: false,
      });
    } else {
      await applyMove(pool, key, {
        ...base,
        from: ['offered', 'downloading'],
        set: `state = 'refused', reason = $4, finished_at = now()`,
        params: [`offer ${p.result}: ${p.code ?? 'no code'}`],
        failure: true,
      });
    }
  } else if (p.result !== 'ok') {
    await applyMove(pool, key, {
      ...base,
      from: ['activating'],
      set: `state = 'failed', reason = $4, finished_at = now()`,
      params: [`activation ${p.result}: ${p.code ?? 'no code'}`],
      failure: true,
    });
  }
}

async function onExpired(
  pool: Pool,
  key: KeyObject,
  p: DomainEvent<'command.expired'>['payload'],
  maxAttempts: number,
): Promise<void> {
  if (p.type !== 'firmware.offer' && p.type !== 'firmware.activate') return;
  const r = await byCommand(pool, p.commandId);
  if (!r) return;
  const base = { campaignId: r.campaign_id, meterId: r.meter_id };
  if (r.which === 'offer') {
    // Never answered: an offline meter is retried (skipped: the next tick offers again when it
    // is back); after maxAttempts unanswered offers it fails.
    await applyMove(
      pool,
      key,
      r.attempts >= maxAttempts
        ? {
            ...base,
            from: ['offered'],
            set: `state = 'failed', reason = $4, finished_at = now()`,
            params: [`no answer to ${r.attempts} offers`],
            failure: true,
          }
        : {
            ...base,
            from: ['offered'],
            set: `state = 'skipped', skip_reason = 'offline'`,
            params: [],
            failure: false,
          },
    );
  } else {
    // The activation never reached the meter before its window closed (the meter refuses it
    // late): back to verified, planned again in a later window.
    await applyMove(pool, key, {
      ...base,
      from: ['activating'],
      set: `state = 'verified', activate_at = NULL, activate_command_id = NULL`,
      params: [],
      failure: false,
    });
  }
}

/**
 * The engine's ears: firmware.* meter events, replies to offers and activations, and their
 * expiries. Each answer moves one meter (idempotently: a duplicate finds the row already
 * moved); failures re-check the halt rule at once.
 */
export function firmwareSubscriber(
  pool: Pool,
  key: KeyObject,
  log?: Logger,
  o: { maxOfferAttempts?: number } = {},
): Subscriber {
  const maxAttempts = o.maxOfferAttempts ?? DEFAULTS.maxOfferAttempts;
  return {
    name: 'firmware',
    types: ['meter.event', 'command.replied', 'command.expired'],
    async handle(events: DomainEvent[]): Promise<void> {
      for (const e of events) {
        if (e.type === 'meter.event' && e.meterId !== null) {
          const p = (e as DomainEvent<'meter.event'>).payload;
          if (p.code.startsWith('firmware.')) await onMeterEvent(pool, key, e.meterId, p);
        } else if (e.type === 'command.replied') {
          await onReplied(pool, key, (e as DomainEvent<'command.replied'>).payload);
        } else if (e.type === 'command.expired') {
          await onExpired(pool, key, (e as DomainEvent<'command.expired'>).payload, maxAttempts);
        }
      }
      log?.debug({ events: events.length }, 'firmware answers applied');
    },
  };
}
