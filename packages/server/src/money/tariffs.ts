import type { KeyObject } from 'node:crypto';
import { addDays, localDate, localMidnight, type TariffSpec } from '@kilowire/protocol';
import type { CommandStatus, TariffRequestStatus } from '@kilowire/contract/enums';
import { requestCommand } from '../commands/lifecycle.ts';
import { tx, type Pool, type PoolClient, type Q } from '../db/pool.ts';
import { AppError } from '../errors.ts';
import { emitEvents } from '../events/emit.ts';
import type { NewEvent } from '../events/types.ts';
import {
  meterPriceSpans,
  milliToMinor,
  tariffVersions,
  type TariffStructure,
  type TariffVersion,
  type TimeWindow,
} from './prices.ts';

/**
 * Supplier tariffs: creation, price versions, assignment to meters (with the signed
 * `tariff.set` in the same transaction) and households' change requests. Every change that
 * a household must hear about writes a `tariff.changed` domain event in the same
 * transaction; the alerts subscriber turns it into the "tariff changed" alert, so a crash
 * after COMMIT loses nothing.
 */

export interface VersionInput {
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

export interface TariffInput {
  code: string;
  name: string;
  currency: string;
  structure: TariffStructure;
  open: boolean;
  version: VersionInput;
}

/** A band the structure has needs its rate and windows; a band it lacks must be empty. */
function checkStructure(structure: TariffStructure, v: VersionInput): void {
  const bad = (path: string, message: string) => {
    throw new AppError('VALIDATION', `${path}: ${message}`, [{ path, message }]);
  };
  const hasNight = structure !== 'flat';
  const hasPeak = structure === 'three_band';
  if (hasNight && v.nightRate === null) bad('body.nightRate', `a ${structure} tariff needs a night rate`);
  if (hasNight && v.nightWindows.length === 0) bad('body.nightWindows', 'give the night hours');
  if (!hasNight && (v.nightRate !== null || v.nightWindows.length > 0))
    bad('body.nightRate', 'a flat tariff has one rate');
  if (hasPeak && v.peakRate === null) bad('body.peakRate', 'a three_band tariff needs a peak rate');
  if (hasPeak && v.peakWindows.length === 0) bad('body.peakWindows', 'give the peak hours');
  if (!hasPeak && (v.peakRate !== null || v.peakWindows.length > 0))
    bad('body.peakRate', 'only a three_band tariff has a peak rate');
}

/**
 * The `tariff.set` a meter receives for a version, active from `effectiveFromEpoch` (the
 * meter's local midnight of the version's or the assignment's first day).
 *
 * Prices on the meter include VAT: a prepayment meter debits what the household pays, while
 * the head-end keeps net prices and adds VAT per bill line (`grossMilli`: net × (1 + VAT),
 * rounded half up to the integer thousandth the wire carries — at most half a thousandth of a
 * penny per kWh from the exact figure). Three-band tariffs send rate 3 and the peak windows;
 * the standing charge goes exact in thousandths, and rounded to whole minor units for meters
 * that predate the exact field.
 */
export function tariffSpecOf(v: TariffVersion, effectiveFromEpoch: number): TariffSpec {
  const g = (milli: number): number => grossMilli(milli, v.vatBp);
  const standing = g(v.standingMilliPerDay);
  const peak = v.structure === 'three_band';
  return {
    id: v.code,
    version: v.version,
    currency: v.currency,
    rates: {
      '1': g(v.dayRate),
      '2': g(v.nightRate ?? v.dayRate),
      ...(peak ? { '3': g(v.peakRate ?? v.dayRate) } : {}),
    },
    band2Windows: v.structure === 'flat' ? [] : v.nightWindows,
    ...(peak ? { band3Windows: v.peakWindows } : {}),
    standingChargeMinorPerDay: milliToMinor(standing),
    standingChargeMilliPerDay: standing,
    effectiveFrom: effectiveFromEpoch,
  };
}

/** A net price in thousandths with VAT added, rounded half up to a whole thousandth. */
export function grossMilli(netMilli: number, vatBp: number): number {
  return Math.floor((netMilli * (10_000 + vatBp) + 5_000) / 10_000);
}

interface MeterRef {
  id: number;
  serial: string;
  tz: string;
  supplier_id: number;
}

/** The first local day after today in every zone of the supplier's meters: "not in the past". */
async function earliestFutureDay(q: Q, supplierId: number, nowS: number): Promise<string> {
  const { rows } = await q.query<{ tz: string }>('SELECT DISTINCT tz FROM meters WHERE supplier_id = $1', [
    supplierId,
  ]);
  const zones = rows.length ? rows.map((r) => r.tz) : ['Europe/London'];
  let latest = '0000-00-00';
  for (const tz of zones) {
    const d = localDate(nowS, tz);
    if (d > latest) latest = d;
  }
  return addDays(latest, 1);
}

async function insertVersion(
  c: PoolClient,
  tariffId: number,
  version: number,
  v: VersionInput,
  userId: number | null,
): Promise<void> {
  await c.query(
    `INSERT INTO tariff_versions (tariff_id, version, effective_from, day_rate, night_rate, peak_rate,
       night_windows, peak_windows, export_rate, standing_milli_per_day, vat_bp, created_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
    [
      tariffId,
      version,
      v.effectiveFrom,
      v.dayRate,
      v.nightRate,
      v.peakRate,
      JSON.stringify(v.nightWindows),
      JSON.stringify(v.peakWindows),
      v.exportRate,
      v.standingMilliPerDay,
      v.vatBp,
      userId,
    ],
  );
}

/**
 * Create a tariff with its first version. `allowPast` is for seeding history (the demo); the
 * API never passes it, so a supplier cannot rewrite prices of days already gone.
 */
export async function createTariff(
  c: PoolClient,
  supplierId: number,
  t: TariffInput,
  userId: number | null,
  o: { nowS?: number; allowPast?: boolean } = {},
): Promise<number> {
  checkStructure(t.structure, t.version);
  if (!o.allowPast) {
    const first = await earliestFutureDay(c, supplierId, o.nowS ?? Math.floor(Date.now() / 1000));
    if (t.version.effectiveFrom < first)
      throw new AppError('VALIDATION', `body.version.effectiveFrom: not before ${first}`, [
        {
          path: 'body.version.effectiveFrom',
          message: `prices start at a future local midnight (${first} or later)`,
        },
      ]);
  }
  const ins = await c.query<{ id: number }>(
    `INSERT INTO tariffs (supplier_id, code, name, currency, structure, open, created_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (supplier_id, code) DO NOTHING RETURNING id`,
    [supplierId, t.code, t.name, t.currency, t.structure, t.open, userId],
  );
  const id = ins.rows[0]?.id;
  if (id === undefined) throw new AppError('CONFLICT', `a tariff with code ${t.code} exists already`);
  await insertVersion(c, id, 1, t.version, userId);
  return id;
}

export interface TariffRow {
  id: number;
  supplier_id: number;
  code: string;
  name: string;
  currency: string;
  structure: TariffStructure;
  open: boolean;
}

/** A tariff of `supplierId` (locked when `forUpdate`), or NOT_FOUND — another supplier's is invisible. */
export async function tariffOf(
  q: Q,
  supplierId: number,
  tariffId: number,
  forUpdate = false,
): Promise<TariffRow> {
  const { rows } = await q.query<TariffRow>(
    `SELECT id, supplier_id, code, name, trim(currency) AS currency, structure, open FROM tariffs
      WHERE id = $1 AND supplier_id = $2 ${forUpdate ? 'FOR UPDATE' : ''}`,
    [tariffId, supplierId],
  );
  const t = rows[0];
  if (!t) throw new AppError('NOT_FOUND', 'tariff not found');
  return t;
}

/** The version of a tariff in force on a local day (versions ascending), or null. */
export function versionOn(versions: readonly TariffVersion[], day: string): TariffVersion | null {
  let found: TariffVersion | null = null;
  for (const v of versions) if (v.effectiveFrom <= day) found = v;
  return found;
}

/** Meters on `tariffId` on local day `day`, or assigned to it from a later day. */
async function metersOnTariffFrom(q: Q, tariffId: number, day: string): Promise<MeterRef[]> {
  const { rows } = await q.query<MeterRef>(
    `SELECT m.id, m.serial, m.tz, m.supplier_id FROM meters m
      WHERE EXISTS (SELECT 1 FROM meter_tariffs mt WHERE mt.meter_id = m.id AND mt.tariff_id = $1 AND mt.from_day > $2::date)
         OR (SELECT mt.tariff_id FROM meter_tariffs mt WHERE mt.meter_id = m.id AND mt.from_day <= $2::date
              ORDER BY mt.from_day DESC LIMIT 1) = $1
      ORDER BY m.id`,
    [tariffId, day],
  );
  return rows;
}

/**
 * What a meter must hold: the prices of the next change after today (as its pending tariff),
 * or, when none is decided, those in force today. A meter keeps one active and one pending
 * tariff, and a new pending one replaces the old: so a change is sent only once every
 * earlier one is active, never ahead of one still waiting (`syncAllMeterTariffs` sends the
 * next as each local midnight passes).
 */
export async function dueTariffSpec(q: Q, m: MeterRef, nowS: number): Promise<TariffSpec | null> {
  const today = localDate(nowS, m.tz);
  const spans = await meterPriceSpans(q, m.id, today, addDays(today, 3660));
  const covering = spans[0]?.fromDay === today ? spans[0] : null;
  const target = spans.find((s) => s.fromDay > today) ?? covering;
  return target ? tariffSpecOf(target.version, localMidnight(target.fromDay, m.tz)) : null;
}

/**
 * Send the meter the tariff it must hold (dueTariffSpec) unless the latest tariff.set still
 * on its way or applied is that very one. Returns the new command's id, or null.
 */
export async function syncMeterTariff(
  c: PoolClient,
  key: KeyObject,
  m: MeterRef,
  nowS: number,
  actorId: number | null = null,
): Promise<string | null> {
  const spec = await dueTariffSpec(c, m, nowS);
  if (!spec) return null;
  const { rows } = await c.query<{ t: TariffSpec }>(
    `SELECT cmd->'tariff' AS t FROM commands
      WHERE meter_id = $1 AND type = 'tariff.set'
        AND status IN ('requested', 'awaiting_approval', 'queued', 'sent', 'ok')
      ORDER BY created_at DESC, counter DESC NULLS LAST LIMIT 1`,
    [m.id],
  );
  const last = rows[0]?.t;
  if (
    last &&
    last.id === spec.id &&
    last.version === spec.version &&
    last.effectiveFrom === spec.effectiveFrom
  )
    return null;
  const cmd = await requestCommand(
    c,
    key,
    m,
    { type: 'tariff.set', tariff: spec },
    { actorId, reason: `tariff ${spec.id} version ${spec.version}`, nowS },
  );
  return cmd.id;
}

/**
 * The periodic pass (jobs service): every meter with a price change from yesterday on gets
 * what it must hold now. Idempotent; one transaction per meter.
 */
export async function syncAllMeterTariffs(pool: Pool, key: KeyObject, nowS: number): Promise<number> {
  const { rows } = await pool.query<MeterRef>(
    `SELECT m.id, m.serial, m.tz, m.supplier_id FROM meters m
      WHERE EXISTS (SELECT 1 FROM meter_tariffs mt WHERE mt.meter_id = m.id AND mt.from_day >= (to_timestamp($1) AT TIME ZONE m.tz)::date - 1)
         OR EXISTS (SELECT 1 FROM meter_tariffs mt JOIN tariff_versions v ON v.tariff_id = mt.tariff_id
                     WHERE mt.meter_id = m.id AND v.effective_from >= (to_timestamp($1) AT TIME ZONE m.tz)::date - 1)
      ORDER BY m.id`,
    [nowS],
  );
  let sent = 0;
  for (const m of rows) if (await tx(pool, (c) => syncMeterTariff(c, key, m, nowS))) sent++;
  return sent;
}

export interface Pushed {
  serial: string;
  from: string;
  /** The tariff.set sent now; null when an earlier change must reach the meter first. */
  commandId: string | null;
}

/**
 * A new price version from a future local day. Pushes `tariff.set` (active from each meter's
 * local midnight of that day) to every meter on the tariff then, and records one
 * `tariff.changed` event per meter for the household alert — all in the caller's transaction.
 */
export async function addVersion(
  c: PoolClient,
  key: KeyObject,
  supplierId: number,
  tariffId: number,
  v: VersionInput,
  userId: number | null,
  o: { nowS?: number } = {},
): Promise<{ version: number; pushed: Pushed[] }> {
  const nowS = o.nowS ?? Math.floor(Date.now() / 1000);
  const t = await tariffOf(c, supplierId, tariffId, true);
  checkStructure(t.structure, v);
  const first = await earliestFutureDay(c, supplierId, nowS);
  if (v.effectiveFrom < first)
    throw new AppError('VALIDATION', `body.effectiveFrom: not before ${first}`, [
      {
        path: 'body.effectiveFrom',
        message: `a price change starts at a future local midnight (${first} or later)`,
      },
    ]);
  const existing = await tariffVersions(c, tariffId);
  if (existing.some((e) => e.effectiveFrom === v.effectiveFrom))
    throw new AppError('CONFLICT', `a version from ${v.effectiveFrom} exists already`);
  if (existing.some((e) => e.effectiveFrom > v.effectiveFrom))
    throw new AppError('CONFLICT', 'a later version exists already: add changes in date order');
  const version = Math.max(0, ...existing.map((e) => e.version)) + 1;
  await insertVersion(c, tariffId, version, v, userId);
  const pushed: Pushed[] = [];
  const events: NewEvent<'tariff.changed'>[] = [];
  for (const m of await metersOnTariffFrom(c, tariffId, v.effectiveFrom)) {
    const commandId = await syncMeterTariff(c, key, m, nowS, userId);
    pushed.push({ serial: m.serial, from: v.effectiveFrom, commandId });
    events.push({
      type: 'tariff.changed',
      meterId: m.id,
      payload: { tariffId, version, from: v.effectiveFrom, why: 'prices' },
    });
  }
  await emitEvents(c, events);
  return { version, pushed };
}

/**
 * Put a meter on a tariff from local day `from` (default: its next local midnight): a
 * meter_tariffs row, the signed `tariff.set` with the prices in force that day, and the
 * `tariff.changed` event, in the caller's transaction. A decision for the same future day
 * replaces the earlier one; days already begun are history and cannot be changed.
 */
export async function assignTariff(
  c: PoolClient,
  key: KeyObject,
  m: MeterRef,
  tariffId: number,
  from: string | undefined,
  userId: number | null,
  o: { nowS?: number; why?: 'assigned' | 'request'; allowPast?: boolean } = {},
): Promise<Pushed> {
  const nowS = o.nowS ?? Math.floor(Date.now() / 1000);
  const t = await tariffOf(c, m.supplier_id, tariffId);
  const tomorrow = addDays(localDate(nowS, m.tz), 1);
  const day = from ?? tomorrow;
  if (day < tomorrow && !o.allowPast)
    throw new AppError('VALIDATION', `body.from: not before ${tomorrow}`, [
      { path: 'body.from', message: `a tariff starts at a future local midnight (${tomorrow} or later)` },
    ]);
  const versions = await tariffVersions(c, tariffId);
  const v = versionOn(versions, day);
  if (!v)
    throw new AppError('VALIDATION', `body.from: tariff ${t.code} has no prices on ${day}`, [
      {
        path: 'body.from',
        message: `the tariff's first prices start on ${versions[0]?.effectiveFrom ?? '?'}`,
      },
    ]);
  await c.query(
    `INSERT INTO meter_tariffs (meter_id, from_day, tariff_id, assigned_by) VALUES ($1, $2, $3, $4)
     ON CONFLICT (meter_id, from_day) DO UPDATE SET tariff_id = excluded.tariff_id,
       assigned_by = excluded.assigned_by, assigned_at = now()`,
    [m.id, day, tariffId, userId],
  );
  // What the meter must hold now (this assignment, unless an earlier change is still to come).
  const commandId = await syncMeterTariff(c, key, m, nowS, userId);
  await emitEvents(c, [
    {
      type: 'tariff.changed',
      meterId: m.id,
      payload: { tariffId, version: v.version, from: day, why: o.why ?? 'assigned' },
    },
  ]);
  return { serial: m.serial, from: day, commandId };
}

