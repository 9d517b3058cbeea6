import type PgBoss from 'pg-boss';
import type { Pool } from '../db/pool.ts';
import type { Logger } from '../log.ts';
import { expireRequests } from './actions.ts';

/** The approval-expiry sweep's queue (a pg-boss cron, so one jobs process runs it however many there are). */
export const APPROVAL_EXPIRY_QUEUE = 'approvals.expire';

/**
 * Approval requests nobody decided in time expire, and their commands with them (they never
 * reach a meter). Every minute: an expiry is at most a minute late, and approving a request
 * past its expiry is refused whether or not the sweep has run.
 */
export async function startSupplyJobs(boss: PgBoss, pool: Pool, log: Logger): Promise<void> {
  await boss.createQueue(APPROVAL_EXPIRY_QUEUE, {
    name: APPROVAL_EXPIRY_QUEUE,
    policy: 'singleton',
    retryLimit: 2,
  });
  await boss.schedule(APPROVAL_EXPIRY_QUEUE, '* * * * *', {}, { tz: 'UTC' });
  // And once now: requests that lapsed while no jobs process ran are swept at start.
  await boss.send(APPROVAL_EXPIRY_QUEUE, {});
  await boss.work(APPROVAL_EXPIRY_QUEUE, { pollingIntervalSeconds: 30 }, async () => {
    let n = 0;
    for (let k = await expireRequests(pool); k > 0; k = await expireRequests(pool)) n += k;
    if (n) log.info({ requests: n }, 'approval requests expired');
  });
}
