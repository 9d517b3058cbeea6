import { inWindow } from '@kilowire/protocol';
import type { PoolClient, Q } from '../db/pool.ts';
import { AppError } from '../errors.ts';

/**
 * Network tariffs (migration 016): what a network operator charges a supplier for using its
 * wires. Per-kWh rates by time band — bands are named windows of local clock time over the
 * 48 half-hours of the daily collection, optionally on weekdays only — and a fixed charge per
 * meter per local day. Prices are exact integers in thousandths of a minor unit, as in the
 * household tariffs (004). A price change is a new version from a local day on; an area is
 * assigned a tariff from a local day on. Neither may reach back into a month already
 * invoiced (that month's figures are fixed; a correction is a note).
 */
export interface TimeWindow {
  from: string;
  to: string;
}

export interface NetworkBand {
  /** Stable short code ('red'), unique within a version. */
  code: string;
  name: string;
  /** Thousandths of a minor unit per kWh. */
  rateMilli: number;
  /** Local clock windows; [] for the band that takes every other half-hour (exactly one). */
  windows: TimeWindow[];
  /** The windows apply Monday to Friday only (at weekends the half-hour falls through). */
  weekdaysOnly: boolean;
}

export interface NetworkTariffVersion {
  tariffId: number;
  code: string;
  name: string;
  currency: string;
  version: number;
  effectiveFrom: string;
  bands: NetworkBand[];
  fixedMilliPerDay: number;
  vatBp: number;
}

export interface NewNetworkVersion {
  effectiveFrom: string;
  bands: NetworkBand[];
  fixedMilliPerDay: number;
  vatBp: number;
}

/** Day of week of a date, 0 = Sunday .. 6 = Saturday (a calendar date has no zone). */
export function weekdayOf(day: string): number {
  return new Date(`${day}T12:00:00Z`).getUTCDay();
}

/**
 * The band of local half-hour `slot` (0 = 00:00-00:30) on local day `day`: the first band in
 * order whose windows hold the half-hour's start (weekday-only bands skip Saturday and
 * Sunday), else the band without windows.
 */
export function bandOfSlot(bands: readonly NetworkBand[], day: string, slot: number): NetworkBand {
  const minute = slot * 30;
  const wd = weekdayOf(day);
  const weekend = wd === 0 || wd === 6;
  for (const b of bands) {
    if (!b.windows.length || (b.weekdaysOnly && weekend)) continue;
    if (b.windows.some((w) => inWindow(minute, w.from, w.to))) return b;
  }
  const rest = bands.find((b) => !b.windows.length);
  if (!rest) throw new Error('a network tariff version needs one band without windows');
  return rest;
}

/** The rules the schema cannot say: one catch-all band, unique codes, half-hour windows. */
export function checkBands(bands: readonly NetworkBand[]): void {
  const rest = bands.filter((b) => !b.windows.length);
  if (rest.length !== 1)
    throw new AppError(
      'VALIDATION',
      'exactly one band must have no windows (it takes every other half-hour)',
    );
  if (new Set(bands.map((b) => b.code)).size !== bands.length)
    throw new AppError('VALIDATION', 'band codes must be unique');
  for (const b of bands)
    for (const w of b.windows)
      for (const t of [w.from, w.to])
        if (!/^\d\d:(00|30)$/.test(t))
          throw new AppError('VALIDATION', `band ${b.code}: windows start and end on the half-hour (${t})`);
}

/** The first day that a new price or assignment may take effect: after the last invoiced month. */
async function firstOpenDay(q: Q, operatorId: number): Promise<string | null> {
  const { rows } = await q.query<{ d: string | null }>(
    `SELECT to_char(max(month) + interval '1 month', 'YYYY-MM-DD') AS d FROM network_invoices WHERE operator_id = $1`,
    [operatorId],
  );
  return rows[0]?.d ?? null;
}

async function notInvoiced(q: Q, operatorId: number, day: string): Promise<void> {
  const open = await firstOpenDay(q, operatorId);
  if (open && day < open)
    throw new AppError(
      'CONFLICT',
      `${day} is in a month already invoiced: prices and assignments may start from ${open}`,
    );
}

