import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { FileStore, Meter, MeterClient } from '@kilowire/meter';
import {
  addDays,
  generateSigningKeyPair,
  localDate,
  localMidnight,
  privateKeyFromB64,
} from '@kilowire/protocol';
import { createStaffUser, type CreatedHousehold } from '../src/accounts/repo.ts';
import { hashPassword } from '../src/auth/passwords.ts';
import { tx } from '../src/db/pool.ts';
import { assignTariff, createTariff } from '../src/money/tariffs.ts';
import type { TestDb } from './support/db.ts';
import { as, login, PASSWORD, testApi } from './support/api.ts';
import { startGatewayWorld, type GatewayWorld } from './support/gateway-world.ts';
import { waitFor } from './support/world.ts';

/**
 * Tariffs reach a real meter: the supplier's assignment (PUT /api/meters/{serial}/tariff) and
 * the household's low-credit level (PUT .../limits) are signed commands that the gateway
 * delivers through the broker to a packages/meter MeterClient, which applies them; the
 * command lifecycle records ok, and the API shows it with the meter's tariff.
 */
const TZ = 'Europe/London';
const keys = generateSigningKeyPair();
let world: GatewayWorld;
let db: TestDb;
let h: CreatedHousehold;
let client: MeterClient;
let app: FastifyInstance;
let supplierId: number;
let tariffId: number;
const stateFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'kw-meter-')), 'meter.json');
const nowS = Math.floor(Date.now() / 1000);
const today = localDate(nowS, TZ);

async function commandStatus(id: string): Promise<string> {
  const { rows } = await db.pool.query<{ status: string }>('SELECT status FROM commands WHERE id = $1', [id]);
  return rows[0]!.status;
}

beforeAll(async () => {
  world = await startGatewayWorld(1, { gateway: { commands: { retryS: 1, maxRetryS: 2 } } });
  db = world.db;
  h = world.hh[0]!;
  supplierId = (
    await db.pool.query<{ supplier_id: number }>('SELECT supplier_id FROM meters WHERE id = $1', [h.meterId])
  ).rows[0]!.supplier_id;
  await createStaffUser(db.pool, {
    role: 'supplier',
    email: 'staff@e2e.test',
    password: PASSWORD,
    orgId: supplierId,
    name: 'E2E Staff',
  });
  await db.pool.query('UPDATE users SET password_hash = $2 WHERE id = $1', [
    h.userId,
    await hashPassword(PASSWORD),
  ]);
  app = await testApi(db.pool, {
    config: { commandSigningKey: keys.privateKey, commandPublicKey: keys.publicKey },
  });
  tariffId = await tx(db.pool, (c) =>
    createTariff(
      c,
      supplierId,
      {
        code: 'E7',
        name: 'Economy 7',
        currency: 'GBP',
        structure: 'two_rate',
        open: true,
        version: {
          effectiveFrom: addDays(today, -30),
          dayRate: 24_500,
          nightRate: 12_000,
          peakRate: null,
          nightWindows: [{ from: '00:30', to: '07:30' }],
          peakWindows: [],
          exportRate: null,
          standingMilliPerDay: 53_350,
          vatBp: 500,
        },
      },
      null,
      { allowPast: true },
    ),
  );
  const meter = new Meter({
    id: h.meterSerial,
    tz: TZ,
    serverPublicKey: keys.publicKey,
    store: new FileStore(stateFile),
    // From local midnight: a tariff effective today is then already due (not pending).
    startS: localMidnight(today, TZ),
  });
  client = new MeterClient({
    meter,
    brokerUrl: world.broker.url,
    password: h.meterCredential,
    reconnectPeriodMs: 200,
  });
  client.start();
  await waitFor(() => client.connected, 10_000, 'meter connected');
});

afterAll(async () => {
  await client?.stop();
  await app?.close();
  await world?.close();
});

describe('tariffs on a real meter', () => {
  it('a tariff from today is active on the meter at once', async () => {
    const m = { id: h.meterId, serial: h.meterSerial, tz: TZ, supplier_id: supplierId };
    const a = await tx(db.pool, (c) =>
      assignTariff(c, privateKeyFromB64(keys.privateKey), m, tariffId, today, null, { allowPast: true }),
    );
    await waitFor(async () => (await commandStatus(a.commandId!)) === 'ok', 20_000, 'tariff.set ok');
    expect(client.meter.tariff).toMatchObject({
      id: 'E7',
      version: 1,
      // Net prices plus 5% VAT: 24.5p -> 25.725p, 12p -> 12.6p, 53.35p/day -> 56.0175p -> 56.018p.
      rates: { '1': 25_725, '2': 12_600 },
      band2Windows: [{ from: '00:30', to: '07:30' }],
      standingChargeMinorPerDay: 56,
      standingChargeMilliPerDay: 56_018,
      effectiveFrom: localMidnight(today, TZ),
    });
  });

  it("the supplier's assignment (next local midnight) waits on the meter; the API shows the command ok", async () => {
    const sup = await login(app, 'staff@e2e.test');
    const put = await app.inject(
      as(sup, {
        method: 'PUT',
        url: `/api/meters/${h.meterSerial}/tariff`,
        headers: { 'content-type': 'application/json' },
        payload: { tariffId },
      }),
    );
    expect(put.statusCode, put.body).toBe(200);
    const body = JSON.parse(put.body) as { next: { from: string }; command: { id: string; status: string } };
    expect(body.next.from).toBe(addDays(today, 1));
    await waitFor(async () => (await commandStatus(body.command.id)) === 'ok', 20_000, 'tariff.set ok');
    expect(client.meter.snapshot().production.pendingTariff).toMatchObject({
      id: 'E7',
      effectiveFrom: localMidnight(addDays(today, 1), TZ),
    });
    const get = await app.inject(as(sup, { method: 'GET', url: `/api/meters/${h.meterSerial}/tariff` }));
    expect(JSON.parse(get.body)).toMatchObject({
      tariffName: 'Economy 7',
      command: { status: 'ok', version: 1 },
    });
    const audit = await db.pool.query(
      "SELECT 1 FROM audit_log WHERE action = 'meter.tariff' AND target = $1",
      [h.meterSerial],
    );
    expect(audit.rowCount).toBe(1);
  });

  it("the household's low-credit level reaches the meter as thresholds.set", async () => {
    // seedMeters gives the household the meter's serial as its consumer ID.
    const hh = await login(app, h.meterSerial);
    const put = await app.inject(
      as(hh, {
        method: 'PUT',
        url: `/api/meters/${h.meterSerial}/limits`,
        headers: { 'content-type': 'application/json' },
        payload: { dailyLimitWh: null, hourlyLimitWh: null, lowCreditMinor: 700 },
      }),
    );
    expect(put.statusCode, put.body).toBe(200);
    const id = (JSON.parse(put.body) as { lowCreditCommand: { id: string } }).lowCreditCommand.id;
    await waitFor(async () => (await commandStatus(id)) === 'ok', 20_000, 'thresholds.set ok');
    expect(client.meter.snapshot().prepayment.lowThresholdMinor).toBe(700);
  });
});
