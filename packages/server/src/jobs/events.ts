import type PgBoss from 'pg-boss';
import { tx, type Pool } from '../db/pool.ts';
import { loadEvents } from '../events/emit.ts';
import { EVENTS_CHANNEL, type EventType, type Subscriber } from '../events/types.ts';
import type { Logger } from '../log.ts';
import { bossDb, stableUuid } from './boss.ts';
import { Sweeper } from './sweeper.ts';

export interface EventDispatchOptions {
  /** Fallback sweep for events whose NOTIFY was missed (ms). */
  sweepMs: number;
  /**
   * After a NOTIFY, wait this long before dispatching (ms), so that the events of many small
   * gateway batches travel in one job instead of one job each.
   */
  gatherMs: number;
  /** Dispatched events are deleted after this many days (the facts themselves live in their tables). */
  retentionDays: number;
  /** Database URL for the LISTEN connection; unset = sweep only. */
  databaseUrl?: string;
  /** Wake this process's workers of a subscriber after its job committed (others poll). */
  wake?: (subscriber: string) => void;
}

const BATCH = 1000;
const queueOf = (s: Subscriber) => `events.${s.name}`;

/**
 * Hands committed domain events to each interested subscriber's pg-boss queue. In one
 * transaction it claims undispatched events (FOR UPDATE SKIP LOCKED: several jobs processes
 * share the work), sends one job per subscriber with those events' ids (through the same
 * transaction, with a job id derived from the events, so a repeat is a no-op) and marks the
 * events dispatched. Either all of that commits or none of it: no event is lost or queued
 * twice. Woken by NOTIFY; a timer sweeps as a fallback.
 */
export class EventDispatcher {
  private readonly sweeper: Sweeper;
  private lastPrune = 0;

  constructor(
    private readonly pool: Pool,
    private readonly boss: PgBoss,
    private readonly subscribers: readonly Subscriber[],
    log: Logger,
    private readonly o: EventDispatchOptions,
  ) {
    this.sweeper = new Sweeper({
      name: 'event dispatch',
      work: () => this.dispatchOnce(),
      after: () => this.prune(),
      sweepMs: o.sweepMs,
      gatherMs: o.gatherMs,
      ...(o.databaseUrl ? { channel: { name: EVENTS_CHANNEL, databaseUrl: o.databaseUrl } } : {}),
      log,
    });
  }

  start(): void {
    this.sweeper.start();
  }

  kick(): void {
    this.sweeper.kick();
  }

  /** Dispatch up to BATCH pending events; returns how many. */
  async dispatchOnce(): Promise<number> {
    const woken = new Set<string>();
    const n = await tx(this.pool, async (c) => {
      const { rows } = await c.query<{ id: number; type: EventType }>(
        `SELECT id, type FROM domain_events WHERE dispatched_at IS NULL ORDER BY id LIMIT ${BATCH} FOR UPDATE SKIP LOCKED`,
      );
      if (!rows.length) return 0;
      const db = bossDb(c);
      for (const s of this.subscribers) {
        const ids = rows.filter((r) => s.types.includes(r.type)).map((r) => r.id);
        if (!ids.length) continue;
        await this.boss.send(
          queueOf(s),
          { ids },
          { id: stableUuid(`${s.name}:${ids[0]}:${ids[ids.length - 1]}:${ids.length}`), db },
        );
        woken.add(s.name);
      }
      await c.query('UPDATE domain_events SET dispatched_at = now() WHERE id = ANY($1::bigint[])', [
        rows.map((r) => r.id),
      ]);
      return rows.length;
    });
    for (const name of woken) this.o.wake?.(name);
    return n;
  }

  /** Drop dispatched events past the retention, a bounded slice at a time, every few minutes. */
  private async prune(): Promise<void> {
    if (Date.now() - this.lastPrune < 300_000) return;
    this.lastPrune = Date.now();
    await this.pool.query(
      `DELETE FROM domain_events WHERE id IN (
         SELECT id FROM domain_events WHERE dispatched_at < now() - make_interval(days => $1) ORDER BY id LIMIT 50000)`,
      [this.o.retentionDays],
    );
  }

  /** Resolves when nothing is running (tests). */
  idle(): Promise<void> {
    return this.sweeper.idle();
  }

  stop(): Promise<void> {
    return this.sweeper.stop();
  }
}

/**
 * Create each subscriber's queue and its workers: load the job's events, hand over those of
 * its types. Returns a function that wakes a subscriber's workers in this process at once.
 */
export async function startEventWorkers(
  boss: PgBoss,
  pool: Pool,
  subscribers: readonly Subscriber[],
  log: Logger,
  o: { pollS: number; timeoutS: number },
): Promise<(subscriber: string) => void> {
  const workers = new Map<string, string>();
  for (const s of subscribers) {
    const name = queueOf(s);
    // Retries back off from 2 s: a handler that fails while the database restarts gets
    // through once it is back; one that fails for good stays visible as a failed job.
    // A job still active after timeoutS belongs to a process that died: maintenance fails it
    // and it is retried.
    await boss.createQueue(name, {
      name,
      policy: 'standard',
      retryLimit: 12,
      retryDelay: 2,
      retryBackoff: true,
      expireInSeconds: o.timeoutS,
    });
    const id = await boss.work<{ ids: number[] }>(
      name,
      { batchSize: 1, pollingIntervalSeconds: o.pollS },
      async (jobs) => {
        for (const job of jobs) {
          const events = (await loadEvents(pool, job.data.ids)).filter((e) => s.types.includes(e.type));
          try {
            await s.handle(events);
          } catch (err) {
            log.warn(
              { subscriber: s.name, events: events.length, err: (err as Error).message },
              'event handler failed; will retry',
            );
            throw err;
          }
        }
      },
    );
    workers.set(s.name, id);
  }
  return (subscriber) => {
    const w = workers.get(subscriber);
    if (w) boss.notifyWorker(w);
  };
}
