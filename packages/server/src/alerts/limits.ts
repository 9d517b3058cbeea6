import type { PoolClient, Q } from '../db/pool.ts';
import { emitEvent } from '../events/emit.ts';

/** A household's consumption limits per meter (Wh; null = no limit), judged by the alert rules. */
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

/**
 * Save the limits in the caller's transaction, with a `limits.changed` event: the alert rules
 * judge today against the new limits even if the process that saved them dies at once.
 */
export async function setLimits(c: PoolClient, meterId: number, l: Limits, userId: number): Promise<Limits> {
  const { rows } = await c.query<{ daily_limit_wh: number | null; hourly_limit_wh: number | null }>(
    `INSERT INTO meter_limits (meter_id, daily_limit_wh, hourly_limit_wh, updated_by, updated_at)
     VALUES ($1, $2, $3, $4, now())
     ON CONFLICT (meter_id) DO UPDATE SET daily_limit_wh = excluded.daily_limit_wh,
       hourly_limit_wh = excluded.hourly_limit_wh, updated_by = excluded.updated_by, updated_at = now()
     RETURNING daily_limit_wh, hourly_limit_wh`,
    [meterId, l.dailyLimitWh, l.hourlyLimitWh, userId],
  );
  const r = rows[0]!;
  await emitEvent(c, { type: 'limits.changed', meterId, payload: {} });
  return { dailyLimitWh: r.daily_limit_wh, hourlyLimitWh: r.hourly_limit_wh };
}
