import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isConnectionError, withSessionLock, type Pool } from './pool.ts';

const MIGRATIONS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../migrations');
/** Arbitrary constant: the advisory lock that serialises migrations across processes. */
const MIGRATION_LOCK = 7_351_001;

/**
 * Apply plain-SQL migrations in name order, each in its own transaction, under a session
 * advisory lock so that several processes starting together apply each exactly once.
 */
export async function migrate(
  pool: Pool,
  /** Stop after this file (tests that migrate a database holding data forward). */
  opts: { upTo?: string } = {},
): Promise<string[]> {
  const applied: string[] = [];
  await withSessionLock(pool, MIGRATION_LOCK, async (c) => {
    await c.query(
      'CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
    );
    const done = new Set(
      (await c.query<{ name: string }>('SELECT name FROM schema_migrations')).rows.map((r) => r.name),
    );
    const files = readdirSync(MIGRATIONS_DIR)
      .filter((f) => f.endsWith('.sql'))
      .sort();
    for (const f of files) {
      if (opts.upTo !== undefined && f > opts.upTo) break;
      if (done.has(f)) continue;
      const sql = readFileSync(path.join(MIGRATIONS_DIR, f), 'utf8');
      await c.query('BEGIN');
      try {
        await c.query(sql);
        await c.query('INSERT INTO schema_migrations (name) VALUES ($1)', [f]);
        await c.query('COMMIT');
        applied.push(f);
      } catch (err) {
        await c.query('ROLLBACK').catch(() => undefined);
        if (isConnectionError(err)) throw err; // retried by the caller once the database is back
        throw new Error(`migration ${f} failed: ${(err as Error).message}`, { cause: err });
      }
    }
  });
  return applied;
}

/**
 * A reading counts as received once committed, so the database must not lose commits.
 * Returns the settings that are off; the caller refuses to start unless told otherwise.
 */
export async function durabilityProblems(pool: Pool): Promise<string[]> {
  const { rows } = await pool.query<{ name: string; setting: string }>(
    "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes')",
  );
  return rows.filter((r) => r.setting === 'off').map((r) => `${r.name} is off`);
}
