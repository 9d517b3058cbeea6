import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FleetFile } from '../src/demo/seed.ts';
import { freePort } from '../src/net.ts';
import { createTestDb, type TestDb } from './support/db.ts';

/**
 * The demo as `npm start` runs it — seed, embedded broker, gateway, jobs, api and the
 * simulated fleet in one process, on a real PostgreSQL — with its first faults brought
 * forward by configuration: once the (short) history has caught up, a tamper reaches the
 * household and the supplier's staff, and a whole feeder loses power and comes back.
 */
const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src/main.ts');

let db: TestDb;
let dataDir: string;
let proc: ChildProcess;
let out = '';
let startedAt = 0;

async function waitFor<T>(fn: () => Promise<T | undefined | false>, ms: number, what: string): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (proc.exitCode !== null) throw new Error(`the system exited (${proc.exitCode}):\n${out.slice(-3000)}`);
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}\n${out.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

beforeAll(async () => {
  db = await createTestDb();
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'kw-demo-faults-'));
  chmodSync(dataDir, 0o711);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  delete env.MQTT_URL;
  Object.assign(env, {
    DATABASE_URL: db.url,
    UNSAFE_ALLOW_NON_DURABLE_DB: 'true',
    DEMO_SEED: 'true',
    DATA_DIR: dataDir,
    PORT: String(await freePort()),
    EMBEDDED_MQTT_PORT: String(await freePort()),
    LOG_LEVEL: 'info',
    // A day of history: caught up in seconds.
    SIM_BACKFILL_DAYS: '1',
    SIM_FIRST_FAULTS_AFTER_S: '2',
    SIM_TAMPER_EVERY_HOURS: '1000',
    SIM_FEEDER_OUTAGE_EVERY_HOURS: '1000',
    // Fifteen seconds off (a straggler 15 s more): short enough for a test.
    SIM_FEEDER_OUTAGE_MINUTES: '0.25',
    SIM_LAST_GASP_SHARE: '0.6',
    SIM_STRAGGLERS: '1',
  });
  startedAt = Date.now();
  proc = spawn(process.execPath, ['--import', 'tsx', MAIN], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const keep = (d: Buffer) => (out = (out + d.toString()).slice(-200_000));
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  await waitFor(() => Promise.resolve(out.includes('Kilowire is running')), 90_000, 'the system to start');
}, 120_000);

