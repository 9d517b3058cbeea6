import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Fleet } from '@kilowire/meter';
import { localMidnight } from '@kilowire/protocol';
import { Gateway } from '../src/gateway/gateway.ts';
import { createPool, type Pool } from '../src/db/pool.ts';
import { migrate } from '../src/db/migrate.ts';
import { logger } from '../src/log.ts';
import { freePort } from '../src/net.ts';
import type { CreatedHousehold } from '../src/accounts/repo.ts';
import { HEADEND, startTestBroker, type TestBroker } from './support/brokers.ts';
import { startReportingFleet, waitStoredExactly } from './support/fleet-check.ts';
import { PrivatePg } from './support/private-pg.ts';
import { KilowireProcess } from './support/process.ts';
import { RawMeter, readingsMsg, seedMeters, sleep, waitFor } from './support/world.ts';

/**
 * The database restarts, hangs or is not there yet: every role rides it out and resumes by
 * itself. Against a PostgreSQL of this test's own that it stops with `pg_ctl stop -m
 * immediate` (SIGQUIT to the postmaster) and freezes (SIGSTOP), with real meters reporting
 * through a real broker to Kilowire running as its own process.
 */
let pg: PrivatePg;
let pool: Pool;
let broker: TestBroker;
let hh: CreatedHousehold[];
let kw: KilowireProcess;
let fleet: Fleet | undefined;
let httpPort: number;

beforeAll(async () => {
  pg = await PrivatePg.start();
  pool = createPool(pg.url, { max: 4, statementTimeoutMs: 10_000, connectTimeoutMs: 2_000 });
  await migrate(pool);
  hh = await seedMeters(pool, 6);
  broker = await startTestBroker(
    pool,
    hh.map((h) => ({ id: h.meterSerial, password: h.meterCredential })),
  );
  httpPort = await freePort();
});

afterAll(async () => {
  await fleet?.stop();
  await kw?.stop();
  await broker?.close();
  await pool?.end();
  await pg?.stop();
});

async function readyz(): Promise<{ status: number; ms: number }> {
  const t = Date.now();
  try {
    const r = await fetch(`http://127.0.0.1:${httpPort}/readyz`, { signal: AbortSignal.timeout(5_000) });
    return { status: r.status, ms: Date.now() - t };
  } catch {
    return { status: 0, ms: Date.now() - t };
  }
}

function startKilowire(): KilowireProcess {
  const p = new KilowireProcess('gateway,jobs,api', {
    DATABASE_URL: pg.url,
    MQTT_URL: broker.url,
    MQTT_USERNAME: HEADEND.username,
    MQTT_PASSWORD: HEADEND.password,
    GATEWAY_CLIENT_ID: `kw-dbres-${process.pid}`,
    PORT: String(httpPort),
    DB_STATEMENT_TIMEOUT_MS: '5000',
  });
  p.start();
  return p;
}

describe('database not up yet', () => {
  it('the process waits for it (healthz 200, readyz 503 meanwhile) and comes up by itself', async () => {
    await pg.stopImmediate();
    kw = startKilowire();
    await waitFor(
      async () => (await readyz()).status === 503,
      30_000,
      'readyz answering 503 while the database is down',
    );
    const health = await fetch(`http://127.0.0.1:${httpPort}/healthz`);
    expect(health.status).toBe(200);
    const api = await fetch(`http://127.0.0.1:${httpPort}/api/session`);
    expect(api.status).toBe(503);
    await sleep(2_000);
    expect(kw.alive).toBe(true);
    await pg.startServer();
    await kw.waitFor('gateway connected to broker', 60_000);
    await waitFor(async () => (await readyz()).status === 200, 30_000, 'readyz 200');
    // Waiting was logged, but not once per retry.
    expect(kw.logLines(/database not reachable yet/).length).toBeLessThanOrEqual(5);
  }, 120_000);
});

