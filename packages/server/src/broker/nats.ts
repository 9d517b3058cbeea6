import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BROKER_RULES } from '@kilowire/protocol';
import { freePort, waitPort } from '../net.ts';
import { MAX_PACKET_BYTES } from './packet-cap.ts';

/**
 * A NATS cluster as Kilowire's clustered MQTT broker (docs/broker.md says why NATS and not
 * RabbitMQ). Each node runs the MQTT listener on JetStream; MQTT sessions, retained
 * messages and the QoS 1 messages queued for offline sessions live in streams replicated to
 * all three nodes, so any one node can die and every client finds its session on another.
 *
 * NATS has no pattern ACL (`%u`): the per-meter rules of BROKER_RULES are written out as one
 * user entry per meter. MQTT topics map to subjects with `/` -> `.`, `+` -> `*`, `#` -> `>`.
 */

export interface NatsNodePorts {
  /** NATS client port (for `nats` tooling; Kilowire itself speaks only MQTT). */
  client: number;
  cluster: number;
  mqtt: number;
  /** Monitoring (/healthz, /varz). */
  http: number;
}

export interface NatsClusterOptions {
  /** Where each node's config and JetStream store go (`<dir>/<node>/`). */
  dir: string;
  nodes?: number;
  bind?: string;
  /** Fixed ports per node; free loopback ports when omitted. */
  ports?: NatsNodePorts[];
  headends: { username: string; password: string }[];
  meters: { id: string; password: string }[];
  /** JetStream replicas of the MQTT streams (default: the number of nodes, at most 3). */
  replicas?: number;
}

/** `meters/+/up/#` -> `meters.*.up.>`. */
export function mqttToSubject(topic: string): string {
  return topic
    .split('/')
    .map((l) => (l === '+' ? '*' : l === '#' ? '>' : l))
    .join('.');
}

/**
 * MQTT's `a/#` also matches `a` itself, so NATS subscribes to both `a.>` and `a`, and the
 * permission must allow both.
 */
function subscribeSubjects(topic: string): string[] {
  const s = mqttToSubject(topic);
  return s.endsWith('.>') ? [s, s.slice(0, -2)] : [s];
}

/**
 * NATS delivers a QoS 1 subscription from a JetStream consumer to `$MQTT.sub.<id>` under the
 * client's own permissions, so every MQTT user needs it.
 */
const MQTT_DELIVERY = '$MQTT.sub.>';

/** NATS config strings are JSON-compatible when quoted. */
const q = (s: string) => JSON.stringify(s);

/** The `accounts` block: one account with JetStream, one user per head-end process and per meter. */
export function natsAccounts(
  headends: { username: string; password: string }[],
  meters: { id: string; password: string }[],
): string {
  const user = (name: string, password: string, pub: string[], sub: string[]) =>
    `      { user: ${q(name)}, password: ${q(password)}, permissions: { publish: { allow: [${pub.map(q).join(', ')}] }, subscribe: { allow: [${sub.map(q).join(', ')}] } } }`;
  return [
    'accounts {',
    '  KW {',
    '    jetstream: enabled',
    '    users: [',
    ...headends.map((h) =>
      user(h.username, h.password, BROKER_RULES.headendWrites.map(mqttToSubject), [
        ...subscribeSubjects(BROKER_RULES.headendReads),
        MQTT_DELIVERY,
      ]),
    ),
    ...meters.map((m) =>
      user(m.id, m.password, BROKER_RULES.meterWrites(m.id).map(mqttToSubject), [
        ...subscribeSubjects(BROKER_RULES.meterReads(m.id)),
        MQTT_DELIVERY,
      ]),
    ),
    '    ]',
    '  }',
    '}',
    '',
  ].join('\n');
}

export interface NatsNode {
  name: string;
  host: string;
  ports: NatsNodePorts;
  conf: string;
  mqttUrl: string;
}

