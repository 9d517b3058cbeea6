import { addDays } from '@kilowire/protocol';
import { money, shortDay } from '../alerts/format.ts';
import { raiseAlerts } from '../alerts/raise.ts';
import { isConnectionError, tx, type Pool, type PoolClient, type Q } from '../db/pool.ts';
import { emitEvent } from '../events/emit.ts';
import type { DomainEvent, Subscriber } from '../events/types.ts';
import {
  billsToRecheck,
  BillError,
  issueBills,
  periodFrom,
  recheckBill,
  type IssueOutcome,
} from './bills.ts';

/**
 * Bill runs: the credit accounts of one supplier with one billing cycle day, billed for one
 * period. A run is rows (bill_runs, bill_run_items): its work is whatever items are still
 * pending, so any process can pick it up, several can share it (FOR UPDATE SKIP LOCKED), and
 * one that dies leaves the rest pending for the next attempt. Bills are unique per account
 * and period, so a resumed or repeated run never issues a bill twice.
 */

export type RunTrigger = 'schedule' | 'staff' | 'demo';

export interface NewRun {
  supplierId: number;
  /** First local day of the period; its day of month is the cycle day (1..28). */
  periodStart: string;
  trigger: RunTrigger;
  createdBy?: number | null;
}

/**
 * Create a run with one pending item per credit account of the supplier on that cycle day,
 * and the `bill_run.requested` event that has the jobs service work it, in the caller's
 * transaction. A scheduled (or demo) run exists once per supplier, cycle day and period:
 * creating it again re-opens its failed items instead (they are tried again) and returns it.
 */
export async function createBillRun(c: PoolClient, r: NewRun): Promise<{ runId: number; created: boolean }> {
  const p = periodFrom(r.periodStart);
  const ins = await c.query<{ id: string }>(
    `INSERT INTO bill_runs (supplier_id, cycle_day, period_start, period_end, trigger, created_by)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (supplier_id, cycle_day, period_start) WHERE trigger IN ('schedule', 'demo') DO NOTHING
     RETURNING id`,
    [r.supplierId, p.cycleDay, p.start, p.end, r.trigger, r.createdBy ?? null],
  );
  let runId: number;
  let created: boolean;
  if (ins.rows[0]) {
    runId = Number(ins.rows[0].id);
    created = true;
    await c.query(
      `INSERT INTO bill_run_items (run_id, account_id)
       SELECT $1, a.id FROM accounts a
        WHERE a.supplier_id = $2 AND a.mode = 'credit' AND a.billing_cycle_day = $3
        ORDER BY a.id`,
      [runId, r.supplierId, p.cycleDay],
    );
  } else {
    const { rows } = await c.query<{ id: string }>(
      `SELECT id FROM bill_runs WHERE supplier_id = $1 AND cycle_day = $2 AND period_start = $3
          AND trigger IN ('schedule', 'demo')`,
      [r.supplierId, p.cycleDay, p.start],
    );
    runId = Number(rows[0]!.id);
    created = false;
    // Accounts that failed (reads not in yet, no tariff yet) or joined since: try them again.
    const reopened = await c.query(
      `WITH retry AS (
         UPDATE bill_run_items SET status = 'pending', reason = NULL, processed_at = NULL
          WHERE run_id = $1 AND status = 'failed' RETURNING account_id),
       added AS (
         INSERT INTO bill_run_items (run_id, account_id)
         SELECT $1, a.id FROM accounts a
          WHERE a.supplier_id = $2 AND a.mode = 'credit' AND a.billing_cycle_day = $3
         ON CONFLICT DO NOTHING RETURNING account_id)
       SELECT (SELECT count(*) FROM retry) + (SELECT count(*) FROM added) AS n`,
      [runId, r.supplierId, p.cycleDay],
    );
    if (Number((reopened.rows[0] as { n: string }).n) === 0) return { runId, created };
    await c.query(`UPDATE bill_runs SET status = 'queued', finished_at = NULL WHERE id = $1`, [runId]);
  }
  await emitEvent(c, { type: 'bill_run.requested', meterId: null, payload: { runId } });
  return { runId, created };
}

export interface RunOptions {
  /** Accounts per transaction. */
  chunk: number;
  /** Concurrent transactions (each its own connection). */
  workers: number;
  dueDays: number;
  /** Clock (epoch s) for tests. */
  nowS?: number;
  /** Stop after this many chunks, as a process that dies would (tests of resumption). */
  stopAfterChunks?: number;
  onChunk?: (n: number) => void;
  /** Milliseconds per step, summed over the run (the bench's profile). */
  profile?: Record<string, number>;
}

