import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startEmbeddedPostgres, type EmbeddedPg } from '../../src/db/embedded.ts';
import { logger } from '../../src/log.ts';
import { freePort } from '../../src/net.ts';

/**
 * A PostgreSQL server of the test's own (real binaries, a private data folder), so that a
 * test can stop it hard, restart it and pause it without touching the run's shared server.
 */
export class PrivatePg {
  private pg: EmbeddedPg | undefined;
  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {}

  static async start(): Promise<PrivatePg> {
    // Under /tmp but reachable by the `postgres` OS user when tests run as root (0711).
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kw-privpg-'));
    execFileSync('chmod', ['0711', dir]);
    const p = new PrivatePg(dir, await freePort());
    await p.startServer();
    return p;
  }

  get url(): string {
    return this.pg!.url;
  }

  async startServer(): Promise<void> {
    this.pg = await startEmbeddedPostgres(this.dir, this.port, 'private-pg-test', logger('private-pg'));
  }

  /** `pg_ctl stop -m immediate`: the postmaster quits at once, connections are cut, no checkpoint. */
  async stopImmediate(): Promise<void> {
    const pid = this.pg!.pid;
    process.kill(pid, 'SIGQUIT');
    for (let i = 0; i < 200; i++) {
      try {
        process.kill(pid, 0);
      } catch {
        return;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('postgres did not stop');
  }

  /** Every process of the cluster, postmaster first. */
  private pids(): number[] {
    const root = this.pg!.pid;
    let children: number[] = [];
    try {
      children = execFileSync('pgrep', ['-P', String(root)])
        .toString()
        .trim()
        .split('\n')
        .filter(Boolean)
        .map(Number);
    } catch {
      // no children
    }
    return [root, ...children];
  }

  /** Freeze the whole server (SIGSTOP): it accepts TCP connections but answers nothing — a hung database. */
  pause(): void {
    // The postmaster first, so it forks no new backend; then its children, listed only once it
    // is frozen (a backend forked between a listing and the kill would go on answering).
    const stopped = new Set<number>();
    for (let round = 0; round < 5; round++) {
      const fresh = this.pids().filter((pid) => !stopped.has(pid));
      if (fresh.length === 0) return;
      for (const pid of fresh) {
        try {
          process.kill(pid, 'SIGSTOP');
          stopped.add(pid);
        } catch {
          // exited meanwhile
        }
      }
    }
  }

  resume(): void {
    for (const pid of this.pids().reverse()) process.kill(pid, 'SIGCONT');
  }

  async stop(): Promise<void> {
    try {
      this.resume();
    } catch {
      // already gone
    }
    await this.pg?.stop();
  }
}