/** Meters of the supplier by serial (unknown or other suppliers' serials: NOT_FOUND, naming none). */
export async function supplierMeters(
  q: Q,
  supplierId: number,
  serials: readonly string[],
): Promise<MeterRef[]> {
  const { rows } = await q.query<MeterRef>(
    'SELECT id, serial, tz, supplier_id FROM meters WHERE supplier_id = $1 AND serial = ANY($2::text[]) ORDER BY id',
    [supplierId, serials],
  );
  if (rows.length !== new Set(serials).size) throw new AppError('NOT_FOUND', 'meter not found');
  return rows;
}

/** Meters of the supplier on `tariffId` today (in their own zone). */
export async function metersOnTariffNow(q: Q, supplierId: number, tariffId: number): Promise<MeterRef[]> {
  const { rows } = await q.query<MeterRef>(
    `SELECT m.id, m.serial, m.tz, m.supplier_id FROM meters m
      WHERE m.supplier_id = $1
        AND (SELECT mt.tariff_id FROM meter_tariffs mt WHERE mt.meter_id = m.id
              AND mt.from_day <= (now() AT TIME ZONE m.tz)::date ORDER BY mt.from_day DESC LIMIT 1) = $2
      ORDER BY m.id`,
    [supplierId, tariffId],
  );
  return rows;
}

