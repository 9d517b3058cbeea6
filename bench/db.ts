/**
 * The benchmark's database: DATABASE_URL's server if set, else an embedded PostgreSQL under
 * ./data-bench. Every run gets a fresh database (kw_bench_<random>), dropped at the end.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import pg from 'pg';
import { freePort, log, onCleanup } from './lib.ts';
import {
  createArea,
  createHousehold,
  createOrganisation,
  createPool,
  embeddedPgPassword,
  logger,
  migrate,
  startEmbeddedPostgres,
  type Pool,
} from '@kilowire/server';

export interface BenchDb {
  url: string;
  /** The server's own URL (no database): where a kept database lives next to the run's. */
  serverUrl: string;
  pool: Pool;
  where: string;
  /** On the embedded server only: a hard stop (`pg_ctl stop -m immediate`) and a start, for outage runs. */
  outage?: { stopImmediate(): Promise<void>; start(): Promise<void> };
}

export async function startDatabase(): Promise<BenchDb> {
  let serverUrl = process.env.DATABASE_URL;
  let where = 'DATABASE_URL';
  let outage: BenchDb['outage'];
  if (!serverUrl) {
    const dataDir = path.resolve('data-bench');
    const port = await freePort();
    log(`starting embedded PostgreSQL under ${dataDir} on port ${port}`);
    const start = () => startEmbeddedPostgres(dataDir, port, embeddedPgPassword(dataDir), logger('pg'));
    let epg = await start();
    onCleanup('embedded PostgreSQL', () => epg.stop());
    serverUrl = epg.url;
    where = `embedded PostgreSQL (${dataDir})`;
    outage = {
      async stopImmediate() {
        const pid = epg.pid;
        process.kill(pid, 'SIGQUIT');
        for (let i = 0; i < 600; i++) {
          try {
            process.kill(pid, 0);
          } catch {
            return;
          }
          await new Promise((r) => setTimeout(r, 50));
        }
      },
      async start() {
        epg = await start();
      },
    };
  }
  const name = `kw_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  onCleanup(`drop database ${name}`, async () => {
    const c = new pg.Client({ connectionString: serverUrl });
    await c.connect();
    try {
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    } finally {
      await c.end();
    }
  });
  const u = new URL(serverUrl);
  u.pathname = `/${name}`;
  const url = u.toString();
  // Building millions of rows in one statement takes longer than the service's 30 s statement limit.
  const pool = createPool(url, { max: 20, statementTimeoutMs: 3_600_000 });
  onCleanup('bench pool', () => pool.end());
  await migrate(pool);
  log(`database ${name} on ${where}`);
  return { url, serverUrl, pool, where, ...(outage ? { outage } : {}) };
}

/**
 * A database that outlives the run (e.g. part d's 100M readings): created on the same server
 * as the run's database if missing, never dropped here, migrated with the project's migrate()
 * so a kept database follows new migrations. `recreate` drops it first (a corrupt build).
 */
export async function keptDatabase(
  db: BenchDb,
  name: string,
  opts: { recreate?: boolean } = {},
): Promise<{ url: string; pool: Pool; close(): Promise<void> }> {
  if (!/^[a-z0-9_]+$/.test(name)) throw new Error(`bad kept database name ${name}`);
  const admin = new pg.Client({ connectionString: db.serverUrl });
  await admin.connect();
  try {
    if (opts.recreate) await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (!rowCount) await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const u = new URL(db.serverUrl);
  u.pathname = `/${name}`;
  const url = u.toString();
  const pool = createPool(url, { max: 20, statementTimeoutMs: 3_600_000 });
  const close = onCleanup(`pool of kept database ${name}`, () => pool.end());
  await migrate(pool);
  return { url, pool, close };
}

export interface Household {
  serial: string;
  meterId: number;
  loginId: string;
  credential: string;
}

let orgSeq = 0;

/**
 * `n` households (consumer login, account, meter) through the real `createHousehold`,
 * `concurrency` at a time, all sharing one precomputed password hash (argon2 once, not n times).
 */
export async function provision(
  pool: Pool,
  n: number,
  opts: { prefix: string; passwordHash: string; concurrency?: number },
): Promise<Household[]> {
  const tag = `${opts.prefix}${++orgSeq}`;
  const sup = await createOrganisation(pool, 'supplier', `sup-${tag}`, `Supplier ${tag}`);
  const op = await createOrganisation(pool, 'network_operator', `op-${tag}`, `Operator ${tag}`);
  await createArea(pool, `A-${tag}`, op, `Area ${tag}`, [`F-${tag}`]);
  const out: Household[] = new Array<Household>(n);
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= n) return;
      const serial = `${tag}M${i}`;
      const credential = randomBytes(12).toString('base64url');
      const h = await createHousehold(pool, {
        loginId: `${tag}C${i}`,
        password: 'unused',
        passwordHash: opts.passwordHash,
        name: `Household ${i}`,
        supplierId: sup,
        mode: 'credit',
        meter: { serial, areaId: `A-${tag}`, feederId: `F-${tag}`, credential },
      });
      out[i] = { serial, meterId: h.meterId, loginId: `${tag}C${i}`, credential };
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency ?? 8 }, worker));
  return out;
}
