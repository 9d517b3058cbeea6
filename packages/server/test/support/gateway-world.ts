import type { CreatedHousehold } from '../../src/accounts/repo.ts';
import { Gateway, type GatewayOptions } from '../../src/gateway/gateway.ts';
import { logger } from '../../src/log.ts';
import { HEADEND, startTestBroker, type TestBroker } from './brokers.ts';
import { createTestDb, type TestDb } from './db.ts';
import { RawMeter, seedMeters } from './world.ts';

export interface GatewayWorld {
  db: TestDb;
  broker: TestBroker;
  gw: Gateway;
  hh: CreatedHousehold[];
  /** A hand-driven connection per household (only when asked for). */
  meters: RawMeter[];
  close(): Promise<void>;
}

/**
 * The setup every gateway test shares: a fresh database with `n` households, the run's
 * broker (embedded aedes, or a Mosquitto of the test's own), and a started gateway.
 */
export async function startGatewayWorld(
  n: number,
  opts: { rawMeters?: boolean; gateway?: Partial<GatewayOptions>; beforeClose?: () => Promise<void> } = {},
): Promise<GatewayWorld> {
  const db = await createTestDb();
  const hh = await seedMeters(db.pool, n);
  const broker = await startTestBroker(
    db.pool,
    hh.map((h) => ({ id: h.meterSerial, password: h.meterCredential })),
  );
  const gw = await startTestGateway(db.pool, broker.url, opts.gateway);
  const meters: RawMeter[] = [];
  if (opts.rawMeters) {
    for (const h of hh) meters.push(await RawMeter.connect(broker.url, h.meterSerial, h.meterCredential));
  }
  return {
    db,
    broker,
    gw,
    hh,
    meters,
    async close() {
      for (const m of meters) await m.close();
      await opts.beforeClose?.();
      await gw.stop();
      await broker.close();
      await db.drop();
    },
  };
}

/** A started gateway on a test broker with the head-end's login and a quick flush. */
export async function startTestGateway(
  pool: GatewayOptions['pool'],
  mqttUrl: string,
  opts: Partial<GatewayOptions> = {},
): Promise<Gateway> {
  const gw = new Gateway({
    pool,
    log: logger('test-gateway'),
    mqttUrl,
    username: HEADEND.username,
    password: HEADEND.password,
    clientId: `kw-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
    flushMs: 2,
    ...opts,
  });
  await gw.start();
  return gw;
}