export interface TariffListItem extends TariffRow {
  versions: TariffVersion[];
  meters: number;
}

/** The supplier's tariffs (or only the open ones) with every version and the meters on each today. */
export async function listTariffs(q: Q, supplierId: number, openOnly: boolean): Promise<TariffListItem[]> {
  const { rows } = await q.query<TariffRow & { meters: number }>(
    `SELECT t.id, t.supplier_id, t.code, t.name, trim(t.currency) AS currency, t.structure, t.open,
            (SELECT count(*) FROM meters m WHERE m.supplier_id = t.supplier_id
               AND (SELECT mt.tariff_id FROM meter_tariffs mt WHERE mt.meter_id = m.id
                     AND mt.from_day <= (now() AT TIME ZONE m.tz)::date ORDER BY mt.from_day DESC LIMIT 1) = t.id)::int AS meters
       FROM tariffs t WHERE t.supplier_id = $1 AND ($2::boolean IS FALSE OR t.open) ORDER BY t.name, t.id`,
    [supplierId, openOnly],
  );
  const out: TariffListItem[] = [];
  for (const r of rows) out.push({ ...r, versions: await tariffVersions(q, r.id) });
  return out;
}

export interface MeterTariffState {
  tariffId: number | null;
  tariffName: string | null;
  next: { tariffId: number; tariffName: string; from: string } | null;
  command: { id: string; status: CommandStatus; version: number | null } | null;
}