export async function createNetworkTariff(
  c: PoolClient,
  operatorId: number,
  body: { code: string; name: string; currency: string; version: NewNetworkVersion },
  userId: number | null,
): Promise<number> {
  checkBands(body.version.bands);
  await notInvoiced(c, operatorId, body.version.effectiveFrom);
  const ins = await c.query<{ id: number }>(
    `INSERT INTO network_tariffs (operator_id, code, name, currency, created_by) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (operator_id, code) DO NOTHING RETURNING id`,
    [operatorId, body.code, body.name, body.currency, userId],
  );
  if (!ins.rows[0]) throw new AppError('CONFLICT', `a network tariff with code ${body.code} exists`);
  const id = ins.rows[0].id;
  await insertVersion(c, id, 1, body.version, userId);
  return id;
}

async function insertVersion(
  c: PoolClient,
  tariffId: number,
  version: number,
  v: NewNetworkVersion,
  userId: number | null,
): Promise<void> {
  await c.query(
    `INSERT INTO network_tariff_versions (tariff_id, version, effective_from, bands, fixed_milli_per_day, vat_bp, created_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [tariffId, version, v.effectiveFrom, JSON.stringify(v.bands), v.fixedMilliPerDay, v.vatBp, userId],
  );
}

/** A tariff of this operator, locked for a change (NOT_FOUND for another operator's). */
async function ownTariff(c: PoolClient, operatorId: number | null, tariffId: number): Promise<number> {
  const { rows } = await c.query<{ operator_id: number }>(
    `SELECT operator_id FROM network_tariffs WHERE id = $1 AND ($2::int IS NULL OR operator_id = $2) FOR UPDATE`,
    [tariffId, operatorId],
  );
  if (!rows[0]) throw new AppError('NOT_FOUND', 'network tariff not found');
  return rows[0].operator_id;
}

/** New prices from a local day after the latest version's (and after every invoiced month). */
export async function addNetworkVersion(
  c: PoolClient,
  operatorId: number,
  tariffId: number,
  v: NewNetworkVersion,
  userId: number | null,
): Promise<number> {
  checkBands(v.bands);
  await ownTariff(c, operatorId, tariffId);
  await notInvoiced(c, operatorId, v.effectiveFrom);
  const { rows } = await c.query<{ version: number; last: string }>(
    `SELECT max(version) AS version, to_char(max(effective_from), 'YYYY-MM-DD') AS last
       FROM network_tariff_versions WHERE tariff_id = $1`,
    [tariffId],
  );
  const last = rows[0]!;
  if (v.effectiveFrom <= last.last)
    throw new AppError('CONFLICT', `new prices must start after the latest version's ${last.last}`);
  const version = last.version + 1;
  await insertVersion(c, tariffId, version, v, userId);
  return version;
}

/** The tariff prices area `areaId` from local day `fromDay` on. */
export async function assignNetworkTariff(
  c: PoolClient,
  operatorId: number,
  tariffId: number,
  areaId: string,
  fromDay: string,
  userId: number | null,
): Promise<void> {
  await ownTariff(c, operatorId, tariffId);
  const area = await c.query('SELECT 1 FROM network_areas WHERE id = $1 AND operator_id = $2', [
    areaId,
    operatorId,
  ]);
  if (!area.rows[0]) throw new AppError('NOT_FOUND', 'area not found');
  await notInvoiced(c, operatorId, fromDay);
  const ins = await c.query(
    `INSERT INTO network_tariff_areas (area_id, from_day, tariff_id, assigned_by) VALUES ($1, $2, $3, $4)
     ON CONFLICT DO NOTHING`,
    [areaId, fromDay, tariffId, userId],
  );
  if (!ins.rowCount) throw new AppError('CONFLICT', `area ${areaId} already has a tariff from ${fromDay}`);
}

interface VersionRow {
  tariff_id: number;
  code: string;
  name: string;
  currency: string;
  version: number;
  effective_from: string;
  bands: NetworkBand[];
  fixed_milli_per_day: number;
  vat_bp: number;
}
const VERSION_SQL = `SELECT t.id AS tariff_id, t.code, t.name, t.currency, v.version,
       to_char(v.effective_from, 'YYYY-MM-DD') AS effective_from, v.bands, v.fixed_milli_per_day, v.vat_bp
  FROM network_tariffs t JOIN network_tariff_versions v ON v.tariff_id = t.id`;
const toVersion = (r: VersionRow): NetworkTariffVersion => ({
  tariffId: r.tariff_id,
  code: r.code,
  name: r.name,
  currency: r.currency.trim(),
  version: r.version,
  effectiveFrom: r.effective_from,
  bands: r.bands,
  fixedMilliPerDay: r.fixed_milli_per_day,
  vatBp: r.vat_bp,
});

export interface AreaAssignment {
  areaId: string;
  fromDay: string;
  tariffId: number;
}

export interface NetworkTariffItem {
  id: number;
  operatorId: number;
  code: string;
  name: string;
  currency: string;
  versions: NetworkTariffVersion[];
  areas: AreaAssignment[];
}

/** Tariffs of one operator (null: every operator's), with versions and area assignments. */
export async function listNetworkTariffs(q: Q, operatorId: number | null): Promise<NetworkTariffItem[]> {
  const t = await q.query<{ id: number; operator_id: number; code: string; name: string; currency: string }>(
    `SELECT id, operator_id, code, name, currency FROM network_tariffs
      WHERE $1::int IS NULL OR operator_id = $1 ORDER BY operator_id, code`,
    [operatorId],
  );
  const ids = t.rows.map((r) => r.id);
  const v = await q.query<VersionRow>(`${VERSION_SQL} WHERE t.id = ANY($1::int[]) ORDER BY v.version`, [ids]);
  const a = await q.query<{ area_id: string; from_day: string; tariff_id: number }>(
    `SELECT area_id, to_char(from_day, 'YYYY-MM-DD') AS from_day, tariff_id FROM network_tariff_areas
      WHERE tariff_id = ANY($1::int[]) ORDER BY area_id, from_day`,
    [ids],
  );
  return t.rows.map((r) => ({
    id: r.id,
    operatorId: r.operator_id,
    code: r.code,
    name: r.name,
    currency: r.currency.trim(),
    versions: v.rows.filter((x) => x.tariff_id === r.id).map(toVersion),
    areas: a.rows
      .filter((x) => x.tariff_id === r.id)
      .map((x) => ({ areaId: x.area_id, fromDay: x.from_day, tariffId: x.tariff_id })),
  }));
}

/** Every version of the tariffs that ever priced these areas, and the areas' assignments. */
export async function areaPricing(
  q: Q,
  areaIds: readonly string[],
): Promise<{ assignments: AreaAssignment[]; versions: Map<number, NetworkTariffVersion[]> }> {
  const a = await q.query<{ area_id: string; from_day: string; tariff_id: number }>(
    `SELECT area_id, to_char(from_day, 'YYYY-MM-DD') AS from_day, tariff_id FROM network_tariff_areas
      WHERE area_id = ANY($1::text[]) ORDER BY area_id, from_day`,
    [areaIds],
  );
  const ids = [...new Set(a.rows.map((r) => r.tariff_id))];
  const v = await q.query<VersionRow>(
    `${VERSION_SQL} WHERE t.id = ANY($1::int[]) ORDER BY v.effective_from`,
    [ids],
  );
  const versions = new Map<number, NetworkTariffVersion[]>();
  for (const r of v.rows) {
    const list = versions.get(r.tariff_id) ?? [];
    list.push(toVersion(r));
    versions.set(r.tariff_id, list);
  }
  return {
    assignments: a.rows.map((r) => ({ areaId: r.area_id, fromDay: r.from_day, tariffId: r.tariff_id })),
    versions,
  };
}

/** The version pricing an area on a local day (assignments and versions sorted ascending). */
export function versionOnDay(
  pricing: { assignments: AreaAssignment[]; versions: Map<number, NetworkTariffVersion[]> },
  areaId: string,
  day: string,
): NetworkTariffVersion | null {
  let tariffId: number | null = null;
  for (const a of pricing.assignments) if (a.areaId === areaId && a.fromDay <= day) tariffId = a.tariffId;
  if (tariffId === null) return null;
  let v: NetworkTariffVersion | null = null;
  for (const x of pricing.versions.get(tariffId) ?? []) if (x.effectiveFrom <= day) v = x;
  return v;
}
