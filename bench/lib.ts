/**
 * Small helpers shared by the benchmark parts: ports, child processes, a cleanup stack,
 * timeouts, RSS, percentiles. Nothing here talks to anything but 127.0.0.1.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, mosquittoAcl, mosquittoPasswordLine, waitPort } from '@kilowire/server';

export { freePort, waitPort };

/**
 * V8 flags of every Kilowire process, as `npm start` runs it (package.json): a 32 MB young
 * generation halves the gateway's garbage collection per reading (docs/performance.md,
 * "#11 Ingest"). The bench's own process runs with them too (`npm run bench`), since part c
 * runs the Gateway class in it.
 */
export const NODE_FLAGS = ['--max-semi-space-size=32', '--import', 'tsx'];
/** Kilowire's entry point and the simulated fleet's child process. */
export const MAIN = fileURLToPath(import.meta.resolve('@kilowire/server/main'));
export const FLEET_CHILD = fileURLToPath(new URL('./fleet-child.ts', import.meta.url));

/**
 * `bash -c` arguments that start the simulated fleet's child process on `jobFile` with as
 * many open files as the machine allows (one socket per meter).
 */
export function fleetChildArgs(jobFile: string): string[] {
  return [
    '-c',
    `ulimit -n 65536 2>/dev/null || ulimit -n $(ulimit -Hn); exec "${process.execPath}" --import tsx "${FLEET_CHILD}" "${jobFile}"`,
  ];
}

/** Arguments to run Kilowire with these services, as production does. */
export function kilowireArgs(services: string): string[] {
  return [...NODE_FLAGS, MAIN, `--services=${services}`];
}

/**
 * Kilowire as its own process with these services, on the bench's database and broker, its
 * data under `dataDir`, no demo seed; `env` adds or overrides settings.
 */
export function spawnKilowire(
  name: string,
  services: string,
  o: {
    dbUrl: string;
    mqttUrl: string;
    login: { username: string; password: string };
    dataDir: string;
    env?: Record<string, string>;
    onLine?: (line: string) => void;
  },
): Child {
  return spawnChild(name, process.execPath, kilowireArgs(services), {
    env: {
      ...process.env,
      DATABASE_URL: o.dbUrl,
      MQTT_URL: o.mqttUrl,
      MQTT_USERNAME: o.login.username,
      MQTT_PASSWORD: o.login.password,
      DATA_DIR: o.dataDir,
      DEMO_SEED: 'false',
      LOG_LEVEL: 'info',
      ...o.env,
    },
    ...(o.onLine && { onLine: o.onLine }),
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** High-resolution wall clock in ms, comparable across worker threads. */
export const nowMs = () => performance.timeOrigin + performance.now();

export function log(line: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

/** Poll `fn` until it returns a truthy value; throws after `ms`. */
export async function waitFor<T>(
  fn: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  ms: number,
  what: string,
  everyMs = 20,
): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Reject if `p` does not settle within `ms`. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(t));
}

// ------------------------------------------------------------------ cleanup stack

type Cleanup = { name: string; fn: () => Promise<void> | void };
const cleanups: Cleanup[] = [];

/** Register a cleanup; returns a function that runs it now (and unregisters it). */
export function onCleanup(name: string, fn: () => Promise<void> | void): () => Promise<void> {
  const entry: Cleanup = { name, fn };
  cleanups.push(entry);
  return async () => {
    const i = cleanups.indexOf(entry);
    if (i < 0) return;
    cleanups.splice(i, 1);
    await runOne(entry);
  };
}

async function runOne(c: Cleanup): Promise<void> {
  try {
    await withTimeout(Promise.resolve().then(c.fn), 20_000, `cleanup ${c.name}`);
  } catch (err) {
    log(`cleanup ${c.name} failed: ${(err as Error).message}`);
  }
}

/** Run every registered cleanup, newest first. */
export async function runCleanups(): Promise<void> {
  while (cleanups.length) await runOne(cleanups.pop()!);
}

// ------------------------------------------------------------------ processes

export function rssMb(pid: number | undefined): number | null {
  if (!pid) return null;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : null;
  } catch {
    return null;
  }
}

/** CPU time (user + system) a process has used so far, ms; null if unreadable. */
export function cpuMs(pid: number | undefined): number | null {
  if (!pid) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 (utime, stime) in clock ticks; index 11 and 12 after the comm field.
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
  } catch {
    return null;
  }
}

export interface Child {
  proc: ChildProcess;
  /** Last ~40 kB of stdout+stderr. */
  output(): string;
  waitFor(text: string | RegExp, ms: number): Promise<void>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
  stop(graceMs?: number): Promise<void>;
}

/** Spawn a child with its output captured; registered for cleanup. `onLine` sees stdout lines. */
export function spawnChild(
  name: string,
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; onLine?: (line: string) => void } = {},
): Child {
  const proc = spawn(cmd, args, { env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let partial = '';
  const keep = (d: Buffer) => {
    out = (out + d.toString()).slice(-40_000);
  };
  proc.stdout?.on('data', (d: Buffer) => {
    keep(d);
    if (!opts.onLine) return;
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) opts.onLine(l);
  });
  proc.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => {
    if (proc.exitCode !== null) resolve();
    proc.once('exit', () => resolve());
    proc.once('error', () => resolve());
  });
  const stop = async (graceMs = 10_000) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(t);
  };
  const runCleanup = onCleanup(name, () => stop());
  return {
    proc,
    output: () => out,
    async waitFor(text, ms) {
      const until = Date.now() + ms;
      const has = () => (typeof text === 'string' ? out.includes(text) : text.test(out));
      while (!has()) {
        if (proc.exitCode !== null)
          throw new Error(`${name} exited (${proc.exitCode}):\n${out.slice(-3000)}`);
        if (Date.now() > until)
          throw new Error(`${name}: timed out waiting for ${String(text)}:\n${out.slice(-3000)}`);
        await sleep(50);
      }
    },
    stop: () => runCleanup(),
  };
}

