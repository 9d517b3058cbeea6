import { createHash, randomBytes } from 'node:crypto';
import type { StaffRole } from '@kilowire/contract/enums';
import type { StaffUser, StaffUserCreate } from '@kilowire/contract';
import type { PoolClient, Q } from '../db/pool.ts';
import { AppError } from '../errors.ts';
import { scopeSql, type Actor } from '../policies.ts';

/**
 * Staff accounts: administrators manage everyone's, supplier admins their own organisation's
 * (the 'users' scope in policies.ts). Someone else's user is 404, as if it did not exist.
 *
 * A new user gets in either by an invitation (a one-time link whose token is stored only as
 * its SHA-256, expiring) or by an initial password they must replace at first sign-in.
 */

/** How long an invitation link stays valid. */
export const INVITE_TTL_HOURS = 72;

/**
 * The password hash of a user who has not chosen one yet: not an argon2 string, so no
 * password ever verifies against it (verifyPassword answers false), and it marks "invited".
 */
export const NO_PASSWORD = '!invited';

export function inviteTokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

interface UserRow {
  id: number;
  email: string;
  display_name: string;
  role: StaffUser['role'];
  staff_role: StaffRole | null;
  org_id: number | null;
  org_name: string | null;
  org_kind: 'supplier' | 'network_operator' | 'platform' | null;
  disabled: boolean;
  must_change_password: boolean;
  invited: boolean;
  invite_expires_at: Date | null;
  created_at: Date;
}

const SELECT = `SELECT u.id, u.email, u.display_name, u.role, u.staff_role, u.org_id, o.name AS org_name,
       o.kind AS org_kind, u.disabled, u.must_change_password, u.password_hash = '${NO_PASSWORD}' AS invited,
       (SELECT max(i.expires_at) FROM staff_invites i
         WHERE i.user_id = u.id AND i.used_at IS NULL AND i.revoked_at IS NULL) AS invite_expires_at,
       u.created_at
  FROM users u LEFT JOIN organisations o ON o.id = u.org_id`;

function present(r: UserRow): StaffUser {
  return {
    id: r.id,
    email: r.email,
    name: r.display_name,
    role: r.role,
    staffRole: r.staff_role,
    organisation: r.org_id !== null ? { id: r.org_id, name: r.org_name!, kind: r.org_kind! } : null,
    disabled: r.disabled,
    mustChangePassword: r.must_change_password,
    status: r.disabled ? 'disabled' : r.invited ? 'invited' : 'active',
    inviteExpiresAt: r.invite_expires_at?.toISOString() ?? null,
    createdAt: r.created_at.toISOString(),
  };
}

/** Staff users the actor may manage, by id (keyset, newest first). */
export async function listStaffUsers(
  q: Q,
  actor: Actor,
  f: { q?: string | undefined; orgId?: number | undefined; limit: number; before: number | null },
): Promise<{ items: StaffUser[]; next: number | null }> {
  const params: unknown[] = [];
  const p = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  const where = [`u.role <> 'consumer'`];
  if (f.q) {
    const like = p(`%${f.q.replace(/[\\%_]/g, '\\$&')}%`);
    where.push(`(u.display_name ILIKE ${like} OR u.email ILIKE ${like})`);
  }
  if (f.orgId) where.push(`u.org_id = ${p(f.orgId)}`);
  if (f.before !== null) where.push(`u.id < ${p(f.before)}`);
  const scope = scopeSql(actor, 'users', 'u', params.length + 1);
  params.push(...scope.params);
  where.push(scope.sql);
  const { rows } = await q.query<UserRow>(
    `${SELECT} WHERE ${where.join(' AND ')} ORDER BY u.id DESC LIMIT ${p(f.limit + 1)}`,
    params,
  );
  const more = rows.length > f.limit;
  const items = rows.slice(0, f.limit).map(present);
  return { items, next: more ? items[items.length - 1]!.id : null };
}

/** A staff user in the actor's scope, locked for a change; 404 otherwise. */
async function lockUser(c: PoolClient, actor: Actor, id: number): Promise<UserRow> {
  const scope = scopeSql(actor, 'users', 'u', 2);
  const lock = await c.query(
    `SELECT 1 FROM users u WHERE u.id = $1 AND u.role <> 'consumer' AND ${scope.sql} FOR UPDATE OF u`,
    [id, ...scope.params],
  );
  if (!lock.rowCount) throw new AppError('NOT_FOUND', 'no such staff user');
  return (await c.query<UserRow>(`${SELECT} WHERE u.id = $1`, [id])).rows[0]!;
}