describe('database restart under load', () => {
  it('no process exit, readyz 503 within a second while down, ingest resumes by itself, 0 readings lost or duplicated', async () => {
    fleet = startReportingFleet(broker.url, hh, { speed: 6000, seed: 7 });
    const count = async () =>
      (await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM interval_readings')).rows[0]!.n;
    await waitFor(async () => (await count()) > 60, 30_000, 'first readings');

    await pg.stopImmediate();
    await sleep(500);
    const down = await readyz();
    expect(down.status).toBe(503);
    expect(down.ms).toBeLessThan(1_500);
    await sleep(3_000);
    expect(kw.alive).toBe(true);
    await pg.startServer();

    // Frozen, not stopped: connections hang. Readiness still answers within a second.
    await sleep(2_000);
    pg.pause();
    let hung: { status: number; ms: number };
    try {
      await sleep(1_000);
      hung = await readyz();
      await sleep(2_000);
    } finally {
      // Resumed whatever happens, or a failure here would freeze every later test's database.
      pg.resume();
    }
    expect(hung.status).toBe(503);
    expect(hung.ms).toBeLessThan(1_500);

    await waitStoredExactly(pool, fleet, hh);
    expect(kw.alive).toBe(true);
    expect((await readyz()).status).toBe(200);
    // The outage was logged as such, not once per incoming message.
    const errors = kw.logLines(/.*/).filter((l) => l.level >= 50);
    expect(errors.length, errors.map((e) => e.msg).join('\n')).toBeLessThanOrEqual(20);
    expect(kw.logLines(/database unavailable: holding intake/).length).toBeGreaterThanOrEqual(1);
  }, 240_000);
});

describe('memory bound while the database is away', () => {
  it('the gateway holds at most its buffer limit and pushes back on the broker, then stores everything', async () => {
    // The fleet is done; its first meter's connection is taken over by a hand-driven one.
    await fleet?.stop();
    fleet = undefined;
    const h = hh[0]!;
    const meter = await RawMeter.connect(broker.url, h.meterSerial, h.meterCredential);
    const cap = 64 * 1024;
    const gw = new Gateway({
      pool,
      log: logger('test-gateway-bound'),
      mqttUrl: broker.url,
      username: HEADEND.username,
      password: HEADEND.password,
      clientId: `kw-bound-${process.pid}`,
      maxBufferBytes: cap,
    });
    await gw.start();
    try {
      // A clean slate for this meter's sequence: far ahead of what the fleet sent.
      const base = 1_000_000;
      const d0 = localMidnight('2024-01-01', 'Europe/London');
      // The first message makes the gateway know the meter (a lookup needs the database).
      await meter.readings(readingsMsg(base, d0, [1], 0));
      await meter.waitAck(
        (a) =>
          a.kind === 'ack' && a.stream === 'readings' && (a.upTo >= base || (a.seqs ?? []).includes(base)),
      );
      await pg.stopImmediate();
      let peak = 0;
      const sampler = setInterval(() => (peak = Math.max(peak, gw.heldBytes)), 5);
      const N = 400;
      for (let i = 1; i <= N; i++) void meter.readings(readingsMsg(base + i, d0 + i * 1800, [10], i));
      await sleep(3_000);
      clearInterval(sampler);
      // Over the limit by at most the one message admitted when it was crossed.
      expect(peak).toBeLessThanOrEqual(cap + 6 * 2048);
      expect(gw.stats.paused).toBeGreaterThan(0);
      await pg.startServer();
      await waitFor(
        async () =>
          (
            await pool
              .query<{ n: number }>(
                'SELECT count(*)::int AS n FROM interval_readings WHERE meter_id = $1 AND ts >= to_timestamp($2) AND ts < to_timestamp($3)',
                [h.meterId, d0, d0 + (N + 1) * 1800],
              )
              // Crash recovery after the immediate stop: "the database system is starting up".
              .catch(() => ({ rows: [{ n: -1 }] }))
          ).rows[0]!.n ===
          N + 1,
        60_000,
        'every held-back reading stored after the database returned',
      );
    } finally {
      await gw.stop();
      await meter.close();
    }
  }, 120_000);
});
