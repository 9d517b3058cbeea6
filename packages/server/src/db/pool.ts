import pg from 'pg';
import type { Logger } from '../log.ts';

/**
 * bigint columns (counts, Wh registers) come back as JS numbers: every value we store fits
 * in 2^53, and numbers keep arithmetic simple. int8 arrays likewise.
 */
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));
const setParser = pg.types.setTypeParser as (oid: number, fn: (v: string) => unknown) => void;
setParser(1016, (v) => (v === '{}' ? [] : v.slice(1, -1).split(',').map(Number)));
// `date` stays a YYYY-MM-DD string: it is a local calendar day, not an instant.
pg.types.setTypeParser(pg.types.builtins.DATE, (v) => v);

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;
/** Anything that runs a query: the pool (one statement, autocommit) or a transaction's client. */
export type Q = pg.Pool | pg.PoolClient;

export interface PoolOptions {
  max?: number;
  /**
   * Longest a statement may run, ms: enforced by the server (`statement_timeout`) and, a few
   * seconds later, by the client (`query_timeout`), so a hung or stopped server still fails
   * the query instead of leaving the caller waiting forever.
   */
  statementTimeoutMs?: number;
  /** Longest wait for a connection (new or from the pool), ms. */
  connectTimeoutMs?: number;
  applicationName?: string;
}

export const DEFAULT_STATEMENT_TIMEOUT_MS = 30_000;

export function createPool(connectionString: string, o: PoolOptions | number = {}): pg.Pool {
  const opts: PoolOptions = typeof o === 'number' ? { max: o } : o;
  const statement = opts.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS;
  const pool = new pg.Pool({
    connectionString,
    max: opts.max ?? 10,
    application_name: opts.applicationName ?? 'kilowire',
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 5_000,
    statement_timeout: statement,
    query_timeout: statement + 5_000,
    // A transaction left open by a stuck client must not hold locks for ever.
    idle_in_transaction_session_timeout: 60_000,
    // No JIT: every Kilowire statement is short, and a plan estimated above jit_above_cost
    // (a fleet search over 10,000 meters) spent ~50 ms compiling to save a few ms. No parallel
    // workers either: many people's short queries at once are served by running them side by
    // side, and a Gather's workers only queue behind them (fleet search p95 80 -> 61 ms at 50
    // staff). Big passes (extracts, bill runs) are already split into jobs. Both measured in
    // docs/performance.md; PostgreSQL builds without LLVM ignore the JIT setting.
    options: '-c jit=off -c max_parallel_workers_per_gather=0',
    keepAlive: true,
  });
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on('error', () => undefined);
  return pool;
}

/**
 * Check out a client that cannot crash the process: node-pg's pool listens for `error` on
 * idle clients only, so a checked-out client whose server goes away (a restart under load)
 * would emit an unhandled `error` and end Node. The returned `release` destroys a client
 * that failed, so a broken connection never goes back into the pool.
 */
export async function checkout(
  pool: pg.Pool,
): Promise<{ c: pg.PoolClient; release: (err?: unknown) => void }> {
  const c = await pool.connect();
  let broken: Error | undefined;
  const onError = (err: Error) => {
    broken = err;
  };
  c.on('error', onError);
  return {
    c,
    release(err?: unknown) {
      c.off('error', onError);
      const bad = broken ?? (err !== undefined && isConnectionError(err) ? (err as Error) : undefined);
      c.release(bad ?? false);
    },
  };
}

/**
 * Run `fn` on one connection holding the session advisory lock `lockId` (several processes
 * doing the same one-time work take turns). The lock is released after, or dies with the
 * connection if the unlock cannot be sent.
 */
