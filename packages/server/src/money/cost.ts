import { addDays, localMidnight } from '@kilowire/protocol';
import type { Q } from '../db/pool.ts';
import {
  bandAt,
  costMicro,
  meterPriceSpans,
  microToMinor,
  rateOf,
  vatOf,
  type Band,
  type TariffVersion,
} from './prices.ts';

/**
 * What energy cost, exactly. Each interval is priced at the rate of its band (by the meter's
 * local time at the interval's start, as the meter itself debits) under the tariff version in
 * force on its local day; each local day with a tariff carries one standing charge, however
 * many hours it has (23 and 25-hour days are one day each). Sums stay exact in millionths of a
 * minor unit ("micro"); money is rounded once, per figure shown, then VAT is added on the
 * rounded net (as on a bill).
 */
export interface Reading {
  /** Interval start, epoch s. */
  t: number;
  wh: number;
}

export interface DayCost {
  day: string;
  wh: number;
  /** Readings priced (intervals received). */
  intervals: number;
  /** Null when the meter had no tariff that day (nothing priced). */
  version: TariffVersion | null;
  energyMicro: number;
  standingMicro: number;
  /** Wh per band (1 day, 2 night, 3 peak). */
  bandWh: Record<Band, number>;
}

export interface Money {
  netMinor: number;
  vatMinor: number;
  totalMinor: number;
}

/** Net (energy + standing, exact) rounded once, plus VAT on it. */
export function moneyOf(micro: number, vatBp: number): Money {
  const netMinor = microToMinor(micro);
  const vatMinor = vatOf(netMinor, vatBp);
  return { netMinor, vatMinor, totalMinor: netMinor + vatMinor };
}

/** Several days' cost as money: grouped by VAT rate (a rate change is its own line), each rounded once. */
export function moneyOfDays(
  days: readonly DayCost[],
): Money & { energyMinor: number; standingMinor: number } {
  const byVat = new Map<number, number>();
  let energy = 0;
  let standing = 0;
  for (const d of days) {
    if (!d.version) continue;
    energy += d.energyMicro;
    standing += d.standingMicro;
    byVat.set(d.version.vatBp, (byVat.get(d.version.vatBp) ?? 0) + d.energyMicro + d.standingMicro);
  }
  const out = { netMinor: 0, vatMinor: 0, totalMinor: 0 };
  for (const [bp, micro] of byVat) {
    const m = moneyOf(micro, bp);
    out.netMinor += m.netMinor;
    out.vatMinor += m.vatMinor;
    out.totalMinor += m.totalMinor;
  }
  return { ...out, energyMinor: microToMinor(energy), standingMinor: microToMinor(standing) };
}

/** Interval readings of a meter over the local days [fromDay, toDay), oldest first. */
export async function readingsOver(
  q: Q,
  meterId: number,
  tz: string,
  fromDay: string,
  toDay: string,
): Promise<Reading[]> {
  const { rows } = await q.query<{ t: number; wh: number }>(
    `SELECT extract(epoch FROM ts)::bigint AS t, wh FROM interval_readings
      WHERE meter_id = $1 AND ts >= to_timestamp($2) AND ts < to_timestamp($3) ORDER BY ts`,
    [meterId, localMidnight(fromDay, tz), localMidnight(toDay, tz)],
  );
  return rows.map((r) => ({ t: Number(r.t), wh: r.wh }));
}

/**
 * Price readings over the local days [fromDay, toDay) with `versionOf(day)` (the version in
 * force, or a fixed one for "what would it have cost"). Days without readings are included
 * (standing charge only) when `standingOnEmptyDays`, else left out: a comparison covers the
 * days the household has data for, no more.
 */
export function priceDays(
  readings: readonly Reading[],
  tz: string,
  fromDay: string,
  toDay: string,
  versionOf: (day: string) => TariffVersion | null,
  o: { standingOnEmptyDays?: boolean } = {},
): DayCost[] {
  const out: DayCost[] = [];
  let i = 0;
  for (let day = fromDay; day < toDay; day = addDays(day, 1)) {
    const end = localMidnight(addDays(day, 1), tz);
    const v = versionOf(day);
    const d: DayCost = {
      day,
      wh: 0,
      intervals: 0,
      version: v,
      energyMicro: 0,
      standingMicro: 0,
      bandWh: { 1: 0, 2: 0, 3: 0 },
    };
    while (i < readings.length && readings[i]!.t < end) {
      const r = readings[i++]!;
      d.wh += r.wh;
      d.intervals++;
      if (v) {
        const band = bandAt(v, r.t, tz);
        d.bandWh[band] += r.wh;
        d.energyMicro += costMicro(r.wh, rateOf(v, band));
      }
    }
    if (v && (d.intervals > 0 || o.standingOnEmptyDays)) d.standingMicro = v.standingMilliPerDay * 1000;
    if (d.intervals > 0 || o.standingOnEmptyDays) out.push(d);
  }
  return out;
}

