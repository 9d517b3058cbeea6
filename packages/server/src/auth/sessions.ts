import { createHash, randomBytes } from 'node:crypto';
import type { StaffRole } from '@kilowire/contract/enums';
import type { PoolClient, Q } from '../db/pool.ts';
import type { Actor, Role } from '../policies.ts';
import { dummyPasswordHash, verifyPassword } from './passwords.ts';

/** Name of the session cookie; its value is the raw token, which is never stored. */
export const SESSION_COOKIE = 'kw_session';

/** Sessions are keyed by SHA-256 of the token: a leaked sessions table opens no session. */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export type Credentials =
  | { kind: 'consumer'; consumerId: string; password: string }
  | { kind: 'staff'; email: string; password: string };

export type LoginResult =
  | { ok: true; userId: number; role: Role; displayName: string; mustChangePassword: boolean }
  | { ok: false; userId: number | null; reason: 'unknown' | 'password' | 'disabled' };

/**
 * Check credentials. Every outcome costs one argon2 verification (against a dummy hash when
 * the user does not exist, against the real one when disabled), so timing does not tell an
 * attacker which consumer IDs or emails exist.
 */
export async function checkCredentials(pool: Q, cred: Credentials): Promise<LoginResult> {
  const { rows } =
    cred.kind === 'consumer'
      ? await pool.query<{
          id: number;
          role: Role;
          password_hash: string;
          disabled: boolean;
          display_name: string;
          must_change_password: boolean;
        }>(
          `SELECT id, role, password_hash, disabled, display_name, must_change_password FROM users WHERE login_id = $1 AND role = 'consumer'`,
          [cred.consumerId],
        )
      : await pool.query<{
          id: number;
          role: Role;
          password_hash: string;
          disabled: boolean;
          display_name: string;
          must_change_password: boolean;
        }>(
          `SELECT id, role, password_hash, disabled, display_name, must_change_password FROM users WHERE email = lower($1) AND role <> 'consumer'`,
          [cred.email],
        );
  const user = rows[0];
  const valid = await verifyPassword(user?.password_hash ?? (await dummyPasswordHash()), cred.password);
  if (!user) return { ok: false, userId: null, reason: 'unknown' };
  if (!valid) return { ok: false, userId: user.id, reason: 'password' };
  if (user.disabled) return { ok: false, userId: user.id, reason: 'disabled' };
  return {
    ok: true,
    userId: user.id,
    role: user.role,
    displayName: user.display_name,
    mustChangePassword: user.must_change_password,
  };
}

export interface NewSession {
  /** The raw token for the cookie (32 random bytes, base64url). */
  token: string;
  expiresAt: Date;
}

/**
 * Start a session for `userId` in the caller's transaction, revoking the session the request
 * came with (if any), so a token planted before login (session fixation) or left from a
 * previous user is dead.
 */
export async function startSession(
  c: PoolClient,
  userId: number,
  ttlHours: number,
  previousToken: string | undefined,
): Promise<NewSession> {
  const token = randomBytes(32).toString('base64url');
  if (previousToken) {
    await c.query('UPDATE sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL', [
      tokenHash(previousToken),
    ]);
  }
  const { rows } = await c.query<{ expires_at: Date }>(
    `INSERT INTO sessions (id, user_id, expires_at) VALUES ($1, $2, now() + make_interval(hours => $3))
     RETURNING expires_at`,
    [tokenHash(token), userId, ttlHours],
  );
  return { token, expiresAt: rows[0]!.expires_at };
}

/** Revoke the session of `token`; true if it was live. */
export async function revokeSession(q: Q, token: string): Promise<boolean> {
  const { rowCount } = await q.query(
    'UPDATE sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL',
    [tokenHash(token)],
  );
  return (rowCount ?? 0) > 0;
}

/** The actor behind a live session (not revoked, not expired, user not disabled), or null. */
export async function sessionActor(q: Q, token: string): Promise<Actor | null> {
  const { rows } = await q.query<{
    user_id: number;
    role: Role;
    org_id: number | null;
    consumer_id: number | null;
    staff_role: StaffRole | null;
    must_change_password: boolean;
  }>({
    // Named: every authenticated request runs it, so it is parsed and planned once per connection.
    name: 'session-actor',
    text: `SELECT u.id AS user_id, u.role, u.org_id, u.staff_role, u.must_change_password, c.id AS consumer_id
       FROM sessions s
       JOIN users u ON u.id = s.user_id
       LEFT JOIN consumers c ON c.user_id = u.id
      WHERE s.id = $1 AND s.revoked_at IS NULL AND s.expires_at > now() AND NOT u.disabled`,
    values: [tokenHash(token)],
  });
  const r = rows[0];
  if (!r) return null;
  const actor: Actor = { userId: r.user_id, role: r.role, orgId: r.org_id };
  if (r.consumer_id !== null) actor.consumerId = r.consumer_id;
  if (r.staff_role !== null) actor.staffRole = r.staff_role;
  if (r.must_change_password) actor.mustChangePassword = true;
  return actor;
}

/** The signed-in user behind a live session and when the session ends, or null. */
export async function sessionInfo(
  q: Q,
  token: string,
): Promise<{
  userId: number;
  role: Role;
  displayName: string;
  expiresAt: Date;
  mustChangePassword: boolean;
} | null> {
  const { rows } = await q.query<{
    user_id: number;
    role: Role;
    display_name: string;
    expires_at: Date;
    must_change_password: boolean;
  }>(
    `SELECT u.id AS user_id, u.role, u.display_name, s.expires_at, u.must_change_password
       FROM sessions s JOIN users u ON u.id = s.user_id
      WHERE s.id = $1 AND s.revoked_at IS NULL AND s.expires_at > now() AND NOT u.disabled`,
    [tokenHash(token)],
  );
  const r = rows[0];
  return r
    ? {
        userId: r.user_id,
        role: r.role,
        displayName: r.display_name,
        expiresAt: r.expires_at,
        mustChangePassword: r.must_change_password,
      }
    : null;
}
