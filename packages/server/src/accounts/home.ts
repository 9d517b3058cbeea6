import type { MeterMode, RelayState } from '@kilowire/contract/enums';
import { addDays, billingPeriod, daysBetween, localDate } from '@kilowire/protocol';
import type { Q } from '../db/pool.ts';
import { meterDailyCost, moneyOfDays } from '../money/cost.ts';

export interface HomeRow {
  id: number;
  billing_cycle_day: number;
  emergency_available_minor: number | null;
  low_credit_minor: number | null;
  serial: string;
  tz: string;
  mode: MeterMode;
  relay: RelayState | null;
  credit_minor: number | null;
  currency: string;
  interval_s: number;
  last_reading_at: Date | null;
  today: string;
  today_wh: number;
  daily_limit_wh: number | null;
  hourly_limit_wh: number | null;
  period_start: string;
  period_wh: number;
  unread: number;
  /** #9 outages: the meter is in an open outage incident (since when, the operator's estimate). */
  outage_since: Date | null;
  outage_etr: Date | null;
}

/**
 * Everything the consumer's home page shows, in one statement over primary-key and indexed
 * lookups: the meter (by serial, or the consumer's first), today's local-day rollup, the
 * billing period so far (from the account's billing_cycle_day, local calendar), unread alerts.
 */
export async function homeSummary(
  q: Q,
  consumerId: number,
  serial: string | null,
): Promise<HomeRow | undefined> {
  const { rows } = await q.query<HomeRow>({
    name: 'home-summary',
    text: `WITH m AS (
       SELECT m.id, m.serial, m.tz, coalesce(m.mode, a.mode) AS mode, m.relay, m.credit_minor, m.interval_s,
              (m.last_status->>'emergencyCreditMinor')::int AS emergency_available_minor,
              a.currency, a.billing_cycle_day, (now() AT TIME ZONE m.tz)::date AS today
         FROM meters m JOIN accounts a ON a.id = m.account_id
        WHERE a.consumer_id = $1 AND ($2::text IS NULL OR m.serial = $2)
        ORDER BY m.id LIMIT 1
     ), p AS (
       SELECT m.*, CASE WHEN extract(day FROM m.today) >= m.billing_cycle_day
                        THEN date_trunc('month', m.today)::date + (m.billing_cycle_day - 1)
                        ELSE (date_trunc('month', m.today) - interval '1 month')::date + (m.billing_cycle_day - 1)
                   END AS period_start
         FROM m
     )
     SELECT p.id, p.billing_cycle_day, p.emergency_available_minor, l.low_credit_minor, p.serial, p.tz, p.mode, p.relay, p.credit_minor, p.interval_s, trim(p.currency) AS currency, p.today::text AS today,
            p.period_start::text AS period_start,
            (SELECT ir.ts + make_interval(secs => p.interval_s) FROM interval_readings ir
              WHERE ir.meter_id = p.id ORDER BY ir.ts DESC LIMIT 1) AS last_reading_at,
            coalesce((SELECT r.wh FROM daily_rollups r WHERE r.meter_id = p.id AND r.day = p.today), 0) AS today_wh,
            coalesce((SELECT sum(r.wh) FROM daily_rollups r
                       WHERE r.meter_id = p.id AND r.day BETWEEN p.period_start AND p.today), 0)::bigint AS period_wh,
            l.daily_limit_wh, l.hourly_limit_wh,
            (SELECT count(*) FROM alerts al WHERE al.consumer_id = $1 AND al.read_at IS NULL AND al.web)::int AS unread,
            o.failed_at AS outage_since, o.etr AS outage_etr
       FROM p LEFT JOIN meter_limits l ON l.meter_id = p.id
       -- #9 outages: an open incident the meter is in, still off (partial index on meter_id).
       LEFT JOIN LATERAL (
         SELECT im.failed_at, i.etr FROM outage_incident_meters im JOIN outage_incidents i ON i.id = im.incident_id
          WHERE im.meter_id = p.id AND im.restored_at IS NULL AND i.status IN ('detected', 'acknowledged', 'dispatched')
          ORDER BY im.failed_at LIMIT 1) o ON TRUE`,
    values: [consumerId, serial],
  });
  return rows[0];
}

