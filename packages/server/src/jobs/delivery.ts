import type PgBoss from 'pg-boss';
import type { Pool, PoolClient } from '../db/pool.ts';
import { tx } from '../db/pool.ts';
import type { Logger } from '../log.ts';
import { DELIVERIES_CHANNEL } from '../alerts/service.ts';
import { compose, type DeliveryView } from '../notify/compose.ts';
import { DeliveryError, type Sender } from '../notify/types.ts';
import { bossDb, stableUuid } from './boss.ts';

export const DELIVERY_QUEUE = 'alert-delivery';

export interface DeliveryJob {
  deliveryId: number;
}

export interface RetryPolicy {
  retryLimit: number;
  retryDelayS: number;
}

/**
 * Moves pending delivery rows into the pg-boss queue, one job per row, in the same
 * transaction that stamps the row with its job id: a row is enqueued exactly once, and the
 * job id (derived from the row) plus its singletonKey make a repeated send a no-op anyway.
 * Woken by NOTIFY after an alert commits; a timer sweeps as a fallback.
 */
export class DeliveryDispatcher {
  private timer: NodeJS.Timeout | undefined;
  private listener: PoolClient | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(
    private readonly pool: Pool,
    private readonly boss: PgBoss,
    private readonly log: Logger,
    private readonly retry: RetryPolicy,
    private readonly sweepMs: number,
  ) {}

  async start(): Promise<void> {
    try {
      const c = await this.pool.connect();
      c.on('notification', () => this.kick());
      c.on('error', (err) => this.log.warn({ err }, 'delivery listener lost; sweeping on the timer'));
      await c.query(`LISTEN ${DELIVERIES_CHANNEL}`);
      this.listener = c;
    } catch (err) {
      this.log.warn({ err }, 'LISTEN failed; sweeping on the timer only');
    }
    this.timer = setInterval(() => this.kick(), this.sweepMs);
    this.kick();
  }

  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          while ((await this.dispatchOnce()) > 0 && !this.stopped);
        } catch (err) {
          this.log.error({ err }, 'delivery dispatch failed');
        }
      } while (this.again && !this.stopped);
    })().finally(() => {
      this.running = undefined;
    });
  }

  /** Enqueue up to 200 pending rows; returns how many. */
  async dispatchOnce(): Promise<number> {
    return tx(this.pool, async (c) => {
      const { rows } = await c.query<{ id: number; deliver_after: Date | null }>(
        `SELECT id, deliver_after FROM deliveries WHERE job_id IS NULL AND status = 'pending'
          ORDER BY id LIMIT 200 FOR UPDATE SKIP LOCKED`,
      );
      const db = bossDb(c);
      for (const r of rows) {
        const jobId = stableUuid(`delivery:${r.id}`);
        await this.boss.send(DELIVERY_QUEUE, { deliveryId: r.id } satisfies DeliveryJob, {
          id: jobId,
          singletonKey: `delivery:${r.id}`,
          retryLimit: this.retry.retryLimit,
          retryDelay: this.retry.retryDelayS,
          retryBackoff: true,
          expireInSeconds: 300,
          ...(r.deliver_after ? { startAfter: r.deliver_after } : {}),
          db,
        });
        await c.query('UPDATE deliveries SET job_id = $2 WHERE id = $1', [r.id, jobId]);
      }
      return rows.length;
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    while (this.running) await this.running;
    if (this.listener) {
      await this.listener.query(`UNLISTEN ${DELIVERIES_CHANNEL}`).catch(() => undefined);
      this.listener.release();
      this.listener = undefined;
    }
  }
}

export interface Senders {
  /** Unset: the built-in outbox table. */
  email?: Sender;
  sms?: Sender;
}

export type DeliveryOutcome = 'sent' | 'skipped' | 'failed' | 'retry';

/**
 * Deliver one row. Under a row lock: skip unless still pending (never twice to the person);
 * send; mark sent in the same transaction once the channel accepted it. The outbox sink
 * writes its row in that transaction, so it is exactly once. A failure is recorded
 * (attempts, last_error); permanent ones and the last attempt mark the row failed, others
 * are thrown so pg-boss retries with backoff.
 */
export async function deliver(
  pool: Pool,
  senders: Senders,
  deliveryId: number,
  finalAttempt: boolean,
): Promise<DeliveryOutcome> {
  const c = await pool.connect();
  let retryErr: Error | undefined;
  let outcome: DeliveryOutcome = 'skipped';
  try {
    await c.query('BEGIN');
    const d = (
      await c.query<DeliveryView & { status: string; alert_id: number }>(
        `SELECT d.id, d.channel, d.recipient, d.audience, d.status, d.alert_id, a.type, a.title, a.message, m.serial,
                cu.name AS consumer_name
           FROM deliveries d
           JOIN alerts a ON a.id = d.alert_id
           JOIN meters m ON m.id = a.meter_id
           LEFT JOIN consumers cu ON cu.id = a.consumer_id
          WHERE d.id = $1
          FOR UPDATE OF d`,
        [deliveryId],
      )
    ).rows[0];
    if (d && d.status === 'pending') {
      const msg = compose(d);
      const sender = senders[d.channel];
      try {
        if (sender) await sender.send(msg);
        else
          await c.query(
            'INSERT INTO outbox (channel, recipient, subject, body, alert_id) VALUES ($1, $2, $3, $4, $5)',
            [msg.channel, msg.recipient, msg.subject, msg.body, d.alert_id],
          );
        await c.query(
          `UPDATE deliveries SET status = 'sent', attempts = attempts + 1, sent_at = now(), last_error = NULL WHERE id = $1`,
          [d.id],
        );
        outcome = 'sent';
      } catch (err) {
        const e = err instanceof Error ? err : new Error(String(err));
        const permanent = (e instanceof DeliveryError && e.permanent) || finalAttempt;
        await c.query(
          `UPDATE deliveries SET attempts = attempts + 1, last_error = $2,
                  status = CASE WHEN $3 THEN 'failed' ELSE status END
            WHERE id = $1`,
          [d.id, e.message.slice(0, 1000), permanent],
        );
        outcome = permanent ? 'failed' : 'retry';
        if (!permanent) retryErr = e;
      }
    }
    await c.query('COMMIT');
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    c.release();
  }
  if (retryErr) throw retryErr;
  return outcome;
}

/** Register the queue's workers (`concurrency` of them, one job each at a time). */
export async function startDeliveryWorkers(
  boss: PgBoss,
  pool: Pool,
  senders: Senders,
  log: Logger,
  o: RetryPolicy & { pollS: number; concurrency: number },
): Promise<void> {
  await boss.createQueue(DELIVERY_QUEUE, {
    name: DELIVERY_QUEUE,
    policy: 'short',
    retryLimit: o.retryLimit,
    retryDelay: o.retryDelayS,
    retryBackoff: true,
    expireInSeconds: 300,
  });
  for (let i = 0; i < o.concurrency; i++) {
    await boss.work<DeliveryJob>(
      DELIVERY_QUEUE,
      { includeMetadata: true, batchSize: 1, pollingIntervalSeconds: o.pollS },
      async (jobs) => {
        for (const job of jobs) {
          const final = job.retryCount >= job.retryLimit;
          try {
            const outcome = await deliver(pool, senders, job.data.deliveryId, final);
            if (outcome === 'failed') log.warn({ delivery: job.data.deliveryId }, 'delivery failed for good');
          } catch (err) {
            log.warn({ delivery: job.data.deliveryId, attempt: job.retryCount + 1, err: (err as Error).message }, 'delivery attempt failed; will retry');
            throw err;
          }
        }
      },
    );
  }
}
