import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet } from '@kilowire/meter';
import { generateSigningKeyPair } from '@kilowire/protocol';
import type { CreatedHousehold } from '../src/accounts/repo.ts';
import { createStaffUser } from '../src/accounts/repo.ts';
import { Gateway } from '../src/gateway/gateway.ts';
import { startTestBroker, type TestBroker } from './support/brokers.ts';
import { startTestGateway } from './support/gateway-world.ts';
import { createTestDb, type TestDb } from './support/db.ts';
import { KilowireProcess } from './support/process.ts';
import { seedMeters, sleep, waitFor } from './support/world.ts';

/**
 * kill -9 of the jobs service during an outage. Real meters publish their last gasps through
 * a real broker to the gateway (in this process); the jobs service runs as its own OS
 * process and is killed with SIGKILL while it is grouping them, more meters fail while it is
 * dead, and it is started again. Afterwards: every power failure is in the incident (no
 * event lost), one incident, one operator alert, one alert per household, and no delivery
 * or outbox message twice.
 */
let db: TestDb;
let broker: TestBroker;
let gw: Gateway;
let jobs: KilowireProcess;
let fleet: Fleet;
let hh: CreatedHousehold[];

beforeAll(async () => {
  db = await createTestDb();
  hh = await seedMeters(db.pool, 40);
  const op = (
    await db.pool.query<{ operator_id: number }>(
      'SELECT na.operator_id FROM meters m JOIN network_areas na ON na.id = m.area_id WHERE m.id = $1',
      [hh[0]!.meterId],
    )
  ).rows[0]!.operator_id;
  await createStaffUser(db.pool, {
    role: 'operator',
    email: 'control@op.test',
    password: 'x-x-x-x-x-x',
    orgId: op,
    name: 'Control',
  });
  await db.pool.query(
    `UPDATE network_settings SET outage_min_meters = 3, oncall_mobiles = '{+447700900003}' WHERE operator_id = $1`,
    [op],
  );
  // Households with an email, so that each of their alerts has a delivery to count.
  await db.pool.query(
    `UPDATE consumers c SET email = lower(u.login_id) || '@home.test'
       FROM users u WHERE u.id = c.user_id AND c.id = ANY($1::bigint[])`,
    [hh.map((h) => h.consumerId)],
  );
  broker = await startTestBroker(
    db.pool,
    hh.map((h) => ({ id: h.meterSerial, password: h.meterCredential })),
  );
  gw = await startTestGateway(db.pool, broker.url, { clientId: `kw-outage-crash-${process.pid}` });
  jobs = new KilowireProcess('jobs', {
    DATABASE_URL: db.url,
    NOTIFY_POLL_S: '0.5',
    EVENTS_SWEEP_MS: '300',
    JOB_TIMEOUT_S: '3',
    JOBS_MAINTENANCE_S: '2',
  });
  jobs.start();
  await jobs.waitFor('outage detection started', 60_000);
  fleet = new Fleet({
    brokerUrl: broker.url,
    serverPublicKey: generateSigningKeyPair().publicKey,
    meters: hh.map((h, i) => ({ id: h.meterSerial, password: h.meterCredential, seed: i + 1 })),
    speed: 1,
    backfillDays: 0,
    tickMs: 200,
  });
  fleet.start();
  await waitFor(() => fleet.stats().connected === hh.length, 60_000, 'every meter connected');
}, 120_000);

afterAll(async () => {
  await fleet?.stop();
  await jobs?.stop();
  await gw?.stop();
  await broker?.close();
  await db?.drop();
});

const count = async (sql: string, p: unknown[] = []) =>
  (await db.pool.query<{ n: number }>(sql, p)).rows[0]!.n;

