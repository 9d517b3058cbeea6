import type { Q } from '../db/pool.ts';
import { scopeSql, type Actor } from '../policies.ts';

/** The built-in outbox: every email and text the system would have sent with no SMTP/SMSC configured. */
export interface OutboxRow {
  id: number;
  channel: 'email' | 'sms';
  recipient: string;
  subject: string | null;
  body: string;
  created_at: Date;
  alert_id: number | null;
}

export async function listOutbox(
  q: Q,
  actor: Actor,
  f: { channel?: 'email' | 'sms' | undefined; limit: number; beforeId: number | null },
): Promise<{ items: OutboxRow[]; nextBefore: number | null }> {
  const scope = scopeSql(actor, 'outbox', 'o', 4);
  const { rows } = await q.query<OutboxRow>(
    `SELECT o.id, o.channel, o.recipient, o.subject, o.body, o.created_at, o.alert_id FROM outbox o
      WHERE (${scope.sql}) AND ($1::text IS NULL OR o.channel = $1) AND ($2::bigint IS NULL OR o.id < $2)
      ORDER BY o.id DESC LIMIT $3`,
    [f.channel ?? null, f.beforeId, f.limit + 1, ...scope.params],
  );
  const more = rows.length > f.limit;
  const items = more ? rows.slice(0, f.limit) : rows;
  return { items, nextBefore: more ? items[items.length - 1]!.id : null };
}