afterAll(async () => {
  if (proc && proc.exitCode === null && proc.signalCode === null) {
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill('SIGTERM');
      setTimeout(() => proc.kill('SIGKILL'), 15_000).unref();
    });
  }
  await db?.drop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('the demo shows its faults within the first minutes', () => {
  it('writes each meter with its feeder into the fleet file, as the database has it', async () => {
    const file = JSON.parse(readFileSync(path.join(dataDir, 'fleet.json'), 'utf8')) as FleetFile;
    const { rows } = await db.pool.query<{ serial: string; feeder_id: string }>(
      'SELECT serial, feeder_id FROM meters ORDER BY serial',
    );
    expect(rows).toHaveLength(25);
    expect(file.meters.map((m) => [m.id, m.feederId])).toEqual(rows.map((r) => [r.serial, r.feeder_id]));
    expect(new Set(rows.map((r) => r.feeder_id)).size).toBe(3);
  });

  it('a tamper at real time reaches the household and the supplier staff', async () => {
    const alert = await waitFor(
      async () =>
        (
          await db.pool.query<{
            id: number;
            consumer_id: number | null;
            web: boolean;
            code: string;
            at: string;
            created_ms: number;
          }>(
            `SELECT id, consumer_id, web, figures->>'code' AS code, figures->>'at' AS at,
                    (extract(epoch FROM created_at) * 1000)::float8 AS created_ms
               FROM alerts WHERE type = 'tamper'`,
          )
        ).rows[0],
      120_000,
      'a tamper alert',
    );
    const tamperAlertS = (alert.created_ms - startedAt) / 1000;
    process.stdout.write(`demo-faults: tamper alert ${tamperAlertS.toFixed(1)} s after start\n`);
    expect(alert.consumer_id).not.toBeNull();
    expect(alert.web).toBe(true);
    expect(alert.code).toMatch(/^tamper\.(cover|terminal|magnetic)$/);
    // Stamped now, not in the backfilled history.
    expect(Math.abs(Date.parse(alert.at) - alert.created_ms)).toBeLessThan(30_000);
    const { rows: all } = await db.pool.query("SELECT 1 FROM alerts WHERE type = 'tamper'");
    expect(all).toHaveLength(1);

    // Delivered: the household by email, every supplier admin/agent as staff (the outbox sink).
    const sent = await waitFor(
      async () => {
        const { rows } = await db.pool.query<{ recipient: string; audience: string; status: string }>(
          'SELECT recipient, audience, status FROM deliveries WHERE alert_id = $1 ORDER BY recipient',
          [alert.id],
        );
        return rows.length > 0 && rows.every((r) => r.status === 'sent') ? rows : undefined;
      },
      60_000,
      'the tamper deliveries sent',
    );
    const staff = sent.filter((r) => r.audience === 'staff').map((r) => r.recipient);
    expect(staff).toEqual(expect.arrayContaining(['supplier@kilowire.demo', 'supplier2@kilowire.demo']));
    const consumer = await db.pool.query<{ email: string }>('SELECT email FROM consumers WHERE id = $1', [
      alert.consumer_id,
    ]);
    expect(sent.filter((r) => r.audience === 'consumer').map((r) => r.recipient)).toContain(
      consumer.rows[0]!.email,
    );
    const mailed = await db.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM outbox WHERE channel = 'email' AND recipient = 'supplier@kilowire.demo'`,
    );
    expect(mailed.rows[0]!.n).toBeGreaterThanOrEqual(1);
  }, 200_000);

  it('then a whole feeder loses power at one instant, part of it gasping, and comes back (a straggler later)', async () => {
    type Ev = { serial: string; feeder: string; code: string; ts_s: number; received_ms: number };
    const events = async () =>
      (
        await db.pool.query<Ev>(
          `SELECT m.serial, m.feeder_id AS feeder, e.code, extract(epoch FROM e.ts)::float8 AS ts_s,
                  (extract(epoch FROM e.received_at) * 1000)::float8 AS received_ms
             FROM meter_events e JOIN meters m ON m.id = e.meter_id
            WHERE e.code LIKE 'power.%' ORDER BY e.received_at, m.serial`,
        )
      ).rows;
    const first = await waitFor(async () => (await events())[0], 120_000, 'a power.fail stored');
    process.stdout.write(
      `demo-faults: first power.fail stored ${((first.received_ms - startedAt) / 1000).toFixed(1)} s after start\n`,
    );
    const { rows: feederMeters } = await db.pool.query<{ serial: string }>(
      'SELECT serial FROM meters WHERE feeder_id = $1 ORDER BY serial',
      [first.feeder],
    );
    const ids = feederMeters.map((m) => m.serial);
    // Every meter of the feeder reports its restore, and then its (possibly silent) failure too.
    const evs = await waitFor(
      async () => {
        const e = await events();
        const restored = new Set(e.filter((x) => x.code.startsWith('power.restored')).map((x) => x.serial));
        const failed = new Set(e.filter((x) => x.code === 'power.fail').map((x) => x.serial));
        return restored.size >= ids.length && failed.size >= ids.length ? e : undefined;
      },
      120_000,
      'the feeder back and every failure reported',
    );
    expect([...new Set(evs.map((e) => e.serial))].sort()).toEqual(ids);
    const fails = evs.filter((e) => e.code === 'power.fail');
    expect(fails).toHaveLength(ids.length);
    expect(new Set(fails.map((f) => f.ts_s)).size).toBe(1);
    // The last gasps arrive at once; the silent meters' failures only with their restore.
    const gaspedBy = fails[0]!.received_ms + 5_000;
    const gasps = fails.filter((f) => f.received_ms <= gaspedBy).length;
    expect(gasps).toBe(Math.round(0.6 * ids.length));
    const restores = evs.filter((e) => e.code.startsWith('power.restored'));
    expect(restores).toHaveLength(ids.length);
    const offS = restores.map((r) => r.ts_s - fails[0]!.ts_s).sort((a, b) => a - b);
    // 15 s off and back within a few seconds; the straggler 15 s later.
    expect(offS[0]).toBeGreaterThanOrEqual(15);
    expect(offS.at(-2)! - offS[0]!).toBeLessThanOrEqual(6);
    expect(offS.at(-1)!).toBeGreaterThanOrEqual(30);

    // What a newcomer opens next: the operator's console shows ONE feeder incident for it,
    // opened within seconds of the first last gasp (the SLA allows 3 minutes), the operator
    // alerted once, and the incident restored once the feeder is back.
    type Inc = { id: number; kind: string; status: string; meters: number; detect_s: number };
    const inc = await waitFor(
      async () =>
        (
          await db.pool.query<Inc>(
            `SELECT i.id, i.kind, i.status,
                    (SELECT count(*)::int FROM outage_incident_meters im WHERE im.incident_id = i.id) AS meters,
                    extract(epoch FROM i.detected_at - i.first_failure_at)::float8 AS detect_s
               FROM outage_incidents i WHERE i.feeder_id = $1 AND i.kind = 'feeder'`,
            [first.feeder],
          )
        ).rows.find((r) => r.status === 'restored' || r.status === 'closed'),
      120_000,
      'the feeder incident restored',
    );
    process.stdout.write(
      `demo-faults: feeder incident detected ${inc.detect_s.toFixed(1)} s after the first failure\n`,
    );
    expect(inc.detect_s).toBeLessThan(180);
    const { rows: incidents } = await db.pool.query(
      `SELECT 1 FROM outage_incidents WHERE feeder_id = $1 AND kind = 'feeder'`,
      [first.feeder],
    );
    expect(incidents).toHaveLength(1);
    expect(inc.meters).toBeGreaterThanOrEqual(Math.round(0.6 * ids.length));
    const { rows: opAlerts } = await db.pool.query(
      `SELECT 1 FROM alerts WHERE type = 'incident_opened' AND figures->>'incidentId' = $1::text`,
      [inc.id],
    );
    expect(opAlerts).toHaveLength(1);
  }, 200_000);
});
