import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Fleet } from '@kilowire/meter';
import { generateSigningKeyPair, privateKeyFromB64 } from '@kilowire/protocol';
import { requestCommand } from '../src/commands/lifecycle.ts';
import { tx } from '../src/db/pool.ts';
import type { CreatedHousehold } from '../src/accounts/repo.ts';
import { createTestDb, type TestDb } from './support/db.ts';
import { startMosquitto, type TestBroker } from './support/brokers.ts';
import { KilowireProcess } from './support/process.ts';
import { startReportingFleet, waitStoredExactly } from './support/fleet-check.ts';
import { seedMeters, sleep, waitFor } from './support/world.ts';

/**
 * Several gateways (issue #11): three gateway processes share the meters' topics through a
 * Mosquitto shared subscription (MQTT_SHARE_GROUP), so one meter's consecutive messages reach
 * different processes and commit out of order or at the same time. For a minute one of them
 * is killed with SIGKILL every few seconds and started again, while real meters report and
 * signed commands are issued. Afterwards: every reading each meter produced is stored once,
 * the rollups equal the raw data, and every command was applied exactly once on its meter.
 * This is the part's one long test (about two minutes): the minute of kills is the point.
 */
const GATEWAYS = 3;
const METERS = 16;
/** One kill every 5 s for a minute, round robin; each victim is started again 1 s later. */
const KILLS = 12;
const KILL_EVERY_MS = 5_000;
const SHARE_GROUP = 'kw-failover';

const keys = generateSigningKeyPair();
// Mosquitto uses the username as client id (one connection per login): one login per gateway.
const logins = Array.from({ length: GATEWAYS }, (_, i) => ({
  username: `headend-fo-${i}`,
  password: `failover-secret-${i}`,
}));
let db: TestDb;
let broker: TestBroker;
let fleet: Fleet | undefined;
let hh: CreatedHousehold[];
const gateways: KilowireProcess[] = [];

beforeAll(async () => {
  db = await createTestDb();
  hh = await seedMeters(db.pool, METERS);
  // Mosquitto whatever broker the run targets: the embedded aedes has no shared subscriptions.
  broker = await startMosquitto(
    hh.map((h) => ({ id: h.meterSerial, password: h.meterCredential })),
    undefined,
    logins,
  );
  for (const l of logins) {
    const g = new KilowireProcess('gateway', {
      DATABASE_URL: db.url,
      MQTT_URL: broker.url,
      MQTT_USERNAME: l.username,
      MQTT_PASSWORD: l.password,
      GATEWAY_CLIENT_ID: `kw-${l.username}`,
      MQTT_SHARE_GROUP: SHARE_GROUP,
      // A command whose publish died with its gateway is resent after this (the default 30 s
      // would outlast the test).
      COMMAND_RETRY_S: '2',
      COMMAND_MAX_RETRY_S: '4',
    });
    gateways.push(g);
    g.start();
  }
  await Promise.all(gateways.map((g) => g.waitFor('gateway connected to broker')));
}, 60_000);

afterAll(async () => {
  await fleet?.stop();
  await Promise.all(gateways.map((g) => g.stop()));
  await broker?.close();
  await db?.drop();
});

const count = async (sql: string, params: unknown[] = []) =>
  (await db.pool.query<{ n: number }>(sql, params)).rows[0]!.n;