/**
 * Work a run until no item is pending: each worker claims a chunk of pending items, issues
 * their bills and records each item's outcome in the same transaction. A chunk that fails
 * as a whole (a database error) is retried account by account, so one bad account is listed
 * as failed with its reason and the others are billed.
 */
export async function runBillRun(pool: Pool, runId: number, o: RunOptions): Promise<RunProgress | null> {
  const { rows } = await pool.query<{ period_start: string; status: string }>(
    `UPDATE bill_runs SET status = 'running', started_at = coalesce(started_at, now())
      WHERE id = $1 RETURNING to_char(period_start, 'YYYY-MM-DD') AS period_start, status`,
    [runId],
  );
  const run = rows[0];
  if (!run) return null;
  let chunks = 0;
  let stopped = false;
  const worker = async (): Promise<void> => {
    for (;;) {
      if (o.stopAfterChunks !== undefined && chunks >= o.stopAfterChunks) {
        stopped = true;
        return;
      }
      chunks++;
      let claimed: number[] = [];
      try {
        claimed = await tx(pool, async (c) => {
          const ids = await claim(c, runId, o.chunk);
          if (ids.length)
            await record(c, runId, await issueBills(c, ids, run.period_start, issueOpts(runId, o)));
          return ids;
        });
      } catch (err) {
        if (err instanceof BillError) throw err;
        // Retry one by one; an account that still fails is recorded with the reason.
        claimed = await tx(pool, (c) => claim(c, runId, o.chunk));
        for (const id of claimed) await issueAlone(pool, runId, id, run.period_start, o);
      }
      if (!claimed.length) return;
      o.onChunk?.(claimed.length);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, o.workers) }, () => worker()));
  if (!stopped) {
    await pool.query(
      `UPDATE bill_runs SET status = 'done', finished_at = now()
        WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM bill_run_items WHERE run_id = $1 AND status = 'pending')`,
      [runId],
    );
  }
  return billRunProgress(pool, runId);
}

/**
 * Runs that say 'running' but whose items have not moved for `stallS`: the process working
 * them died. Their pg-boss job stays 'active' until its expiry, so another jobs process is
 * handed the run now; were the first one only slow, both share the items (claims are SKIP
 * LOCKED), so a false alarm costs nothing.
 */
export async function stalledRuns(q: Q, stallS: number): Promise<number[]> {
  const { rows } = await q.query<{ id: string }>(
    `SELECT r.id FROM bill_runs r
      WHERE r.status = 'running' AND r.started_at < now() - make_interval(secs => $1)
        AND NOT EXISTS (SELECT 1 FROM bill_run_items i
                         WHERE i.run_id = r.id AND i.processed_at > now() - make_interval(secs => $1))
      ORDER BY r.id`,
    [stallS],
  );
  return rows.map((r) => Number(r.id));
}

function issueOpts(runId: number, o: RunOptions) {
  return {
    runId,
    dueDays: o.dueDays,
    ...(o.nowS !== undefined ? { nowS: o.nowS } : {}),
    ...(o.profile ? { profile: o.profile } : {}),
  };
}

async function claim(c: PoolClient, runId: number, n: number): Promise<number[]> {
  const { rows } = await c.query<{ account_id: string }>(
    `SELECT account_id FROM bill_run_items WHERE run_id = $1 AND status = 'pending'
      ORDER BY account_id LIMIT $2 FOR UPDATE SKIP LOCKED`,
    [runId, n],
  );
  return rows.map((r) => Number(r.account_id));
}

async function record(c: PoolClient, runId: number, outcomes: IssueOutcome[]): Promise<void> {
  await c.query(
    `UPDATE bill_run_items i SET status = x.status, reason = x.reason, bill_id = x.bill_id, processed_at = now()
       FROM unnest($2::bigint[], $3::text[], $4::text[], $5::bigint[]) AS x(account_id, status, reason, bill_id)
      WHERE i.run_id = $1 AND i.account_id = x.account_id`,
    [
      runId,
      outcomes.map((o) => o.accountId),
      outcomes.map((o) => o.status),
      outcomes.map((o) => (o.status === 'failed' ? o.reason : null)),
      outcomes.map((o) => (o.status === 'failed' ? null : o.billId)),
    ],
  );
}

async function issueAlone(pool: Pool, runId: number, accountId: number, start: string, o: RunOptions) {
  try {
    await tx(pool, async (c) => {
      const locked = await c.query(
        `SELECT 1 FROM bill_run_items WHERE run_id = $1 AND account_id = $2 AND status = 'pending' FOR UPDATE SKIP LOCKED`,
        [runId, accountId],
      );
      if (!locked.rows.length) return;
      await record(c, runId, await issueBills(c, [accountId], start, issueOpts(runId, o)));
    });
  } catch (err) {
    // The database going away is not this account's fault: leave it pending for the retry.
    if (isConnectionError(err)) throw err;
    const reason = `could not be billed: ${err instanceof Error ? err.message : String(err)}`.slice(0, 500);
    await pool.query(
      `UPDATE bill_run_items SET status = 'failed', reason = $3, processed_at = now()
        WHERE run_id = $1 AND account_id = $2 AND status = 'pending'`,
      [runId, accountId, reason],
    );
  }
}

