import type { Q } from '../db/pool.ts';
import type { MeterInfo } from '../readings/vee.ts';

/**
 * What the gateway needs to know about a meter that sends data: identity, time zone, interval
 * length, the VEE limits and the newest register snapshot. Null when no such meter exists.
 */
export async function meterForIngest(q: Q, serial: string): Promise<MeterInfo | null> {
  const { rows } = await q.query<{
    id: number;
    tz: string;
    interval_s: number;
    max_power_w: number;
    last_reg_at: Date | null;
    last_reg_import: number | null;
  }>({
    name: 'meter-for-ingest',
    text: `SELECT m.id, m.tz, m.interval_s, m.max_power_w, s.last_reg_at, s.last_reg_import
             FROM meters m LEFT JOIN meter_ingest_state s ON s.meter_id = m.id WHERE m.serial = $1`,
    values: [serial],
  });
  const r = rows[0];
  if (!r) return null;
  return {
    id: r.id,
    serial,
    tz: r.tz,
    intervalS: r.interval_s,
    maxPowerW: r.max_power_w,
    lastRegAt: r.last_reg_at ? r.last_reg_at.getTime() / 1000 : null,
    lastRegImport: r.last_reg_import,
  };
}