/** The meter's tariff today, the next one already decided, and its latest tariff.set's state. */
export async function meterTariffState(
  q: Q,
  meterId: number,
  tz: string,
  nowS: number,
): Promise<MeterTariffState> {
  const today = localDate(nowS, tz);
  const { rows } = await q.query<{ from_day: string; tariff_id: number; name: string }>(
    `SELECT to_char(mt.from_day, 'YYYY-MM-DD') AS from_day, mt.tariff_id, t.name
       FROM meter_tariffs mt JOIN tariffs t ON t.id = mt.tariff_id
      WHERE mt.meter_id = $1 ORDER BY mt.from_day`,
    [meterId],
  );
  const cur = rows.filter((r) => r.from_day <= today).pop() ?? null;
  const nxt = rows.find((r) => r.from_day > today) ?? null;
  const cmd = await q.query<{ id: string; status: CommandStatus; version: number | null }>(
    `SELECT id, status, (cmd->'tariff'->>'version')::int AS version FROM commands
      WHERE meter_id = $1 AND type = 'tariff.set' ORDER BY created_at DESC, counter DESC NULLS LAST LIMIT 1`,
    [meterId],
  );
  return {
    tariffId: cur?.tariff_id ?? null,
    tariffName: cur?.name ?? null,
    next: nxt ? { tariffId: nxt.tariff_id, tariffName: nxt.name, from: nxt.from_day } : null,
    command: cmd.rows[0] ?? null,
  };
}

