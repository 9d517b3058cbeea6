import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet } from '@kilowire/meter';
import { generateSigningKeyPair, localDate, type TariffSpec } from '@kilowire/protocol';
import type { CreatedHousehold } from '../src/accounts/repo.ts';
import { seedDemo, type DemoMeter, type FleetFile } from '../src/demo/seed.ts';
import { Gateway } from '../src/gateway/gateway.ts';
import { logger } from '../src/log.ts';
import { HEADEND, startTestBroker, type TestBroker } from './support/brokers.ts';
import { createTestDb, type TestDb } from './support/db.ts';
import { fleetStoredExactly } from './support/fleet-check.ts';
import { waitFor } from './support/world.ts';

/**
 * The demo's history, end to end with real parts: the seed sizes it, the real meter model
 * produces it, and it reaches the database through the broker and the gateway like any
 * reading — continuous registers, nothing estimated or flagged, band 3 where the demo's
 * tariff has one, and prepayment households that ran out or are running low.
 */
const TZ = 'Europe/London';
const DAYS = 45;
const PEAK: TariffSpec = {
  id: 'demo-peak',
  version: 1,
  currency: 'GBP',
  rates: { '1': 26_110, '2': 14_520, '3': 38_250 },
  band2Windows: [{ from: '00:00', to: '07:00' }],
  band3Windows: [{ from: '16:00', to: '19:00' }],
  standingChargeMinorPerDay: 53,
  standingChargeMilliPerDay: 53_350,
  effectiveFrom: 946_684_800,
};

