import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import PgBoss from 'pg-boss';
// pg-boss's own SQL texts, to recognise the statements it issues without awaiting them.
import plans from 'pg-boss/src/plans.js';
import { tx, withSessionLock, type Pool, type PoolClient } from '../db/pool.ts';
import type { Logger } from '../log.ts';

/** pg-boss runs its SQL through this process's pool (no second pool, same type parsers). */
export function bossDb(q: Pool | PoolClient): PgBoss.Db {
  // Exactly what pg-boss's own Db does: the driver's result, unchanged.
  return { executeSql: (text: string, values: unknown[]) => q.query(text, values) };
}

/**
 * pg-boss 10 completes or fails a job after its handler *without awaiting the promise*
 * (manager.js `onFetch`). If the database is away at that moment the rejection is
 * unhandled, which ends a Node 20 process; and a shutdown that closes the pool right after
 * `boss.stop()` rejects it too. This Db therefore (1) turns a failure of exactly those two
 * statements into a logged warning and "0 rows" — the job stays `active`, pg-boss's
 * maintenance fails it after its expiry and it is retried, so handlers being idempotent
 * keeps it at-least-once — and (2) counts statements in flight so stop can wait for them.
 */
export class TrackedBossDb implements PgBoss.Db {
  private readonly unawaited: Set<string>;
  private readonly createQueue: string;
  private readonly install: string;
  private readonly installed: string;
  private readonly inflight = new Set<Promise<unknown>>();

  constructor(
    private readonly pool: Pool,
    private readonly log: Logger | undefined,
    schema: string,
  ) {
    this.unawaited = new Set([plans.completeJobs(schema), plans.failJobsById(schema)]);
    this.createQueue = plans.createQueue(schema);
    this.install = plans.create(schema, BOSS_SCHEMA_VERSION);
    this.installed = plans.versionTableExists(schema);
  }

  executeSql(text: string, values: unknown[]): Promise<{ rows: unknown[] }> {
    let p: Promise<{ rows: unknown[] }> =
      text === this.install
        ? this.installOnce(text)
        : text === this.createQueue
        ? // pg-boss's create_queue inserts the queue's row, then adds a foreign key to that
          // table: two processes creating one new queue at once (the first start of several
          // jobs processes, or a release that adds a queue) deadlock. One at a time, the
          // second finds the row and returns.
          tx(this.pool, async (c) => {
            await c.query('SELECT pg_advisory_xact_lock($1)', [CREATE_QUEUE_LOCK]);
            return c.query(text, values);
          })
        : this.pool.query(text, values);
    if (this.unawaited.has(text)) {
      p = p.catch((err: Error) => {
        this.log?.warn(
          { err: err.message },
          'job completion not recorded; the job is retried after its expiry',
        );
        return { rows: [{ count: '0' }] };
      });
    }
    this.inflight.add(p);
    const done = () => this.inflight.delete(p);
    p.then(done, done);
    return p;
  }

  /**
   * pg-boss installs its schema under an advisory lock taken inside the install transaction,
   * and treats "already exists" from a second process as a lost race. CI once saw the second
   * of two jobs processes starting on a fresh database fail instead with a duplicate key on
   * pg_namespace (its CREATE SCHEMA IF NOT EXISTS did not see the schema the first had just
   * created), which ended the process. Here the install runs under a session lock taken
   * *before* its transaction, and only if the schema is still missing when the lock is held:
   * the second process then looks with a fresh transaction and skips the install.
   */
  private installOnce(text: string): Promise<{ rows: unknown[] }> {
    return withSessionLock(this.pool, INSTALL_LOCK, async (c) => {
      const found = await c.query<{ name: string | null }>(this.installed);
      if (found.rows[0]?.name) return { rows: [] };
      return c.query(text);
    });
  }

  /** Resolves once every statement issued so far has settled. */
  async drain(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }
}

/** The pg-boss schema version this pg-boss installs (its install SQL depends on it). */
const BOSS_SCHEMA_VERSION = (createRequire(import.meta.url)('pg-boss/version.json') as { schema: number }).schema;

/** Arbitrary constant: the advisory lock that serialises pg-boss's install across processes. */
const INSTALL_LOCK = 4_111_202_612;

/** Arbitrary constant: the advisory lock that serialises pg-boss queue creation across processes. */
const CREATE_QUEUE_LOCK = 4_111_202_611;

export interface BossOptions {
  /** Maintenance (expiry, archiving) in this process. */
  supervise?: boolean;
  /** Cron schedules in this process. */
  schedule?: boolean;
  /** Seconds between maintenance runs (timed-out jobs of dead processes are retried then). */
  maintenanceS?: number;
  log?: Logger;
}

export interface StartedBoss {
  boss: PgBoss;
  /** Stop workers (waiting for handlers in progress) and every statement pg-boss left in flight. */
  stop(timeoutMs: number): Promise<void>;
}

/** A started pg-boss (schema `pgboss`, created or migrated on first start). */
export async function startBoss(pool: Pool, o: BossOptions = {}): Promise<StartedBoss> {
  const db = new TrackedBossDb(pool, o.log, 'pgboss');
  const boss = new PgBoss({
    db,
    schema: 'pgboss',
    supervise: o.supervise ?? true,
    schedule: o.schedule ?? true,
    migrate: true,
    maintenanceIntervalSeconds: o.maintenanceS ?? 30,
  });
  await boss.start();
  return {
    boss,
    async stop(timeoutMs) {
      await boss.stop({ graceful: true, wait: true, close: false, timeout: timeoutMs });
      await db.drain();
    },
  };
}

/** A stable UUID for a key, so sending the same job twice is a no-op (job id conflict). */
export function stableUuid(key: string): string {
  const h = createHash('sha256').update(key).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/**
 * Work that must run every few seconds but once at a time across every jobs process. pg-boss
 * cron ticks by the minute, so each process sends on a timer into a 'stately' queue: at most
 * one job queued and one running however many processes send, and a job of a process that
 * died is retried after `expireS`. Returns the function that stops this process's timer.
 */
export async function startTicker(
  boss: PgBoss,
  queue: string,
  o: { everyMs: number; pollS?: number; expireS?: number; log: Logger },
  work: () => Promise<void>,
): Promise<() => void> {
  await boss.createQueue(queue, {
    name: queue,
    policy: 'stately',
    retryLimit: 1,
    expireInSeconds: o.expireS ?? 300,
  });
  await boss.work(queue, { pollingIntervalSeconds: o.pollS ?? 2 }, work);
  const send = () =>
    void boss.send(queue, {}, { singletonKey: 'tick' }).catch((err: Error) => {
      o.log.warn({ err: err.message, queue }, 'tick not queued');
    });
  send();
  const timer = setInterval(send, o.everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