/**
 * The tariff each meter should run now (the version in force today, else the first one it
 * will get), keyed by serial — what the demo fleet file gives a simulated meter to start on.
 */
export async function initialTariffSpecs(
  q: Q,
  serials: readonly string[],
  nowS: number,
): Promise<Map<string, TariffSpec>> {
  const { rows } = await q.query<{ serial: string; tz: string; tariff_id: number; from_day: string }>(
    `SELECT m.serial, m.tz, mt.tariff_id, to_char(mt.from_day, 'YYYY-MM-DD') AS from_day
       FROM meters m JOIN meter_tariffs mt ON mt.meter_id = m.id
      WHERE m.serial = ANY($1::text[]) ORDER BY m.serial, mt.from_day`,
    [serials],
  );
  const cache = new Map<number, TariffVersion[]>();
  const out = new Map<string, TariffSpec>();
  for (const r of rows) {
    const today = localDate(nowS, r.tz);
    if (r.from_day > today && out.has(r.serial)) continue;
    let versions = cache.get(r.tariff_id);
    if (!versions) cache.set(r.tariff_id, (versions = await tariffVersions(q, r.tariff_id)));
    const day = r.from_day > today ? r.from_day : today;
    const v = versionOn(versions, day);
    if (!v) continue;
    const start = v.effectiveFrom > r.from_day ? v.effectiveFrom : r.from_day;
    out.set(r.serial, tariffSpecOf(v, localMidnight(start, r.tz)));
  }
  return out;
}

