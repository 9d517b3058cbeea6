import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { FileStore, Meter, MeterClient } from '@kilowire/meter';
import { generateSigningKeyPair, privateKeyFromB64, topics } from '@kilowire/protocol';
import { requestCommand } from '../src/commands/lifecycle.ts';
import { tx } from '../src/db/pool.ts';
import type { Gateway } from '../src/gateway/gateway.ts';
import type { TestDb } from './support/db.ts';
import { HEADEND, HEADEND_2, type TestBroker } from './support/brokers.ts';
import { startGatewayWorld, type GatewayWorld } from './support/gateway-world.ts';
import { sleep, waitFor } from './support/world.ts';
import type { CreatedHousehold } from '../src/accounts/repo.ts';

/**
 * Signed commands end to end: the command lifecycle signs and queues, the gateway delivers
 * and retries, the real meter verifies and replies, the result is stored. Then the attacks:
 * envelopes replayed (answered from the meter's reply memory, not re-applied) and an altered
 * one (refused) — state unchanged, also after the meter restarts from its saved state.
 */
const keys = generateSigningKeyPair();
let world: GatewayWorld;
let db: TestDb;
let broker: TestBroker;
let gw: Gateway;
let h: CreatedHousehold;
let client: MeterClient;
const stateFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'kw-meter-')), 'meter.json');

function makeClient(): MeterClient {
  const meter = new Meter({
    id: h.meterSerial,
    tz: 'Europe/London',
    serverPublicKey: keys.publicKey,
    store: new FileStore(stateFile),
    startS: Math.floor(Date.now() / 1000) - 3600,
  });
  const c = new MeterClient({
    meter,
    brokerUrl: broker.url,
    password: h.meterCredential,
    reconnectPeriodMs: 200,
  });
  c.start();
  return c;
}

async function commandRow(id: string) {
  const { rows } = await db.pool.query<{
    status: string;
    result_code: string | null;
    attempts: number;
    envelope: string;
  }>('SELECT status, result_code, attempts, envelope FROM commands WHERE id = $1', [id]);
  return rows[0]!;
}

beforeAll(async () => {
  world = await startGatewayWorld(1, { gateway: { commands: { retryS: 1, maxRetryS: 2 } } });
  ({ db, broker, gw } = world);
  h = world.hh[0]!;
});

afterAll(async () => {
  await client?.stop();
  await world?.close();
});

describe('signed commands', () => {
  it('delivers, retries until the meter replies, and stores the result', async () => {
    // Issued while the meter is offline: the gateway keeps retrying until it answers.
    const cmd = await tx(db.pool, (c) =>
      requestCommand(
        c,
        privateKeyFromB64(keys.privateKey),
        { id: h.meterId, serial: h.meterSerial },
        { type: 'supply.off', reason: 'test' },
        { actorId: null },
      ),
    );
    await gw.sendCommands();
    await sleep(1200);
    await gw.sendCommands();
    client = makeClient();
    await waitFor(async () => (await commandRow(cmd.id)).status === 'ok', 20_000, 'command ok');
    expect(client.meter.relay.state).toBe('disconnected');
    await waitFor(
      async () =>
        (await db.pool.query<{ relay: string }>('SELECT relay FROM meters WHERE id = $1', [h.meterId]))
          .rows[0]?.relay === 'disconnected',
      10_000,
      'status stored',
    );
    expect((await commandRow(cmd.id)).attempts).toBeGreaterThanOrEqual(1);
  });

  it('refuses a replayed, an altered and a stale command, before and after a meter restart', async () => {
    const key = privateKeyFromB64(keys.privateKey);
    const arm = await tx(db.pool, (c) =>
      requestCommand(
        c,
        key,
        { id: h.meterId, serial: h.meterSerial },
        { type: 'supply.arm' },
        { actorId: null },
      ),
    );
    await waitFor(async () => (await commandRow(arm.id)).status === 'ok', 20_000, 'arm ok');
    expect(client.meter.relay.state).toBe('armed');
    const counterAfter = client.meter.lastCounter;
    const offEnvelope = (
      await db.pool.query<{ envelope: string }>("SELECT envelope FROM commands WHERE type = 'supply.off'")
    ).rows[0]!.envelope;
    const armEnvelope = (await commandRow(arm.id)).envelope;

    // An attacker on the broker: the head-end's credentials are all a compromised broker would need.
    const creds = broker.kind === 'mosquitto' ? HEADEND_2 : HEADEND;
    const attacker = await mqtt.connectAsync(broker.url, {
      protocolVersion: 4,
      clientId: `kw-attacker-${process.pid}`,
      username: creds.username,
      password: creds.password,
      reconnectPeriod: 0,
    });
    const altered = JSON.parse(armEnvelope) as { v: 1; body: string; sig: string };
    altered.body = altered.body.replace('"supply.arm"', '"supply.on"');
    const attacks = async () => {
      const rejectedBefore = client.counters.commandsRejected;
      const repeatedBefore = client.counters.commandsRepeated;
      await attacker.publishAsync(topics.down(h.meterSerial, 'commands'), offEnvelope, { qos: 1 }); // replay (stale counter)
      await attacker.publishAsync(topics.down(h.meterSerial, 'commands'), armEnvelope, { qos: 1 }); // replay (same counter)
      await attacker.publishAsync(topics.down(h.meterSerial, 'commands'), JSON.stringify(altered), {
        qos: 1,
      }); // altered
      // The two replays were applied before: the meter answers them with its stored replies
      // (never re-applied, never a different result); the altered one is refused.
      await waitFor(
        () =>
          client.counters.commandsRejected - rejectedBefore >= 1 &&
          client.counters.commandsRepeated - repeatedBefore >= 2,
        10_000,
        'one refusal and two stored answers',
      );
      expect(client.meter.relay.state).toBe('armed');
      expect(client.meter.lastCounter).toBe(counterAfter);
    };
    await attacks();
    // Restart the meter from its saved state: the last counter survived, so replays still fail.
    await client.stop();
    client = makeClient();
    await waitFor(() => client.connected, 10_000, 'meter reconnected');
    expect(client.meter.lastCounter).toBe(counterAfter);
    await attacks();
    await attacker.endAsync();
  });
});