export async function staffUser(q: Q, id: number): Promise<StaffUser> {
  return present((await q.query<UserRow>(`${SELECT} WHERE u.id = $1`, [id])).rows[0]!);
}

function notYourself(actor: Actor, id: number, what: string): void {
  if (actor.userId === id) throw new AppError('FORBIDDEN', `you cannot ${what} yourself`);
}

async function revokeSessions(c: PoolClient, userId: number): Promise<void> {
  await c.query('UPDATE sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL', [userId]);
}

/** Issue a one-time invitation link (revoking earlier ones); the token is returned once. */
async function issueInvite(
  c: PoolClient,
  userId: number,
  by: number,
): Promise<{ token: string; expiresAt: Date }> {
  await c.query(
    'UPDATE staff_invites SET revoked_at = now() WHERE user_id = $1 AND used_at IS NULL AND revoked_at IS NULL',
    [userId],
  );
  const token = randomBytes(32).toString('base64url');
  const { rows } = await c.query<{ expires_at: Date }>(
    `INSERT INTO staff_invites (user_id, token_hash, created_by, expires_at)
     VALUES ($1, $2, $3, now() + make_interval(hours => $4)) RETURNING expires_at`,
    [userId, inviteTokenHash(token), by, INVITE_TTL_HOURS],
  );
  return { token, expiresAt: rows[0]!.expires_at };
}

export interface Issued {
  user: StaffUser;
  invitePath: string | null;
  inviteExpiresAt: string | null;
}

/**
 * How the user gets in. `passwordHash` is computed by the caller outside the transaction
 * (argon2 is slow); an invite leaves the account without a usable password until accepted.
 */
async function grantAccess(
  c: PoolClient,
  actor: Actor,
  userId: number,
  passwordHash: string | null,
): Promise<{ invitePath: string | null; inviteExpiresAt: string | null }> {
  if (passwordHash !== null) {
    await c.query(`UPDATE users SET password_hash = $2, must_change_password = true WHERE id = $1`, [
      userId,
      passwordHash,
    ]);
    await c.query(
      'UPDATE staff_invites SET revoked_at = now() WHERE user_id = $1 AND used_at IS NULL AND revoked_at IS NULL',
      [userId],
    );
    return { invitePath: null, inviteExpiresAt: null };
  }
  await c.query(`UPDATE users SET password_hash = $2, must_change_password = false WHERE id = $1`, [
    userId,
    NO_PASSWORD,
  ]);
  const inv = await issueInvite(c, userId, actor.userId);
  return { invitePath: `/invite/${inv.token}`, inviteExpiresAt: inv.expiresAt.toISOString() };
}

/**
 * Create a staff user. Supplier admins create their own organisation's supplier staff only;
 * administrators choose the organisation (the role follows its kind) or a platform admin.
 */
export async function createStaffUser(
  c: PoolClient,
  actor: Actor,
  b: Omit<StaffUserCreate, 'staffRole' | 'platformAdmin'> & { staffRole: StaffRole; platformAdmin: boolean },
  passwordHash: string | null,
): Promise<Issued> {
  let role: 'supplier' | 'operator' | 'admin';
  let orgId: number | null;
  if (actor.role !== 'admin') {
    // policies gave staff.manage to supplier admins: their own organisation, never platform admins.
    if (b.platformAdmin) throw new AppError('FORBIDDEN', 'only administrators create administrators');
    if (b.orgId != null && b.orgId !== actor.orgId) throw new AppError('NOT_FOUND', 'no such organisation');
    role = 'supplier';
    orgId = actor.orgId;
  } else if (b.platformAdmin) {
    role = 'admin';
    orgId = null;
  } else {
    if (b.orgId == null) {
      throw new AppError('VALIDATION', 'body.orgId: required for organisation staff', [
        { path: 'body.orgId', message: 'required for organisation staff' },
      ]);
    }
    const o = await c.query<{ kind: string }>('SELECT kind FROM organisations WHERE id = $1', [b.orgId]);
    const kind = o.rows[0]?.kind;
    if (kind !== 'supplier' && kind !== 'network_operator')
      throw new AppError('NOT_FOUND', 'no such organisation');
    role = kind === 'supplier' ? 'supplier' : 'operator';
    orgId = b.orgId;
  }
  const { rows } = await c.query<{ id: number }>(
    `INSERT INTO users (role, email, org_id, password_hash, display_name, staff_role)
     VALUES ($1, lower($2), $3, $4, $5, $6) ON CONFLICT (email) DO NOTHING RETURNING id`,
    [role, b.email, orgId, NO_PASSWORD, b.name, role === 'admin' ? null : b.staffRole],
  );
  if (!rows[0]) throw new AppError('CONFLICT', 'a user with that email exists');
  const access = await grantAccess(c, actor, rows[0].id, passwordHash);
  return { user: await staffUser(c, rows[0].id), ...access };
}

