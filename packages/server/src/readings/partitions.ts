import type PgBoss from 'pg-boss';
import { tx, withTx, type Pool, type PoolClient } from '../db/pool.ts';
import type { Logger } from '../log.ts';

/**
 * #11 Monthly partitions of the reading tables (migration 019): created ahead by the jobs
 * service, old ones detached for archive by an operator (`npm run partitions`). Bounds are
 * UTC months; the creation itself is kw_partition_month in the database, so the migration and
 * this job share one copy of it.
 */

/** The tables partitioned by month of ts; keys stay (meter_id, ts). */
export const PARTITIONED_TABLES = ['interval_readings', 'register_reads'] as const;
export type PartitionedTable = (typeof PARTITIONED_TABLES)[number];

export const PARTITIONS_QUEUE = 'readings.partitions';
/** Arbitrary constant: serialises partition changes across jobs processes and the CLI. */
const PARTITION_LOCK = 7_351_019;
/**
 * ATTACH and DETACH wait behind any query that holds the tables (a long report), and every
 * new query would then queue behind them: give up quickly instead and try again later (the
 * job runs daily and keeps months of slack; the CLI says so).
 */
const LOCK_TIMEOUT = '3s';

export class PartitionError extends Error {
  override name = 'PartitionError';
}

export interface PartitionInfo {
  table: PartitionedTable;
  name: string;
  /** Inclusive lower bound (ISO); null = unbounded (the table as it was before partitioning, or the default). */
  from: string | null;
  /** Exclusive upper bound (ISO); null = unbounded. */
  to: string | null;
  isDefault: boolean;
  /** PostgreSQL's estimate (reltuples, as of the last VACUUM/ANALYZE); -1 = never analysed. */
  rowsEstimate: number;
  bytes: number;
}

/** The first instant of the UTC month holding `d`. */
export function monthStart(d: Date): Date {
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1));
}

export function addMonthsUtc(d: Date, n: number): Date {
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + n, 1));
}

/** 'YYYY-MM' to the first instant of that UTC month. */
export function parseMonth(s: string): Date {
  const m = /^(\d{4})-(0[1-9]|1[0-2])$/.exec(s);
  if (!m) throw new PartitionError(`${JSON.stringify(s)} is not a month (YYYY-MM)`);
  return new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, 1));
}

export function monthLabel(d: Date): string {
  return d.toISOString().slice(0, 7);
}

export async function listPartitions(pool: Pool | PoolClient): Promise<PartitionInfo[]> {
  const { rows } = await pool.query<{
    table: PartitionedTable;
    name: string;
    from_ts: Date | null;
    to_ts: Date | null;
    is_default: boolean;
    rows: number;
    bytes: string;
  }>(
    `SELECT x.t AS "table", p.part::text AS name, p.from_ts, p.to_ts, p.is_default,
            c.reltuples::float8 AS rows, pg_total_relation_size(p.part)::text AS bytes
       FROM unnest($1::text[]) WITH ORDINALITY AS x(t, n)
       CROSS JOIN LATERAL kw_partitions(x.t::regclass) p
       JOIN pg_class c ON c.oid = p.part
      ORDER BY x.n, p.is_default, p.from_ts NULLS FIRST`,
    [PARTITIONED_TABLES],
  );
  return rows.map((r) => ({
    table: r.table,
    name: r.name,
    from: r.from_ts?.toISOString() ?? null,
    to: r.to_ts?.toISOString() ?? null,
    isDefault: r.is_default,
    rowsEstimate: r.rows,
    bytes: Number(r.bytes),
  }));
}

async function lockForChanges(c: PoolClient): Promise<void> {
  await c.query(`SET LOCAL lock_timeout = '${LOCK_TIMEOUT}'`);
  await c.query('SELECT pg_advisory_xact_lock($1)', [PARTITION_LOCK]);
}

/** Errors an operator can act on, in one sentence (the CLI prints them without a stack). */
function explain(err: unknown): never {
  const code = (err as { code?: string }).code;
  if (code === '55P03') {
    throw new PartitionError(
      `the reading tables were busy for ${LOCK_TIMEOUT} (a long query holds them); nothing changed, try again`,
    );
  }
  // kw_partition_month's own refusals (an overlapping partition, a detached table in the way).
  if (code === 'P0001') throw new PartitionError((err as Error).message);
  throw err;
}

/**
 * The partition of every reading table for the UTC month starting at `month` (rows of that
 * month waiting in the default partition move into it). Returns the partitions created; a
 * month already covered (its own partition, or the pre-partitioning table) is left alone.
 */
