import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addDays, encodeUp, localDate, localMidnight } from '@kilowire/protocol';
import type { CreatedHousehold } from '../src/accounts/repo.ts';
import { createTestDb, type TestDb } from './support/db.ts';
import { HEADEND, startTestBroker, type TestBroker } from './support/brokers.ts';
import { KilowireProcess } from './support/process.ts';
import { RawMeter, readingsMsg, seedMeters, sleep, waitFor } from './support/world.ts';

/**
 * Nothing that must happen after a COMMIT lives only in one process's memory: the events a
 * gateway batch commits (readings for a meter-day, tamper, disconnection) are rows in the
 * same transaction, and the jobs service turns them into alerts. Kill the process right
 * after the COMMIT (the meters already have their acks, so nothing is resent) and every
 * alert the committed data implies still appears — exactly once, even when the handlers run
 * again.
 */
let db: TestDb;
let broker: TestBroker;
let hh: CreatedHousehold[];
const meters: RawMeter[] = [];
let kw: KilowireProcess | undefined;
const TZ = 'Europe/London';
const nowS = () => Math.floor(Date.now() / 1000);

beforeAll(async () => {
  db = await createTestDb();
  hh = await seedMeters(db.pool, 3);
  broker = await startTestBroker(
    db.pool,
    hh.map((h) => ({ id: h.meterSerial, password: h.meterCredential })),
  );
  for (const h of hh) meters.push(await RawMeter.connect(broker.url, h.meterSerial, h.meterCredential));
  // A daily limit on the first meter, set a week ago so the days below are judged.
  await db.pool.query(
    `INSERT INTO meter_limits (meter_id, daily_limit_wh, updated_at) VALUES ($1, 1000, now() - interval '7 days')`,
    [hh[0]!.meterId],
  );
  await db.pool.query(`UPDATE consumers SET email = 'c' || id || '@example.test'`);
});

afterAll(async () => {
  for (const m of meters) await m.close();
  await kw?.stop();
  await broker?.close();
  await db?.drop();
});

function process(services: string): KilowireProcess {
  const p = new KilowireProcess(services, {
    DATABASE_URL: db.url,
    MQTT_URL: broker.url,
    MQTT_USERNAME: HEADEND.username,
    MQTT_PASSWORD: HEADEND.password,
    GATEWAY_CLIENT_ID: `kw-events-${globalThis.process.pid}`,
    ALERT_LOOKBACK_DAYS: '3',
    NOTIFY_POLL_S: '0.5',
    EVENTS_SWEEP_MS: '300',
    JOB_TIMEOUT_S: '3',
    JOBS_MAINTENANCE_S: '2',
  });
  p.start();
  return p;
}

async function alertRows() {
  return (
    await db.pool.query<{ meter_id: number; type: string; dedupe_key: string }>(
      // The households' alerts that the meters' data implies (the network operator's alerts —
      // an incomplete daily collection of these test meters — are not what this test is about).
      'SELECT meter_id, type, dedupe_key FROM alerts WHERE operator_id IS NULL ORDER BY meter_id, type, dedupe_key',
    )
  ).rows;
}

/** Every event dispatched and every subscriber job finished (checked from outside the process). */
async function settled(): Promise<boolean> {
  const { rows } = await db.pool.query<{ events: number; jobs: number }>(
    `SELECT (SELECT count(*) FROM domain_events WHERE dispatched_at IS NULL)::int AS events,
            (SELECT count(*) FROM pgboss.job WHERE name LIKE 'events.%' AND state IN ('created', 'retry', 'active'))::int AS jobs`,
  );
  return rows[0]!.events === 0 && rows[0]!.jobs === 0;
}

