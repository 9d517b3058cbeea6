import pg from 'pg';

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

export function createPool(connectionString: string, max = 10): pg.Pool {
  const pool = new pg.Pool({ connectionString, max, application_name: 'kilowire' });
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on('error', () => undefined);
  return pool;
}

/** Run `fn` in a transaction; rolls back on any error. */
export async function tx<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    const out = await fn(c);
    await c.query('COMMIT');
    return out;
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    c.release();
  }
}
