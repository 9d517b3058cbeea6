import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { freePort } from '../src/net.ts';

/**
 * How the process starts and stops for a newcomer: a checkout in a private folder as root
 * ends with one sentence, not a stack trace; Ctrl-C ends the process at any moment — while
 * it waits for a database that is not there, after a clean start (with no warnings), and
 * after its embedded database has already gone.
 */
const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src/main.ts');

interface Run {
  out: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
  signal(sig: NodeJS.Signals): number;
  pid: number;
}

function run(env: Record<string, string | undefined>, services = 'broker,gateway,jobs,api,simulator'): Run {
  const childEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, LOG_LEVEL: 'info', ...env }))
    if (v !== undefined) childEnv[k] = v;
  const p = spawn(process.execPath, ['--import', 'tsx', MAIN, `--services=${services}`], {
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr.on('data', (d: Buffer) => (out += d.toString()));
  let sentAt = 0;
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>((resolve) =>
    p.on('exit', (code, signal) => resolve({ code, signal, ms: sentAt ? Date.now() - sentAt : 0 })),
  );
  return {
    out: () => out,
    exit,
    pid: p.pid!,
    signal(sig) {
      sentAt = Date.now();
      p.kill(sig);
      return sentAt;
    },
  };
}

async function waitOut(r: Run, text: string | RegExp, ms = 60_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(typeof text === 'string' ? r.out().includes(text) : text.test(r.out()))) {
    if (Date.now() > until)
      throw new Error(`timed out waiting for ${String(text)}:\n${r.out().slice(-3000)}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

/** Log lines (pino JSON) at warn level or above. */
function warnings(text: string): string[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .flatMap((l) => {
      try {
        const j = JSON.parse(l) as { level: number; msg: string };
        return j.level >= 40 ? [l] : [];
      } catch {
        return [];
      }
    });
}

/** A DATA_DIR that the `postgres` OS user can reach when the tests run as root. */
function reachableDataDir(): string {
  const base = mkdtempSync(path.join(os.tmpdir(), 'kw-life-'));
  chmodSync(base, 0o711);
  return path.join(base, 'data');
}

const embedded = async () => ({
  DATABASE_URL: undefined,
  MQTT_URL: undefined,
  DATA_DIR: reachableDataDir(),
  PORT: String(await freePort()),
  EMBEDDED_PG_PORT: String(await freePort()),
  EMBEDDED_MQTT_PORT: String(await freePort()),
  SIM_METERS: '3',
  SIM_BACKFILL_DAYS: '1',
});

describe('starting', () => {
  it.skipIf(process.getuid?.() !== 0)(
    'as root in a private (0700) folder: one clear sentence and exit 1, no stack trace',
    async () => {
      const priv = mkdtempSync(path.join(os.tmpdir(), 'kw-private-')); // mode 0700, like root's home or mktemp -d
      const r = run({ ...(await embedded()), DATA_DIR: path.join(priv, 'data') });
      const e = await r.exit;
      expect(e.code).toBe(1);
      const text = r.out();
      expect(text).toMatch(
        /kilowire: the embedded PostgreSQL runs as the OS user `postgres`.*cannot enter .*kw-private-.*set DATA_DIR/,
      );
      expect(text).not.toMatch(/\n\s+at /); // no stack trace
      expect(text).not.toContain('EACCES');
    },
    60_000,
  );
});

describe('stopping', () => {
  it('Ctrl-C while waiting for a database that is not there ends the process at once', async () => {
    const r = run(
      {
        DATABASE_URL: `postgres://postgres@127.0.0.1:${await freePort()}/nowhere`,
        MQTT_URL: 'mqtt://127.0.0.1:1',
        MQTT_PASSWORD: 'x',
        DATA_DIR: reachableDataDir(),
        PORT: String(await freePort()),
      },
      'gateway,jobs,api',
    );
    await waitOut(r, 'database not reachable yet');
    r.signal('SIGINT');
    const e = await r.exit;
    expect(e.code).toBe(0);
    expect(e.ms).toBeLessThan(5_000);
  }, 60_000);

  it('a clean start on embedded defaults, then Ctrl-C: exit 0 within seconds and not one warning while stopping', async () => {
    const env = await embedded();
    const r = run(env);
    await waitOut(r, 'Kilowire is running', 120_000);
    await new Promise((res) => setTimeout(res, 3_000)); // meters connected and reporting
    const before = r.out().length;
    r.signal('SIGINT');
    const e = await r.exit;
    expect(e.code).toBe(0);
    expect(e.ms).toBeLessThan(15_000);
    const stopping = r.out().slice(before);
    expect(warnings(stopping), stopping.slice(-3000)).toEqual([]);

    // Again, but the embedded database dies first (killed under us): Ctrl-C still ends it.
    const r2 = run(env);
    await waitOut(r2, 'Kilowire is running', 120_000);
    const pgPid = Number(
      readFileSync(path.join(env.DATA_DIR, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0],
    );
    process.kill(pgPid, 'SIGKILL');
    await new Promise((res) => setTimeout(res, 2_000));
    r2.signal('SIGINT');
    const e2 = await r2.exit;
    expect(e2.code === 0 || e2.code === 1).toBe(true);
    expect(e2.ms).toBeLessThan(25_000);

    // A second Ctrl-C (an impatient person, or `timeout`, which signals the process and its
    // group) ends the process at once, and its embedded database does not outlive it.
    const r3 = run(env);
    await waitOut(r3, 'Kilowire is running', 120_000);
    const pg3 = Number(readFileSync(path.join(env.DATA_DIR, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
    const before3 = r3.out().length;
    r3.signal('SIGINT');
    // The second one once the first is being handled (two at once arrive as one signal).
    while (!r3.out().slice(before3).includes('stopping')) await new Promise((res) => setTimeout(res, 20));
    r3.signal('SIGINT');
    const e3 = await r3.exit;
    expect(e3.code).toBe(130);
    const gone = Date.now() + 15_000;
    const alive = () => {
      try {
        process.kill(pg3, 0);
        return true;
      } catch {
        return false;
      }
    };
    while (alive() && Date.now() < gone) await new Promise((res) => setTimeout(res, 200));
    expect(alive(), 'the embedded PostgreSQL still runs after the process exited').toBe(false);
  }, 400_000);
});
