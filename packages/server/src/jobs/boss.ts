import { createHash } from 'node:crypto';
import PgBoss from 'pg-boss';
import type { Pool, PoolClient } from '../db/pool.ts';

/** pg-boss runs its SQL through this process's pool (no second pool, same type parsers). */
export function bossDb(q: Pool | PoolClient): PgBoss.Db {
  // Exactly what pg-boss's own Db does: the driver's result, unchanged.
  return { executeSql: (text: string, values: unknown[]) => q.query(text, values) };
}

export interface BossOptions {
  /** Maintenance (expiry, archiving) in this process. */
  supervise?: boolean;
  /** Cron schedules in this process. */
  schedule?: boolean;
  /** Seconds between maintenance runs (timed-out jobs of dead processes are retried then). */
  maintenanceS?: number;
}

/** A started pg-boss (schema `pgboss`, created or migrated on first start). */
export async function startBoss(pool: Pool, o: BossOptions = {}): Promise<PgBoss> {
  const boss = new PgBoss({
    db: bossDb(pool),
    schema: 'pgboss',
    supervise: o.supervise ?? true,
    schedule: o.schedule ?? true,
    migrate: true,
    maintenanceIntervalSeconds: o.maintenanceS ?? 30,
  });
  await boss.start();
  return boss;
}

/** A stable UUID for a key, so sending the same job twice is a no-op (job id conflict). */
export function stableUuid(key: string): string {
  const h = createHash('sha256').update(key).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
