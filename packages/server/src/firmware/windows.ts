import type { ActivationWindow } from '@kilowire/contract';
import { addDays, inWindow, localDate, localMinuteOfDay, localTimeToEpoch } from '@kilowire/protocol';
import type { PoolClient, Q } from '../db/pool.ts';
import { scopeSql, type Actor } from '../policies.ts';

/**
 * When meters reboot on purpose: the local-time activation window of a campaign, the per
 * feeder spacing of activations, and the planned activations the network operator is told
 * about (so its outage detection and its control room do not take them for a power cut).
 */

/**
 * After the planned instant, how long a meter's reboot may still be on its way: the meter's
 * clock drift, the boot itself and its first report. Used for the outage exemption and for
 * calling a meter "not returned" (activate_at + confirm_s + this).
 */
export const ACTIVATION_GRACE_S = 300;
/** An activation is planned at least this far ahead: the command must reach the meter first. */
export const ACTIVATION_LEAD_S = 60;
/** Power events this long before a planned activation already count as its reboot (meter clocks drift). */
export const ACTIVATION_EARLY_S = 60;

/**
 * The first instant at or after `fromS` whose wall clock in `tz` is inside [from, to) (the
 * window may wrap midnight). On a day where the window's start falls in a DST gap, the
 * instant of the change.
 */
export function nextInWindow(fromS: number, tz: string, from: string, to: string): number {
  if (inWindow(localMinuteOfDay(fromS, tz), from, to)) return fromS;
  const today = localDate(fromS, tz);
  const start = localTimeToEpoch(today, from, tz);
  return start > fromS ? start : localTimeToEpoch(addDays(today, 1), from, tz);
}

export interface FeederPlan {
  /** Activations already planned for this feeder (epoch s), every campaign's. */
  planned: number[];
}

/**
 * Plan one activation on a feeder: the first instant at or after `fromS` in the meter's
 * local window such that at most `max` activations of the feeder fall in its slot. Slots
 * are the fixed `spacingS`-long intervals of the epoch (floor(t / spacingS)), so two planners
 * working on one feeder under its lock agree on them. Returns null when nothing fits in the
 * next `horizonDays` days.
 */
export function planActivation(
  fromS: number,
  tz: string,
  w: { from: string; to: string },
  feeder: FeederPlan,
  max: number,
  spacingS: number,
  horizonDays = 14,
): number | null {
  const perSlot = new Map<number, number>();
  for (const t of feeder.planned) {
    const s = Math.floor(t / spacingS);
    perSlot.set(s, (perSlot.get(s) ?? 0) + 1);
  }
  const until = fromS + horizonDays * 86_400;
  let t = nextInWindow(fromS, tz, w.from, w.to);
  while (t < until) {
    const slot = Math.floor(t / spacingS);
    if ((perSlot.get(slot) ?? 0) < max) return t;
    // The slot is full: the start of the next one, if still in the window, else the next window.
    t = nextInWindow((slot + 1) * spacingS, tz, w.from, w.to);
  }
  return null;
}

/**
 * Of `meterIds`, the meters inside a firmware activation window now: a planned activation
 * whose [activate_at - 60 s, activate_at + confirm_s + grace] holds now, whatever the meter's
 * state since (confirmed or reverted within it: the reboot is what the outage rules see). An
 * activation cancelled before its instant never happened, so it does not count.
 */
export async function meterIdsInActivationWindow(
  c: PoolClient,
  meterIds: readonly number[],
): Promise<Set<number>> {
  if (!meterIds.length) return new Set();
  const { rows } = await c.query<{ meter_id: number }>(
    `SELECT DISTINCT cm.meter_id FROM firmware_campaign_meters cm
       JOIN firmware_campaigns c ON c.id = cm.campaign_id
      WHERE cm.meter_id = ANY($1::int[]) AND cm.activate_at IS NOT NULL
        AND now() >= cm.activate_at - make_interval(secs => $2)
        AND now() <= cm.activate_at + make_interval(secs => c.confirm_s + $3::int)
        AND (cm.state <> 'cancelled' OR cm.finished_at >= cm.activate_at)`,
    [meterIds, ACTIVATION_EARLY_S, ACTIVATION_GRACE_S],
  );
  return new Set(rows.map((r) => r.meter_id));
}

/**
 * The operator's view: planned activations still to come or under way (until their
 * confirmation time is over), per campaign and feeder, over the next `days` days. Operator
 * staff see the feeders of their own areas; admins all.
 */
export async function activationWindows(
  q: Q,
  actor: Actor,
  f: { area?: string | undefined; days: number },
): Promise<ActivationWindow[]> {
  const scope = scopeSql(actor, 'meters', 'm', 4);
  const { rows } = await q.query<{
    campaign_id: number;
    supplier: string;
    feeder_id: string | null;
    feeder_name: string | null;
    area_id: string;
    from: Date;
    to: Date;
    meters: number;
  }>(
    `SELECT c.id::int AS campaign_id, o.name AS supplier, m.feeder_id, fd.name AS feeder_name, m.area_id,
            min(cm.activate_at) AS "from",
            max(cm.activate_at + make_interval(secs => c.confirm_s)) AS "to",
            count(*)::int AS meters
       FROM firmware_campaign_meters cm
       JOIN firmware_campaigns c ON c.id = cm.campaign_id
       JOIN organisations o ON o.id = c.supplier_id
       JOIN meters m ON m.id = cm.meter_id
       LEFT JOIN feeders fd ON fd.id = m.feeder_id
      WHERE cm.activate_at IS NOT NULL
        AND (cm.state <> 'cancelled' OR cm.finished_at >= cm.activate_at)
        AND cm.activate_at + make_interval(secs => c.confirm_s + $1::int) >= now()
        AND cm.activate_at <= now() + make_interval(days => $2::int)
        AND ($3::text IS NULL OR m.area_id = $3)
        AND (${scope.sql})
      GROUP BY c.id, o.name, m.feeder_id, fd.name, m.area_id
      ORDER BY min(cm.activate_at), c.id, m.feeder_id NULLS LAST`,
    [ACTIVATION_GRACE_S, f.days, f.area ?? null, ...scope.params],
  );
  return rows.map((r) => ({
    campaignId: r.campaign_id,
    supplier: r.supplier,
    feederId: r.feeder_id,
    feederName: r.feeder_name,
    areaId: r.area_id,
    from: r.from.toISOString(),
    to: r.to.toISOString(),
    meters: r.meters,
  }));
}
