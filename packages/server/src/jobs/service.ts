import type PgBoss from 'pg-boss';
import type { Config } from '../config.ts';
import type { Pool } from '../db/pool.ts';
import type { Logger } from '../log.ts';
import { SmtpSender } from '../notify/email.ts';
import { SmppSender } from '../notify/sms.ts';
import { startBoss } from './boss.ts';
import { DeliveryDispatcher, startDeliveryWorkers, type Senders } from './delivery.ts';

export interface RunningJobs {
  boss: PgBoss;
  dispatcher: DeliveryDispatcher;
  stop(): Promise<void>;
}

/**
 * The `jobs` service: pg-boss (its schema `pgboss` in the same database), the alert delivery
 * dispatcher and workers. Email goes over SMTP and SMS over SMPP when configured; otherwise
 * both go to the built-in outbox table.
 */
export async function startJobs(deps: { pool: Pool; config: Config; log: Logger }): Promise<RunningJobs> {
  const { pool, config, log } = deps;
  const n = config.notify;
  const senders: Senders = {};
  if (n.smtpUrl) senders.email = new SmtpSender(n.smtpUrl, n.smtpFrom);
  if (n.smppUrl) senders.sms = new SmppSender(n.smppUrl, n.smsFrom, log.child({ sub: 'smpp' }));
  log.info(
    { email: senders.email ? 'smtp' : 'outbox', sms: senders.sms ? 'smpp' : 'outbox' },
    'alert delivery channels',
  );
  const boss = await startBoss(pool, { supervise: true, schedule: true });
  boss.on('error', (err) => log.error({ err }, 'pg-boss error'));
  const retry = { retryLimit: n.retryLimit, retryDelayS: n.retryDelayS };
  await startDeliveryWorkers(boss, pool, senders, log, { ...retry, pollS: n.pollS, concurrency: n.concurrency });
  const dispatcher = new DeliveryDispatcher(pool, boss, log, retry, n.dispatchMs);
  await dispatcher.start();
  return {
    boss,
    dispatcher,
    async stop() {
      await dispatcher.stop();
      await boss.stop({ graceful: true, wait: true, close: false, timeout: 10_000 });
      await senders.email?.close();
      await senders.sms?.close();
    },
  };
}
