import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt, { type MqttClient } from 'mqtt';
import { createTestDb, type TestDb } from './support/db.ts';
import { HEADEND, startTestBroker, type TestBroker } from './support/brokers.ts';
import { seedMeters, sleep } from './support/world.ts';
import type { CreatedHousehold } from '../src/accounts/repo.ts';

/**
 * Attacks on the broker's per-meter isolation. Runs against the embedded aedes broker on
 * embedded defaults and against a real Mosquitto with the documented password file and
 * pattern ACL when the run targets Mosquitto (MQTT_URL set).
 */
let db: TestDb;
let broker: TestBroker;
let a: CreatedHousehold;
let b: CreatedHousehold;
const received: { who: string; topic: string }[] = [];
const clients: MqttClient[] = [];

function connect(
  clientId: string,
  username: string | undefined,
  password: string | undefined,
): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(broker.url, {
      protocolVersion: 4,
      clientId,
      username,
      password,
      reconnectPeriod: 0,
      clean: true,
      connectTimeout: 5000,
    });
    c.once('connect', () => {
      clients.push(c);
      resolve(c);
    });
    c.once('error', (err) => {
      c.end(true);
      reject(err);
    });
    c.once('close', () => reject(new Error('closed before connect')));
  });
}

beforeAll(async () => {
  db = await createTestDb();
  [a, b] = (await seedMeters(db.pool, 2)) as [CreatedHousehold, CreatedHousehold];
  broker = await startTestBroker(
    db.pool,
    [a, b].map((h) => ({ id: h.meterSerial, password: h.meterCredential })),
  );
});

afterAll(async () => {
  for (const c of clients) await c.endAsync(true).catch(() => undefined);
  await broker?.close();
  await db?.drop();
});

describe(`broker isolation`, () => {
  it('refuses wrong credentials, a borrowed username and anonymous logins', async () => {
    await expect(connect(a.meterSerial, a.meterSerial, 'wrong')).rejects.toThrow();
    await expect(connect(b.meterSerial, b.meterSerial, a.meterCredential)).rejects.toThrow();
    await expect(connect('anon-1', undefined, undefined)).rejects.toThrow();
    await expect(connect('x', HEADEND.username, 'not-the-password')).rejects.toThrow();
  });

  it('lets no message cross between meters, in either direction', async () => {
    const headend = await connect(`kw-acl-${process.pid}`, HEADEND.username, HEADEND.password);
    headend.on('message', (topic) => received.push({ who: 'headend', topic }));
    await headend.subscribeAsync('meters/+/up/#', { qos: 1 });

    const mb = await connect(b.meterSerial, b.meterSerial, b.meterCredential);
    mb.on('message', (topic) => received.push({ who: 'B', topic }));
    await mb.subscribeAsync(`meters/${b.meterSerial}/down/#`, { qos: 1 });

    const ma = await connect(a.meterSerial, a.meterSerial, a.meterCredential);
    ma.on('message', (topic) => received.push({ who: 'A', topic }));
    // A tries to listen to B and to everyone: the broker must not deliver anything of B's to A.
    for (const t of [
      `meters/${b.meterSerial}/down/#`,
      'meters/+/down/#',
      '#',
      `meters/${b.meterSerial}/up/#`,
    ]) {
      const granted = await ma.subscribeAsync(t, { qos: 1 }).catch(() => [{ qos: 128 }]);
      if (broker.kind === 'aedes') expect(granted[0]?.qos).toBe(128);
    }
    // A forges B's readings and a command to itself; the broker must drop both.
    for (const t of [`meters/${b.meterSerial}/up/readings`, `meters/${a.meterSerial}/down/commands`]) {
      await Promise.race([ma.publishAsync(t, '{"v":1}', { qos: 1 }).catch(() => undefined), sleep(1000)]);
    }
    // Legitimate traffic still flows: B's own publish reaches the head-end, the head-end's command reaches B only.
    await mb.publishAsync(`meters/${b.meterSerial}/up/status`, '{"v":1}', { qos: 1 });
    await headend.publishAsync(`meters/${b.meterSerial}/down/commands`, '{"v":1}', { qos: 1 });
    await sleep(1000);
    expect(received).toContainEqual({ who: 'headend', topic: `meters/${b.meterSerial}/up/status` });
    expect(received).toContainEqual({ who: 'B', topic: `meters/${b.meterSerial}/down/commands` });
    expect(received.filter((r) => r.who === 'A')).toEqual([]);
    expect(received.filter((r) => r.topic === `meters/${b.meterSerial}/up/readings`)).toEqual([]);
    expect(received.filter((r) => r.topic === `meters/${a.meterSerial}/down/commands`)).toEqual([]);
  });
});
