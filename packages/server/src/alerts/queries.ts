import type { Q } from '../db/pool.ts';
import { scopeSql, type Actor } from '../policies.ts';
import type { AlertType } from './types.ts';

export interface AlertRow {
  id: number;
  type: AlertType;
  severity: 'info' | 'warning' | 'critical';
  title: string;
  message: string;
  /** null for an operator's alert about no single meter (#9). */
  serial: string | null;
  created_at: Date;
  read_at: Date | null;
}

export interface AlertFilter {
  type?: AlertType | undefined;
  from?: string | undefined;
  to?: string | undefined;
  status?: 'read' | 'unread' | undefined;
  limit: number;
  beforeId: number | null;
}

/** One page of the alerts the actor may see, newest first; `unread` counts the whole scope. */
export async function listAlerts(
  q: Q,
  actor: Actor,
  f: AlertFilter,
): Promise<{ items: AlertRow[]; nextBefore: number | null; unread: number }> {
  const scope = scopeSql(actor, 'alerts', 'a', 7);
  const { rows } = await q.query<AlertRow>(
    `SELECT a.id, a.type, a.severity, a.title, a.message, m.serial, a.created_at, a.read_at
       FROM alerts a LEFT JOIN meters m ON m.id = a.meter_id
      WHERE (${scope.sql})
        AND ($1::text IS NULL OR a.type = $1)
        AND ($2::date IS NULL OR (a.created_at AT TIME ZONE coalesce(m.tz, 'Europe/London'))::date >= $2)
        AND ($3::date IS NULL OR (a.created_at AT TIME ZONE coalesce(m.tz, 'Europe/London'))::date <= $3)
        AND ($4::text IS NULL OR ($4 = 'read') = (a.read_at IS NOT NULL))
        AND ($5::bigint IS NULL OR a.id < $5)
      ORDER BY a.id DESC LIMIT $6`,
    [
      f.type ?? null,
      f.from ?? null,
      f.to ?? null,
      f.status ?? null,
      f.beforeId,
      f.limit + 1,
      ...scope.params,
    ],
  );
  const unreadScope = scopeSql(actor, 'alerts', 'a', 1);
  const unread = (
    await q.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM alerts a WHERE a.read_at IS NULL AND (${unreadScope.sql})`,
      unreadScope.params,
    )
  ).rows[0]!.n;
  const more = rows.length > f.limit;
  const items = more ? rows.slice(0, f.limit) : rows;
  return { items, nextBefore: more ? items[items.length - 1]!.id : null, unread };
}

/** Mark one of the consumer's alerts read; false if it is not theirs (or does not exist). */
export async function markRead(q: Q, consumerId: number, alertId: number): Promise<boolean> {
  const { rowCount } = await q.query(
    `UPDATE alerts SET read_at = coalesce(read_at, now()) WHERE id = $1 AND consumer_id = $2 AND web`,
    [alertId, consumerId],
  );
  return (rowCount ?? 0) > 0;
}

export async function markAllRead(q: Q, consumerId: number): Promise<number> {
  const { rowCount } = await q.query(
    'UPDATE alerts SET read_at = now() WHERE consumer_id = $1 AND read_at IS NULL AND web',
    [consumerId],
  );
  return rowCount ?? 0;
}
