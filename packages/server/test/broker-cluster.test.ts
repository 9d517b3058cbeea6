import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Fleet } from '@kilowire/meter';
import { NatsCluster } from '../src/broker/nats.ts';
import type { CreatedHousehold } from '../src/accounts/repo.ts';
import { createTestDb, type TestDb } from './support/db.ts';
import { HEADEND } from './support/brokers.ts';
import { KilowireProcess } from './support/process.ts';
import { fleetStoredExactly, startReportingFleet, waitStoredExactly } from './support/fleet-check.ts';
import { seedMeters, waitFor } from './support/world.ts';
import { formatConnection, formatConsumer, natsConnections, natsConsumers } from './support/nats-monitor.ts';

/**
 * The clustered broker (docs/broker.md): three nats-server nodes on loopback ports, the real
 * gateway process and 90 real meters spread over the nodes, all with per-meter
 * credentials and persistent sessions. Under load, the node that carries the gateway and a
 * third of the meters is killed with SIGKILL. Every meter must come back on another node,
 * the gateway too, and every reading each meter produced must be stored exactly once.
 * Starts its own cluster whatever MQTT_URL says. 1-2 minutes: the one long test of its part.
 * Not hundreds of meters: every MQTT subscription is a Raft group on NATS, and on a loaded
 * 2-core machine more of them time out (docs/performance.md "#11 Broker cluster").
 */
const METERS = 90;
/**
 * Runs by default (needs `nats-server` on the PATH); BROKER_CLUSTER_TEST=0 skips it. It was
 * opt-in while it failed about 1 run in 3: the gateway's QoS 1 acks held back its own PUBACKs
 * on NATS (MQTT_ACK_QOS below; docs/performance.md "#11 Broker cluster").
 */
const RUN = process.env.BROKER_CLUSTER_TEST !== '0';
let db: TestDb;
let cluster: NatsCluster;
let dir: string;
let gateway: KilowireProcess;
let fleet: Fleet | undefined;
let hh: CreatedHousehold[];
/** The meters' own log lines (resubscribes, reconnects, refused subscriptions), by meter id. */
const meterLog = new Map<string, string[]>();
const t00 = Date.now();

/**
 * What a failed run needs to be understood: for each meter not stored exactly, its client's
 * state and log, its ingest state in the database, its connections and subscriptions on each
 * live node (/connz) and its JetStream consumers (/jsz), and the gateway's consumers.
 */
async function diagnose(f: Fleet): Promise<string> {
  const out: string[] = [];
  const conns = await natsConnections(cluster);
  const cons = await natsConsumers(cluster);
  for (const h of hh) {
    const r = await fleetStoredExactly(db.pool, f, [h]).catch((e: unknown) => String(e));
    if (r === true) continue;
    const id = h.meterSerial;
    const c = f.client(id)!;
    const st = await db.pool.query(
      'SELECT readings_upto, readings_above FROM meter_ingest_state WHERE meter_id = $1',
      [h.meterId],
    );
    out.push(
      r,
      `  client connected=${c.connected} at ${c.brokerAddress} counters=${JSON.stringify(c.counters)}`,
      `  outbox seqs ${f
        .meter(id)!
        .outbox.map((e) => e.seq)
        .join(',')}; db ${JSON.stringify(st.rows[0])}`,
      `  log:\n    ${(meterLog.get(id) ?? []).join('\n    ')}`,
      ...conns.filter((x) => x.authorized_user === id).map((x) => `  conn ${formatConnection(x)}`),
      ...cons
        .filter((x) => x.config?.filter_subject?.includes(`meters.${id}.`))
        .map((x) => `  ${formatConsumer(x)}`),
    );
  }
  out.push(
    'gateway:',
    ...conns
      .filter((x) => x.authorized_user === HEADEND.username)
      .map((x) => `  conn ${formatConnection(x)}`),
    ...cons
      .filter((x) => x.config?.filter_subject?.includes('meters.*.up'))
      .map((x) => `  ${formatConsumer(x)}`),
    gatewayTrouble(),
    `nodes:\n${cluster.logs.map((l) => l.slice(-4000)).join('\n--\n')}`,
  );
  return out.join('\n');
}

/** The gateway's warnings, errors and broker connections, timed from the start of the file (without stacks). */
function gatewayTrouble(): string {
  const out: string[] = [];
  for (const line of gateway.all.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const j = JSON.parse(line) as {
        level: number;
        time: number;
        msg?: string;
        err?: { message?: string } | string;
      };
      if (j.level < 40 && !/broker|intake/.test(j.msg ?? '')) continue;
      const err = typeof j.err === 'string' ? j.err : (j.err?.message ?? '');
      out.push(`  ${((j.time - t00) / 1000).toFixed(1)}s ${j.msg} ${err}`);
    } catch {
      // not a log line
    }
  }
  return out.join('\n');
}

/** The gateway's consumers as their leaders see them: is it delivering, are acks landing? */
async function gatewayProgress(): Promise<string> {
  const cons = await natsConsumers(cluster);
  return cons
    .filter((c) => c.config?.filter_subject?.includes('meters.*.up') && c.cluster?.leader === c.node)
    .map((c) => `  ${formatConsumer(c)}`)
    .join('\n');
}

