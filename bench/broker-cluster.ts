/**
 * #11 Broker cluster: what a three-node NATS cluster (MQTT on JetStream, sessions R3) does for
 * meters, next to one Mosquitto with the same logins and rules, measured in the same run.
 * Raw MQTT clients with the meters' own settings (MQTT 3.1.1, clean=false, QoS 1, one login
 * each), so the figures are the broker's, not the gateway's or the database's.
 *
 *   node --import tsx bench/broker-cluster.ts [--meters=500] [--msgs=20]
 *
 * Prints one JSON line: connect rate, QoS 1 messages/s into one head-end subscriber, and the
 * failover time (node killed -> every client of it connected and subscribed on another node).
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import mqtt, { type MqttClient } from 'mqtt';
import { mqttServers } from '@kilowire/protocol';
import { NatsCluster } from '@kilowire/server';
import { log, nowMs, onCleanup, runCleanups, startMeterMosquitto, waitFor } from './lib.ts';

const { values } = parseArgs({ options: { meters: { type: 'string' }, msgs: { type: 'string' } } });
const METERS = Number(values.meters ?? 500);
const MSGS = Number(values.msgs ?? 20);
const HEADEND = { username: 'headend', password: 'bench-headend-secret' };
const meters = Array.from({ length: METERS }, (_, i) => ({
  serial: `BC${String(i).padStart(6, '0')}`,
  credential: `pw-${i}-x`,
}));
const payload = Buffer.alloc(200, 7);

function client(id: string, username: string, password: string, urls: string[]): MqttClient {
  const c = mqtt.connect(urls[0]!, {
    protocolVersion: 4,
    clientId: id,
    username,
    password,
    clean: false,
    reconnectPeriod: 500,
    connectTimeout: 30_000,
    ...(urls.length > 1 && { servers: mqttServers(urls) }),
  });
  c.on('error', () => {});
  return c;
}

let refused = 0;
/** Subscribe as the meters do: a refused SUBSCRIBE (NATS while JetStream API calls time out) is retried. */
async function subscribe(c: MqttClient, topic: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await c.subscribeAsync(topic, { qos: 1 });
      return;
    } catch (err) {
      refused++;
      if (attempt >= 10) throw err;
      await new Promise((r) => setTimeout(r, 2000));
      await c.unsubscribeAsync(topic).catch(() => {});
    }
  }
}

/** Connect every meter (50 at a time) and subscribe to its down topics; returns connects/s. */
async function connectAll(
  urlsFor: (i: number) => string[],
): Promise<{ clients: MqttClient[]; perS: number }> {
  const clients: MqttClient[] = [];
  const t0 = nowMs();
  for (let i = 0; i < METERS; i += 50) {
    await Promise.all(
      meters.slice(i, i + 50).map(async (m, j) => {
        const c = client(m.serial, m.serial, m.credential, urlsFor(i + j));
        clients.push(c);
        await new Promise((r) => c.once('connect', r));
        await subscribe(c, `meters/${m.serial}/down/#`);
      }),
    );
  }
  return { clients, perS: METERS / ((nowMs() - t0) / 1000) };
}

/** Every meter publishes MSGS QoS 1 messages; msgs/s until the head-end has them all. */
async function throughput(clients: MqttClient[], got: () => number): Promise<number> {
  const start = got();
  const t0 = nowMs();
  await Promise.all(
    clients.map(async (c, i) => {
      for (let k = 0; k < MSGS; k++)
        await c.publishAsync(`meters/${meters[i]!.serial}/up/readings`, payload, { qos: 1 });
    }),
  );
  await waitFor(() => got() - start >= METERS * MSGS, 120_000, 'head-end received every message', 10);
  return (METERS * MSGS) / ((nowMs() - t0) / 1000);
}

async function headend(urls: string[]): Promise<{ c: MqttClient; got: () => number }> {
  let n = 0;
  const c = client('kw-bench-headend', HEADEND.username, HEADEND.password, urls);
  c.on('message', () => n++);
  await new Promise((r) => c.once('connect', r));
  await subscribe(c, 'meters/+/up/#');
  return { c, got: () => n };
}

const closeAll = (cs: MqttClient[]) => Promise.all(cs.map((c) => c.endAsync(true)));

try {
  // Mosquitto, single node: the baseline.
  const mdir = mkdtempSync(path.join(os.tmpdir(), 'kw-bench-bc-mosq-'));
  const mosq = await startMeterMosquitto('mosquitto', mdir, HEADEND, meters);
  const mUrl = `mqtt://127.0.0.1:${mosq.port}`;
  const mh = await headend([mUrl]);
  const m = await connectAll(() => [mUrl]);
  const mThroughput = await throughput(m.clients, mh.got);
  await closeAll([...m.clients, mh.c]);
  log(`mosquitto: ${m.perS.toFixed(0)} connects/s, ${mThroughput.toFixed(0)} QoS 1 msgs/s`);

  const dir = mkdtempSync(path.join(os.tmpdir(), 'kw-bench-bc-nats-'));
  const cluster = await NatsCluster.create({
    dir,
    headends: [HEADEND],
    meters: meters.map((x) => ({ id: x.serial, password: x.credential })),
  });
  onCleanup('nats cluster', () => cluster.stop());
  await cluster.start();
  const urls = cluster.urls;
  const rotate = (k: number) => [...urls.slice(k % urls.length), ...urls.slice(0, k % urls.length)];
  const nh = await headend(urls);
  const n = await connectAll(rotate);
  const nThroughput = await throughput(n.clients, nh.got);
  log(`nats cluster: ${n.perS.toFixed(0)} connects/s, ${nThroughput.toFixed(0)} QoS 1 msgs/s`);

  // Failover: node 1 carries the head-end and a third of the meters.
  const onFirst = n.clients.filter((_, i) => i % urls.length === 0);
  const resubscribed = new Set<MqttClient>();
  for (const c of onFirst) {
    c.on('connect', () => {
      void subscribe(c, `meters/${c.options.clientId}/down/#`).then(
        () => resubscribed.add(c),
        () => {},
      );
    });
  }
  let headendBack = false;
  nh.c.on('connect', () => (headendBack = true));
  const t0 = nowMs();
  await cluster.kill(0);
  await waitFor(
    () => headendBack && resubscribed.size === onFirst.length,
    120_000,
    'clients of the killed node back',
    20,
  );
  const failoverS = (nowMs() - t0) / 1000;
  // And the cluster still carries every message after it.
  const after = await throughput(n.clients, nh.got);
  log(
    `failover: ${onFirst.length} meters and the head-end back in ${failoverS.toFixed(1)} s; then ${after.toFixed(0)} msgs/s on two nodes`,
  );
  await closeAll([...n.clients, nh.c]);
  console.log(
    JSON.stringify({
      date: new Date().toISOString(),
      meters: METERS,
      msgs_per_meter: MSGS,
      mosquitto_connects_per_s: Math.round(m.perS),
      mosquitto_qos1_msgs_per_s: Math.round(mThroughput),
      cluster_connects_per_s: Math.round(n.perS),
      cluster_qos1_msgs_per_s: Math.round(nThroughput),
      cluster_vs_mosquitto_msgs: Number((nThroughput / mThroughput).toFixed(2)),
      cluster_failover_s: Number(failoverS.toFixed(1)),
      cluster_after_failover_msgs_per_s: Math.round(after),
      cluster_subscribe_refused: refused,
    }),
  );
} finally {
  await runCleanups();
}
