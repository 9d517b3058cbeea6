import { promisify } from 'node:util';
import { gunzip as gunzipCb, gzip as gzipCb } from 'node:zlib';
import type { Extract, ExtractSelection, ExtractStatus } from '@kilowire/contract';
import { emitEvent } from '../events/emit.ts';
import { tx, type Pool, type PoolClient, type Q } from '../db/pool.ts';
import type { DomainEvent, Subscriber } from '../events/types.ts';
import { scopeSql, type Actor } from '../policies.ts';

const gzip = promisify(gzipCb);
const gunzip = promisify(gunzipCb);

/**
 * Monthly consumption extracts (S5). One CSV file, one row per line:
 *
 *   kind,serial,period,wh,intervals,estimated
 *   daily,KW1A,2026-10-01,8123,48,0          one per local day with data
 *   ...
 *   monthly,KW1A,2026-10,251234,1490,2       one per meter, after its days (0 when no data)
 *
 * `kind` keeps days and month totals in one file that sorts and filters in a spreadsheet;
 * days are each meter's local calendar days (daily_rollups is kept per local day in the
 * meter's own time zone, so a clock-change day has 46 or 50 half-hours). Energy in integer
 * Wh. Meters in serial order.
 *
 * The jobs service fixes the meter list when it starts (extract_meters), then writes the
 * CSV in chunks of `chunk` meters: each chunk is one gzip member in extract_chunks,
 * committed with the progress that counts it. A job that dies resumes at the first missing
 * chunk; a chunk is never written twice (primary key), so no row is duplicated.
 */
export const EXTRACT_HEADER = 'kind,serial,period,wh,intervals,estimated\n';

export interface ExtractRow {
  id: number;
  supplier_id: number;
  month: string;
  selection: ExtractSelection;
  status: ExtractStatus;
  meters_total: number | null;
  meters_done: number;
  rows: number;
  bytes: number;
  error: string | null;
  requested_by: string | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
}

export function presentExtract(r: ExtractRow): Extract {
  return {
    id: Number(r.id),
    month: r.month.slice(0, 7),
    selection: r.selection,
    status: r.status,
    metersTotal: r.meters_total,
    metersDone: r.meters_done,
    rows: r.rows,
    bytes: r.bytes,
    error: r.error,
    requestedBy: r.requested_by,
    createdAt: r.created_at.toISOString(),
    startedAt: r.started_at?.toISOString() ?? null,
    finishedAt: r.finished_at?.toISOString() ?? null,
  };
}

const SELECT = `
  SELECT x.id, x.supplier_id, x.month, x.selection, x.status, x.meters_total, x.meters_done, x.rows, x.bytes,
         x.error, u.display_name AS requested_by, x.created_at, x.started_at, x.finished_at
    FROM extracts x LEFT JOIN users u ON u.id = x.requested_by`;

/** Create the extract and the event that makes the jobs service queue it (same transaction). */
export async function createExtract(
  c: PoolClient,
  o: { supplierId: number; requestedBy: number; month: string; selection: ExtractSelection },
): Promise<number> {
  const { rows } = await c.query<{ id: string }>(
    `INSERT INTO extracts (supplier_id, requested_by, month, selection) VALUES ($1, $2, ($3 || '-01')::date, $4) RETURNING id`,
    [o.supplierId, o.requestedBy, o.month, JSON.stringify(o.selection)],
  );
  const id = Number(rows[0]!.id);
  await emitEvent(c, { type: 'extract.requested', meterId: null, payload: { extractId: id } });
  return id;
}

/** One extract in the actor's scope; null when not found or not theirs. */
export async function extractInScope(q: Q, actor: Actor, id: number): Promise<ExtractRow | null> {
  const s = scopeSql(actor, 'extracts', 'x', 2);
  const { rows } = await q.query<ExtractRow>(`${SELECT} WHERE x.id = $1 AND ${s.sql}`, [id, ...s.params]);
  return rows[0] ?? null;
}