export async function withSessionLock<T>(
  pool: pg.Pool,
  lockId: number,
  fn: (c: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const { c, release } = await checkout(pool);
  let failure: unknown;
  try {
    await c.query('SELECT pg_advisory_lock($1)', [lockId]);
    return await fn(c);
  } catch (err) {
    failure = err;
    throw err;
  } finally {
    await c.query('SELECT pg_advisory_unlock($1)', [lockId]).catch(() => undefined);
    release(failure);
  }
}

/** Run `fn` in a transaction; rolls back on any error. */
export async function tx<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const { c, release } = await checkout(pool);
  let failure: unknown;
  try {
    await c.query('BEGIN');
    const out = await fn(c);
    await c.query('COMMIT');
    return out;
  } catch (err) {
    failure = err;
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    release(failure);
  }
}

/** Who makes a change: the audit row of the change names them. */
export interface Who {
  /** users.id; null for the system itself or an unknown user (a failed login). */
  actorId: number | null;
  ip?: string | null;
}

/** A transaction that also records who did what, committed with the change or not at all. */
export interface Tx {
  readonly c: pg.PoolClient;
  /**
   * Append an audit row in this transaction. `action` is a stable dotted name
   * ('meter.command', 'session.login'); `detail` never holds passwords, tokens or keys.
   */
  audit(action: string, target?: string | null, detail?: Record<string, unknown> | null): Promise<void>;
}

/**
 * The one way a change that someone asked for is made: `fn` runs in a transaction whose
 * audit rows commit with it (a change without its audit row, or an audit row for a change
 * that rolled back, cannot happen).
 */
export async function withTx<T>(pool: pg.Pool, who: Who, fn: (t: Tx) => Promise<T>): Promise<T> {
  return tx(pool, (c) =>
    fn({
      c,
      audit: (action, target, detail) => insertAudit(c, who, action, target ?? null, detail ?? null),
    }),
  );
}

async function insertAudit(
  c: pg.PoolClient,
  who: Who,
  action: string,
  target: string | null,
  detail: Record<string, unknown> | null,
): Promise<void> {
  await c.query('INSERT INTO audit_log (actor_id, action, target, detail, ip) VALUES ($1, $2, $3, $4, $5)', [
    who.actorId,
    action,
    target,
    detail ? JSON.stringify(detail) : null,
    who.ip ?? null,
  ]);
}

/** SQLSTATE classes and client errors that mean "the database is not reachable right now". */
export function isConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    // 08: connection exception; 57P01-57P03: admin shutdown, crash shutdown, cannot connect now; 53300: too many connections.
    if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03' || code === '53300')
      return true;
    if (['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH'].includes(code))
      return true;
    // 57014: statement timeout / cancelled: a server too slow to answer counts as unavailable.
    if (code === '57014') return true;
  }
  const m = err.message;
  return (
    m.includes('Connection terminated') ||
    m.includes('timeout exceeded when trying to connect') ||
    m.includes('Query read timeout') ||
    m.includes('connection timeout') ||
    m.includes('Client has encountered a connection error') ||
    m.includes('Client was closed') ||
    m.includes('Cannot use a pool after calling end')
  );
}

/**
 * Wait until the database answers, retrying with backoff (0.25 s doubling to 5 s): a process
 * started before its database, or during a restart, comes up by itself. Rejects only when
 * `signal` aborts (shutdown).
 */
export async function waitForDatabase(pool: pg.Pool, log: Logger, signal?: AbortSignal): Promise<void> {
  let delay = 250;
  let attempt = 0;
  for (;;) {
    if (signal?.aborted) throw new Error('stopped while waiting for the database');
    try {
      await pool.query('SELECT 1');
      if (attempt > 0) log.info({ attempts: attempt + 1 }, 'database reachable');
      return;
    } catch (err) {
      attempt++;
      // First failure, then every ~10th: a newcomer sees why, the log does not fill up.
      if (attempt === 1 || attempt % 10 === 0) {
        log.warn({ err: (err as Error).message, attempt }, 'database not reachable yet; retrying');
      }
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, delay);
      signal?.addEventListener('abort', () => {
        clearTimeout(t);
        resolve();
      });
    });
    delay = Math.min(delay * 2, 5_000);
  }
}
