import type PgBoss from 'pg-boss';
import { Listener } from '../db/listener.ts';
import type { Pool } from '../db/pool.ts';
import { tx } from '../db/pool.ts';
import { RateLimitedLog, type Logger } from '../log.ts';
import { DELIVERIES_CHANNEL } from '../notify/channels.ts';
import { deliver, type Senders } from '../notify/delivery.ts';
import { bossDb, stableUuid } from './boss.ts';

export type { Senders } from '../notify/delivery.ts';

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
  private listener: Listener | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private readonly errLog: RateLimitedLog;

  constructor(
    private readonly pool: Pool,
    private readonly boss: PgBoss,
    private readonly log: Logger,
    private readonly retry: RetryPolicy,
    private readonly sweepMs: number,
    /** Database URL for the LISTEN connection; unset = sweep only. */
    private readonly databaseUrl?: string,
    /** Wake this process's delivery workers once jobs committed (others poll). */
    private readonly wake: () => void = () => undefined,
  ) {
    this.errLog = new RateLimitedLog(log, 10_000);
  }

  start(): void {
    if (this.databaseUrl) {
      this.listener = new Listener(
        this.databaseUrl,
        [DELIVERIES_CHANNEL],
        () => this.kick(),
        this.log,
        () => this.kick(),
      );
      this.listener.start();
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
          while ((await this.dispatchOnce()) > 0 && !this.stopped) this.wake();
        } catch (err) {
          this.errLog.error('dispatch', { err }, 'delivery dispatch failed; will retry');
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
    await this.listener?.stop();
    while (this.running) await this.running;
  }
}

/** Register the queue's workers (`concurrency` of them, one job each at a time). */
export async function startDeliveryWorkers(
  boss: PgBoss,
  pool: Pool,
  senders: Senders,
  log: Logger,
  o: RetryPolicy & { pollS: number; concurrency: number },
): Promise<() => void> {
  const ids: string[] = [];
  await boss.createQueue(DELIVERY_QUEUE, {
    name: DELIVERY_QUEUE,
    policy: 'short',
    retryLimit: o.retryLimit,
    retryDelay: o.retryDelayS,
    retryBackoff: true,
    expireInSeconds: 300,
  });
  for (let i = 0; i < o.concurrency; i++) {
    const id = await boss.work<DeliveryJob>(
      DELIVERY_QUEUE,
      { includeMetadata: true, batchSize: 1, pollingIntervalSeconds: o.pollS },
      async (jobs) => {
        for (const job of jobs) {
          const final = job.retryCount >= job.retryLimit;
          try {
            const outcome = await deliver(pool, senders, job.data.deliveryId, final);
            if (outcome === 'failed') log.warn({ delivery: job.data.deliveryId }, 'delivery failed for good');
          } catch (err) {
            log.warn(
              { delivery: job.data.deliveryId, attempt: job.retryCount + 1, err: (err as Error).message },
              'delivery attempt failed; will retry',
            );
            throw err;
          }
        }
      },
    );
    ids.push(id);
  }
  return () => {
    for (const id of ids) boss.notifyWorker(id);
  };
}
