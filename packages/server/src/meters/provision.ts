import { randomBytes } from 'node:crypto';
import type { AdminMeter, AdminMeterQuery, MeterExchange } from '@kilowire/contract';
import { credentialHash } from '../accounts/repo.ts';
import type { PoolClient, Q } from '../db/pool.ts';
import { AppError } from '../errors.ts';
import { cancelCommand } from '../commands/lifecycle.ts';

/**
 * A meter's life on the platform, as the administrator runs it: registered with a broker
 * credential shown once, re-keyed, decommissioned, exchanged on an account. The credential is
 * stored as its SHA-256 only (accounts/repo.ts), so what was shown cannot be shown again.
 *
 * Every change of who may connect is NOTIFYed on CREDENTIALS_CHANNEL with the serial, in the
 * changing transaction (delivered at COMMIT): the embedded broker drops its cached hash and
 * the meter's live connection. A Mosquitto deployment reads a password file instead, which
 * must be regenerated (npm run mosquitto-config) and reloaded (SIGHUP): see docs/operations.
 */
export const CREDENTIALS_CHANNEL = 'kw_meter_credentials';

/** 24 random bytes: nothing to guess offline, so a fast hash is enough (see credentialHash). */
function newCredential(): string {
  return randomBytes(24).toString('base64url');
}

async function notifyCredentials(c: PoolClient, serial: string): Promise<void> {
  await c.query('SELECT pg_notify($1, $2)', [CREDENTIALS_CHANNEL, serial]);
}

interface MeterRow {
  id: number;
  serial: string;
  status: 'active' | 'decommissioned';
  hardware_class: string;
  tz: string;
  interval_s: number;
  supplier_id: number;
  supplier_name: string;
  area_id: string;
  area_name: string;
  feeder_id: string | null;
  account_id: number | null;
  consumer_name: string | null;
  last_seen_at: Date | null;
  created_at: Date;
  decommissioned_at: Date | null;
  replaced_by: string | null;
}

const SELECT = `SELECT m.id, m.serial, m.status, m.hardware_class, m.tz, m.interval_s, m.supplier_id,
       o.name AS supplier_name, m.area_id, na.name AS area_name, m.feeder_id, m.account_id,
       c.name AS consumer_name, greatest(m.last_seen_at, st.last_data_at) AS last_seen_at, m.created_at, m.decommissioned_at, r.serial AS replaced_by
  FROM meters m
  JOIN organisations o ON o.id = m.supplier_id
  JOIN network_areas na ON na.id = m.area_id
  LEFT JOIN accounts a ON a.id = m.account_id
  LEFT JOIN consumers c ON c.id = a.consumer_id
  LEFT JOIN meters r ON r.id = m.replaced_by
  -- Data arriving counts as seen, as on the meter pages (meters/queries.ts).
  LEFT JOIN meter_ingest_state st ON st.meter_id = m.id`;

function present(r: MeterRow): AdminMeter {
  return {
    serial: r.serial,
    status: r.status,
    hardwareClass: r.hardware_class,
    tz: r.tz,
    intervalS: r.interval_s,
    supplier: { id: r.supplier_id, name: r.supplier_name },
    area: { id: r.area_id, name: r.area_name },
    feederId: r.feeder_id,
    accountId: r.account_id,
    consumerName: r.consumer_name,
    lastSeenAt: r.last_seen_at?.toISOString() ?? null,
    createdAt: r.created_at.toISOString(),
    decommissionedAt: r.decommissioned_at?.toISOString() ?? null,
    replacedBy: r.replaced_by,
  };
}

export async function adminMeter(q: Q, serial: string): Promise<AdminMeter | null> {
  const { rows } = await q.query<MeterRow>(`${SELECT} WHERE m.serial = $1`, [serial]);
  return rows[0] ? present(rows[0]) : null;
}

/** Meters by serial, keyset-paged (serial order), decommissioned ones included unless filtered. */
export async function listAdminMeters(
  q: Q,
  f: Omit<AdminMeterQuery, 'cursor'> & { after: string | null },
): Promise<{ items: AdminMeter[]; next: string | null }> {
  const where: string[] = [];
  const params: unknown[] = [];
  const p = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  if (f.q) where.push(`m.serial ILIKE ${p(f.q.replace(/[\\%_]/g, '\\$&') + '%')}`);
  if (f.status) where.push(`m.status = ${p(f.status)}`);
  if (f.supplierId) where.push(`m.supplier_id = ${p(f.supplierId)}`);
  if (f.after !== null) where.push(`m.serial > ${p(f.after)}`);
  const { rows } = await q.query<MeterRow>(
    `${SELECT} ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY m.serial LIMIT ${p(f.limit + 1)}`,
    params,
  );
  const more = rows.length > f.limit;
  const items = rows.slice(0, f.limit).map(present);
  return { items, next: more ? items[items.length - 1]!.serial : null };
}

