import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inject } from 'vitest';
import { startEmbeddedBroker } from '../../src/broker/embedded.ts';
import { writeMosquittoConfig } from '../../src/broker/mosquitto.ts';
import type { Pool } from '../../src/db/pool.ts';
import { logger } from '../../src/log.ts';
import { freePort, waitPort } from '../../src/net.ts';

export const HEADEND = { username: 'headend', password: 'test-headend-secret' };
/**
 * A second head-end login. Mosquitto (use_username_as_clientid) allows one connection per
 * username, so a second head-end process — or a test playing a compromised broker — needs
 * its own; aedes identifies head-end processes by a `kw-` client id instead.
 */
export const HEADEND_2 = { username: 'headend-2', password: 'test-headend-2-secret' };

export interface TestBroker {
  url: string;
  kind: 'aedes' | 'mosquitto';
  /** Kill the broker hard (SIGKILL for Mosquitto, socket teardown for aedes). */
  kill(): Promise<void>;
  /** Start it again on the same port. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The broker a test talks to. On embedded defaults: the real embedded aedes broker (with
 * its auth hooks) in this process. When the run targets Mosquitto (MQTT_URL set): a
 * Mosquitto process of this test's own, with the documented per-meter password file and
 * pattern ACL, so tests that count messages see only their own traffic.
 */
export async function startTestBroker(
  pool: Pool,
  meters: { id: string; password: string }[],
): Promise<TestBroker> {
  const port = await freePort();
  if (!inject('mqttUrl')) {
    let b = await startEmbeddedBroker({
      port,
      pool,
      headendUsername: HEADEND.username,
      headendPassword: HEADEND.password,
      log: logger('test-broker'),
    });
    return {
      url: `mqtt://127.0.0.1:${port}`,
      kind: 'aedes',
      kill: () => b.close(),
      async restart() {
        b = await startEmbeddedBroker({
          port,
          pool,
          headendUsername: HEADEND.username,
          headendPassword: HEADEND.password,
          log: logger('test-broker'),
        });
      },
      close: () => b.close(),
    };
  }
  return startMosquitto(meters, port);
}

/**
 * A Mosquitto process of the test's own with the generated configuration (per-meter
 * passwords, the ACL, packet cap, no retained messages) and two head-end logins. Whatever
 * broker the run targets: for tests that need Mosquitto's own features (shared subscriptions).
 */
export async function startMosquitto(
  meters: { id: string; password: string }[],
  port?: number,
  /** Head-end logins (one per gateway process: Mosquitto uses the username as client id). */
  headends: { username: string; password: string }[] = [HEADEND, HEADEND_2],
): Promise<TestBroker> {
  port ??= await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kw-mosq-'));
  const files = writeMosquittoConfig(dir, {
    port,
    headends,
    meters,
    // Tests run as whoever runs them; the files are in a private temp dir.
    user: os.userInfo().username,
  });
  return runMosquitto(files.conf, port);
}

/**
 * A Mosquitto of the test's own, anonymous, on a free port. For whole systems started the way
 * `npm start` starts them: the demo's meter ids are fixed (KW000001…), so two such systems on
 * the machine's shared broker would take over each other's meter sessions and topics.
 */
export async function startPrivateMosquitto(): Promise<TestBroker> {
  const port = await freePort();
  const conf = path.join(mkdtempSync(path.join(os.tmpdir(), 'kw-mosq-anon-')), 'mosquitto.conf');
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\n`);
  return runMosquitto(conf, port);
}

/** Run `mosquitto -c conf` until killed; restart() starts it again on the same port. */
async function runMosquitto(conf: string, port: number): Promise<TestBroker> {
  let proc: ChildProcess | undefined;
  let lastErr = '';
  const start = async () => {
    proc = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    proc.stderr?.on('data', (d: Buffer) => (lastErr = d.toString()));
    await waitPort(port).catch((err: unknown) => {
      throw new Error(`mosquitto did not start: ${lastErr}`, { cause: err });
    });
  };
  await start();
  const kill = async () => {
    if (!proc || proc.exitCode !== null) return;
    const p = proc;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    });
  };
  return { url: `mqtt://127.0.0.1:${port}`, kind: 'mosquitto', kill, restart: start, close: kill };
}