/** Disable (sessions revoked at once: a disabled user's open tabs stop working) or enable. */
export async function setDisabled(
  c: PoolClient,
  actor: Actor,
  id: number,
  disabled: boolean,
): Promise<StaffUser> {
  await lockUser(c, actor, id);
  if (disabled) notYourself(actor, id, 'disable');
  await c.query('UPDATE users SET disabled = $2 WHERE id = $1', [id, disabled]);
  if (disabled) await revokeSessions(c, id);
  return staffUser(c, id);
}

/** A new invite or initial password; every session of the user ends. */
export async function resetAccess(
  c: PoolClient,
  actor: Actor,
  id: number,
  passwordHash: string | null,
): Promise<Issued> {
  await lockUser(c, actor, id);
  notYourself(actor, id, 'reset');
  await revokeSessions(c, id);
  const access = await grantAccess(c, actor, id, passwordHash);
  return { user: await staffUser(c, id), ...access };
}

export async function setStaffRole(
  c: PoolClient,
  actor: Actor,
  id: number,
  staffRole: StaffRole,
): Promise<StaffUser> {
  const u = await lockUser(c, actor, id);
  if (u.role === 'admin') {
    throw new AppError('VALIDATION', 'body.staffRole: platform administrators have no staff role', [
      { path: 'body.staffRole', message: 'platform administrators have no staff role' },
    ]);
  }
  if (staffRole !== 'admin') notYourself(actor, id, 'demote');
  await c.query('UPDATE users SET staff_role = $2 WHERE id = $1', [id, staffRole]);
  return staffUser(c, id);
}

/** Who an invitation is for, while it can still be accepted; null otherwise (one answer for every reason). */
export async function inviteInfo(
  q: Q,
  token: string,
): Promise<{ email: string; name: string; organisation: string | null; expiresAt: string } | null> {
  const { rows } = await q.query<{
    email: string;
    display_name: string;
    org: string | null;
    expires_at: Date;
  }>(
    `SELECT u.email, u.display_name, o.name AS org, i.expires_at
       FROM staff_invites i JOIN users u ON u.id = i.user_id LEFT JOIN organisations o ON o.id = u.org_id
      WHERE i.token_hash = $1 AND i.used_at IS NULL AND i.revoked_at IS NULL AND i.expires_at > now()
        AND NOT u.disabled`,
    [inviteTokenHash(token)],
  );
  const r = rows[0];
  return r
    ? { email: r.email, name: r.display_name, organisation: r.org, expiresAt: r.expires_at.toISOString() }
    : null;
}

/**
 * Accept an invitation: mark it used and set the password, in one transaction. The UPDATE's
 * row lock makes it single use: a concurrent second accept waits, re-checks `used_at IS
 * NULL` after the first commits, and finds nothing. Null when it cannot be accepted.
 */
export async function acceptInvite(
  c: PoolClient,
  token: string,
  passwordHash: string,
): Promise<number | null> {
  const { rows } = await c.query<{ user_id: number }>(
    `UPDATE staff_invites i SET used_at = now()
      WHERE i.token_hash = $1 AND i.used_at IS NULL AND i.revoked_at IS NULL AND i.expires_at > now()
        AND EXISTS (SELECT 1 FROM users u WHERE u.id = i.user_id AND NOT u.disabled)
      RETURNING i.user_id`,
    [inviteTokenHash(token)],
  );
  const userId = rows[0]?.user_id;
  if (userId === undefined) return null;
  await c.query('UPDATE users SET password_hash = $2, must_change_password = false WHERE id = $1', [
    userId,
    passwordHash,
  ]);
  await revokeSessions(c, userId);
  return userId;
}