export interface NewMeter {
  serial: string;
  hardwareClass: string;
  tz: string;
  intervalS: 900 | 1800;
  areaId: string;
  feederId?: string | null | undefined;
  supplierId: number;
  accountId?: number | null | undefined;
}

/** Check the supplier, area, feeder and account fit together; VALIDATION naming the field otherwise. */
async function checkPlacement(c: PoolClient, m: NewMeter): Promise<{ mode: 'credit' | 'prepayment' | null }> {
  const bad = (field: string, message: string) =>
    new AppError('VALIDATION', `body.${field}: ${message}`, [{ path: `body.${field}`, message }]);
  const sup = await c.query("SELECT 1 FROM organisations WHERE id = $1 AND kind = 'supplier'", [
    m.supplierId,
  ]);
  if (!sup.rowCount) throw bad('supplierId', 'no such supplier');
  const area = await c.query('SELECT 1 FROM network_areas WHERE id = $1', [m.areaId]);
  if (!area.rowCount) throw bad('areaId', 'no such network area');
  if (m.feederId) {
    const f = await c.query('SELECT 1 FROM feeders WHERE id = $1 AND area_id = $2', [m.feederId, m.areaId]);
    if (!f.rowCount) throw bad('feederId', 'no such feeder in that area');
  }
  if (m.accountId) {
    const a = await c.query<{ supplier_id: number; mode: 'credit' | 'prepayment' }>(
      'SELECT supplier_id, mode FROM accounts WHERE id = $1',
      [m.accountId],
    );
    if (a.rows[0]?.supplier_id !== m.supplierId) throw bad('accountId', 'no such account of that supplier');
    return { mode: a.rows[0].mode };
  }
  return { mode: null };
}

async function insertMeter(c: PoolClient, m: NewMeter, mode: 'credit' | 'prepayment' | null, hash: string) {
  const taken = await c.query('SELECT 1 FROM meters WHERE serial = $1', [m.serial]);
  if (taken.rowCount) throw new AppError('CONFLICT', `a meter ${m.serial} is already registered`);
  const { rows } = await c.query<{ id: number }>(
    `INSERT INTO meters (serial, account_id, supplier_id, area_id, feeder_id, tz, hardware_class, interval_s,
                         credential_hash, mode)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`,
    [
      m.serial,
      m.accountId ?? null,
      m.supplierId,
      m.areaId,
      m.feederId ?? null,
      m.tz,
      m.hardwareClass,
      m.intervalS,
      hash,
      mode,
    ],
  );
  return rows[0]!.id;
}

/** Register a meter; its credential is returned here and nowhere else. */
export async function provisionMeter(
  c: PoolClient,
  m: NewMeter,
): Promise<{ meter: AdminMeter; credential: string }> {
  const { mode } = await checkPlacement(c, m);
  const credential = newCredential();
  await insertMeter(c, m, mode, credentialHash(credential));
  await notifyCredentials(c, m.serial);
  return { meter: (await adminMeter(c, m.serial))!, credential };
}

/** The meter row locked for a change, or 404. */
async function lockMeter(
  c: PoolClient,
  serial: string,
): Promise<{ id: number; status: string; account_id: number | null } & Omit<NewMeter, 'serial'>> {
  const { rows } = await c.query<{
    id: number;
    status: string;
    account_id: number | null;
    hardware_class: string;
    tz: string;
    interval_s: 900 | 1800;
    area_id: string;
    feeder_id: string | null;
    supplier_id: number;
  }>(
    `SELECT id, status, account_id, hardware_class, tz, interval_s, area_id, feeder_id, supplier_id
       FROM meters WHERE serial = $1 FOR UPDATE`,
    [serial],
  );
  const r = rows[0];
  if (!r) throw new AppError('NOT_FOUND', 'no such meter');
  return {
    id: r.id,
    status: r.status,
    account_id: r.account_id,
    hardwareClass: r.hardware_class,
    tz: r.tz,
    intervalS: r.interval_s,
    areaId: r.area_id,
    feederId: r.feeder_id,
    supplierId: r.supplier_id,
  };
}