describe('three gateways on a shared subscription, one killed every few seconds', () => {
  it('stores every reading once, keeps rollups exact and applies every command once', async () => {
    // Eight simulated days at 8000x: about 85 s of one-reading messages, longer than the kills.
    fleet = startReportingFleet(broker.url, hh, {
      speed: 8000,
      seed: 11,
      backfillDays: 8,
      serverPublicKey: keys.publicKey,
    });
    await waitFor(
      async () => (await count('SELECT count(*)::int AS n FROM interval_readings')) > 200,
      30_000,
      'first readings',
    );

    const key = privateKeyFromB64(keys.privateKey);
    const issued = new Map<number, string[]>();
    let n = 0;
    const t0 = Date.now();
    for (let k = 0; k < KILLS; k++) {
      await sleep(Math.max(0, t0 + k * KILL_EVERY_MS - Date.now()));
      const g = gateways[k % GATEWAYS]!;
      await g.waitFor('gateway connected to broker'); // back from its previous kill
      await g.kill9();
      // Commands while a gateway is down and while it comes back: the survivors claim them.
      for (let i = 0; i < 2; i++) {
        const h = hh[n % hh.length]!;
        n++;
        const cmd = await tx(db.pool, (c) =>
          requestCommand(
            c,
            key,
            { id: h.meterId, serial: h.meterSerial },
            { type: 'thresholds.set', lowCreditMinor: 100 + n },
            { actorId: null },
          ),
        );
        issued.set(h.meterId, [...(issued.get(h.meterId) ?? []), cmd.id]);
      }
      await sleep(1_000);
      g.start();
    }
    await Promise.all(gateways.map((g) => g.waitFor('gateway connected to broker')));
    // Each process really died and came back, KILLS / GATEWAYS times (at least: an MQTT
    // reconnect on a loaded machine logs the line too).
    for (const g of gateways)
      expect(g.logLines(/^gateway connected to broker$/).length).toBeGreaterThanOrEqual(1 + KILLS / GATEWAYS);

    // 0 lost, and the rollups equal the raw data (fleetStoredExactly, meter by meter: the
    // meter's own interval count and import register against the rows, nothing left unacked).
    await waitStoredExactly(db.pool, fleet, hh, 120_000);
    // 0 duplicated: the primary key makes it structural, checked anyway.
    const dup = await db.pool.query<{ n: number; d: number }>(
      `SELECT count(*)::int AS n, count(DISTINCT (meter_id, ts))::int AS d FROM interval_readings`,
    );
    expect(dup.rows[0]!.n).toBe(dup.rows[0]!.d);
    // Eight days of half-hours per meter (less the one still open): the kills were mid-stream.
    expect(dup.rows[0]!.n).toBeGreaterThanOrEqual(METERS * (8 * 48 - 2));
    // Rollups per meter-day, not only per meter: interval counts and energy.
    const badDays = await count(
      `SELECT count(*)::int AS n FROM daily_rollups d FULL JOIN (
         SELECT r.meter_id, (r.ts AT TIME ZONE m.tz)::date AS day, count(*)::int AS k, sum(r.wh)::bigint AS wh
           FROM interval_readings r JOIN meters m ON m.id = r.meter_id GROUP BY 1, 2
       ) x ON x.meter_id = d.meter_id AND x.day = d.day
       WHERE (d.meter_id = ANY($1::int[]) OR x.meter_id = ANY($1::int[]))
         AND (d.intervals IS DISTINCT FROM x.k OR d.wh IS DISTINCT FROM x.wh)`,
      [hh.map((h) => h.meterId)],
    );
    expect(badDays).toBe(0);

    // Every command answered ok, and applied exactly once on its meter.
    const total = [...issued.values()].reduce((s, l) => s + l.length, 0);
    await waitFor(
      async () => (await count(`SELECT count(*)::int AS n FROM commands WHERE status = 'ok'`)) === total,
      60_000,
      'every command answered',
    );
    const cmds = await db.pool.query<{ meter_id: number; attempts: number; sent: number }>(
      `SELECT c.meter_id, c.attempts,
              (SELECT count(*)::int FROM command_transitions t WHERE t.command_id = c.id AND t.to_status = 'sent') AS sent
         FROM commands c`,
    );
    expect(cmds.rows.length).toBe(total);
    for (const r of cmds.rows) expect(r.sent).toBe(r.attempts);
    for (const h of hh) {
      const mine = issued.get(h.meterId) ?? [];
      const meter = fleet.meter(h.meterSerial)!;
      const c = fleet.client(h.meterSerial)!.counters;
      // Counters 1..k were allocated to this meter; it took each once (a second copy would be
      // answered from its reply memory, never applied: commandsRepeated, not commandsOk).
      expect(meter.lastCounter, h.meterSerial).toBe(mine.length);
      expect(c.commandsOk, h.meterSerial).toBe(mine.length);
      expect(c.commandsRejected + c.commandsFailed, h.meterSerial).toBe(0);
      // No copy reached the meter without a claim (attempt) behind it: two gateways never
      // sent the same claim.
      const attempts = cmds.rows.filter((r) => r.meter_id === h.meterId).reduce((s, r) => s + r.attempts, 0);
      expect(c.commandsOk + c.commandsRepeated, h.meterSerial).toBeLessThanOrEqual(attempts);
    }
    const st = fleet.stats();
    const resendRequests = hh.reduce((s, h) => s + fleet!.client(h.meterSerial)!.counters.resendRequests, 0);
    const repeated = hh.reduce((s, h) => s + fleet!.client(h.meterSerial)!.counters.commandsRepeated, 0);
    console.info(
      `failover: ${KILLS} kills, ${dup.rows[0]!.n} readings stored once, ${st.published} messages published ` +
        `(${resendRequests} resend requests), ${total} commands (${repeated} repeated deliveries, ` +
        `${cmds.rows.reduce((s, r) => s + r.attempts, 0)} attempts)`,
    );
  }, 300_000);
});