// ------------------------------------------------------------------ Mosquitto

export interface Mosquitto {
  url: string;
  port: number;
  /** The running process's pid (a restart changes it). */
  readonly pid: number | undefined;
  stop(): Promise<void>;
  /** Start it again after `stop`: same port, same config. */
  start(): Promise<void>;
  /** Stop it (SIGTERM, as a service restart does) and start it again. */
  restart(): Promise<void>;
}

/**
 * A Mosquitto of our own on a free port, fd limit raised (10,000 meters need 10,000 sockets).
 * `extra` lines go into the config (password_file, acl_file, ...); without them it is anonymous.
 */
export async function startMosquitto(name: string, extra: string[] = [], dir?: string): Promise<Mosquitto> {
  const port = await freePort();
  const d = dir ?? mkdtempSync(path.join(os.tmpdir(), 'kw-bench-mosq-'));
  if (!dir) onCleanup(`${name} dir`, () => rmSync(d, { recursive: true, force: true }));
  const conf = path.join(d, 'bench-mosquitto.conf');
  const lines = [
    `listener ${port} 127.0.0.1`,
    ...(extra.length ? extra : ['allow_anonymous true']),
    'persistence false',
    // The publishers bound what is in flight end to end; these only stop Mosquitto from
    // silently dropping QoS 1 messages queued for a slow subscriber.
    'max_queued_messages 1000000',
    'max_queued_bytes 0',
    'log_type error',
    'log_type warning',
    ...(process.getuid?.() === 0 ? ['user root'] : []),
    '',
  ];
  writeFileSync(conf, lines.join('\n'));
  const spawnIt = async () => {
    const c = spawnChild(name, 'bash', [
      '-c',
      `ulimit -n 65536 2>/dev/null || ulimit -n $(ulimit -Hn); exec mosquitto -c '${conf}'`,
    ]);
    try {
      await waitPort(port, 10_000);
    } catch (err) {
      await c.stop(1000);
      throw new Error(`mosquitto did not start: ${c.output().slice(-2000)}`, { cause: err });
    }
    return c;
  };
  let child = await spawnIt();
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    get pid() {
      return child.proc.pid;
    },
    stop: () => child.stop(5000),
    async start() {
      child = await spawnIt();
    },
    async restart() {
      await child.stop(5000);
      child = await spawnIt();
    },
  };
}

/**
 * Mosquitto as a deployment runs it for meters (docs/operations.md): no anonymous clients, a
 * password per meter and for the head-end, the pattern ACL, the username as client id.
 */
export function startMeterMosquitto(
  name: string,
  dir: string,
  /** One login per head-end process (Mosquitto uses the username as client id). */
  headend: { username: string; password: string } | { username: string; password: string }[],
  meters: readonly { serial: string; credential: string }[],
  opts: {
    /**
     * A login for other Mosquitto nodes' bridges: it carries their meters' up topics in and
     * the down topics out, the head-end's rights mirrored.
     */
    bridgeUser?: { username: string; password: string };
    /** Bridge this node's meters to a hub node (the head-end's): up topics out, down topics in. */
    bridgeTo?: { port: number; username: string; password: string };
  } = {},
): Promise<Mosquitto> {
  const passwd = path.join(dir, 'passwd');
  const acl = path.join(dir, 'acl');
  const headends = Array.isArray(headend) ? headend : [headend];
  const b = opts.bridgeUser;
  writeFileSync(
    passwd,
    [
      ...headends.map((h) => mosquittoPasswordLine(h.username, h.password)),
      ...(b ? [mosquittoPasswordLine(b.username, b.password)] : []),
      ...meters.map((h) => mosquittoPasswordLine(h.serial, h.credential)),
    ].join('\n') + '\n',
    { mode: 0o600 },
  );
  writeFileSync(
    acl,
    mosquittoAcl(headends.map((h) => h.username)) +
      (b ? `\nuser ${b.username}\ntopic write meters/+/up/#\ntopic read meters/+/down/#\n` : ''),
  );
  const t = opts.bridgeTo;
  return startMosquitto(
    name,
    [
      'allow_anonymous false',
      `password_file ${passwd}`,
      `acl_file ${acl}`,
      'use_username_as_clientid true',
      ...(t
        ? [
            'connection kilowire-hub',
            `address 127.0.0.1:${t.port}`,
            'bridge_protocol_version mqttv311',
            `remote_username ${t.username}`,
            `remote_password ${t.password}`,
            `remote_clientid ${t.username}`,
            'cleansession false',
            // Back within a second or two of the hub, whatever the default backoff.
            'restart_timeout 1 5',
            'topic meters/+/up/# out 1',
            'topic meters/+/down/# in 1',
          ]
        : []),
    ],
    dir,
  );
}

// ------------------------------------------------------------------ statistics

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function round(x: number | null | undefined, digits = 0): number | null {
  if (x === null || x === undefined || !Number.isFinite(x)) return null;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
