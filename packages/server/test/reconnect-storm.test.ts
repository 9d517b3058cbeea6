import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet } from '@kilowire/meter';
import { generateSigningKeyPair } from '@kilowire/protocol';
import type { CreatedHousehold } from '../src/accounts/repo.ts';
import { Gateway } from '../src/gateway/gateway.ts';
import { startMosquitto, type TestBroker } from './support/brokers.ts';
import { startTestGateway } from './support/gateway-world.ts';
import { createTestDb, type TestDb } from './support/db.ts';
import { seedMeters, sleep, waitFor } from './support/world.ts';

/**
 * Reconnect storm, CI-sized (issue #11; bench part o runs it with 20,000 meters): 300 real
 * simulated meters report through a Mosquitto with the production configuration while it is
 * killed and started again on the same port. The meters keep producing readings while it is
 * away (their outboxes hold them), come back on their own jittered backoff, and every reading
 * produced is stored exactly once. Takes about 40 s.
 */
const METERS = 300;
const HALF_HOUR = 1800;
/** Half a day of history produced at 1,800x: a reading per meter per second, for ~24 s. */
const HISTORY_S = 12 * 3600;
const SPEED = 1800;

let db: TestDb;
let broker: TestBroker;
let gw: Gateway;
let fleet: Fleet;
let hh: CreatedHousehold[];
let startS: number;

beforeAll(async () => {
  db = await createTestDb();
  hh = await seedMeters(db.pool, METERS);
  // The production Mosquitto config (no persistence: sessions do not survive the restart,
  // so both sides must subscribe again on their own), whatever broker the run targets.
  broker = await startMosquitto(hh.map((h) => ({ id: h.meterSerial, password: h.meterCredential })));
  gw = await startTestGateway(db.pool, broker.url, { clientId: `kw-storm-${process.pid}` });
  const now = Math.floor(Date.now() / 1000);
  startS = now - HISTORY_S - (now % HALF_HOUR);
  fleet = new Fleet({
    brokerUrl: broker.url,
    serverPublicKey: generateSigningKeyPair().publicKey,
    meters: hh.map((h, i) => ({ id: h.meterSerial, password: h.meterCredential, seed: i + 1, startS })),
    speed: SPEED,
    tickMs: 200,
    connectsPerSecond: 1000,
    // Short enough for CI; the jitter is what the test is about, not the cap.
    reconnect: { baseMs: 500, capMs: 8000 },
  });
  fleet.start();
  await waitFor(() => fleet.stats().connected === METERS, 30_000, 'every meter connected');
}, 90_000);

afterAll(async () => {
  await fleet?.stop();
  await gw?.stop();
  await broker?.close();
  await db?.drop();
});

describe('a broker restart with every meter connected', () => {
  it('brings every meter back and stores every reading produced, also while the broker was away', async () => {
    await sleep(3000);
    const cursorsAtKill = new Map(hh.map((h) => [h.meterSerial, fleet.meter(h.meterSerial)!.cursor]));
    await broker.kill();
    await waitFor(() => fleet.stats().connected === 0, 10_000, 'every meter sees the broker gone');
    // Away for 4 s: readings pile up in the outboxes, each meter's backoff grows.
    await sleep(4000);
    const producedWhileAway = hh.filter(
      (h) => fleet.meter(h.meterSerial)!.cursor > cursorsAtKill.get(h.meterSerial)!,
    ).length;
    await broker.restart();

    await waitFor(
      () => hh.every((h) => fleet.client(h.meterSerial)!.counters.connects >= 2),
      60_000,
      'every meter reconnected',
    );
    // Caught up with real time and every reading acknowledged (acks come after COMMIT).
    await waitFor(
      () =>
        fleet.stats().backlog === 0 &&
        hh.every((h) => fleet.meter(h.meterSerial)!.cursor + HALF_HOUR > Math.floor(Date.now() / 1000)),
      90_000,
      'every meter caught up and acknowledged',
    );

    expect(producedWhileAway).toBe(METERS);
    expect(fleet.stats().connected).toBe(METERS);
    const rows = (
      await db.pool.query<{ serial: string; n: number; first: Date; last: Date }>(
        `SELECT m.serial, count(r.*)::int AS n, min(r.ts) AS first, max(r.ts) AS last
           FROM meters m LEFT JOIN interval_readings r ON r.meter_id = m.id
          WHERE m.id = ANY($1::int[]) GROUP BY m.serial`,
        [hh.map((h) => h.meterId)],
      )
    ).rows;
    const stored = new Map(rows.map((r) => [r.serial, r]));
    const wrong: string[] = [];
    for (const h of hh) {
      const produced = (fleet.meter(h.meterSerial)!.cursor - startS) / HALF_HOUR;
      const r = stored.get(h.meterSerial);
      // Unique on (meter, ts): the count equal to what was produced means none lost, none twice.
      if (!r || r.n !== produced || r.first.getTime() !== startS * 1000)
        wrong.push(`${h.meterSerial}: produced ${produced}, stored ${r?.n ?? 0}`);
    }
    expect(wrong).toEqual([]);
  }, 150_000);
});