describe.skipIf(!RUN)('a three-node NATS cluster as the broker', () => {
  beforeAll(async () => {
    db = await createTestDb();
    hh = await seedMeters(db.pool, METERS);
    dir = mkdtempSync(path.join(os.tmpdir(), 'kw-nats-'));
    cluster = await NatsCluster.create({
      dir,
      headends: [HEADEND],
      meters: hh.map((h) => ({ id: h.meterSerial, password: h.meterCredential })),
    });
    await cluster.start();
    gateway = new KilowireProcess('gateway', {
      DATABASE_URL: db.url,
      MQTT_URL: cluster.urls[0]!,
      MQTT_FAILOVER_URLS: cluster.urls.slice(1).join(','),
      MQTT_USERNAME: HEADEND.username,
      MQTT_PASSWORD: HEADEND.password,
      GATEWAY_CLIENT_ID: `kw-cluster-${process.pid}`,
      // Acks at QoS 1 are JetStream writes that hold back the gateway's PUBACKs (docs/broker.md).
      MQTT_ACK_QOS: '0',
    });
    gateway.start();
    await gateway.waitFor('gateway connected to broker');
  }, 120_000);

  afterAll(async () => {
    // Meters whose node is gone may still be between reconnects: do not wait on them for ever.
    await Promise.race([fleet?.stop(), new Promise((r) => setTimeout(r, 10_000))]);
    await gateway?.stop();
    await cluster?.stop();
    await db?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('loses no reading and reconnects every meter and the gateway when a node is killed under load', async () => {
    const [killed, ...others] = cluster.urls.map((u) => new URL(u).host);
    fleet = startReportingFleet(cluster.urls[0]!, hh, {
      speed: 8000,
      seed: 3,
      failoverUrls: cluster.urls.slice(1),
      // Each new session creates replicated JetStream consumers: admitted slowly, fewer time out.
      connectsPerSecond: 10,
      // Acks lost while a node's JetStream fails over are recovered by the meters' resends; a
      // real meter's backoff (10 s doubling to 5 min) would make the test wait minutes for them.
      resendAfterMs: 3000,
      maxResendAfterMs: 6000,
      // NATS 2.9 can grant a meter's subscription that never delivers (docs/broker.md).
      resubscribeIfDeafMs: 10_000,
      log: (line) => {
        const id = line.slice(0, line.indexOf(':'));
        const at = `${((Date.now() - t00) / 1000).toFixed(1)}s ${line}`;
        if (hh.some((h) => h.meterSerial === id))
          meterLog.set(id, [...(meterLog.get(id) ?? []), at].slice(-40));
        else console.log(at);
      },
    });
    const f = fleet;
    const onNode = () => {
      const by = new Map<string | undefined, string[]>();
      for (const h of hh) {
        const at = f.client(h.meterSerial)!.brokerAddress;
        by.set(at, [...(by.get(at) ?? []), h.meterSerial]);
      }
      return by;
    };
    await waitFor(() => f.stats().connected === METERS, 60_000, 'every meter connected');
    await waitFor(
      async () =>
        (await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM interval_readings')).rows[0]!.n >
        1000,
      60_000,
      'readings flowing',
    );
    const before = onNode();
    // The meters are spread: every node carries some of them.
    for (const node of [killed, ...others]) expect(before.get(node)?.length ?? 0).toBeGreaterThan(METERS / 6);
    const victims = before.get(killed)!;
    const connects = () => hh.reduce((n, h) => n + f.client(h.meterSerial)!.counters.connects, 0);
    const connectsBefore = connects();
    const gatewayConnects = gateway.logLines(/^gateway connected to broker$/).length;

    const sampler = setInterval(() => {
      void gatewayProgress().then((l) => console.log(`${((Date.now() - t00) / 1000).toFixed(1)}s\n${l}`));
    }, 3000);
    const t0 = Date.now();
    console.log(`${((t0 - t00) / 1000).toFixed(1)}s killing ${killed}`);
    await cluster.kill(0);
    await waitFor(
      () => gateway.logLines(/^gateway connected to broker$/).length > gatewayConnects,
      60_000,
      'gateway reconnected to another node',
    ).catch((err: unknown) => {
      throw new Error(
        `${String(err)}\ngateway:\n${gateway.output.slice(-3000)}\nnodes:\n${cluster.logs.map((l) => l.slice(-3000)).join('\n--\n')}`,
      );
    });
    const gatewayMs = Date.now() - t0;
    await waitFor(() => f.stats().connected === METERS, 60_000, 'every meter reconnected');
    const failoverMs = Date.now() - t0;
    const after = onNode();
    expect(after.get(killed)).toBeUndefined();
    expect(after.get(undefined)).toBeUndefined();
    // The meters of the killed node had to connect again to be counted connected.
    expect(connects()).toBeGreaterThan(connectsBefore);
    console.log(
      `broker cluster: ${victims.length} meters and the gateway failed over in ${failoverMs} ms (gateway ${gatewayMs} ms); now ${others
        .map((n) => `${n}: ${after.get(n)?.length ?? 0}`)
        .join(', ')}`,
    );

    // Readings, acks and the meters' resends all crossed the two surviving nodes.
    const t1 = Date.now();
    await waitStoredExactly(db.pool, f, hh, 90_000).catch(async (err: unknown) => {
      throw new Error(`${String(err)}\n${await diagnose(f)}`);
    });
    clearInterval(sampler);
    console.log(
      `stored exactly after ${Date.now() - t1} ms more; meter remedies: ${
        [...meterLog.values()].flat().filter((l) => /afresh|connecting again/.test(l)).length
      }; gateway:\n${gatewayTrouble()}`,
    );
    const total = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM interval_readings');
    expect(total.rows[0]!.n).toBeGreaterThanOrEqual(METERS * 90);
    expect(gateway.alive).toBe(true);
  }, 240_000);
});
