import type { Pool, PoolClient } from '../db/pool.ts';
import { tx } from '../db/pool.ts';
import { AppError } from '../errors.ts';
import { alertScopeSql, outboxScopeSql, type Actor } from '../policies.ts';
import { ALERT_TYPES, defaultPreferences, type AlertType, type Preferences } from './types.ts';

type Q = Pool | PoolClient;

// ---- home ----------------------------------------------------------------------------

export interface HomeRow {
  serial: string;
  tz: string;
  mode: 'credit' | 'prepayment';
  relay: 'connected' | 'disconnected' | 'armed' | null;
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
export async function homeSummary(q: Q, consumerId: number, serial: string | null): Promise<HomeRow | undefined> {
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

// ---- limits --------------------------------------------------------------------------

export interface Limits {
  dailyLimitWh: number | null;
  hourlyLimitWh: number | null;
}

export async function getLimits(q: Q, meterId: number): Promise<Limits> {
  const { rows } = await q.query<{ daily_limit_wh: number | null; hourly_limit_wh: number | null }>(
    'SELECT daily_limit_wh, hourly_limit_wh FROM meter_limits WHERE meter_id = $1',
    [meterId],
  );
  const r = rows[0];
  return { dailyLimitWh: r?.daily_limit_wh ?? null, hourlyLimitWh: r?.hourly_limit_wh ?? null };
}

export async function setLimits(q: Q, meterId: number, l: Limits, userId: number): Promise<Limits> {
  const { rows } = await q.query<{ daily_limit_wh: number | null; hourly_limit_wh: number | null }>(
    `INSERT INTO meter_limits (meter_id, daily_limit_wh, hourly_limit_wh, updated_by, updated_at)
     VALUES ($1, $2, $3, $4, now())
     ON CONFLICT (meter_id) DO UPDATE SET daily_limit_wh = excluded.daily_limit_wh,
       hourly_limit_wh = excluded.hourly_limit_wh, updated_by = excluded.updated_by, updated_at = now()
     RETURNING daily_limit_wh, hourly_limit_wh`,
    [meterId, l.dailyLimitWh, l.hourlyLimitWh, userId],
  );
  const r = rows[0]!;
  return { dailyLimitWh: r.daily_limit_wh, hourlyLimitWh: r.hourly_limit_wh };
}

// ---- profile -------------------------------------------------------------------------

export interface AlertProfile {
  name: string;
  email: string | null;
  mobile: string | null;
  quietHours: { from: string; to: string } | null;
  channels: Preferences;
}

export async function getAlertProfile(q: Q, consumerId: number): Promise<AlertProfile> {
  const c = (
    await q.query<{ name: string; email: string | null; mobile: string | null; qf: string | null; qt: string | null }>(
      'SELECT name, email, mobile, quiet_hours_from AS qf, quiet_hours_to AS qt FROM consumers WHERE id = $1',
      [consumerId],
    )
  ).rows[0];
  if (!c) throw new AppError('NOT_FOUND', 'no consumer profile');
  const channels = defaultPreferences();
  const prefs = await q.query<{ type: AlertType; email: boolean; sms: boolean; web: boolean }>(
    'SELECT type, email, sms, web FROM alert_preferences WHERE consumer_id = $1',
    [consumerId],
  );
  for (const p of prefs.rows) channels[p.type] = { email: p.email, sms: p.sms, web: p.web };
  return {
    name: c.name,
    email: c.email,
    mobile: c.mobile,
    quietHours: c.qf && c.qt ? { from: c.qf, to: c.qt } : null,
    channels,
  };
}

export async function saveAlertProfile(pool: Pool, consumerId: number, userId: number, p: AlertProfile): Promise<void> {
  await tx(pool, async (c) => {
    await c.query(
      `UPDATE consumers SET name = $2, email = $3, mobile = $4, quiet_hours_from = $5, quiet_hours_to = $6 WHERE id = $1`,
      [consumerId, p.name, p.email, p.mobile, p.quietHours?.from ?? null, p.quietHours?.to ?? null],
    );
    await c.query('UPDATE users SET display_name = $2 WHERE id = $1', [userId, p.name]);
    await c.query(
      `INSERT INTO alert_preferences (consumer_id, type, email, sms, web)
       SELECT $1, t, e, s, w FROM unnest($2::text[], $3::bool[], $4::bool[], $5::bool[]) AS x(t, e, s, w)
       ON CONFLICT (consumer_id, type) DO UPDATE SET email = excluded.email, sms = excluded.sms, web = excluded.web`,
      [
        consumerId,
        [...ALERT_TYPES],
        ALERT_TYPES.map((t) => p.channels[t].email),
        ALERT_TYPES.map((t) => p.channels[t].sms),
        ALERT_TYPES.map((t) => p.channels[t].web),
      ],
    );
  });
}

// ---- alerts --------------------------------------------------------------------------

export interface AlertRow {
  id: number;
  type: AlertType;
  severity: 'info' | 'warning' | 'critical';
  title: string;
  message: string;
  serial: string;
  created_at: Date;
  read_at: Date | null;
}

export interface AlertFilter {
  type?: AlertType | undefined;
  from?: string | undefined;
  to?: string | undefined;
  status?: 'read' | 'unread' | undefined;
  limit: number;
  beforeId: number | null;
}

/** One page of the alerts the actor may see, newest first; `unread` counts the whole scope. */
export async function listAlerts(
  q: Q,
  actor: Actor,
  f: AlertFilter,
): Promise<{ items: AlertRow[]; nextBefore: number | null; unread: number }> {
  const scope = alertScopeSql(actor, 'a', 7);
  const { rows } = await q.query<AlertRow>(
    `SELECT a.id, a.type, a.severity, a.title, a.message, m.serial, a.created_at, a.read_at
       FROM alerts a JOIN meters m ON m.id = a.meter_id
      WHERE (${scope.sql})
        AND ($1::text IS NULL OR a.type = $1)
        AND ($2::date IS NULL OR (a.created_at AT TIME ZONE m.tz)::date >= $2)
        AND ($3::date IS NULL OR (a.created_at AT TIME ZONE m.tz)::date <= $3)
        AND ($4::text IS NULL OR ($4 = 'read') = (a.read_at IS NOT NULL))
        AND ($5::bigint IS NULL OR a.id < $5)
      ORDER BY a.id DESC LIMIT $6`,
    [f.type ?? null, f.from ?? null, f.to ?? null, f.status ?? null, f.beforeId, f.limit + 1, ...scope.params],
  );
  const unreadScope = alertScopeSql(actor, 'a', 1);
  const unread = (
    await q.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM alerts a WHERE a.read_at IS NULL AND (${unreadScope.sql})`,
      unreadScope.params,
    )
  ).rows[0]!.n;
  const more = rows.length > f.limit;
  const items = more ? rows.slice(0, f.limit) : rows;
  return { items, nextBefore: more ? items[items.length - 1]!.id : null, unread };
}

/** Mark one of the consumer's alerts read; false if it is not theirs (or does not exist). */
export async function markRead(q: Q, consumerId: number, alertId: number): Promise<boolean> {
  const { rowCount } = await q.query(
    `UPDATE alerts SET read_at = coalesce(read_at, now()) WHERE id = $1 AND consumer_id = $2 AND web`,
    [alertId, consumerId],
  );
  return (rowCount ?? 0) > 0;
}

export async function markAllRead(q: Q, consumerId: number): Promise<number> {
  const { rowCount } = await q.query(
    'UPDATE alerts SET read_at = now() WHERE consumer_id = $1 AND read_at IS NULL AND web',
    [consumerId],
  );
  return rowCount ?? 0;
}

// ---- outbox --------------------------------------------------------------------------

export interface OutboxRow {
  id: number;
  channel: 'email' | 'sms';
  recipient: string;
  subject: string | null;
  body: string;
  created_at: Date;
  alert_id: number | null;
}

export async function listOutbox(
  q: Q,
  actor: Actor,
  f: { channel?: 'email' | 'sms' | undefined; limit: number; beforeId: number | null },
): Promise<{ items: OutboxRow[]; nextBefore: number | null }> {
  const scope = outboxScopeSql(actor, 'o', 4);
  const { rows } = await q.query<OutboxRow>(
    `SELECT o.id, o.channel, o.recipient, o.subject, o.body, o.created_at, o.alert_id FROM outbox o
      WHERE (${scope.sql}) AND ($1::text IS NULL OR o.channel = $1) AND ($2::bigint IS NULL OR o.id < $2)
      ORDER BY o.id DESC LIMIT $3`,
    [f.channel ?? null, f.beforeId, f.limit + 1, ...scope.params],
  );
  const more = rows.length > f.limit;
  const items = more ? rows.slice(0, f.limit) : rows;
  return { items, nextBefore: more ? items[items.length - 1]!.id : null };
}
