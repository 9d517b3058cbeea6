import type { CommandStatus } from '@kilowire/contract/enums';
import type { PoolClient, Q } from '../db/pool.ts';
import { emitEvent } from '../events/emit.ts';

/** A household's consumption limits per meter (Wh; null = no limit), judged by the alert rules. */
export interface Limits {
  dailyLimitWh: number | null;
  hourlyLimitWh: number | null;
  /** Prepayment: the household's own low-credit warning level (minor units); null = none set. */
  lowCreditMinor?: number | null;
}

export interface LimitsView {
  dailyLimitWh: number | null;
  hourlyLimitWh: number | null;
  lowCreditMinor: number | null;
  /** The latest thresholds.set that carried the low-credit level, and its state. */
  lowCreditCommand: { id: string; status: CommandStatus } | null;
}

export async function getLimits(q: Q, meterId: number): Promise<LimitsView> {
  const { rows } = await q.query<{
    daily_limit_wh: number | null;
    hourly_limit_wh: number | null;
    low_credit_minor: number | null;
  }>('SELECT daily_limit_wh, hourly_limit_wh, low_credit_minor FROM meter_limits WHERE meter_id = $1', [
    meterId,
  ]);
  const cmd = await q.query<{ id: string; status: CommandStatus }>(
    `SELECT id, status FROM commands WHERE meter_id = $1 AND type = 'thresholds.set' AND cmd ? 'lowCreditMinor'
      ORDER BY created_at DESC, counter DESC NULLS LAST LIMIT 1`,
    [meterId],
  );
  const r = rows[0];
  return {
    dailyLimitWh: r?.daily_limit_wh ?? null,
    hourlyLimitWh: r?.hourly_limit_wh ?? null,
    lowCreditMinor: r?.low_credit_minor ?? null,
    lowCreditCommand: cmd.rows[0] ?? null,
  };
}

/**
 * Save the limits in the caller's transaction, with a `limits.changed` event: the alert rules
 * judge today against the new limits even if the process that saved them dies at once.
 */
export async function setLimits(
  c: PoolClient,
  meterId: number,
  l: Limits,
  userId: number,
): Promise<Limits & { lowCreditChanged: boolean }> {
  const before = await c.query<{ low_credit_minor: number | null }>(
    'SELECT low_credit_minor FROM meter_limits WHERE meter_id = $1 FOR UPDATE',
    [meterId],
  );
  const oldLow = before.rows[0]?.low_credit_minor ?? null;
  // Omitted = unchanged (clients that know only the kWh limits keep the household's level).
  const low = l.lowCreditMinor === undefined ? oldLow : l.lowCreditMinor;
  const { rows } = await c.query<{
    daily_limit_wh: number | null;
    hourly_limit_wh: number | null;
    low_credit_minor: number | null;
  }>(
    `INSERT INTO meter_limits (meter_id, daily_limit_wh, hourly_limit_wh, low_credit_minor, updated_by, updated_at)
     VALUES ($1, $2, $3, $4, $5, now())
     ON CONFLICT (meter_id) DO UPDATE SET daily_limit_wh = excluded.daily_limit_wh,
       hourly_limit_wh = excluded.hourly_limit_wh, low_credit_minor = excluded.low_credit_minor,
       updated_by = excluded.updated_by, updated_at = now()
     RETURNING daily_limit_wh, hourly_limit_wh, low_credit_minor`,
    [meterId, l.dailyLimitWh, l.hourlyLimitWh, low, userId],
  );
  const r = rows[0]!;
  await emitEvent(c, { type: 'limits.changed', meterId, payload: {} });
  return {
    dailyLimitWh: r.daily_limit_wh,
    hourlyLimitWh: r.hourly_limit_wh,
    lowCreditMinor: r.low_credit_minor,
    lowCreditChanged: r.low_credit_minor !== oldLow,
  };
}
