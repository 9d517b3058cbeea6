import type PgBoss from 'pg-boss';
import { addMonths } from '@kilowire/protocol';
import type { Pool } from '../db/pool.ts';
import { AppError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { issueMonth, type IssueResult } from './invoices.ts';

/** #9 The monthly network-use invoice run, on NETWORK_INVOICE_CRON. */
export const NETWORK_INVOICE_QUEUE = 'network.invoices';

/**
 * Invoice the previous calendar month for every network operator. A month not fully
 * collected yet is skipped with a warning (the next firing, or an operator admin, issues it);
 * a month already invoiced stands unless a collection was revised (then notes).
 */
export async function invoicePreviousMonth(
  pool: Pool,
  log: Logger,
  nowMs = Date.now(),
): Promise<{ operatorId: number; result?: IssueResult; refused?: string }[]> {
  const month = addMonths(new Date(nowMs).toISOString().slice(0, 10), -1);
  const ops = await pool.query<{ id: number }>(
    `SELECT id FROM organisations WHERE kind = 'network_operator' ORDER BY id`,
  );
  const out: { operatorId: number; result?: IssueResult; refused?: string }[] = [];
  for (const { id } of ops.rows) {
    try {
      const result = await issueMonth(pool, id, month, { trigger: 'schedule' });
      log.info({ operatorId: id, ...result }, 'network-use invoices issued');
      out.push({ operatorId: id, result });
    } catch (err) {
      if (!(err instanceof AppError) || err.code !== 'CONFLICT') throw err;
      log.warn({ operatorId: id, month, reason: err.message }, 'network-use invoices not issued');
      out.push({ operatorId: id, refused: err.message });
    }
  }
  return out;
}

/** The schedule: a pg-boss cron on a singleton queue, so once across all jobs processes. */
export async function startNetworkInvoiceJobs(
  boss: PgBoss,
  pool: Pool,
  log: Logger,
  cron: string,
): Promise<void> {
  await boss.createQueue(NETWORK_INVOICE_QUEUE, {
    name: NETWORK_INVOICE_QUEUE,
    policy: 'singleton',
    retryLimit: 3,
  });
  await boss.schedule(NETWORK_INVOICE_QUEUE, cron, {}, { tz: 'UTC' });
  await boss.work(NETWORK_INVOICE_QUEUE, { pollingIntervalSeconds: 30 }, async () => {
    await invoicePreviousMonth(pool, log);
  });
}
