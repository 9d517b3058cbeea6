import { localDate, localParts } from '@kilowire/protocol';
import type { SupplySettings, SupplySettingsBody } from '@kilowire/contract';
import type { Q } from '../db/pool.ts';

/**
 * A supplier's protection settings: its protected ("friendly") hours — nights, weekends,
 * listed holidays, in the supplier's own time zone —, the number of meters above which one
 * action needs a second admin, a user's hourly disconnection quota, and how long an approval
 * request stays open. A supplier that never saved any has the defaults.
 */
export const DEFAULT_SETTINGS: SupplySettingsBody = {
  tz: 'Europe/London',
  // Ofgem's licence conditions keep non-payment disconnections out of evenings, nights and
  // weekends; 20:00-08:00 is the usual reading.
  nights: { enabled: true, from: '20:00', to: '08:00' },
  weekends: true,
  holidays: [],
  bulkThreshold: 10,
  hourlyDisconnectQuota: 50,
  approvalTtlHours: 24,
};

interface Row {
  tz: string;
  nights_enabled: boolean;
  night_from: string;
  night_to: string;
  weekends: boolean;
  holidays: string[];
  bulk_threshold: number;
  hourly_disconnect_quota: number;
  approval_ttl_hours: number;
  updated_at: Date;
}

export async function getSettings(q: Q, supplierId: number): Promise<SupplySettings> {
  const { rows } = await q.query<Row>(
    `SELECT tz, nights_enabled, night_from, night_to, weekends, holidays::text[] AS holidays, bulk_threshold,
            hourly_disconnect_quota, approval_ttl_hours, updated_at
       FROM supplier_settings WHERE supplier_id = $1`,
    [supplierId],
  );
  const r = rows[0];
  if (!r) return { ...DEFAULT_SETTINGS, updatedAt: null };
  return {
    tz: r.tz,
    nights: { enabled: r.nights_enabled, from: r.night_from, to: r.night_to },
    weekends: r.weekends,
    holidays: [...r.holidays].sort(),
    bulkThreshold: r.bulk_threshold,
    hourlyDisconnectQuota: r.hourly_disconnect_quota,
    approvalTtlHours: r.approval_ttl_hours,
    updatedAt: r.updated_at.toISOString(),
  };
}

/** Replace the supplier's settings (in the caller's transaction, which audits it). */
export async function putSettings(
  q: Q,
  supplierId: number,
  s: SupplySettingsBody,
  userId: number,
): Promise<SupplySettings> {
  await q.query(
    `INSERT INTO supplier_settings (supplier_id, tz, nights_enabled, night_from, night_to, weekends, holidays,
                                    bulk_threshold, hourly_disconnect_quota, approval_ttl_hours, updated_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7::date[], $8, $9, $10, $11)
     ON CONFLICT (supplier_id) DO UPDATE SET
       tz = EXCLUDED.tz, nights_enabled = EXCLUDED.nights_enabled, night_from = EXCLUDED.night_from,
       night_to = EXCLUDED.night_to, weekends = EXCLUDED.weekends, holidays = EXCLUDED.holidays,
       bulk_threshold = EXCLUDED.bulk_threshold, hourly_disconnect_quota = EXCLUDED.hourly_disconnect_quota,
       approval_ttl_hours = EXCLUDED.approval_ttl_hours, updated_by = EXCLUDED.updated_by, updated_at = now()`,
    [
      supplierId,
      s.tz,
      s.nights.enabled,
      s.nights.from,
      s.nights.to,
      s.weekends,
      s.holidays,
      s.bulkThreshold,
      s.hourlyDisconnectQuota,
      s.approvalTtlHours,
      userId,
    ],
  );
  return getSettings(q, supplierId);
}

const minutes = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

/**
 * Is `nowS` inside the supplier's protected hours? Returns what protects it ('night',
 * 'weekend', 'holiday') or null. Nights are [from, to) local time and span midnight when
 * from > to; a weekend or holiday is protected for the whole local day.
 */
export function protectedBy(s: SupplySettingsBody, nowS: number): 'night' | 'weekend' | 'holiday' | null {
  const p = localParts(nowS, s.tz);
  if (s.holidays.includes(localDate(nowS, s.tz))) return 'holiday';
  if (s.weekends && (p.weekday === 0 || p.weekday === 6)) return 'weekend';
  if (s.nights.enabled) {
    const m = p.hour * 60 + p.minute;
    const from = minutes(s.nights.from);
    const to = minutes(s.nights.to);
    const inside = from < to ? m >= from && m < to : m >= from || m < to;
    if (inside) return 'night';
  }
  return null;
}
