import type PgBoss from 'pg-boss';
import { privateKeyFromB64 } from '@kilowire/protocol';
import { alertsSubscriber } from '../alerts/handlers.ts';
import type { Config } from '../config.ts';
import type { Pool } from '../db/pool.ts';
import type { Subscriber } from '../events/types.ts';
import { RateLimitedLog, type Logger } from '../log.ts';
import { SmtpSender } from '../notify/email.ts';
import { SmppSender } from '../notify/sms.ts';
import { billingSubscriber, runBillRun, scheduleDueRuns, stalledRuns } from '../money/billrun.ts';
import { createProvider } from '../money/payments/index.ts';
import { expireSandboxCheckouts, sandboxWebhookSubscriber } from '../money/payments/sandbox.ts';
import { paymentsSubscriber } from '../money/topups.ts';
import { reconcileAll } from '../money/reconcile.ts';
import { syncAllMeterTariffs } from '../money/tariffs.ts';
import { startBoss, startTicker, stableUuid } from './boss.ts';
import { DeliveryDispatcher, startDeliveryWorkers, type Senders } from './delivery.ts';
import { EventDispatcher, startEventWorkers } from './events.ts';
import { startSupplyJobs } from '../supply/jobs.ts';
import { startCaseJobs } from './cases.ts';
// #9 collection
import { startCollectionJobs } from '../collection/schedule.ts';
// #9 collection end
import { startNetworkInvoiceJobs } from '../netbilling/jobs.ts';
import { startOutageJobs } from '../outages/jobs.ts';
// #10 C
import { startFirmwareJobs } from '../firmware/jobs.ts';
import { startPartitionJobs } from '../readings/partitions.ts';

export const BILL_RUN_QUEUE = 'bill-run';
export const BILL_SCHEDULE_QUEUE = 'bill-runs.schedule';
/** The check for runs whose process died (stalledRuns). */
export const BILL_RESUME_QUEUE = 'bill-runs.resume';

