import type PgBoss from 'pg-boss';
import type { Pool } from '../db/pool.ts';
import { tx } from '../db/pool.ts';
import type { Logger } from '../log.ts';
import { DELIVERIES_CHANNEL } from '../notify/channels.ts';
import { deliver, type Senders } from '../notify/delivery.ts';
import { bossDb, stableUuid } from './boss.ts';
import { Sweeper } from './sweeper.ts';

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
  private readonly sweeper: Sweeper;

  constructor(
    private readonly pool: Pool,
    private readonly boss: PgBoss,
    log: Logger,
    private readonly retry: RetryPolicy,
    sweepMs: number,
    /** Database URL for the LISTEN connection; unset = sweep only. */
    databaseUrl?: string,
    /** Wake this process's delivery workers once jobs committed (others poll). */
    wake: () => void = () => undefined,
  ) {
    this.sweeper = new Sweeper({
      name: 'delivery dispatch',
      work: async () => {
        const n = await this.dispatchOnce();
        if (n) wake();
        return n;
      },
      sweepMs,
      ...(databaseUrl ? { channel: { name: DELIVERIES_CHANNEL, databaseUrl } } : {}),
      log,
    });
  }

  start(): void {
    this.sweeper.start();
  }

  kick(): void {
    this.sweeper.kick();
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

  stop(): Promise<void> {
    return this.sweeper.stop();
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
