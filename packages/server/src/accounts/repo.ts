import { createHash, randomBytes } from 'node:crypto';
import type { MeterMode, OrgKind, StaffRole } from '@kilowire/contract/enums';
import type { Q } from '../db/pool.ts';
import { hashPassword } from '../auth/passwords.ts';

export type { Role } from '../policies.ts';
export type { OrgKind } from '@kilowire/contract/enums';

/** Meter broker passwords are 24 random bytes, so SHA-256 (fast, for 10k connects) is enough: nothing to guess offline. */
export function credentialHash(password: string): string {
  return createHash('sha256').update(password).digest('hex');
}

export async function createOrganisation(q: Q, kind: OrgKind, slug: string, name: string): Promise<number> {
  const { rows } = await q.query<{ id: number }>(
    'INSERT INTO organisations (kind, slug, name) VALUES ($1, $2, $3) RETURNING id',
    [kind, slug, name],
  );
  return rows[0]!.id;
}

export async function createArea(
  q: Q,
  id: string,
  operatorId: number,
  name: string,
  feeders: string[],
): Promise<void> {
  await q.query('INSERT INTO network_areas (id, operator_id, name) VALUES ($1, $2, $3)', [
    id,
    operatorId,
    name,
  ]);
  for (const f of feeders) {
    await q.query('INSERT INTO feeders (id, area_id, name) VALUES ($1, $2, $3)', [f, id, `Feeder ${f}`]);
  }
}

export async function createStaffUser(
  q: Q,
  u: {
    role: 'supplier' | 'operator' | 'admin';
    email: string;
    password: string;
    orgId: number | null;
    name: string;
    /** Supplier and operator staff only; admin unless said otherwise. */
    staffRole?: StaffRole;
    /** An initial password someone else chose: the user must replace it at first sign-in. */
    mustChangePassword?: boolean;
  },
): Promise<number> {
  const staffRole = u.role === 'supplier' || u.role === 'operator' ? (u.staffRole ?? 'admin') : null;
  const { rows } = await q.query<{ id: number }>(
    `INSERT INTO users (role, email, org_id, password_hash, display_name, staff_role, must_change_password)
     VALUES ($1, lower($2), $3, $4, $5, $6, $7) RETURNING id`,
    [
      u.role,
      u.email,
      u.orgId,
      await hashPassword(u.password),
      u.name,
      staffRole,
      u.mustChangePassword ?? false,
    ],
  );
  return rows[0]!.id;
}

export interface NewHousehold {
  loginId: string;
  password: string;
  name: string;
  email?: string;
  mobile?: string;
  address?: string;
  postcode?: string;
  vulnerable?: boolean;
  supplierId: number;
  mode: MeterMode;
  billingCycleDay?: number;
  meter: {
    serial: string;
    areaId: string;
    feederId?: string;
    tz?: string;
    credential?: string;
    intervalS?: 900 | 1800;
  };
  /** Pre-computed hash, so seeding many households does not pay argon2 each time. */
  passwordHash?: string;
}

export interface CreatedHousehold {
  userId: number;
  consumerId: number;
  accountId: number;
  meterId: number;
  meterSerial: string;
  /** The meter's broker password, shown once (provisioning). */
  meterCredential: string;
}

/** A consumer with a login, an account and one meter: the unit every test and the demo need. */
export async function createHousehold(q: Q, h: NewHousehold): Promise<CreatedHousehold> {
  const pwHash = h.passwordHash ?? (await hashPassword(h.password));
  const user = await q.query<{ id: number }>(
    `INSERT INTO users (role, login_id, password_hash, display_name) VALUES ('consumer', $1, $2, $3) RETURNING id`,
    [h.loginId, pwHash, h.name],
  );
  const userId = user.rows[0]!.id;
  const consumer = await q.query<{ id: number }>(
    `INSERT INTO consumers (user_id, supplier_id, name, email, mobile, address, postcode, vulnerable)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
    [
      userId,
      h.supplierId,
      h.name,
      h.email ?? null,
      h.mobile ?? null,
      h.address ?? null,
      h.postcode ?? null,
      h.vulnerable ?? false,
    ],
  );
  const consumerId = consumer.rows[0]!.id;
  const account = await q.query<{ id: number }>(
    'INSERT INTO accounts (consumer_id, supplier_id, mode, billing_cycle_day) VALUES ($1, $2, $3, $4) RETURNING id',
    [consumerId, h.supplierId, h.mode, h.billingCycleDay ?? 1],
  );
  const accountId = account.rows[0]!.id;
  const credential = h.meter.credential ?? randomBytes(24).toString('base64url');
  const meter = await q.query<{ id: number }>(
    `INSERT INTO meters (serial, account_id, supplier_id, area_id, feeder_id, tz, interval_s, credential_hash, mode)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
    [
      h.meter.serial,
      accountId,
      h.supplierId,
      h.meter.areaId,
      h.meter.feederId ?? null,
      h.meter.tz ?? 'Europe/London',
      h.meter.intervalS ?? 1800,
      credentialHash(credential),
      h.mode,
    ],
  );
  return {
    userId,
    consumerId,
    accountId,
    meterId: meter.rows[0]!.id,
    meterSerial: h.meter.serial,
    meterCredential: credential,
  };
}