// ------------------------------------------------------------------ change requests

export interface RequestRow {
  id: number;
  serial: string;
  household: string;
  from_tariff: string | null;
  to_tariff_id: number;
  to_tariff: string;
  status: TariffRequestStatus;
  reason: string | null;
  effective_from: string | null;
  created_at: Date;
  decided_at: Date | null;
}

const REQUEST_SELECT = `
  SELECT r.id::int AS id, m.serial, cu.name AS household, ft.name AS from_tariff, r.to_tariff_id, tt.name AS to_tariff,
         r.status, r.reason, to_char(r.effective_from, 'YYYY-MM-DD') AS effective_from, r.created_at, r.decided_at
    FROM tariff_change_requests r
    JOIN meters m ON m.id = r.meter_id
    JOIN consumers cu ON cu.id = r.consumer_id
    LEFT JOIN tariffs ft ON ft.id = r.from_tariff_id
    JOIN tariffs tt ON tt.id = r.to_tariff_id`;

/** A household asks to move its meter to another open tariff of its supplier (one open request per meter). */
export async function createRequest(
  c: PoolClient,
  consumerId: number,
  m: MeterRef,
  toTariffId: number,
  userId: number,
  nowS: number,
): Promise<number> {
  const { rows } = await c.query<{ id: number }>(
    'SELECT id FROM tariffs WHERE id = $1 AND supplier_id = $2 AND open',
    [toTariffId, m.supplier_id],
  );
  if (!rows[0]) throw new AppError('NOT_FOUND', 'tariff not found');
  const state = await meterTariffState(c, m.id, m.tz, nowS);
  if (state.tariffId === toTariffId && !state.next)
    throw new AppError('CONFLICT', 'the meter is on this tariff already');
  const ins = await c.query<{ id: number }>(
    `INSERT INTO tariff_change_requests (consumer_id, meter_id, from_tariff_id, to_tariff_id, requested_by)
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (meter_id) WHERE status = 'requested' DO NOTHING RETURNING id::int`,
    [consumerId, m.id, state.tariffId, toTariffId, userId],
  );
  if (!ins.rows[0]) throw new AppError('CONFLICT', 'this meter has a request waiting for a decision already');
  return ins.rows[0].id;
}