/** Write one config per node (`<dir>/<name>.conf`); ports are free loopback ports unless given. */
export async function writeNatsClusterConfig(o: NatsClusterOptions): Promise<NatsNode[]> {
  const n = o.nodes ?? 3;
  const bind = o.bind ?? '127.0.0.1';
  const replicas = o.replicas ?? Math.min(n, 3);
  mkdirSync(o.dir, { recursive: true });
  const ports: NatsNodePorts[] = [];
  for (let i = 0; i < n; i++) {
    ports.push(
      o.ports?.[i] ?? {
        client: await freePort(),
        cluster: await freePort(),
        mqtt: await freePort(),
        http: await freePort(),
      },
    );
  }
  // Passwords are in the clear (NATS accepts bcrypt too, but checks it on every connect: a
  // reconnect storm of 20,000 meters would cost minutes of CPU), so the files are private.
  const accounts = natsAccounts(o.headends, o.meters);
  return ports.map((p, i) => {
    const name = `kw-${i + 1}`;
    const conf = path.join(o.dir, `${name}.conf`);
    writeFileSync(
      conf,
      [
        `server_name: ${name}`,
        `host: ${bind}`,
        `port: ${p.client}`,
        `http: ${q(`${bind}:${p.http}`)}`,
        `max_payload: ${MAX_PACKET_BYTES}`,
        `jetstream { store_dir: ${q(path.join(o.dir, name))} }`,
        'cluster {',
        '  name: kilowire',
        `  host: ${bind}`,
        `  port: ${p.cluster}`,
        `  routes: [${ports
          .filter((_, j) => j !== i)
          .map((r) => q(`nats-route://${bind}:${r.cluster}`))
          .join(', ')}]`,
        '}',
        'mqtt {',
        `  host: ${bind}`,
        `  port: ${p.mqtt}`,
        // Sessions, retained messages, queued QoS 1 messages and each subscription's consumer
        // survive the loss of a node. (R1 or in-memory consumers fail over faster but lose
        // deliveries or their state: docs/performance.md "#11 Broker cluster".)
        `  stream_replicas: ${replicas}`,
        // Room for deliveries lost with a killed node (they stay pending until redelivered):
        // with NATS's 1024, the head-end's consumer stopped at them (performance.md #11).
        // Two consumers per subscription stay under NATS's 65,535 per session.
        '  max_ack_pending: 16384',
        // Those lost deliveries come again after 15 s instead of 30.
        '  ack_wait: "15s"',
        '}',
        accounts,
      ].join('\n'),
      { mode: 0o600 },
    );
    return { name, host: bind, ports: p, conf, mqttUrl: `mqtt://${bind}:${p.mqtt}` };
  });
}

/** A running NATS cluster of child processes: kill one node hard, start it again, stop all. */
export class NatsCluster {
  private readonly procs: (ChildProcess | undefined)[];
  readonly logs: string[];
  /** Called when a node exits other than by `kill` or `stop`. */
  onUnexpectedExit?: (name: string, how: string) => void;
  private readonly expected = new Set<ChildProcess>();

  constructor(readonly nodes: NatsNode[]) {
    this.procs = nodes.map(() => undefined);
    this.logs = nodes.map(() => '');
  }

  static async create(o: NatsClusterOptions): Promise<NatsCluster> {
    return new NatsCluster(await writeNatsClusterConfig(o));
  }

  get urls(): string[] {
    return this.nodes.map((n) => n.mqttUrl);
  }

  alive(i: number): boolean {
    const p = this.procs[i];
    return p !== undefined && p.exitCode === null && p.signalCode === null;
  }

  /** Start node `i` and wait for its MQTT port (which opens only once JetStream is up). */
  async startNode(i: number, ms = 30_000): Promise<void> {
    const node = this.nodes[i]!;
    const p = spawn('nats-server', ['-c', node.conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.procs[i] = p;
    p.once('exit', (code, signal) => {
      if (!this.expected.has(p)) this.onUnexpectedExit?.(node.name, signal ?? `exit code ${code}`);
    });
    p.stderr?.on('data', (d: Buffer) => (this.logs[i] = (this.logs[i] + d.toString()).slice(-20_000)));
    await waitPort(node.ports.mqtt, ms).catch((err: unknown) => {
      throw new Error(`nats-server ${node.name} did not start:\n${this.logs[i]}`, { cause: err });
    });
  }

  /**
   * Start every node at once (JetStream's meta group needs a quorum before any node serves
   * MQTT) and wait until each reports healthy: before that, an MQTT CONNECT fails because the
   * session stream cannot be looked up yet.
   */
  async start(ms = 60_000): Promise<void> {
    await Promise.all(this.nodes.map((_, i) => this.startNode(i, ms)));
    await Promise.all(this.nodes.map((_, i) => this.waitHealthy(i, ms)));
  }

  /** Wait until node `i`'s /healthz says ok (JetStream current). */
  async waitHealthy(i: number, ms = 60_000): Promise<void> {
    const node = this.nodes[i]!;
    const until = Date.now() + ms;
    for (;;) {
      const ok = await fetch(`http://${node.host}:${node.ports.http}/healthz`)
        .then((r) => r.ok)
        .catch(() => false);
      if (ok) return;
      if (Date.now() > until)
        throw new Error(`nats-server ${node.name} not healthy within ${ms} ms:\n${this.logs[i]}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** SIGKILL: what a crashed machine does. */
  async kill(i: number): Promise<void> {
    const p = this.procs[i];
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    this.expected.add(p);
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    });
  }

  /** SIGTERM every node (SIGKILL after 10 s). */
  async stop(): Promise<void> {
    await Promise.all(
      this.procs.map(
        (p) =>
          new Promise<void>((resolve) => {
            if (!p || p.exitCode !== null || p.signalCode !== null) return resolve();
            this.expected.add(p);
            p.once('exit', () => resolve());
            p.kill('SIGTERM');
            setTimeout(() => p.kill('SIGKILL'), 10_000).unref();
          }),
      ),
    );
  }
}
