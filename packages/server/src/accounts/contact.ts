import type { PoolClient, Q } from '../db/pool.ts';
import { AppError } from '../errors.ts';
import { HOUSEHOLD_ALERT_TYPES, type HouseholdAlertType } from '@kilowire/contract/enums';
import { defaultPreferences, type AlertType, type ChannelPrefs } from '../alerts/types.ts';

/**
 * A household's contact details, quiet hours and alert channel choices: what the profile
 * page shows and saves. Contact details live on the consumer, channels per alert type.
 */
export interface AlertProfile {
  name: string;
  email: string | null;
  mobile: string | null;
  quietHours: { from: string; to: string } | null;
  channels: Record<HouseholdAlertType, ChannelPrefs>;
}

export async function getAlertProfile(q: Q, consumerId: number): Promise<AlertProfile> {
  const c = (
    await q.query<{
      name: string;
      email: string | null;
      mobile: string | null;
      qf: string | null;
      qt: string | null;
    }>(
      'SELECT name, email, mobile, quiet_hours_from AS qf, quiet_hours_to AS qt FROM consumers WHERE id = $1',
      [consumerId],
    )
  ).rows[0];
  if (!c) throw new AppError('NOT_FOUND', 'no consumer profile');
  const defaults = defaultPreferences();
  const channels = Object.fromEntries(HOUSEHOLD_ALERT_TYPES.map((t) => [t, defaults[t]])) as Record<
    HouseholdAlertType,
    ChannelPrefs
  >;
  const prefs = await q.query<{ type: AlertType; email: boolean; sms: boolean; web: boolean }>(
    'SELECT type, email, sms, web FROM alert_preferences WHERE consumer_id = $1',
    [consumerId],
  );
  for (const p of prefs.rows)
    if ((HOUSEHOLD_ALERT_TYPES as readonly AlertType[]).includes(p.type))
      channels[p.type as HouseholdAlertType] = { email: p.email, sms: p.sms, web: p.web };
  return {
    name: c.name,
    email: c.email,
    mobile: c.mobile,
    quietHours: c.qf && c.qt ? { from: c.qf, to: c.qt } : null,
    channels,
  };
}

/** Replace the profile in the caller's transaction. */
export async function saveAlertProfile(
  c: PoolClient,
  consumerId: number,
  userId: number,
  p: AlertProfile,
): Promise<void> {
  {
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
        [...HOUSEHOLD_ALERT_TYPES],
        HOUSEHOLD_ALERT_TYPES.map((t) => p.channels[t].email),
        HOUSEHOLD_ALERT_TYPES.map((t) => p.channels[t].sms),
        HOUSEHOLD_ALERT_TYPES.map((t) => p.channels[t].web),
      ],
    );
  }
}