/**
 * The friendly-credit hours a meter keeps when it was never sent others (the simulated
 * meter's factory setting; a thresholds.set that names them overrides it).
 */
export const METER_DEFAULT_FRIENDLY_HOURS = { from: '18:00', to: '08:00' };

export interface HomeMoney {
  cost: {
    currency: string;
    tariffName: string;
    todayMinor: number;
    periodMinor: number;
    recentDailyMinor: number | null;
    recentDays: number;
    projection: { totalMinor: number; periodEnd: string; daysLeft: number } | null;
  } | null;
  prepayment: {
    creditMinor: number | null;
    emergencyInUse: boolean;
    emergencyAvailableMinor: number | null;
    debtMinor: number;
    daysLeft: number | null;
    friendlyHours: { from: string; to: string } | null;
    lowCreditMinor: number | null;
  } | null;
}

/**
 * Money on the home page: today and the billing period so far at the prices in force, the
 * recent daily cost (last 7 complete local days with readings), a projected bill for credit
 * accounts (so far + recent daily cost × days left), and for prepayment how long the credit
 * lasts at that rate.
 */
export async function homeMoney(q: Q, h: HomeRow, nowS: number): Promise<HomeMoney> {
  const m = { id: h.id, tz: h.tz };
  const today = localDate(nowS, h.tz);
  const period = billingPeriod(today, h.billing_cycle_day);
  const from = period.start < addDays(today, -7) ? period.start : addDays(today, -7);
  const days = (await meterDailyCost(q, m, from, addDays(today, 1))).filter((d) => d.version !== null);
  const todayDays = days.filter((d) => d.day === today);
  const recent = days.filter((d) => d.day >= addDays(today, -7) && d.day < today && d.intervals > 0);
  const recentDaily = recent.length ? Math.round(moneyOfDays(recent).totalMinor / recent.length) : null;
  const v = todayDays[0]?.version ?? days[days.length - 1]?.version ?? null;
  let cost: HomeMoney['cost'] = null;
  if (v) {
    const periodMinor = moneyOfDays(days.filter((d) => d.day >= period.start)).totalMinor;
    const periodEnd = addDays(period.end, -1);
    const daysLeft = daysBetween(today, periodEnd);
    cost = {
      currency: v.currency,
      tariffName: v.name,
      todayMinor: moneyOfDays(todayDays).totalMinor,
      periodMinor,
      recentDailyMinor: recentDaily,
      recentDays: recent.length,
      projection:
        h.mode === 'credit' && recentDaily !== null
          ? { totalMinor: periodMinor + recentDaily * daysLeft, periodEnd, daysLeft }
          : null,
    };
  }
  let prepayment: HomeMoney['prepayment'] = null;
  if (h.mode === 'prepayment') {
    const credit = h.credit_minor === null ? null : Number(h.credit_minor);
    const { rows } = await q.query<{ fh: { from: string; to: string } | null }>(
      `SELECT cmd->'friendlyHours' AS fh FROM commands
        WHERE meter_id = $1 AND type = 'thresholds.set' AND status = 'ok' AND cmd ? 'friendlyHours'
        ORDER BY counter DESC LIMIT 1`,
      [h.id],
    );
    prepayment = {
      creditMinor: credit,
      emergencyInUse: credit !== null && credit <= 0,
      emergencyAvailableMinor: h.emergency_available_minor,
      debtMinor: credit !== null && credit < 0 ? -credit : 0,
      daysLeft:
        credit === null || recentDaily === null || recentDaily <= 0
          ? null
          : credit <= 0
            ? 0
            : Math.floor((credit * 10) / recentDaily) / 10,
      friendlyHours: rows[0] ? rows[0].fh : METER_DEFAULT_FRIENDLY_HOURS,
      lowCreditMinor: h.low_credit_minor,
    };
  }
  return { cost, prepayment };
}