export async function createMonth(pool: Pool, month: Date): Promise<string[]> {
  const created: string[] = [];
  for (const t of PARTITIONED_TABLES) {
    // One transaction per table: the lock on each default partition is held briefly.
    const made = await tx(pool, async (c) => {
      await lockForChanges(c);
      const r = await c.query<{ made: boolean }>('SELECT kw_partition_month($1::regclass, $2) AS made', [
        t,
        month,
      ]);
      return r.rows[0]!.made;
    }).catch(explain);
    if (made) created.push(`${t}_${monthLabel(month).replace('-', '_')}`);
  }
  return created;
}

/** Partitions from the current UTC month to `aheadMonths` after it; idempotent. */
export async function ensurePartitions(
  pool: Pool,
  opts: { aheadMonths: number; now?: Date },
): Promise<string[]> {
  const first = monthStart(opts.now ?? new Date());
  const created: string[] = [];
  for (let i = 0; i <= opts.aheadMonths; i++)
    created.push(...(await createMonth(pool, addMonthsUtc(first, i))));
  return created;
}

/**
 * Detach one past month of every reading table for archive: each stays a plain table of the
 * same name (dump it, then drop it). The current and future months are refused: readings
 * still arrive for them. `'legacy'` detaches the tables as they were before partitioning,
 * once everything they can hold is in the past.
 *
 * Plain DETACH, not CONCURRENTLY: PostgreSQL refuses CONCURRENTLY while a default partition
 * exists, and the default is what keeps ingest from ever failing on a date. Its ACCESS
 * EXCLUSIVE lock is held for a catalogue change only; LOCK_TIMEOUT bounds the wait.
 */
export async function detachMonth(
  pool: Pool,
  month: string,
  opts: { now?: Date } = {},
): Promise<PartitionInfo[]> {
  const current = monthStart(opts.now ?? new Date());
  const legacy = month === 'legacy';
  const from = legacy ? null : parseMonth(month);
  if (from && from >= current) {
    throw new PartitionError(
      `${month} is the current month or later: readings still arrive for it (only months before ${monthLabel(current)} can be detached)`,
    );
  }
  return withTx(pool, { actorId: null }, async (txn) => {
    const c = txn.c;
    await lockForChanges(c);
    const parts = await listPartitions(c);
    const picked: PartitionInfo[] = [];
    for (const t of PARTITIONED_TABLES) {
      const p = parts.find(
        (x) => x.table === t && !x.isDefault && (legacy ? x.from === null : x.from === from!.toISOString()),
      );
      if (!p) continue;
      if (legacy && (p.to === null || new Date(p.to) > current)) {
        throw new PartitionError(
          `${p.name} still covers the current month (it ends ${p.to?.slice(0, 10) ?? 'never'}); it can be detached from ${p.to?.slice(0, 7) ?? '-'} on`,
        );
      }
      picked.push(p);
    }
    if (!picked.length) {
      const inLegacy = parts.find(
        (x) => x.from === null && !x.isDefault && from && x.to && new Date(x.to) > from,
      );
      throw new PartitionError(
        inLegacy
          ? `${month} has no partition of its own: it is inside ${inLegacy.name} (the table as it was before partitioning); detach that whole with \`detach legacy\``
          : `${month} has no partition (never created, or already detached)`,
      );
    }
    for (const p of picked) {
      await c.query(`ALTER TABLE ${quoteIdent(p.table)} DETACH PARTITION ${quoteIdent(p.name)}`);
      await txn.audit('readings.partition_detached', p.name, { table: p.table, from: p.from, to: p.to });
    }
    return picked;
  }).catch(explain);
}

function quoteIdent(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}

/**
 * The daily job: partitions `aheadMonths` ahead, on a pg-boss cron with a singleton queue
 * (once across all jobs processes; the advisory lock also keeps the CLI out of its way), and
 * once at start so that a jobs process started after a long stop catches up at once.
 */
export async function startPartitionJobs(
  boss: PgBoss,
  pool: Pool,
  log: Logger,
  cfg: { cron: string; aheadMonths: number },
): Promise<void> {
  await boss.createQueue(PARTITIONS_QUEUE, {
    name: PARTITIONS_QUEUE,
    policy: 'singleton',
    retryLimit: 5,
    retryDelay: 60,
    retryBackoff: true,
  });
  await boss.schedule(PARTITIONS_QUEUE, cfg.cron, {}, { tz: 'UTC' });
  // Sent before the worker starts, so its first fetch takes it.
  await boss.send(PARTITIONS_QUEUE, {});
  await boss.work(PARTITIONS_QUEUE, { pollingIntervalSeconds: 30 }, async () => {
    const created = await ensurePartitions(pool, { aheadMonths: cfg.aheadMonths });
    if (created.length) log.info({ created }, 'reading partitions created');
  });
}
