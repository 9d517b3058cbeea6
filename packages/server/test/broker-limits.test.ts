import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { topics } from '@kilowire/protocol';
import { MAX_PACKET_BYTES } from '../src/broker/packet-cap.ts';
import { createTestDb, type TestDb } from './support/db.ts';
import { HEADEND, HEADEND_2, startTestBroker, type TestBroker } from './support/brokers.ts';
import { seedMeters, sleep } from './support/world.ts';
import type { CreatedHousehold } from '../src/accounts/repo.ts';

/**
 * The broker refuses what no meter ever sends, before it can cost memory: packets larger
 * than the protocol's largest message (also before authentication) and retained messages.
 * Runs against the embedded broker, and against Mosquitto with the generated configuration
 * when the run targets Mosquitto.
 */
let db: TestDb;
let broker: TestBroker;
let m: CreatedHousehold;

beforeAll(async () => {
  db = await createTestDb();
  [m] = (await seedMeters(db.pool, 1)) as [CreatedHousehold];
  broker = await startTestBroker(db.pool, [{ id: m.meterSerial, password: m.meterCredential }]);
});

afterAll(async () => {
  await broker?.close();
  await db?.drop();
});

const port = () => Number(new URL(broker.url).port);

/** The test meter's own login, no reconnects. */
const connectMeter = () =>
  mqtt.connectAsync(broker.url, {
    protocolVersion: 4,
    clientId: m.meterSerial,
    username: m.meterSerial,
    password: m.meterCredential,
    reconnectPeriod: 0,
  });

/** The MQTT remaining-length encoding (1..4 bytes). */
function varint(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

/**
 * Open a raw TCP connection, send a packet header announcing `announced` bytes and then
 * stream filler until the broker closes the socket. Returns how many body bytes it accepted.
 */
function streamUntilClosed(
  first: Buffer,
  announced: number,
  limitBytes: number,
): Promise<{ sent: number; closed: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect(port(), '127.0.0.1');
    let sent = 0;
    let closed = false;
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    const done = () => resolve({ sent, closed });
    s.on('error', () => undefined);
    s.on('close', () => {
      closed = true;
      done();
    });
    s.on('connect', () => {
      s.write(Buffer.concat([first, varint(announced)]));
      const pump = () => {
        while (!closed && sent < limitBytes) {
          sent += chunk.length;
          if (!s.write(chunk)) {
            s.once('drain', pump);
            return;
          }
        }
        if (sent >= limitBytes) {
          // Still open after all that: give the broker a moment, then report.
          setTimeout(() => {
            s.destroy();
            resolve({ sent, closed: false });
          }, 2000);
        }
      };
      pump();
    });
  });
}

describe('packet size cap', () => {
  it('closes a connection whose first packet announces 100 MB, before reading it (no login needed)', async () => {
    // 0x10 = CONNECT. The broker must hang up long before 100 MB has flowed.
    const r = await streamUntilClosed(Buffer.from([0x10]), 100 * 1024 * 1024, 100 * 1024 * 1024);
    expect(r.closed).toBe(true);
    expect(r.sent).toBeLessThan(20 * 1024 * 1024);
  });

  it('disconnects a logged-in meter that publishes more than the cap, and keeps serving others', async () => {
    const c = await connectMeter();
    const closed = new Promise<void>((resolve) => c.once('close', () => resolve()));
    c.publish(topics.up(m.meterSerial, 'readings'), Buffer.alloc(MAX_PACKET_BYTES + 1024, 0x7b), { qos: 1 });
    await closed;
    // A normal-sized publish from a new connection still works.
    const c2 = await connectMeter();
    await c2.publishAsync(topics.up(m.meterSerial, 'status'), Buffer.from('{}'), { qos: 1 });
    await c2.endAsync();
    await c.endAsync(true).catch(() => undefined);
  });
});

describe('retained messages', () => {
  it('refuses a retained publish on a meter topic, so no later subscriber gets stale data replayed', async () => {
    const c = await connectMeter();
    let closed = false;
    c.on('close', () => (closed = true));
    c.publish(topics.up(m.meterSerial, 'status'), Buffer.from('{"retained":true}'), { qos: 1, retain: true });
    await sleep(500);
    await c.endAsync(true).catch(() => undefined);
    // A head-end that subscribes afterwards (as a restarted gateway would) gets nothing.
    const creds = broker.kind === 'mosquitto' ? HEADEND_2 : HEADEND;
    const seen: { topic: string; retain: boolean }[] = [];
    const he = await mqtt.connectAsync(broker.url, {
      protocolVersion: 4,
      clientId: broker.kind === 'mosquitto' ? creds.username : `kw-retain-check-${process.pid}`,
      username: creds.username,
      password: creds.password,
      reconnectPeriod: 0,
      clean: true,
    });
    he.on('message', (topic, _p, packet) => seen.push({ topic, retain: packet.retain }));
    await he.subscribeAsync(topics.allUp(), { qos: 1 });
    await sleep(500);
    await he.endAsync();
    expect(seen).toEqual([]);
    // Mosquitto (retain_available false) drops the connection of a client that tries.
    if (broker.kind === 'mosquitto') expect(closed).toBe(true);
  });
});
