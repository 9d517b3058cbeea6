import { addDays, inWindow, localMinuteOfDay } from '@kilowire/protocol';
import type { Q } from '../db/pool.ts';

/**
 * Prices, exactly. Unit rates and standing charges are integers in thousandths of a minor
 * unit (24.5p/kWh = 24500; 53.35p/day = 53350), as in `tariff.set`. Wh × rate is therefore an
 * exact integer in millionths of a minor unit ("micro"), the same unit the meter debits
 * prepayment credit in. Rounding to minor units happens once per bill line, half up.
 */
export const TARIFF_STRUCTURES = ['flat', 'two_rate', 'three_band'] as const;
export type TariffStructure = (typeof TARIFF_STRUCTURES)[number];

/** Band 1 = day (everything not in another band), 2 = night, 3 = peak. */
export type Band = 1 | 2 | 3;

export interface TimeWindow {
  from: string;
  to: string;
}

/** One version of a tariff: its prices from `effectiveFrom` (a local day) on. */
export interface TariffVersion {
  tariffId: number;
  code: string;
  name: string;
  currency: string;
  structure: TariffStructure;
  version: number;
  effectiveFrom: string;
  dayRate: number;
  nightRate: number | null;
  peakRate: number | null;
  nightWindows: TimeWindow[];
  peakWindows: TimeWindow[];
  exportRate: number | null;
  standingMilliPerDay: number;
  vatBp: number;
}

/** The band an instant falls in, by the meter's local time (peak wins over night). */
export function bandAt(v: TariffVersion, epochS: number, tz: string): Band {
  if (v.structure === 'flat') return 1;
  const m = localMinuteOfDay(epochS, tz);
  if (v.structure === 'three_band' && v.peakWindows.some((w) => inWindow(m, w.from, w.to))) return 3;
  if (v.nightWindows.some((w) => inWindow(m, w.from, w.to))) return 2;
  return 1;
}

/** The rate (thousandths of a minor unit per kWh) of a band; a band the tariff lacks is day. */
export function rateOf(v: TariffVersion, band: Band): number {
  if (band === 3) return v.peakRate ?? v.dayRate;
  if (band === 2) return v.nightRate ?? v.dayRate;
  return v.dayRate;
}

/** Cost of `wh` at `rate`, in millionths of a minor unit (exact). */
export function costMicro(wh: number, rate: number): number {
  return wh * rate;
}

/** Micro-units to minor units, rounded half up (half away from zero for negatives). */
export function microToMinor(micro: number): number {
  const sign = micro < 0 ? -1 : 1;
  return sign * Math.floor((Math.abs(micro) + 500_000) / 1_000_000);
}

/** Thousandths to minor units, rounded half up. */
export function milliToMinor(milli: number): number {
  const sign = milli < 0 ? -1 : 1;
  return sign * Math.floor((Math.abs(milli) + 500) / 1000);
}

/** VAT on a net amount in minor units, rounded half up. */
export function vatOf(netMinor: number, vatBp: number): number {
  const sign = netMinor < 0 ? -1 : 1;
  return sign * Math.floor((Math.abs(netMinor) * vatBp + 5_000) / 10_000);
}

const VERSION_COLUMNS = `t.id AS tariff_id, t.code, t.name, t.currency, t.structure, v.version,
  to_char(v.effective_from, 'YYYY-MM-DD') AS effective_from, v.day_rate, v.night_rate, v.peak_rate,
  v.night_windows, v.peak_windows, v.export_rate, v.standing_milli_per_day, v.vat_bp`;

interface VersionRow {
  tariff_id: number;
  code: string;
  name: string;
  currency: string;
  structure: TariffStructure;
  version: number;
  effective_from: string;
  day_rate: number;
  night_rate: number | null;
  peak_rate: number | null;
  night_windows: TimeWindow[];
  peak_windows: TimeWindow[];
  export_rate: number | null;
  standing_milli_per_day: number;
  vat_bp: number;
}

function toVersion(r: VersionRow): TariffVersion {
  return {
    tariffId: r.tariff_id,
    code: r.code,
    name: r.name,
    currency: r.currency.trim(),
    structure: r.structure,
    version: r.version,
    effectiveFrom: r.effective_from,
    dayRate: r.day_rate,
    nightRate: r.night_rate,
    peakRate: r.peak_rate,
    nightWindows: r.night_windows,
    peakWindows: r.peak_windows,
    exportRate: r.export_rate,
    standingMilliPerDay: r.standing_milli_per_day,
    vatBp: r.vat_bp,
  };
}

/** Every version of one tariff, oldest first. */
export async function tariffVersions(q: Q, tariffId: number): Promise<TariffVersion[]> {
  const { rows } = await q.query<VersionRow>(
    `SELECT ${VERSION_COLUMNS} FROM tariffs t JOIN tariff_versions v ON v.tariff_id = t.id
      WHERE t.id = $1 ORDER BY v.version`,
    [tariffId],
  );
  return rows.map(toVersion);
}