/** The periodic pass that sends each meter its next decided tariff change. */
export const TARIFF_SYNC_QUEUE = 'tariffs.sync';
/** Prepayment reconciliation (money/reconcile.ts), on RECONCILE_CRON. */
export const RECONCILE_QUEUE = 'prepay.reconcile';

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
  // A run whose process died keeps its job 'active' until the expiry above: a run that has not
  // moved for BILL_RUN_STALL_S is queued again at once, for any jobs process to finish.
  const stopResume = await startTicker(
    boss,
    BILL_RESUME_QUEUE,
    // One query: a tick held by a process that died may block the next ones only briefly.
    { everyMs: Math.min(30_000, (b.stallS * 1000) / 2), pollS: n.pollS, expireS: 30, log },
    async () => {
      for (const runId of await stalledRuns(pool, b.stallS)) {
        log.warn({ runId }, 'bill run stalled (its process died?); queued again');
        await boss.send(
          BILL_RUN_QUEUE,
          { runId },
          { id: stableUuid(`bill-run:${runId}:stalled:${Math.floor(Date.now() / (b.stallS * 1000))}`) },
        );
      }
    },
  );
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

  // #9 outages: power events group into incidents; a sweep every 15 s for what time decides.
  const outages = await startOutageJobs(boss, pool, log.child({ sub: 'outages' }), { pollS: n.pollS });
  // #9 outages end
  // #10 C firmware campaigns: the engine's tick every 10 s, and the meters' answers.
  const firmware = await startFirmwareJobs(
    boss,
    pool,
    privateKeyFromB64(config.commandSigningKey),
    log.child({ sub: 'firmware' }),
    { pollS: n.pollS },
  );
  const p = config.payments;
  const { provider, sandboxSecret } = createProvider(p, pool);
  const subscribers: Subscriber[] = [
    alertsSubscriber(pool, { lookbackDays: config.alerts.lookbackDays }),
    billingSubscriber(pool, queueRun),
    // Top-ups: credit replies, expired credit commands requested again, payment alerts.
    paymentsSubscriber(
      pool,
      {
        provider,
        commandKey: privateKeyFromB64(config.commandSigningKey),
        commandTtlS: config.commands.ttlS,
        limits: { minMinor: p.minMinor, maxMinor: p.maxMinor, dailyMaxMinor: p.dailyMaxMinor },
        publicUrl: p.publicUrl ?? '',
      },
      log.child({ sub: 'payments' }),
    ),
    // The sandbox provider's webhook deliveries, with their own queue and retries.
    sandboxWebhookSubscriber(sandboxSecret, p.sandboxWebhookUrl, log.child({ sub: 'sandbox' })),
    // #8 cases: tamper events open cases; requested extracts are queued.
    ...(await startCaseJobs(boss, pool, log.child({ sub: 'cases' }), { pollS: n.pollS })),
    // #9 collection: the daily collection's schedule, and late data marking days dirty.
    ...(await startCollectionJobs(boss, pool, log.child({ sub: 'collection' }), config.collection)),
    // #9 collection end
    // #9 outages
    ...outages.subscribers,
    // #10 C
    ...firmware.subscribers,
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

  if (provider.name === 'sandbox') {
    // Stripe expires its own checkouts; the sandbox's are swept every five minutes.
    const q = 'payments.sandbox-expiry';
    await boss.createQueue(q, { name: q, policy: 'singleton', retryLimit: 2, expireInSeconds: 300 });
    await boss.schedule(q, '*/5 * * * *');
    await boss.work(q, { pollingIntervalSeconds: 30 }, async () => {
      const n = await expireSandboxCheckouts(pool);
      if (n) log.info({ checkouts: n }, 'sandbox checkouts nobody paid have expired');
    });
  }
  // Tariff changes reach each meter one at a time (a meter holds one pending tariff): every
  // quarter of an hour, meters whose latest change has begun get the next one. Cron in
  // pg-boss, so one jobs process runs it however many there are.
  const commandKey = privateKeyFromB64(config.commandSigningKey);
  // Prepayment meters mirrored in the ledger and compared with what they report (once across
  // all jobs processes: a singleton queue on a pg-boss cron).
  await boss.createQueue(RECONCILE_QUEUE, { name: RECONCILE_QUEUE, policy: 'singleton', retryLimit: 2 });
  await boss.schedule(RECONCILE_QUEUE, config.bills.reconcileCron, {}, { tz: 'UTC' });
  await boss.work(RECONCILE_QUEUE, { pollingIntervalSeconds: 30 }, async () => {
    const done = await reconcileAll(pool, { driftMinor: config.bills.driftMinor });
    const drifting = done.filter((d) => d.alerted).length;
    log.info({ meters: done.length, drifting }, 'prepayment meters reconciled');
  });
  await boss.createQueue(TARIFF_SYNC_QUEUE, { name: TARIFF_SYNC_QUEUE, policy: 'singleton', retryLimit: 3 });
  await boss.schedule(TARIFF_SYNC_QUEUE, '*/15 * * * *');
  await boss.work(TARIFF_SYNC_QUEUE, { pollingIntervalSeconds: 30 }, async () => {
    const sent = await syncAllMeterTariffs(pool, commandKey, Math.floor(Date.now() / 1000));
    if (sent) log.info({ sent }, 'tariff changes sent to meters');
  });

  await startSupplyJobs(boss, pool, log.child({ sub: 'supply' }));
  // #9 charges: the monthly network-use invoices.
  await startNetworkInvoiceJobs(boss, pool, log.child({ sub: 'netbilling' }), config.netbilling.invoiceCron);
  // #11 reading partitions months ahead (daily, and once at start).
  await startPartitionJobs(boss, pool, log.child({ sub: 'partitions' }), config.partitions);

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
      stopResume();
      outages.stop();
      firmware.stop(); // #10 C
      await events.stop();
      await dispatcher.stop();
      await started.stop(10_000);
      await senders.email?.close();
      await senders.sms?.close();
    },
  };
}
