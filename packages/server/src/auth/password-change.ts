import type { PoolClient, Q } from '../db/pool.ts';
import { tokenHash } from './sessions.ts';
import { verifyPassword } from './passwords.ts';

/** Whether `password` is the user's current password (one argon2 verification). */
export async function checkCurrentPassword(q: Q, userId: number, password: string): Promise<boolean> {
  const { rows } = await q.query<{ password_hash: string }>('SELECT password_hash FROM users WHERE id = $1', [
    userId,
  ]);
  const row = rows[0];
  return row !== undefined && (await verifyPassword(row.password_hash, password));
}

/**
 * Set a new password hash in the caller's transaction and sign the user out everywhere
 * else: a stolen session dies with the old password; the session making the change lives.
 */
export async function setPassword(
  c: PoolClient,
  userId: number,
  newHash: string,
  keepToken: string | undefined,
): Promise<void> {
  // A password of one's own: the initial one an administrator chose no longer binds.
  await c.query('UPDATE users SET password_hash = $2, must_change_password = false WHERE id = $1', [
    userId,
    newHash,
  ]);
  await c.query(
    'UPDATE sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL AND id <> $2',
    [userId, keepToken ? tokenHash(keepToken) : ''],
  );
}
