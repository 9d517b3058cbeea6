import type { MeterMode, RelayState } from '@kilowire/contract/enums';
import type { Q } from '../db/pool.ts';

export interface HomeRow {
  serial: string;
  tz: string;
  mode: MeterMode;
  relay: RelayState | null;
  credit_minor: number | null;
  currency: string;
  last_reading_at: Date | null;
  today: string;
  today_wh: number;
  daily_limit_wh: number | null;
  hourly_limit_wh: number | null;
  period_start: string;
  period_wh: number;
  unread: number;
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
     SELECT p.serial, p.tz, p.mode, p.relay, p.credit_minor, trim(p.currency) AS currency, p.today::text AS today,
            p.period_start::text AS period_start,
            (SELECT ir.ts + make_interval(secs => p.interval_s) FROM interval_readings ir
              WHERE ir.meter_id = p.id ORDER BY ir.ts DESC LIMIT 1) AS last_reading_at,
            coalesce((SELECT r.wh FROM daily_rollups r WHERE r.meter_id = p.id AND r.day = p.today), 0) AS today_wh,
            coalesce((SELECT sum(r.wh) FROM daily_rollups r
                       WHERE r.meter_id = p.id AND r.day BETWEEN p.period_start AND p.today), 0)::bigint AS period_wh,
            l.daily_limit_wh, l.hourly_limit_wh,
            (SELECT count(*) FROM alerts al WHERE al.consumer_id = $1 AND al.read_at IS NULL AND al.web)::int AS unread
       FROM p LEFT JOIN meter_limits l ON l.meter_id = p.id`,
    values: [consumerId, serial],
  });
  return rows[0];
}
