import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inject } from 'vitest';
import { startPrivateMosquitto, type TestBroker } from '../../../server/test/support/brokers.ts';
import { createTestDb, type TestDb } from '../../../server/test/support/db.ts';
import { freePort } from '../../../server/src/net.ts';

const ROOT = path.resolve(import.meta.dirname, '../../../..');

/** The whole system, started the way `npm start` starts it, for a browser test. */
export interface DemoSystem {
  baseUrl: string;
  /** The test's own database when the run targets the machine's PostgreSQL (or `ownDb`). */
  db: TestDb | undefined;
  /** The last 50 kB the process printed. */
  output(): string;
  /** Wait for `fn`, failing with the server's last output. */
  waitFor<T>(
    fn: () => T | undefined | false | Promise<T | undefined | false>,
    ms: number,
    what: string,
  ): Promise<T>;
  stop(): Promise<void>;
}

/**
 * Start Kilowire (`packages/server/src/main.ts`) with the demo seed and `env` on free ports, in
 * a data folder of its own. When the run targets the machine's PostgreSQL and Mosquitto, it
 * gets a database of its own there and a Mosquitto of its own: the demo's meter ids are fixed
 * (KW000001…), so two whole systems on one broker would take over each other's meters.
 * `ownDb`: always use a test database (the test reads or writes it directly).
 * `embeddedBroker`: keep the embedded broker even when the run targets Mosquitto: meters
 * provisioned while the system runs connect to it at once (a Mosquitto reads a password file).
 */
export async function startDemoSystem(
  name: string,
  env: Record<string, string>,
  o: { ownDb?: boolean; embeddedBroker?: boolean } = {},
): Promise<DemoSystem> {
  const port = await freePort();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), `kw-${name}-`));
  // mkdtemp makes it 0700; run as root, the embedded PostgreSQL (as the OS user postgres)
  // must be able to pass through it to its own folder.
  chmodSync(dataDir, 0o711);
  const full: Record<string, string> = {
    ...(process.env as Record<string, string>),
    PORT: String(port),
    DATA_DIR: dataDir,
    EMBEDDED_PG_PORT: String(await freePort()),
    EMBEDDED_MQTT_PORT: String(await freePort()),
    DEMO_SEED: 'true',
    LOG_LEVEL: 'warn',
    // The demo's injected faults (a tamper, a feeder dark for minutes) would make pages and
    // commands depend on the luck of which households they hit; a test that wants them says so.
    SIM_FIRST_FAULTS_AFTER_S: '0',
    SIM_TAMPER_EVERY_HOURS: '0',
    SIM_FEEDER_OUTAGE_EVERY_HOURS: '0',
    // Tests that price the network do it themselves, from a tariff they create.
    DEMO_NETWORK_CHARGES: 'false',
    // #10 D: the demo's firmware campaign would move meters under a test's feet; a test that wants it says so.
    DEMO_FIRMWARE: 'false',
    ...env,
  };
  delete full.DATABASE_URL;
  delete full.MQTT_URL;
  const external = Boolean(inject('mqttUrl')) && !o.embeddedBroker;
  let db: TestDb | undefined;
  let broker: TestBroker | undefined;
  if (Boolean(inject('mqttUrl')) || o.ownDb) {
    db = await createTestDb();
    await db.pool.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public');
    full.DATABASE_URL = db.url;
  }
  if (external) {
    broker = await startPrivateMosquitto();
    full.MQTT_URL = broker.url;
    full.MQTT_PASSWORD = 'e2e-headend';
  }
  const proc: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(ROOT, 'packages/server/src/main.ts')],
    { env: full, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const keep = (d: Buffer) => (output = (output + d.toString()).slice(-50_000));
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  const waitFor = async <T>(
    fn: () => T | undefined | false | Promise<T | undefined | false>,
    ms: number,
    what: string,
  ): Promise<T> => {
    const until = Date.now() + ms;
    for (;;) {
      const v = await fn();
      if (v) return v;
      if (proc.exitCode !== null)
        throw new Error(`the system exited (${proc.exitCode}):\n${output.slice(-3000)}`);
      if (Date.now() > until)
        throw new Error(`timed out waiting for ${what}\n--- server output ---\n${output.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      await new Promise<void>((resolve) => {
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
        setTimeout(() => proc.kill('SIGKILL'), 15_000).unref();
      });
    }
    await broker?.close();
    await db?.drop();
  };
  try {
    await waitFor(() => output.includes('Kilowire is running'), 90_000, 'the system to start');
  } catch (err) {
    await stop();
    throw err;
  }
  return { baseUrl: `http://127.0.0.1:${port}`, db, output: () => output, waitFor, stop };
}
