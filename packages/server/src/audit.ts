import type { Pool, PoolClient } from './db/pool.ts';

type Q = Pool | PoolClient;

export interface AuditEntry {
  /** users.id of who did it; null when unknown (a failed login for an unknown ID). */
  actorId: number | null;
  /** Stable dotted name: 'session.login', 'session.login_failed', 'session.logout', 'meter.command'. */
  action: string;
  /** What it was done to, e.g. a meter serial or the login identifier. */
  target?: string | null;
  /** Structured detail. Never passwords, tokens or keys. */
  detail?: Record<string, unknown> | null;
  ip?: string | null;
}

/** Append one row to audit_log; pass the transaction's client to commit it with the change. */
export async function audit(q: Q, e: AuditEntry): Promise<void> {
  await q.query('INSERT INTO audit_log (actor_id, action, target, detail, ip) VALUES ($1, $2, $3, $4, $5)', [
    e.actorId,
    e.action,
    e.target ?? null,
    e.detail ? JSON.stringify(e.detail) : null,
    e.ip ?? null,
  ]);
}