export async function listExtracts(
  q: Q,
  actor: Actor,
  o: { limit: number; beforeId: number | null },
): Promise<{ items: ExtractRow[]; nextBefore: number | null }> {
  const s = scopeSql(actor, 'extracts', 'x', 3);
  const { rows } = await q.query<ExtractRow>(
    `${SELECT} WHERE ($1::bigint IS NULL OR x.id < $1) AND ${s.sql} ORDER BY x.id DESC LIMIT $2`,
    [o.beforeId, o.limit + 1, ...s.params],
  );
  const items = rows.slice(0, o.limit);
  return { items, nextBefore: rows.length > o.limit ? Number(items[items.length - 1]!.id) : null };
}

/** The CSV of a finished extract, one decompressed chunk at a time (memory: one chunk). */
export async function* extractCsv(pool: Pool, id: number): AsyncGenerator<Buffer> {
  const { rows } = await pool.query<{ n: number }>(
    'SELECT n FROM extract_chunks WHERE extract_id = $1 ORDER BY n',
    [id],
  );
  for (const { n } of rows) {
    const r = await pool.query<{ gz: Buffer }>(
      'SELECT gz FROM extract_chunks WHERE extract_id = $1 AND n = $2',
      [id, n],
    );
    if (r.rows[0]) yield await gunzip(r.rows[0].gz);
  }
}

/** The jobs service's subscriber: a requested extract becomes a job on the extract queue. */
export function extractsSubscriber(queue: (extractId: number) => Promise<void>): Subscriber {
  return {
    name: 'extracts',
    types: ['extract.requested'],
    async handle(events: DomainEvent[]): Promise<void> {
      for (const e of events)
        if (e.type === 'extract.requested')
          await queue((e as DomainEvent<'extract.requested'>).payload.extractId);
    },
  };
}

export interface ExtractRunOptions {
  /** Meters per chunk (one transaction, one gzip member). */
  chunk: number;
  /** Chunks produced at once (each on its own connection). */
  workers?: number;
  /**
   * Write at most this many chunks in this call and return (the rest stays for the next
   * run): a slice of the work, as a process that dies midway leaves it.
   */
  maxChunks?: number;
}

/**
 * Produce (or resume) an extract. Safe to run again, and by two processes at once: the
 * meter list is fixed once under a row lock, each chunk is claimed by its primary key.
 */
export async function runExtract(
  pool: Pool,
  id: number,
  o: ExtractRunOptions,
): Promise<ExtractStatus | null> {
  const start = await tx(pool, async (c) => {
    const { rows } = await c.query<{
      supplier_id: number;
      month: string;
      selection: ExtractSelection;
      status: ExtractStatus;
      meters_total: number | null;
    }>('SELECT supplier_id, month, selection, status, meters_total FROM extracts WHERE id = $1 FOR UPDATE', [
      id,
    ]);
    const x = rows[0];
    if (!x) return null;
    if (x.status === 'done' || x.status === 'failed') return { ...x, total: x.meters_total ?? 0 };
    let total = x.meters_total;
    if (total === null) {
      const sel = x.selection;
      // The selection's meters of this supplier, fixed now; a tariff filter reads the
      // tariff the meter is on for the month's first day.
      const ins = await c.query(
        `INSERT INTO extract_meters (extract_id, ord, meter_id)
         SELECT $1, (row_number() OVER (ORDER BY m.serial))::int - 1, m.id
           FROM meters m LEFT JOIN accounts a ON a.id = m.account_id
          WHERE m.supplier_id = $2
            AND ($3::text IS NULL OR a.mode = $3)
            AND ($4::text[] IS NULL OR m.serial = ANY($4))
            AND ($5::int IS NULL OR (SELECT mt.tariff_id FROM meter_tariffs mt
                                      WHERE mt.meter_id = m.id AND mt.from_day <= $6::date
                                      ORDER BY mt.from_day DESC LIMIT 1) = $5)`,
        [id, x.supplier_id, sel.mode ?? null, sel.serials ?? null, sel.tariffId ?? null, x.month],
      );
      total = ins.rowCount ?? 0;
      await c.query(
        `UPDATE extracts SET status = 'running', meters_total = $2, started_at = now() WHERE id = $1`,
        [id, total],
      );
    }
    return { ...x, total };
  });
  if (!start) return null;
  if (start.status === 'done' || start.status === 'failed') return start.status;
  const chunks = Math.max(1, Math.ceil(start.total / o.chunk));
  const have = new Set(
    (await pool.query<{ n: number }>('SELECT n FROM extract_chunks WHERE extract_id = $1', [id])).rows.map(
      (r) => r.n,
    ),
  );
  const todo: number[] = [];
  for (let n = 0; n < chunks; n++) if (!have.has(n)) todo.push(n);
  if (o.maxChunks !== undefined) todo.splice(o.maxChunks);
  const workers = Math.max(1, o.workers ?? 2);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(workers, todo.length) }, async () => {
      while (next < todo.length) {
        const n = todo[next++]!;
        await writeChunk(pool, id, start.month, n, o.chunk);
      }
    }),
  );
  await pool.query(
    `UPDATE extracts SET status = 'done', finished_at = now() WHERE id = $1 AND status = 'running'
        AND (SELECT count(*) FROM extract_chunks WHERE extract_id = $1) = $2`,
    [id, chunks],
  );
  const { rows } = await pool.query<{ status: ExtractStatus }>('SELECT status FROM extracts WHERE id = $1', [
    id,
  ]);
  return rows[0]?.status ?? null;
}