function refuseDecommissioned(status: string): void {
  if (status !== 'active') throw new AppError('CONFLICT', 'the meter is decommissioned');
}

/** A new credential; the old one stops working (the broker is told, and drops the connection). */
export async function rotateCredential(
  c: PoolClient,
  serial: string,
): Promise<{ meter: AdminMeter; credential: string }> {
  const m = await lockMeter(c, serial);
  refuseDecommissioned(m.status);
  const credential = newCredential();
  await c.query('UPDATE meters SET credential_hash = $2 WHERE id = $1', [m.id, credentialHash(credential)]);
  await notifyCredentials(c, serial);
  return { meter: (await adminMeter(c, serial))!, credential };
}

/**
 * Take a meter out of service: it may no longer connect; commands not yet sent are cancelled
 * through the command lifecycle (transition recorded, by whom), since nothing would deliver
 * them; sent ones run out at their expiry like any unanswered command (command.expired lets
 * whoever waited react). Its readings stay, and so do its account's.
 */
export async function decommissionMeter(
  c: PoolClient,
  serial: string,
  actorId: number | null,
  replacedBy: number | null = null,
) {
  const m = await lockMeter(c, serial);
  refuseDecommissioned(m.status);
  await c.query(
    `UPDATE meters SET status = 'decommissioned', decommissioned_at = now(), replaced_by = $2 WHERE id = $1`,
    [m.id, replacedBy],
  );
  const open = await c.query<{ id: string }>(
    `SELECT id FROM commands WHERE meter_id = $1 AND status IN ('requested', 'awaiting_approval', 'queued')
      ORDER BY created_at`,
    [m.id],
  );
  for (const cmd of open.rows) await cancelCommand(c, cmd.id, actorId, 'meter decommissioned');
  await notifyCredentials(c, serial);
  return { meter: (await adminMeter(c, serial))!, commandsCancelled: open.rows.length };
}

/**
 * A new meter takes the old one's place: same account, supplier, area (feeder unless given),
 * time zone and interval; the old one is decommissioned naming it. Readings are per meter,
 * so the account keeps the old meter's history and gains the new one's.
 */
export async function exchangeMeter(
  c: PoolClient,
  serial: string,
  x: MeterExchange,
  actorId: number | null,
): Promise<{ old: AdminMeter; meter: AdminMeter; credential: string }> {
  const old = await lockMeter(c, serial);
  refuseDecommissioned(old.status);
  const next: NewMeter = {
    serial: x.newSerial,
    hardwareClass: x.hardwareClass ?? old.hardwareClass,
    tz: old.tz,
    intervalS: old.intervalS,
    areaId: old.areaId,
    feederId: x.feederId === undefined ? old.feederId : x.feederId,
    supplierId: old.supplierId,
    accountId: old.account_id,
  };
  const { mode } = await checkPlacement(c, next);
  const credential = newCredential();
  const newId = await insertMeter(c, next, mode, credentialHash(credential));
  // The tariff the household is on moves with the account's supply point.
  await c.query(
    `INSERT INTO meter_tariffs (meter_id, from_day, tariff_id, assigned_by, assigned_at)
     SELECT $2, from_day, tariff_id, assigned_by, assigned_at FROM meter_tariffs WHERE meter_id = $1`,
    [old.id, newId],
  );
  await decommissionMeter(c, serial, actorId, newId);
  await notifyCredentials(c, x.newSerial);
  return { old: (await adminMeter(c, serial))!, meter: (await adminMeter(c, x.newSerial))!, credential };
}

/** What the registration form offers: suppliers, and the operators' areas with their feeders. */
export async function provisioningOptions(q: Q) {
  const s = await q.query<{ id: number; name: string }>(
    "SELECT id, name FROM organisations WHERE kind = 'supplier' ORDER BY name",
  );
  const a = await q.query<{
    id: string;
    name: string;
    operator: string;
    feeders: { id: string; name: string }[];
  }>(
    `SELECT na.id, na.name, o.name AS operator,
            coalesce(json_agg(json_build_object('id', f.id, 'name', f.name) ORDER BY f.id)
                     FILTER (WHERE f.id IS NOT NULL), '[]') AS feeders
       FROM network_areas na JOIN organisations o ON o.id = na.operator_id
       LEFT JOIN feeders f ON f.area_id = na.id
      GROUP BY na.id, na.name, o.name ORDER BY o.name, na.name`,
  );
  return { suppliers: s.rows, areas: a.rows };
}
