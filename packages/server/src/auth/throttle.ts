import type { Q } from '../db/pool.ts';

/**
 * Failed-login throttling, in PostgreSQL so that every API process agrees. It slows the
 * guesser, not the account's owner: the backoff is kept per (account, source address) — a
 * household signing in from home is not locked out by someone guessing its consumer ID from
 * elsewhere — plus a budget per source address across all accounts. Unknown accounts are
 * counted exactly like real ones, so the answers never tell which consumer IDs exist.
 */

/** Failures per (account, source) before each further attempt must wait. */
export const FREE_FAILURES = 5;
/** The wait doubles per failure past the free ones, from 1 s, up to this (s). */
export const MAX_BACKOFF_S = 900;
/** Failures per source address, over all accounts, within SOURCE_WINDOW_S. */
export const SOURCE_FAILURES = 50;
export const SOURCE_WINDOW_S = 600;

export function accountKey(account: string, ip: string): string {
  return `a:${account.toLowerCase()}|${ip}`;
}
export function sourceKey(ip: string): string {
  return `s:${ip}`;
}

/** Seconds the caller must wait before trying, or 0. */
export async function throttled(q: Q, keys: string[]): Promise<number> {
  const { rows } = await q.query<{ wait: number }>(
    `SELECT coalesce(max(ceil(extract(epoch FROM blocked_until - now()))), 0)::int AS wait
       FROM login_throttle WHERE key = ANY($1::text[]) AND blocked_until > now()`,
    [keys],
  );
  return Math.max(0, rows[0]?.wait ?? 0);
}

/** Count a failure against the (account, source) backoff and the source's budget. */
export async function recordFailure(q: Q, account: string, ip: string): Promise<void> {
  await q.query(
    `INSERT INTO login_throttle AS t (key, failures, window_start, blocked_until, updated_at)
     VALUES ($1, 1, now(), NULL, now())
     ON CONFLICT (key) DO UPDATE SET failures = t.failures + 1, updated_at = now(),
       blocked_until = CASE WHEN t.failures + 1 > $2
         THEN now() + make_interval(secs => least($3::float8, power(2, t.failures + 1 - $2 - 1))) ELSE NULL END`,
    [accountKey(account, ip), FREE_FAILURES, MAX_BACKOFF_S],
  );
  await q.query(
    `INSERT INTO login_throttle AS t (key, failures, window_start, updated_at) VALUES ($1, 1, now(), now())
     ON CONFLICT (key) DO UPDATE SET
       failures = CASE WHEN t.window_start < now() - make_interval(secs => $3) THEN 1 ELSE t.failures + 1 END,
       window_start = CASE WHEN t.window_start < now() - make_interval(secs => $3) THEN now() ELSE t.window_start END,
       blocked_until = CASE WHEN t.window_start >= now() - make_interval(secs => $3) AND t.failures + 1 >= $2
         THEN t.window_start + make_interval(secs => $3) ELSE NULL END,
       updated_at = now()`,
    [sourceKey(ip), SOURCE_FAILURES, SOURCE_WINDOW_S],
  );
}

/** A successful sign-in clears the backoff of that (account, source). */
export async function recordSuccess(q: Q, account: string, ip: string): Promise<void> {
  await q.query('DELETE FROM login_throttle WHERE key = $1', [accountKey(account, ip)]);
}

/** Forget entries idle for a day (called now and then; the table stays small). */
export async function pruneThrottle(q: Q): Promise<void> {
  await q.query(
    `DELETE FROM login_throttle WHERE updated_at < now() - interval '1 day' AND (blocked_until IS NULL OR blocked_until < now())`,
  );
}