describe('durable domain events', () => {
  it('kill -9 right after ingest COMMITs: every implied alert is raised exactly once after restart', async () => {
    const [m0, m1, m2] = meters as [RawMeter, RawMeter, RawMeter];
    const [h0, h1, h2] = hh as [CreatedHousehold, CreatedHousehold, CreatedHousehold];
    const dayA = addDays(localDate(nowS(), TZ), -2);
    const dayB = addDays(localDate(nowS(), TZ), -1);

    // 1. A gateway alone (no jobs service at all): the batch commits its events and dies.
    kw = process('gateway');
    await kw.waitFor('gateway connected to broker');
    await m0.readings(readingsMsg(1, localMidnight(dayA, TZ), [600, 600], 0)); // 1.2 kWh > 1 kWh
    await m1.raw(
      'events',
      encodeUp('events', { v: 1, seq: 1, events: [{ code: 'tamper.cover', t: nowS() - 300 }] }),
    );
    await m2.raw(
      'events',
      encodeUp('events', {
        v: 1,
        seq: 1,
        events: [{ code: 'relay.disconnected', t: nowS() - 200, data: { reason: 'credit' } }],
      }),
    );
    await m0.waitAck((a) => a.stream === 'readings' && a.kind === 'ack' && a.upTo === 1, 30_000);
    await m1.waitAck((a) => a.stream === 'events' && a.kind === 'ack' && a.upTo === 1, 30_000);
    await m2.waitAck((a) => a.stream === 'events' && a.kind === 'ack' && a.upTo === 1, 30_000);
    await kw.kill9();
    // Acknowledged, so the meters will never send these again; only the stored events remain.
    expect(await alertRows()).toEqual([]);
    const pending = await db.pool.query<{ type: string }>(
      'SELECT type FROM domain_events WHERE dispatched_at IS NULL ORDER BY id',
    );
    expect(pending.rows.map((r) => r.type).sort()).toEqual([
      'meter.event',
      'meter.event',
      'readings.committed',
    ]);

    // 2. Gateway and jobs in one process, killed the moment the next batch is acknowledged.
    kw = process('gateway,jobs');
    await kw.waitFor('gateway connected to broker');
    await m0.readings(readingsMsg(2, localMidnight(dayB, TZ), [700, 700], 1200));
    await m1.raw(
      'events',
      encodeUp('events', { v: 1, seq: 2, events: [{ code: 'tamper.magnetic', t: nowS() - 100 }] }),
    );
    await m0.waitAck((a) => a.stream === 'readings' && a.kind === 'ack' && a.upTo === 2, 30_000);
    await m1.waitAck((a) => a.stream === 'events' && a.kind === 'ack' && a.upTo === 2, 30_000);
    await kw.kill9();

    // 3. Restart: what was committed is judged now.
    kw = process('jobs');
    await waitFor(settled, 60_000, 'events settled').catch(async (e: unknown) => {
      const j = await db.pool.query(
        `SELECT name, state, retry_count, output FROM pgboss.job WHERE name LIKE 'events.%'`,
      );
      const ev = await db.pool.query('SELECT id, type, dispatched_at FROM domain_events');
      throw new Error(
        `${String(e)}\njobs ${JSON.stringify(j.rows)}\nevents ${JSON.stringify(ev.rows)}\n${kw!.all.slice(-3000)}`,
      );
    });
    const expected = [
      { meter_id: h0.meterId, type: 'daily_limit', dedupe_key: dayA },
      { meter_id: h0.meterId, type: 'daily_limit', dedupe_key: dayB },
      { meter_id: h1.meterId, type: 'tamper', dedupe_key: '1:0' },
      { meter_id: h1.meterId, type: 'tamper', dedupe_key: '2:0' },
      { meter_id: h2.meterId, type: 'disconnected', dedupe_key: '1:0' },
    ].sort(
      (a, b) =>
        a.meter_id - b.meter_id || a.type.localeCompare(b.type) || a.dedupe_key.localeCompare(b.dedupe_key),
    );
    expect(await alertRows()).toEqual(expected);

    // 4. Handlers run again over every event (a job retried after a crash): still exactly once.
    const deliveriesBefore = (await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM deliveries'))
      .rows[0]!.n;
    expect(deliveriesBefore).toBeGreaterThanOrEqual(expected.length);
    // Forget that the jobs ran, and that the events were dispatched: they are handed over again.
    await db.pool.query(`DELETE FROM pgboss.job WHERE name LIKE 'events.%'`);
    await db.pool.query('UPDATE domain_events SET dispatched_at = NULL');
    await waitFor(settled, 60_000, 'events settled again');
    const rerun = await db.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pgboss.job WHERE name = 'events.alerts' AND state = 'completed'`,
    );
    expect(rerun.rows[0]!.n).toBeGreaterThan(0);
    await sleep(500);
    expect(await alertRows()).toEqual(expected);
    expect((await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM deliveries')).rows[0]!.n).toBe(
      deliveriesBefore,
    );
  }, 180_000);
});