export interface RunProgress {
  id: number;
  supplierId: number;
  cycleDay: number;
  periodStart: string;
  periodEnd: string;
  trigger: RunTrigger;
  status: 'queued' | 'running' | 'done';
  total: number;
  processed: number;
  issued: number;
  alreadyBilled: number;
  failed: number;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

const RUN_COLUMNS = `r.id::int, r.supplier_id, r.cycle_day, to_char(r.period_start, 'YYYY-MM-DD') AS period_start,
  to_char(r.period_end, 'YYYY-MM-DD') AS period_end, r.trigger, r.status, r.created_at, r.started_at, r.finished_at,
  c.total, c.issued, c.already, c.failed`;
const RUN_COUNTS = `LEFT JOIN LATERAL (
  SELECT count(*)::int AS total, count(*) FILTER (WHERE status = 'issued')::int AS issued,
         count(*) FILTER (WHERE status = 'already_billed')::int AS already,
         count(*) FILTER (WHERE status = 'failed')::int AS failed
    FROM bill_run_items WHERE run_id = r.id) c ON true`;

interface RunRow {
  id: number;
  supplier_id: number;
  cycle_day: number;
  period_start: string;
  period_end: string;
  trigger: RunTrigger;
  status: RunProgress['status'];
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  total: number;
  issued: number;
  already: number;
  failed: number;
}

const toProgress = (r: RunRow): RunProgress => ({
  id: r.id,
  supplierId: r.supplier_id,
  cycleDay: r.cycle_day,
  periodStart: r.period_start,
  periodEnd: r.period_end,
  trigger: r.trigger,
  status: r.status,
  total: r.total,
  processed: r.issued + r.already + r.failed,
  issued: r.issued,
  alreadyBilled: r.already,
  failed: r.failed,
  createdAt: r.created_at.toISOString(),
  startedAt: r.started_at?.toISOString() ?? null,
  finishedAt: r.finished_at?.toISOString() ?? null,
});

/** A run's progress, or null. `supplierId` limits it to that supplier's runs (null = any). */
export async function billRunProgress(
  q: Q,
  runId: number,
  supplierId: number | null = null,
): Promise<RunProgress | null> {
  const { rows } = await q.query<RunRow>(
    `SELECT ${RUN_COLUMNS} FROM bill_runs r ${RUN_COUNTS} WHERE r.id = $1 AND ($2::int IS NULL OR r.supplier_id = $2)`,
    [runId, supplierId],
  );
  return rows[0] ? toProgress(rows[0]) : null;
}

/** The accounts a run could not bill, with the reason (first `limit`). */
export async function billRunFailures(
  q: Q,
  runId: number,
  limit = 200,
): Promise<{ accountId: number; customer: string; reason: string }[]> {
  const { rows } = await q.query<{ account_id: string; name: string; reason: string }>(
    `SELECT i.account_id, cu.name, i.reason FROM bill_run_items i
       JOIN accounts a ON a.id = i.account_id JOIN consumers cu ON cu.id = a.consumer_id
      WHERE i.run_id = $1 AND i.status = 'failed' ORDER BY i.account_id LIMIT $2`,
    [runId, limit],
  );
  return rows.map((r) => ({ accountId: Number(r.account_id), customer: r.name, reason: r.reason }));
}

/** Runs newest first (a supplier's own, or all for null), a page before `beforeId`. */
export async function listBillRuns(
  q: Q,
  supplierId: number | null,
  limit: number,
  beforeId: number | null,
): Promise<RunProgress[]> {
  const { rows } = await q.query<RunRow>(
    `SELECT ${RUN_COLUMNS} FROM bill_runs r ${RUN_COUNTS}
      WHERE ($1::int IS NULL OR r.supplier_id = $1) AND ($2::bigint IS NULL OR r.id < $2)
      ORDER BY r.id DESC LIMIT $3`,
    [supplierId, beforeId, limit],
  );
  return rows.map(toProgress);
}

/**
 * The daily schedule: for every credit account whose latest complete billing period (in its
 * meter's local calendar) has no bill, make sure the run for its supplier, cycle day and
 * period exists (a run that exists gets its failed items back). Returns the run ids touched.
 */
export async function scheduleDueRuns(
  pool: Pool,
  o: { trigger?: 'schedule' | 'demo'; supplierId?: number } = {},
): Promise<number[]> {
  const trigger = o.trigger ?? 'schedule';
  const { rows } = await pool.query<{ supplier_id: number; start: string }>(
    `WITH acc AS (
       SELECT a.id, a.supplier_id, a.billing_cycle_day AS cycle, a.created_at, m.tz,
              (now() AT TIME ZONE m.tz)::date AS today
         FROM accounts a JOIN LATERAL (SELECT tz FROM meters WHERE account_id = a.id ORDER BY id LIMIT 1) m ON true
        WHERE a.mode = 'credit' AND ($1::int IS NULL OR a.supplier_id = $1)),
     due AS (
       SELECT acc.*, (CASE WHEN make_date(extract(year FROM today)::int, extract(month FROM today)::int, cycle) <= today
                           THEN make_date(extract(year FROM today)::int, extract(month FROM today)::int, cycle)
                           ELSE (make_date(extract(year FROM today)::int, extract(month FROM today)::int, cycle) - interval '1 month')::date
                      END - interval '1 month')::date AS start
         FROM acc)
     SELECT DISTINCT supplier_id, to_char(start, 'YYYY-MM-DD') AS start FROM due
      -- An account opened during a period is first billed for the next one (the demo's are
      -- opened with history already in place, so it bills them at once).
      WHERE ($2 OR created_at < (start::timestamp AT TIME ZONE tz))
        AND NOT EXISTS (SELECT 1 FROM bills b WHERE b.account_id = due.id AND b.period_start = due.start)
      ORDER BY 1, 2`,
    [o.supplierId ?? null, trigger === 'demo'],
  );
  const ids: number[] = [];
  for (const r of rows) {
    const { runId } = await tx(pool, (c) =>
      createBillRun(c, { supplierId: r.supplier_id, periodStart: r.start, trigger }),
    );
    ids.push(runId);
  }
  return ids;
}

/**
 * The billing subscriber of domain events: a requested run is queued for the run workers
 * (`queueRun`, a pg-boss job with a stable id); an issued bill tells the household; committed
 * readings re-check the issued bills they may correct. All idempotent.
 */
export function billingSubscriber(pool: Pool, queueRun: (runId: number) => Promise<void>): Subscriber {
  return {
    name: 'billing',
    types: ['bill_run.requested', 'bill.issued', 'readings.committed'],
    async handle(events: DomainEvent[]): Promise<void> {
      const meterDays: [number, string][] = [];
      const billIds: number[] = [];
      for (const e of events) {
        if (e.type === 'bill_run.requested')
          await queueRun((e as DomainEvent<'bill_run.requested'>).payload.runId);
        else if (e.type === 'bill.issued') billIds.push((e as DomainEvent<'bill.issued'>).payload.billId);
        else if (e.type === 'readings.committed')
          meterDays.push(...(e as DomainEvent<'readings.committed'>).payload.meterDays);
      }
      if (billIds.length) await announceBills(pool, billIds);
      for (const id of await billsToRecheck(pool, meterDays)) await tx(pool, (c) => recheckBill(c, id));
    },
  };
}

/** The `bill_ready` alert for each bill (once per bill: dedupe key bill:<id>). */
export async function announceBills(pool: Pool, billIds: readonly number[]): Promise<number[]> {
  const { rows } = await pool.query<{
    id: string;
    meter_id: number;
    start: string;
    end: string;
    due: string;
    total: string;
    amount_due: string;
    currency: string;
  }>(
    `SELECT id, meter_id, to_char(period_start, 'YYYY-MM-DD') AS start, to_char(period_end, 'YYYY-MM-DD') AS end,
            to_char(due_date, 'YYYY-MM-DD') AS due, total_minor AS total, amount_due_minor AS amount_due, currency
       FROM bills WHERE id = ANY($1::bigint[]) ORDER BY id`,
    [billIds],
  );
  return raiseAlerts(
    pool,
    rows.map((b) => {
      const cur = b.currency.trim();
      const due = Number(b.amount_due);
      const last = addDays(b.end, -1);
      return {
        meterId: b.meter_id,
        type: 'bill_ready' as const,
        dedupeKey: `bill:${b.id}`,
        title: 'Your bill is ready',
        message:
          `Your bill for ${shortDay(b.start)} to ${shortDay(last)} ${last.slice(0, 4)} is ${money(Number(b.total), cur)}. ` +
          (due > 0
            ? `Amount due ${money(due, cur)} by ${shortDay(b.due)} ${b.due.slice(0, 4)}.`
            : `Nothing to pay: your account is ${due < 0 ? `${money(-due, cur)} in credit` : 'settled'}.`),
        figures: {
          billId: Number(b.id),
          totalMinor: Number(b.total),
          amountDueMinor: due,
          dueDate: b.due,
          currency: cur,
        },
      };
    }),
  );
}
