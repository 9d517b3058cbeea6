import { defaultNotifyConfig, type Config } from '../../src/config.ts';
import type { Pool } from '../../src/db/pool.ts';
import { startJobs, type RunningJobs } from '../../src/jobs/service.ts';
import { logger } from '../../src/log.ts';
import { testConfig } from './api.ts';

/**
 * The real jobs service (pg-boss, the domain event dispatcher, the alert rules as a
 * subscriber, delivery to the outbox) on a test database, polling fast.
 */
export async function startTestJobs(
  pool: Pool,
  o: { lookbackDays?: number; config?: Partial<Config> } = {},
): Promise<RunningJobs> {
  const config = testConfig({
    alerts: { lookbackDays: o.lookbackDays ?? 1 },
    notify: defaultNotifyConfig({ pollS: 0.5, dispatchMs: 200 }),
    ...o.config,
  });
  return startJobs({ pool, config, log: logger('test-jobs') });
}

/**
 * Wait until every committed domain event has been dispatched and its subscribers' jobs
 * have finished: what the events imply (alerts) is then in the database.
 */
export async function settleEvents(pool: Pool, jobs: RunningJobs, ms = 20_000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    await jobs.events.dispatchOnce();
    const { rows } = await pool.query<{ events: number; jobs: number }>(
      `SELECT (SELECT count(*) FROM domain_events WHERE dispatched_at IS NULL)::int AS events,
              (SELECT count(*) FROM pgboss.job WHERE name LIKE 'events.%' AND state IN ('created', 'retry', 'active'))::int AS jobs`,
    );
    if (rows[0]!.events === 0 && rows[0]!.jobs === 0) return;
    if (Date.now() > until) throw new Error(`events not settled: ${JSON.stringify(rows[0])}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