describe('jobs crash during an outage', () => {
  it('loses no power event and duplicates no incident, alert or delivery across a kill -9', async () => {
    const first = hh.slice(0, 15);
    const later = hh.slice(15, 30);
    for (const h of first) fleet.client(h.meterSerial)!.powerFail();
    // Kill the jobs process as soon as it has begun on them (a power state written).
    await waitFor(
      async () => (await count('SELECT count(*)::int AS n FROM meter_power_state')) > 0,
      30_000,
      'the jobs service started on the last gasps',
    );
    await jobs.kill9();
    const atKill = await count('SELECT count(*)::int AS n FROM meter_power_state');
    console.log(`power states written when the jobs process was killed: ${atKill} of 15`);
    // More meters fail while no jobs process runs: their events wait in domain_events.
    for (const h of later) fleet.client(h.meterSerial)!.powerFail();
    await waitFor(
      async () =>
        (await count(`SELECT count(*)::int AS n FROM meter_events WHERE code = 'power.fail'`)) === 30,
      30_000,
      'every last gasp stored by the gateway',
    );
    await sleep(1000);
    jobs.start();
    await jobs.waitFor('outage detection started', 60_000);
    // Within two minutes: the killed job is failed by maintenance and retried with backoff,
    // which on a loaded CI machine has taken longer than one minute. Latency is not what this
    // test judges (part k of the bench does); losing or doubling nothing is.
    await waitFor(
      async () =>
        (await count(
          `SELECT count(*)::int AS n FROM outage_incident_meters im JOIN outage_incidents i ON i.id = im.incident_id
            WHERE i.kind = 'feeder'`,
        )) === 30,
      120_000,
      'all 30 meters in the incident',
    ).catch(async (e: unknown) => {
      const inc = await db.pool.query(
        `SELECT i.id, i.kind, i.status, count(im.meter_id)::int AS meters
           FROM outage_incidents i LEFT JOIN outage_incident_meters im ON im.incident_id = i.id GROUP BY i.id`,
      );
      const jobsNow = await db.pool.query(
        `SELECT name, state, retry_count, output FROM pgboss.job WHERE name LIKE 'events.outages%' OR name LIKE 'outages%'`,
      );
      throw new Error(
        `${String(e)}\nincidents ${JSON.stringify(inc.rows)}\njobs ${JSON.stringify(jobsNow.rows)}\n${jobs.output.slice(-3000)}`,
      );
    });
    // Let deliveries drain, then look for anything twice.
    await waitFor(
      async () => (await count(`SELECT count(*)::int AS n FROM deliveries WHERE status = 'pending'`)) === 0,
      60_000,
      'deliveries sent',
    );
    // The kill came in the middle of the first batch (each last gasp is its own transaction).
    expect(atKill).toBeLessThan(15);
    expect(await count('SELECT count(*)::int AS n FROM outage_incidents')).toBe(1);
    expect(await count(`SELECT count(*)::int AS n FROM alerts WHERE type = 'incident_opened'`)).toBe(1);
    expect(
      await count(
        `SELECT count(*)::int AS n FROM (SELECT meter_id FROM alerts WHERE type = 'outage' GROUP BY meter_id HAVING count(*) = 1) x`,
      ),
    ).toBe(30);
    expect(await count(`SELECT count(*)::int AS n FROM alerts WHERE type = 'outage'`)).toBe(30);
    // Operator: staff email + on-call SMS; households: one email each (and SMS if a mobile).
    expect(
      await count(
        `SELECT count(*)::int AS n FROM deliveries d JOIN alerts a ON a.id = d.alert_id WHERE a.type = 'incident_opened'`,
      ),
    ).toBe(2);
    expect(
      await count(
        `SELECT count(*)::int AS n FROM (SELECT alert_id, channel, recipient FROM outbox GROUP BY 1, 2, 3 HAVING count(*) > 1) x`,
      ),
    ).toBe(0);
    expect(await count(`SELECT count(*)::int AS n FROM outbox`)).toBe(
      await count(`SELECT count(*)::int AS n FROM deliveries WHERE status = 'sent'`),
    );
    expect(
      await count(`SELECT count(*)::int AS n FROM deliveries WHERE status = 'sent'`),
    ).toBeGreaterThanOrEqual(32);
  }, 300_000);
});