/** Requests visible to a household (its own) or a supplier (on its meters), newest first. */
export async function listRequests(
  q: Q,
  who: { consumerId: number } | { supplierId: number },
  limit = 200,
): Promise<RequestRow[]> {
  const [cond, id] =
    'consumerId' in who ? ['r.consumer_id = $1', who.consumerId] : ['m.supplier_id = $1', who.supplierId];
  const { rows } = await q.query<RequestRow>(
    `${REQUEST_SELECT} WHERE ${cond} ORDER BY (r.status = 'requested') DESC, r.id DESC LIMIT $2`,
    [id, limit],
  );
  return rows;
}

export async function requestById(q: Q, id: number): Promise<RequestRow | null> {
  const { rows } = await q.query<RequestRow>(`${REQUEST_SELECT} WHERE r.id = $1`, [id]);
  return rows[0] ?? null;
}

/**
 * The supplier decides. Approve: the change takes effect as an assignment (meter_tariffs +
 * tariff.set + tariff.changed). Decline: with a reason. Either way the household is told
 * through a `tariff.request_decided` event in the same transaction.
 */
export async function decideRequest(
  c: PoolClient,
  key: KeyObject,
  supplierId: number,
  id: number,
  d: { decision: 'approve'; effectiveFrom?: string | undefined } | { decision: 'decline'; reason: string },
  userId: number,
  nowS: number,
): Promise<void> {
  const { rows } = await c.query<{ meter_id: number; to_tariff_id: number; status: string } & MeterRef>(
    `SELECT r.meter_id, r.to_tariff_id, r.status, m.id, m.serial, m.tz, m.supplier_id
       FROM tariff_change_requests r JOIN meters m ON m.id = r.meter_id
      WHERE r.id = $1 AND m.supplier_id = $2 FOR UPDATE OF r`,
    [id, supplierId],
  );
  const r = rows[0];
  if (!r) throw new AppError('NOT_FOUND', 'request not found');
  if (r.status !== 'requested') throw new AppError('CONFLICT', `the request is ${r.status} already`);
  let effectiveFrom: string | null = null;
  if (d.decision === 'approve') {
    const a = await assignTariff(c, key, r, r.to_tariff_id, d.effectiveFrom, userId, {
      nowS,
      why: 'request',
    });
    effectiveFrom = a.from;
  }
  await c.query(
    `UPDATE tariff_change_requests SET status = $2, reason = $3, effective_from = $4, decided_by = $5, decided_at = now()
      WHERE id = $1`,
    [
      id,
      d.decision === 'approve' ? 'approved' : 'declined',
      d.decision === 'decline' ? d.reason : null,
      effectiveFrom,
      userId,
    ],
  );
  await emitEvents(c, [{ type: 'tariff.request_decided', meterId: r.meter_id, payload: { requestId: id } }]);
}