/**
 * One chunk: PostgreSQL writes the CSV lines itself (string_agg), which keeps millions of
 * rows out of JavaScript objects; this process only compresses and stores the text.
 * Serials are [A-Za-z0-9._-] (the contract), so no field needs quoting.
 */
async function writeChunk(pool: Pool, id: number, month: string, n: number, size: number): Promise<void> {
  const { rows } = await pool.query<{ csv: string | null; rows: number; meters: number }>(
    `WITH em AS (
       SELECT em.ord, m.id AS meter_id, m.serial FROM extract_meters em JOIN meters m ON m.id = em.meter_id
        WHERE em.extract_id = $1 AND em.ord >= $2 AND em.ord < $3),
     d AS (
       SELECT em.ord, em.serial, r.day, r.wh, r.intervals, r.estimated
         FROM em JOIN daily_rollups r ON r.meter_id = em.meter_id
        WHERE r.day >= $4::date AND r.day < ($4::date + interval '1 month')::date),
     lines AS (
       SELECT ord, 0 AS k, day,
              'daily,' || serial || ',' || day || ',' || wh || ',' || intervals || ',' || estimated AS line
         FROM d
       UNION ALL
       SELECT em.ord, 1, NULL,
              'monthly,' || em.serial || ',' || to_char($4::date, 'YYYY-MM') || ',' ||
              coalesce(sum(d.wh), 0) || ',' || coalesce(sum(d.intervals), 0) || ',' || coalesce(sum(d.estimated), 0)
         FROM em LEFT JOIN d ON d.ord = em.ord GROUP BY em.ord, em.serial)
     SELECT string_agg(line, E'\\n' ORDER BY ord, k, day) || E'\\n' AS csv, count(*)::int AS rows,
            (SELECT count(*)::int FROM em) AS meters
       FROM lines`,
    [id, n * size, (n + 1) * size, month],
  );
  const r = rows[0]!;
  const text = (n === 0 ? EXTRACT_HEADER : '') + (r.csv ?? '');
  const body = Buffer.from(text, 'utf8');
  // Level 1: the file is mostly digits; speed matters more than the last few percent.
  const gz = await gzip(body, { level: 1 });
  await tx(pool, async (c) => {
    const ins = await c.query(
      `INSERT INTO extract_chunks (extract_id, n, rows, bytes, gz) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
      [id, n, r.rows, body.length, gz],
    );
    // Another process wrote this chunk first: its progress is already counted.
    if (!ins.rowCount) return;
    await c.query(
      `UPDATE extracts SET meters_done = meters_done + $2, rows = rows + $3, bytes = bytes + $4 WHERE id = $1`,
      [id, r.meters, r.rows, body.length],
    );
  });
}

/** A job that failed for good: the extract says so (the page shows the error). */
export async function failExtract(q: Q, id: number, error: string): Promise<void> {
  await q.query(
    `UPDATE extracts SET status = 'failed', error = $2, finished_at = now() WHERE id = $1 AND status <> 'done'`,
    [id, error.slice(0, 500)],
  );
}

/** Extracts not finished (a job lost for good, e.g. retries used up while the database was away). */
export async function unfinishedExtracts(q: Q): Promise<number[]> {
  const { rows } = await q.query<{ id: string }>(
    `SELECT id FROM extracts WHERE status IN ('queued', 'running')`,
  );
  return rows.map((r) => Number(r.id));
}