/** A span of local days [fromDay, toDay) over which one tariff version prices a meter. */
export interface PricedSpan {
  fromDay: string;
  toDay: string;
  version: TariffVersion;
}

/**
 * The tariff versions that priced a meter over the local days [fromDay, toDay), as
 * consecutive spans (tariff assignments and price versions both start at local midnight).
 * Days before the meter's first tariff are not covered (the list may start later than fromDay).
 */
export async function meterPriceSpans(
  q: Q,
  meterId: number,
  fromDay: string,
  toDay: string,
): Promise<PricedSpan[]> {
  const { rows } = await q.query<VersionRow & { span_from: string; span_to: string }>(
    `WITH assign AS (
       SELECT tariff_id, from_day,
              lead(from_day) OVER (ORDER BY from_day) AS to_day
         FROM meter_tariffs WHERE meter_id = $1),
     vers AS (
       SELECT a.tariff_id, greatest(a.from_day, v.effective_from) AS span_from,
              least(coalesce(a.to_day, 'infinity'::date),
                    coalesce(lead(v.effective_from) OVER (PARTITION BY a.from_day ORDER BY v.effective_from), 'infinity'::date)) AS span_to,
              v.version
         FROM assign a JOIN tariff_versions v ON v.tariff_id = a.tariff_id
        WHERE v.effective_from < coalesce(a.to_day, 'infinity'::date))
     SELECT ${VERSION_COLUMNS},
            to_char(greatest(x.span_from, $2::date), 'YYYY-MM-DD') AS span_from,
            to_char(least(x.span_to, $3::date), 'YYYY-MM-DD') AS span_to
       FROM vers x JOIN tariffs t ON t.id = x.tariff_id
       JOIN tariff_versions v ON v.tariff_id = x.tariff_id AND v.version = x.version
      WHERE x.span_to > $2::date AND x.span_from < $3::date AND x.span_from < x.span_to
      ORDER BY x.span_from`,
    [meterId, fromDay, toDay],
  );
  return rows.map((r) => ({ fromDay: r.span_from, toDay: r.span_to, version: toVersion(r) }));
}

/** The version pricing a meter on one local day, or null when it has no tariff then. */
export async function meterPriceOn(q: Q, meterId: number, day: string): Promise<TariffVersion | null> {
  const spans = await meterPriceSpans(q, meterId, day, addDays(day, 1));
  return spans[0]?.version ?? null;
}

/**
 * meterPriceSpans for many meters at once (one statement; bill runs price thousands of
 * meters per batch). Same rules and result per meter; meters without a tariff get [].
 */
export async function meterPriceSpansMany(
  q: Q,
  meterIds: readonly number[],
  fromDay: string,
  toDay: string,
): Promise<Map<number, PricedSpan[]>> {
  const { rows } = await q.query<VersionRow & { meter_id: number; span_from: string; span_to: string }>(
    `WITH assign AS (
       SELECT meter_id, tariff_id, from_day,
              lead(from_day) OVER (PARTITION BY meter_id ORDER BY from_day) AS to_day
         FROM meter_tariffs WHERE meter_id = ANY($1::int[])),
     vers AS (
       SELECT a.meter_id, a.tariff_id, greatest(a.from_day, v.effective_from) AS span_from,
              least(coalesce(a.to_day, 'infinity'::date),
                    coalesce(lead(v.effective_from) OVER (PARTITION BY a.meter_id, a.from_day ORDER BY v.effective_from), 'infinity'::date)) AS span_to,
              v.version
         FROM assign a JOIN tariff_versions v ON v.tariff_id = a.tariff_id
        WHERE v.effective_from < coalesce(a.to_day, 'infinity'::date))
     SELECT x.meter_id, ${VERSION_COLUMNS},
            to_char(greatest(x.span_from, $2::date), 'YYYY-MM-DD') AS span_from,
            to_char(least(x.span_to, $3::date), 'YYYY-MM-DD') AS span_to
       FROM vers x JOIN tariffs t ON t.id = x.tariff_id
       JOIN tariff_versions v ON v.tariff_id = x.tariff_id AND v.version = x.version
      WHERE x.span_to > $2::date AND x.span_from < $3::date AND x.span_from < x.span_to
      ORDER BY x.meter_id, x.span_from`,
    [meterIds, fromDay, toDay],
  );
  const out = new Map<number, PricedSpan[]>(meterIds.map((id) => [id, []]));
  for (const r of rows)
    out.get(r.meter_id)?.push({ fromDay: r.span_from, toDay: r.span_to, version: toVersion(r) });
  return out;
}
