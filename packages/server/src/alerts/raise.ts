import { addDays, inWindow, localDate, localMinuteOfDay, localTimeToEpoch } from '@kilowire/protocol';
import type { Pool, PoolClient } from '../db/pool.ts';
import { tx } from '../db/pool.ts';
import { DELIVERIES_CHANNEL } from '../notify/channels.ts';
import { HOUSEHOLD_ALERT_TYPES, type OperatorAlertType } from '@kilowire/contract/enums';
import { defaultPreferences, isCritical, SEVERITY, type AlertType } from './types.ts';

export interface NewAlert {
  meterId: number;
  type: AlertType;
  /** With (meter, type): one alert per crossing. The local day, the hour, the event's seq:idx... */
  dedupeKey: string;
  title: string;
  /** The reason and the figures, in words. */
  message: string;
  figures: Record<string, unknown>;
}

export interface RaiseOptions {
  /** Clock (epoch s) for quiet hours; tests pin it. */
  now?: () => number;
}

interface MeterContext {
  serial: string;
  supplier_id: number | null;
  consumer_id: number | null;
  email: string | null;
  mobile: string | null;
  quiet_hours_from: string | null;
  quiet_hours_to: string | null;
  consumer_tz: string | null;
  p_email: boolean | null;
  p_sms: boolean | null;
  p_web: boolean | null;
}

/**
 * The end of the quiet hours window (epoch s) if `nowS` falls inside it, else null. The
 * window is local wall-clock time in `tz` and may wrap midnight (22:00-07:00).
 */
export function quietHoursEnd(nowS: number, tz: string, from: string, to: string): number | null {
  if (from === to) return null;
  const minute = localMinuteOfDay(nowS, tz);
  if (!inWindow(minute, from, to)) return null;
  const toMin = Number(to.slice(0, 2)) * 60 + Number(to.slice(3, 5));
  const today = localDate(nowS, tz);
  const day = toMin > minute ? today : addDays(today, 1);
  return localTimeToEpoch(day, to, tz);
}

async function createOne(c: PoolClient, a: NewAlert, nowS: number): Promise<number | null> {
  const ctx = (
    await c.query<MeterContext>(
      `SELECT m.serial, m.supplier_id, cu.id AS consumer_id, cu.email, cu.mobile, cu.quiet_hours_from, cu.quiet_hours_to,
              (SELECT m2.tz FROM meters m2 JOIN accounts a2 ON a2.id = m2.account_id
                WHERE a2.consumer_id = cu.id ORDER BY m2.id LIMIT 1) AS consumer_tz,
              p.email AS p_email, p.sms AS p_sms, p.web AS p_web
         FROM meters m
         LEFT JOIN accounts ac ON ac.id = m.account_id
         LEFT JOIN consumers cu ON cu.id = ac.consumer_id
         LEFT JOIN alert_preferences p ON p.consumer_id = cu.id AND p.type = $2
        WHERE m.id = $1`,
      [a.meterId, a.type],
    )
  ).rows[0];
  if (!ctx) return null;
  // Staff-only types (credit drift) never reach the household, whoever's meter it is.
  if (!(HOUSEHOLD_ALERT_TYPES as readonly AlertType[]).includes(a.type)) ctx.consumer_id = null;
  const prefs = defaultPreferences()[a.type];
  const want = {
    email: ctx.p_email ?? prefs.email,
    sms: ctx.p_sms ?? prefs.sms,
    web: ctx.p_web ?? prefs.web,
  };
  const ins = await c.query<{ id: number }>(
    `INSERT INTO alerts (consumer_id, supplier_id, meter_id, type, severity, title, message, figures, dedupe_key, web)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
     ON CONFLICT (meter_id, type, dedupe_key) DO NOTHING RETURNING id`,
    [
      ctx.consumer_id,
      ctx.supplier_id,
      a.meterId,
      a.type,
      SEVERITY[a.type],
      a.title,
      a.message,
      JSON.stringify(a.figures),
      a.dedupeKey,
      ctx.consumer_id === null ? false : want.web,
    ],
  );
  const alertId = ins.rows[0]?.id;
  if (alertId === undefined) return null;

  const rows: {
    channel: 'email' | 'sms';
    recipient: string;
    audience: 'consumer' | 'staff';
    after: number | null;
  }[] = [];
  if (ctx.consumer_id !== null) {
    let after: number | null = null;
    if (!isCritical(a.type) && ctx.quiet_hours_from && ctx.quiet_hours_to && ctx.consumer_tz) {
      after = quietHoursEnd(nowS, ctx.consumer_tz, ctx.quiet_hours_from, ctx.quiet_hours_to);
    }
    if (want.email && ctx.email)
      rows.push({ channel: 'email', recipient: ctx.email, audience: 'consumer', after });
    if (want.sms && ctx.mobile)
      rows.push({ channel: 'sms', recipient: ctx.mobile, audience: 'consumer', after });
  }
  if (isCritical(a.type) && ctx.supplier_id !== null) {
    const staff = await c.query<{ email: string }>(
      `SELECT email FROM users WHERE role = 'supplier' AND org_id = $1 AND NOT disabled AND email IS NOT NULL ORDER BY id`,
      [ctx.supplier_id],
    );
    for (const s of staff.rows)
      rows.push({ channel: 'email', recipient: s.email, audience: 'staff', after: null });
  }
  if (rows.length) {
    await c.query(
      `INSERT INTO deliveries (alert_id, channel, recipient, audience, deliver_after)
       SELECT $1, ch, rcpt, aud, CASE WHEN af IS NULL THEN NULL ELSE to_timestamp(af) END
         FROM unnest($2::text[], $3::text[], $4::text[], $5::float8[]) AS t(ch, rcpt, aud, af)
       ON CONFLICT (alert_id, channel, recipient) DO NOTHING`,
      [
        alertId,
        rows.map((r) => r.channel),
        rows.map((r) => r.recipient),
        rows.map((r) => r.audience),
        rows.map((r) => r.after),
      ],
    );
    await c.query(`SELECT pg_notify('${DELIVERIES_CHANNEL}', '')`);
  }
  return alertId;
}

