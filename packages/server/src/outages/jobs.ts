import type PgBoss from 'pg-boss';
import type { Pool } from '../db/pool.ts';
import type { Subscriber } from '../events/types.ts';
import type { Logger } from '../log.ts';
import { outagesSubscriber, sweepOutages } from './detect.ts';

/** The outage sweep's queue: silent meters, single outages, stragglers, the SLA clock, closing. */
export const OUTAGE_SWEEP_QUEUE = 'outages.sweep';
/**
 * Every 15 s: a single household's outage is decided one window (default 120 s) after its
 * last gasp, and an SLA flag is at most this late. pg-boss cron ticks by the minute, so each
 * jobs process sends on a timer into a "stately" queue: at most one sweep queued and one
 * running across all processes, however many send.
 */
export const OUTAGE_SWEEP_MS = 15_000;

export async function startOutageJobs(
  boss: PgBoss,
  pool: Pool,
  log: Logger,
  o: { sweepMs?: number; pollS?: number } = {},
): Promise<{ subscribers: Subscriber[]; stop(): void }> {
  await boss.createQueue(OUTAGE_SWEEP_QUEUE, {
    name: OUTAGE_SWEEP_QUEUE,
    policy: 'stately',
    retryLimit: 1,
    expireInSeconds: 300,
  });
  await boss.work(OUTAGE_SWEEP_QUEUE, { pollingIntervalSeconds: o.pollS ?? 2 }, async () => {
    const r = await sweepOutages(pool);
    if (Object.values(r).some((n) => n > 0)) log.info({ sweep: r }, 'outage sweep');
  });
  const send = () =>
    void boss.send(OUTAGE_SWEEP_QUEUE, {}, { singletonKey: 'sweep' }).catch((err: Error) => {
      log.warn({ err: err.message }, 'outage sweep not queued');
    });
  send();
  const timer = setInterval(send, o.sweepMs ?? OUTAGE_SWEEP_MS);
  timer.unref();
  log.info({ sweepMs: o.sweepMs ?? OUTAGE_SWEEP_MS }, 'outage detection started');
  return { subscribers: [outagesSubscriber(pool, log)], stop: () => clearInterval(timer) };
}
