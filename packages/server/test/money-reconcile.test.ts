import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet } from '@kilowire/meter';
import { generateSigningKeyPair } from '@kilowire/protocol';
import { seedDemo, type FleetFile } from '../src/demo/seed.ts';
import { demoTariffs } from '../src/demo/tariffs.ts';
import { Gateway } from '../src/gateway/gateway.ts';
import { logger } from '../src/log.ts';
import { accountBalance } from '../src/money/ledger.ts';
import { reconcileAll, reconcileMeter } from '../src/money/reconcile.ts';
import { HEADEND, startTestBroker, type TestBroker } from './support/brokers.ts';
import { createTestDb, type TestDb } from './support/db.ts';
import { waitFor } from './support/world.ts';

/**
 * Prepayment reconciliation against real meters: the demo seed (its real tariffs, VAT-inclusive
 * on the meters), 20 days of history produced by the meter model and stored through broker and
 * gateway, then the ledger's mirror — opening credit, one usage transaction per completed
 * local day — must agree with the credit each meter reports to within pennies of rounding;
 * a meter whose credit moves without a reason is flagged to the supplier, not the household.
 */
const TZ = 'Europe/London';
const DAYS = 20;
let db: TestDb;
let broker: TestBroker;
let gw: Gateway;
let fleet: Fleet;
let file: FleetFile;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'kw-reconcile-'));
  db = await createTestDb();
  const keys = generateSigningKeyPair();
  await seedDemo(db.pool, dir, keys.publicKey, {
    households: 6,
    tz: TZ,
    historyDays: DAYS,
    tariffs: demoTariffs,
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
  fleet = new Fleet({
    brokerUrl: broker.url,
    serverPublicKey: file.serverPublicKey,
    meters: file.meters.map((m) => ({ ...m })),
    stateDir: path.join(dir, 'meters'),
    fsync: false,
    speed: 10_000_000,
    tickMs: 100,
    autoPressButton: false,
    backlogByLocalDay: true,
  });
  fleet.start();
  await waitFor(() => fleet.caughtUpAfterMs !== null, 90_000, 'the fleet caught up');
  // The head-end knows every prepayment meter's credit as the meter has it.
  for (const m of file.meters.filter((x) => x.mode === 'prepayment')) {
    await waitFor(
      async () =>
        Number(
          (
            await db.pool.query<{ c: string }>('SELECT credit_minor AS c FROM meters WHERE serial = $1', [
              m.id,
            ])
          ).rows[0]?.c,
        ) === fleet.meter(m.id)!.credit.creditMinor,
      20_000,
      `${m.id}'s credit at the head-end`,
    );
  }
}, 150_000);

afterAll(async () => {
  await fleet?.stop();
  await gw?.stop();
  await broker?.close();
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

describe('prepayment reconciliation', () => {
  it('the ledger mirror agrees with what the meters report, to rounding', async () => {
    const done = await reconcileAll(db.pool, { driftMinor: 200 });
    const prepaid = file.meters.filter((m) => m.mode === 'prepayment');
    expect(done.map((d) => d.meterId)).toHaveLength(prepaid.length);
    for (const d of done) {
      // Every completed day of the history is posted once (the first may be partial, today is not).
      expect(d.posted).toBeGreaterThanOrEqual(DAYS - 1);
      expect(d.posted).toBeLessThanOrEqual(DAYS + 1);
      // Pennies: per-day rounding and the half-hour in progress, nothing systematic.
      expect(Math.abs(d.driftMinor), JSON.stringify(d)).toBeLessThanOrEqual(20);
      expect(d.alerted).toBe(false);
    }
    // Posting again adds nothing.
    const again = await reconcileAll(db.pool, { driftMinor: 200 });
    expect(again.every((d) => d.posted === 0)).toBe(true);
    // The balance is the sum of its entries: opening credit less the usage posted.
    const { rows } = await db.pool.query<{ account_id: number; kinds: string[] }>(
      `SELECT m.account_id, array_agg(DISTINCT t.kind ORDER BY t.kind) AS kinds
         FROM prepay_mirror m JOIN ledger_transactions t ON t.account_id = m.account_id GROUP BY 1`,
    );
    for (const r of rows) {
      expect(r.kinds).toEqual(['opening', 'usage']);
      const sum = await db.pool.query<{ s: string }>(
        `SELECT sum(amount_minor)::bigint AS s FROM ledger_entries WHERE account_id = $1`,
        [r.account_id],
      );
      expect(await accountBalance(db.pool, r.account_id)).toBe(Number(sum.rows[0]!.s));
    }
  });

  it('credit that moves without a top-up or readings to explain it is flagged to the supplier only', async () => {
    const m = file.meters.find((x) => x.mode === 'prepayment')!;
    const { rows } = await db.pool.query<{ id: number }>('SELECT id FROM meters WHERE serial = $1', [m.id]);
    const meterId = rows[0]!.id;
    // As if the meter had been given £10 the head-end knows nothing about.
    await db.pool.query('UPDATE meters SET credit_minor = credit_minor + 1000 WHERE id = $1', [meterId]);
    const r = await reconcileMeter(db.pool, meterId, { driftMinor: 200 });
    expect(r!.driftMinor).toBeGreaterThan(900);
    expect(r!.alerted).toBe(true);
    const a = await db.pool.query<{ consumer_id: number | null; web: boolean; message: string }>(
      `SELECT consumer_id, web, message FROM alerts WHERE meter_id = $1 AND type = 'credit_drift'`,
      [meterId],
    );
    expect(a.rows).toHaveLength(1);
    expect(a.rows[0]!.consumer_id).toBeNull();
    expect(a.rows[0]!.web).toBe(false);
    expect(a.rows[0]!.message).toMatch(/above the £2\.00 threshold/);
    // Once per meter and local day.
    expect((await reconcileMeter(db.pool, meterId, { driftMinor: 200 }))!.alerted).toBe(false);
    const deliveries = await db.pool.query(
      `SELECT 1 FROM deliveries d JOIN alerts a ON a.id = d.alert_id WHERE a.meter_id = $1 AND a.type = 'credit_drift' AND d.audience = 'consumer'`,
      [meterId],
    );
    expect(deliveries.rowCount).toBe(0);
  });
});