let db: TestDb;
let broker: TestBroker;
let gw: Gateway;
let fleet: Fleet;
let file: FleetFile;
let dir: string;
let chooserSaw: { meters: DemoMeter[]; from: string } | undefined;
const keys = generateSigningKeyPair();

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'kw-demo-'));
  db = await createTestDb();
  await seedDemo(db.pool, dir, keys.publicKey, {
    households: 6,
    tz: TZ,
    historyDays: DAYS,
    // The tariffs part fills this in the real demo; here: three bands for even households.
    tariffs: (_c, meters, from) => {
      chooserSaw = { meters: [...meters], from };
      return Promise.resolve(new Map(meters.filter((m) => m.index % 2 === 0).map((m) => [m.serial, PEAK])));
    },
  });
  file = JSON.parse(readFileSync(path.join(dir, 'fleet.json'), 'utf8')) as FleetFile;
  broker = await startTestBroker(db.pool, file.meters);
  gw = new Gateway({
    pool: db.pool,
    log: logger('test-gateway'),
    mqttUrl: broker.url,
    username: HEADEND.username,
    password: HEADEND.password,
    clientId: `kw-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
    flushMs: 2,
  });
  await gw.start();
}, 60_000);

afterAll(async () => {
  await fleet?.stop();
  await gw?.stop();
  await broker?.close();
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

describe('demo history', () => {
  it('the seed starts every meter the history length ago, on the chosen tariff, with credit sized for its story', () => {
    const start = file.meters[0]!.startS!;
    const ago = Date.now() / 1000 - start;
    expect(ago).toBeGreaterThanOrEqual(DAYS * 86_400);
    expect(ago).toBeLessThan(DAYS * 86_400 + 1800 + 60);
    expect(start % 1800).toBe(0);
    expect(chooserSaw?.from).toBe(localDate(start, TZ));
    expect(chooserSaw?.meters.map((m) => m.serial)).toEqual(file.meters.map((m) => m.id));
    for (const m of file.meters) {
      expect(m.startS).toBe(start);
      expect(m.initialTariff?.id).toBe(Number(m.id.slice(2)) % 2 === 0 ? 'demo-peak' : undefined);
    }
    const prepaid = file.meters.filter((m) => m.mode === 'prepayment');
    expect(prepaid.map((m) => m.id)).toEqual(['KW000003', 'KW000006']);
    // 45 days of a household's electricity: tens of pounds, not the meter's default £20.
    for (const m of prepaid) expect(m.initialCreditMinor).toBeGreaterThan(5_000);
  });

  it('reaches the database through broker and gateway: continuous, nothing estimated or flagged, band 3 stored', async () => {
    fleet = new Fleet({
      brokerUrl: broker.url,
      serverPublicKey: file.serverPublicKey,
      meters: file.meters.map((m) => ({ ...m })),
      stateDir: path.join(dir, 'meters'),
      fsync: false,
      speed: 10_000_000,
      // Small, so the pacing by acknowledgements is exercised many times over 45 days.
      maxUnackedIntervals: 5 * 48,
      tickMs: 100,
      autoPressButton: false,
      backlogByLocalDay: true,
    });
    let maxUnacked = 0;
    const watch = setInterval(() => {
      for (const m of file.meters) {
        const out = fleet.meter(m.id)?.outbox ?? [];
        const n = out.reduce((a, e) => a + (e.stream === 'readings' ? e.msg.intervals.length : 0), 0);
        maxUnacked = Math.max(maxUnacked, n);
      }
    }, 20);
    fleet.start();
    try {
      await waitFor(() => fleet.caughtUpAfterMs !== null, 90_000, 'the fleet caught up with real time');
    } finally {
      clearInterval(watch);
    }
    expect(maxUnacked).toBeGreaterThan(0);
    expect(maxUnacked).toBeLessThanOrEqual(5 * 48);

    const { rows: meters } = await db.pool.query<{ meterId: number; meterSerial: string }>(
      'SELECT id AS "meterId", serial AS "meterSerial" FROM meters ORDER BY serial',
    );
    await waitFor(
      async () => (await fleetStoredExactly(db.pool, fleet, meters as CreatedHousehold[])) === true,
      30_000,
      'every interval stored exactly once',
    );
    const start = file.meters[0]!.startS!;
    const first = await db.pool.query<{ n: number }>(
      'SELECT count(DISTINCT meter_id)::int AS n FROM interval_readings WHERE ts = to_timestamp($1)',
      [start],
    );
    expect(first.rows[0]!.n).toBe(6);
    // A register read at every local midnight of the history, as a bill's period boundaries need.
    const midnights = await db.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM register_reads r JOIN meters m ON m.id = r.meter_id
        WHERE m.serial = 'KW000001' AND (r.ts AT TIME ZONE $1)::time = '00:00'`,
      [TZ],
    );
    expect(midnights.rows[0]!.n).toBeGreaterThanOrEqual(DAYS);
    const issues = await db.pool.query('SELECT rule, count(*)::int FROM vee_issues GROUP BY 1');
    expect(issues.rows).toEqual([]);
    const reg = await db.pool.query<{ serial: string; rate3: string; total: string; r1: string; r2: string }>(
      `SELECT DISTINCT ON (m.serial) m.serial, r.rate3_wh AS rate3, r.import_wh AS total, r.rate1_wh AS r1, r.rate2_wh AS r2
         FROM register_reads r JOIN meters m ON m.id = r.meter_id ORDER BY m.serial, r.ts DESC`,
    );
    for (const r of reg.rows) {
      const peak = Number(r.serial.slice(2)) % 2 === 0;
      if (peak) expect(Number(r.rate3)).toBeGreaterThan(0);
      else expect(Number(r.rate3)).toBe(0);
      expect(Number(r.r1) + Number(r.r2) + Number(r.rate3)).toBe(Number(r.total));
      expect(Number(r.total)).toBe(fleet.meter(r.serial)!.registers['1.0.1.8.0']);
    }
  }, 120_000);

  it('prepayment households have run out (the first) or are running low (the second) when the portal opens', async () => {
    const out = fleet.meter('KW000003')!;
    const low = fleet.meter('KW000006')!;
    expect(out.credit.creditMinor).toBeLessThanOrEqual(0);
    expect(low.credit.creditMinor).toBeGreaterThan(0);
    expect(low.credit.creditMinor).toBeLessThan(low.credit.lowThresholdMinor);
    // The head-end knows it at once: a meter that has caught up sends its status then.
    for (const [serial, m] of [
      ['KW000003', out],
      ['KW000006', low],
    ] as const) {
      await waitFor(
        async () =>
          (
            await db.pool.query<{ c: number }>('SELECT credit_minor AS c FROM meters WHERE serial = $1', [
              serial,
            ])
          ).rows[0]!.c === m.credit.creditMinor,
        5_000,
        `the head-end to know ${serial}'s credit`,
      );
    }
    const ev = await db.pool.query<{ serial: string; code: string }>(
      `SELECT DISTINCT m.serial, e.code FROM meter_events e JOIN meters m ON m.id = e.meter_id
        WHERE e.code IN ('credit.low', 'credit.exhausted') ORDER BY 1, 2`,
    );
    expect(ev.rows).toEqual([
      { serial: 'KW000003', code: 'credit.exhausted' },
      { serial: 'KW000003', code: 'credit.low' },
      { serial: 'KW000006', code: 'credit.low' },
    ]);
  });
});