/**
 * Record alerts, each at most once (UNIQUE (meter, type, dedupe_key)), with one delivery row
 * per chosen channel and recipient, in one transaction per alert. Returns the ids of the
 * alerts that are new. The jobs service moves the delivery rows into the queue.
 */
export async function raiseAlerts(
  pool: Pool,
  alerts: NewAlert[],
  opts: RaiseOptions = {},
): Promise<number[]> {
  const nowS = opts.now ? opts.now() : Math.floor(Date.now() / 1000);
  const created: number[] = [];
  for (const a of alerts) {
    const id = await tx(pool, (c) => createOne(c, a, nowS));
    if (id !== null) created.push(id);
  }
  return created;
}

/**
 * `raiseAlerts` in the caller's transaction (#9 outages): the alerts and their deliveries
 * commit with the change that caused them (an incident a meter joined), or not at all, so a
 * crash between the two can neither lose nor repeat the household's alert.
 */
export async function raiseAlertsIn(
  c: PoolClient,
  alerts: NewAlert[],
  opts: RaiseOptions = {},
): Promise<number[]> {
  const nowS = opts.now ? opts.now() : Math.floor(Date.now() / 1000);
  const created: number[] = [];
  for (const a of alerts) {
    const id = await createOne(c, a, nowS);
    if (id !== null) created.push(id);
  }
  return created;
}

/** An alert for a network operator (#9): not about one household, maybe not one meter. */
export interface NewOperatorAlert {
  operatorId: number;
  type: OperatorAlertType;
  /** With (operator, type): one alert per crossing, e.g. `incident:42`, `collection:EAST-1:2026-11-28:v1`. */
  dedupeKey: string;
  title: string;
  message: string;
  figures: Record<string, unknown>;
  /** The meter it is about, if one (a single household's outage). */
  meterId?: number | null;
}

/**
 * Record an operator's alerts, each at most once (UNIQUE (operator, type, dedupe_key)), in the
 * caller's transaction: email to every enabled staff user of the operator and to its on-call
 * emails, SMS to its on-call mobiles (network_settings). The portal's alert list shows them to
 * the operator's staff. Returns the ids of the alerts that are new.
 */
export async function raiseOperatorAlerts(c: PoolClient, alerts: NewOperatorAlert[]): Promise<number[]> {
  const created: number[] = [];
  for (const a of alerts) {
    const ins = await c.query<{ id: number }>(
      `INSERT INTO alerts (operator_id, meter_id, type, severity, title, message, figures, dedupe_key, web)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, true)
       ON CONFLICT (operator_id, type, dedupe_key) WHERE operator_id IS NOT NULL DO NOTHING RETURNING id`,
      [
        a.operatorId,
        a.meterId ?? null,
        a.type,
        SEVERITY[a.type],
        a.title,
        a.message,
        JSON.stringify(a.figures),
        a.dedupeKey,
      ],
    );
    const alertId = ins.rows[0]?.id;
    if (alertId === undefined) continue;
    created.push(alertId);
    await c.query(
      `INSERT INTO deliveries (alert_id, channel, recipient, audience)
       SELECT $1::bigint, 'email', u.email, 'staff' FROM users u
        WHERE u.role = 'operator' AND u.org_id = $2::int AND NOT u.disabled AND u.email IS NOT NULL
       UNION
       SELECT $1::bigint, 'email', e, 'staff' FROM network_settings s, unnest(s.oncall_emails) AS e WHERE s.operator_id = $2
       UNION
       SELECT $1::bigint, 'sms', mob, 'staff' FROM network_settings s, unnest(s.oncall_mobiles) AS mob WHERE s.operator_id = $2
       ON CONFLICT (alert_id, channel, recipient) DO NOTHING`,
      [alertId, a.operatorId],
    );
  }
  if (created.length) await c.query(`SELECT pg_notify('${DELIVERIES_CHANNEL}', '')`);
  return created;
}
