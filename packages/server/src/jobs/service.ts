import type PgBoss from 'pg-boss';
import { alertsSubscriber } from '../alerts/handlers.ts';
import type { Config } from '../config.ts';
import type { Pool } from '../db/pool.ts';
import type { Subscriber } from '../events/types.ts';
import { RateLimitedLog, type Logger } from '../log.ts';
import { SmtpSender } from '../notify/email.ts';
import { SmppSender } from '../notify/sms.ts';
import { billingSubscriber, runBillRun, scheduleDueRuns } from '../money/billrun.ts';
import { startBoss, stableUuid } from './boss.ts';
import { DeliveryDispatcher, startDeliveryWorkers, type Senders } from './delivery.ts';
import { EventDispatcher, startEventWorkers } from './events.ts';

export const BILL_RUN_QUEUE = 'bill-run';
export const BILL_SCHEDULE_QUEUE = 'bill-runs.schedule';

export interface RunningJobs {
  boss: PgBoss;
  dispatcher: DeliveryDispatcher;
  events: EventDispatcher;
  stop(): Promise<void>;
}

/**
 * The `jobs` service: pg-boss (its schema `pgboss` in the same database), the domain event
 * dispatcher and its subscribers (alert rules), and the alert delivery dispatcher and
 * workers. Email goes over SMTP and SMS over SMPP when configured; otherwise both go to the
 * built-in outbox table. Any number of jobs processes can share one database.
 */
export async function startJobs(deps: {
  pool: Pool;
  config: Config;
  log: Logger;
  /** For the LISTEN connections; unset = timers only. */
  databaseUrl?: string;
}): Promise<RunningJobs> {
  const { pool, config, log } = deps;
  const n = config.notify;
  const senders: Senders = {};
  if (n.smtpUrl) senders.email = new SmtpSender(n.smtpUrl, n.smtpFrom);
  if (n.smppUrl) senders.sms = new SmppSender(n.smppUrl, n.smsFrom, log.child({ sub: 'smpp' }));
  log.info(
    { email: senders.email ? 'smtp' : 'outbox', sms: senders.sms ? 'smpp' : 'outbox' },
    'alert delivery channels',
  );
  const started = await startBoss(pool, {
    supervise: true,
    schedule: true,
    maintenanceS: config.events.maintenanceS,
    log,
  });
  const boss = started.boss;
  // pg-boss reports every failed poll while the database is away: once per 10 s is plenty.
  const bossErrors = new RateLimitedLog(log, 10_000);
  boss.on('error', (err) => bossErrors.warn('boss', { err: err.message }, 'pg-boss error'));

  // Bill runs: a queue worked by every jobs process (a run's items are shared between them),
  // its jobs sent by the billing subscriber when a run is requested. A job of a process that
  // died is retried after its expiry and resumes from the items still pending.
  const b = config.bills;
  await boss.createQueue(BILL_RUN_QUEUE, {
    name: BILL_RUN_QUEUE,
    policy: 'standard',
    retryLimit: 20,
    retryDelay: 5,
    retryBackoff: true,
    expireInSeconds: 1800,
  });
  await boss.work<{ runId: number }>(
    BILL_RUN_QUEUE,
    { batchSize: 1, pollingIntervalSeconds: n.pollS },
    async (jobs) => {
      for (const job of jobs) {
        const p = await runBillRun(pool, job.data.runId, {
          chunk: b.runChunk,
          workers: b.runWorkers,
          dueDays: b.dueDays,
        });
        log.info({ run: p }, 'bill run finished');
      }
    },
  );
  const queueRun = async (runId: number): Promise<void> => {
    await boss.send(BILL_RUN_QUEUE, { runId }, { id: stableUuid(`bill-run:${runId}`) });
  };
  // Runs left unfinished (their job failed for good, or the run was re-opened): queue again.
  for (const r of (await pool.query<{ id: string }>(`SELECT id FROM bill_runs WHERE status <> 'done'`))
    .rows) {
    await boss.send(
      BILL_RUN_QUEUE,
      { runId: Number(r.id) },
      { id: stableUuid(`bill-run:${r.id}:${Date.now()}`) },
    );
  }
  // The daily schedule (pg-boss cron, once across all jobs processes).
  await boss.createQueue(BILL_SCHEDULE_QUEUE, {
    name: BILL_SCHEDULE_QUEUE,
    policy: 'singleton',
    retryLimit: 3,
  });
  await boss.schedule(BILL_SCHEDULE_QUEUE, b.runCron, {}, { tz: 'UTC' });
  await boss.work(BILL_SCHEDULE_QUEUE, { pollingIntervalSeconds: 30 }, async () => {
    const runs = await scheduleDueRuns(pool);
    if (runs.length) log.info({ runs }, 'scheduled bill runs');
  });

  const subscribers: Subscriber[] = [
    alertsSubscriber(pool, { lookbackDays: config.alerts.lookbackDays }),
    billingSubscriber(pool, queueRun),
  ];
  const wake = await startEventWorkers(boss, pool, subscribers, log, {
    pollS: n.pollS,
    timeoutS: config.events.jobTimeoutS,
  });
  const events = new EventDispatcher(pool, boss, subscribers, log, {
    sweepMs: config.events.sweepMs,
    gatherMs: config.events.gatherMs,
    retentionDays: config.events.retentionDays,
    wake,
    ...(deps.databaseUrl ? { databaseUrl: deps.databaseUrl } : {}),
  });
  events.start();

  const retry = { retryLimit: n.retryLimit, retryDelayS: n.retryDelayS };
  const wakeDelivery = await startDeliveryWorkers(boss, pool, senders, log, {
    ...retry,
    pollS: n.pollS,
    concurrency: n.concurrency,
  });
  const dispatcher = new DeliveryDispatcher(
    pool,
    boss,
    log,
    retry,
    n.dispatchMs,
    deps.databaseUrl,
    wakeDelivery,
  );
  dispatcher.start();
  return {
    boss,
    dispatcher,
    events,
    async stop() {
      await events.stop();
      await dispatcher.stop();
      await started.stop(10_000);
      await senders.email?.close();
      await senders.sms?.close();
    },
  };
}
