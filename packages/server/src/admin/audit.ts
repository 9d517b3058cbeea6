import type { AuditEntry, AuditExportQuery } from '@kilowire/contract';
import type { Q } from '../db/pool.ts';
import { csvField } from '../csv.ts';

/**
 * The audit log as the administrator reads it: filters, newest first, keyset-paged on
 * (at, id) so a page is one index range (audit_log_at) however deep the reader goes.
 */
export interface AuditFilter extends AuditExportQuery {
  limit: number;
  /** The id of the last row of the previous page (its time is read back exactly: microseconds). */
  before: number | null;
}

interface Row {
  id: number;
  at: Date;
  actor_id: number | null;
  actor_name: string | null;
  action: string;
  target: string | null;
  detail: unknown;
  ip: string | null;
}

export async function listAudit(q: Q, f: AuditFilter): Promise<{ items: AuditEntry[]; next: number | null }> {
  const params: unknown[] = [];
  const p = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  const where: string[] = [];
  if (f.actor) {
    if (/^\d{1,15}$/.test(f.actor)) where.push(`l.actor_id = ${p(Number(f.actor))}`);
    else {
      const like = p(`%${f.actor.replace(/[\\%_]/g, '\\$&')}%`);
      where.push(
        `l.actor_id IN (SELECT id FROM users WHERE display_name ILIKE ${like} OR email ILIKE ${like})`,
      );
    }
  }
  // 'staff.' is every staff action; 'staff.create' exactly that one.
  if (f.action) {
    where.push(
      f.action.endsWith('.')
        ? `l.action LIKE ${p(f.action.replace(/[\\%_]/g, '\\$&') + '%')}`
        : `l.action = ${p(f.action)}`,
    );
  }
  if (f.target) where.push(`l.target = ${p(f.target)}`);
  if (f.from) where.push(`l.at >= ${p(f.from)}`);
  if (f.to) where.push(`l.at < ${p(f.to)}`);
  if (f.before !== null) {
    const id = p(f.before);
    where.push(`(l.at, l.id) < ((SELECT b.at FROM audit_log b WHERE b.id = ${id}), ${id})`);
  }
  const { rows } = await q.query<Row>(
    `SELECT l.id, l.at, l.actor_id, u.display_name AS actor_name, l.action, l.target, l.detail, l.ip
       FROM audit_log l LEFT JOIN users u ON u.id = l.actor_id
      ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY l.at DESC, l.id DESC LIMIT ${p(f.limit + 1)}`,
    params,
  );
  const more = rows.length > f.limit;
  const page = rows.slice(0, f.limit);
  const last = page[page.length - 1];
  return {
    items: page.map((r) => ({
      id: r.id,
      at: r.at.toISOString(),
      actor: r.actor_id !== null ? { id: r.actor_id, name: r.actor_name ?? `user ${r.actor_id}` } : null,
      action: r.action,
      target: r.target,
      detail: r.detail ?? null,
      ip: r.ip,
    })),
    next: more && last ? last.id : null,
  };
}

export const AUDIT_CSV_HEADER = 'id,at,actor_id,actor,action,target,ip,detail\r\n';

export function auditCsvLine(e: AuditEntry): string {
  return (
    [
      e.id,
      e.at,
      e.actor?.id ?? null,
      e.actor?.name ?? null,
      e.action,
      e.target,
      e.ip,
      e.detail === null ? null : JSON.stringify(e.detail),
    ]
      .map(csvField)
      .join(',') + '\r\n'
  );
}

/** Every matching row, newest first, fetched a page at a time: the export never holds the log in memory. */
export async function* auditCsv(q: Q, f: AuditExportQuery): AsyncGenerator<string> {
  yield AUDIT_CSV_HEADER;
  let before: AuditFilter['before'] = null;
  for (;;) {
    const page = await listAudit(q, { ...f, limit: 1000, before });
    if (page.items.length) yield page.items.map(auditCsvLine).join('');
    if (!page.next) return;
    before = page.next;
  }
}
