import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/main.ts');

/** Kilowire as a separate OS process (so a test can kill -9 it), started as `npm start` would. */
export class KilowireProcess {
  proc: ChildProcess | undefined;
  output = '';
  /** Everything the process printed since it was created (across restarts), for counting log lines. */
  all = '';
  readonly dataDir = mkdtempSync(path.join(os.tmpdir(), 'kw-proc-'));

  constructor(
    private readonly services: string,
    private readonly env: Record<string, string>,
  ) {}

  get alive(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Log lines (pino JSON) printed so far whose message matches. */
  logLines(msg: RegExp): { level: number; msg: string }[] {
    const out: { level: number; msg: string }[] = [];
    for (const line of this.all.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        const j = JSON.parse(line) as { level: number; msg?: string };
        if (j.msg && msg.test(j.msg)) out.push({ level: j.level, msg: j.msg });
      } catch {
        // not a log line
      }
    }
    return out;
  }

  start(): void {
    this.proc = spawn(process.execPath, ['--import', 'tsx', MAIN, `--services=${this.services}`], {
      env: { ...process.env, DATA_DIR: this.dataDir, DEMO_SEED: 'false', LOG_LEVEL: 'info', ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (d: Buffer) => {
      this.output = (this.output + d.toString()).slice(-20_000);
      if (this.all.length < 5_000_000) this.all += d.toString();
    };
    this.proc.stdout?.on('data', keep);
    this.proc.stderr?.on('data', keep);
  }

  async waitFor(text: string, ms = 30_000): Promise<void> {
    const until = Date.now() + ms;
    while (!this.output.includes(text)) {
      if (this.proc?.exitCode !== null && this.proc?.exitCode !== undefined) {
        throw new Error(`process exited (${this.proc.exitCode}):\n${this.output}`);
      }
      if (Date.now() > until) throw new Error(`timed out waiting for "${text}":\n${this.output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** SIGKILL: no flush, no goodbye — what a power cut or OOM kill does. */
  async kill9(): Promise<void> {
    const p = this.proc;
    if (!p || !this.alive) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    });
    this.output = '';
  }

  async stop(): Promise<void> {
    const p = this.proc;
    // A process ended by a signal has no exit code (and its 'exit' has already been emitted).
    if (!p || !this.alive) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGTERM');
      setTimeout(() => p.kill('SIGKILL'), 10_000).unref();
    });
  }
}