/** Versions by span as a day lookup. */
function spanLookup(spans: { fromDay: string; toDay: string; version: TariffVersion }[]) {
  return (day: string): TariffVersion | null =>
    spans.find((s) => s.fromDay <= day && day < s.toDay)?.version ?? null;
}

/**
 * What each local day in [fromDay, toDay) cost the meter at the prices then in force. Days
 * that have begun carry their standing charge even before readings arrive (the meter
 * debits it at local midnight).
 *
 * Only time-of-use prices need the half-hours: with no tariff nothing is read, and days
 * priced by a flat version are priced from the daily rollups (a day's Wh × the one rate is
 * the same exact figure as the sum over its intervals), so a month on a flat tariff reads
 * 30 rows, not 1,440 — this runs on every home page and statistics request.
 */
export async function meterDailyCost(
  q: Q,
  m: { id: number; tz: string },
  fromDay: string,
  toDay: string,
): Promise<DayCost[]> {
  const spans = await meterPriceSpans(q, m.id, fromDay, toDay);
  const versionOf = spanLookup(spans);
  if (spans.length === 0)
    return priceDays([], m.tz, fromDay, toDay, versionOf, { standingOnEmptyDays: true });
  if (spans.every((s) => s.version.structure === 'flat')) {
    const { rows } = await q.query<{ day: string; wh: string; intervals: number }>(
      `SELECT to_char(day, 'YYYY-MM-DD') AS day, wh, intervals FROM daily_rollups
        WHERE meter_id = $1 AND day >= $2::date AND day < $3::date`,
      [m.id, fromDay, toDay],
    );
    const byDay = new Map(rows.map((r) => [r.day, r]));
    return priceDays([], m.tz, fromDay, toDay, versionOf, { standingOnEmptyDays: true }).map((d) => {
      const r = byDay.get(d.day);
      if (!r || !d.version) return d;
      const wh = Number(r.wh);
      return {
        ...d,
        wh,
        intervals: r.intervals,
        energyMicro: costMicro(wh, d.version.dayRate),
        bandWh: { 1: wh, 2: 0, 3: 0 },
      };
    });
  }
  const readings = await readingsOver(q, m.id, m.tz, fromDay, toDay);
  return priceDays(readings, m.tz, fromDay, toDay, versionOf, { standingOnEmptyDays: true });
}

/** Each interval's cost of one local day (micro; null = no reading or no tariff). */
export async function intervalCosts(
  q: Q,
  m: { id: number; tz: string },
  day: string,
  slots: readonly { t: number; wh: number | null }[],
): Promise<{ version: TariffVersion | null; micro: (number | null)[] }> {
  const spans = await meterPriceSpans(q, m.id, day, addDays(day, 1));
  const v = spans[0]?.version ?? null;
  return {
    version: v,
    micro: slots.map((s) => (v && s.wh !== null ? costMicro(s.wh, rateOf(v, bandAt(v, s.t, m.tz))) : null)),
  };
}

export interface ComparisonFigure {
  windowDays: number;
  daysUsed: number;
  wh: number;
  totalMinor: number;
}

/**
 * What the meter's own last `windows` days (complete local days before `today`) would have
 * cost on each candidate version (its current prices), counting only days with readings.
 * One read of the readings for all candidates.
 */
export async function compareVersions(
  q: Q,
  m: { id: number; tz: string },
  today: string,
  candidates: readonly TariffVersion[],
  windows: readonly number[] = [30, 365],
): Promise<Map<TariffVersion, ComparisonFigure[]>> {
  const longest = Math.max(...windows);
  const readings = await readingsOver(q, m.id, m.tz, addDays(today, -longest), today);
  const out = new Map<TariffVersion, ComparisonFigure[]>();
  for (const v of candidates) {
    const days = priceDays(readings, m.tz, addDays(today, -longest), today, () => v);
    out.set(
      v,
      windows.map((w) => {
        const first = addDays(today, -w);
        const inWin = days.filter((d) => d.day >= first);
        return {
          windowDays: w,
          daysUsed: inWin.length,
          wh: inWin.reduce((s, d) => s + d.wh, 0),
          totalMinor: moneyOfDays(inWin).totalMinor,
        };
      }),
    );
  }
  return out;
}
