import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { headendPassword, headendUsers, readFleetFile } from './cli-input.ts';
import { NatsCluster } from '../broker/nats.ts';

/**
 * `npm run broker-cluster -- --fleet FILE [options]` writes the configuration of a NATS
 * cluster (MQTT on JetStream, per-meter users, sessions replicated to three nodes) and runs
 * it on loopback ports until Ctrl-C. For trying the clustered broker on one machine
 * (docs/broker.md); a real deployment runs one node per machine with the same config.
 */
const USAGE = `usage: npm run broker-cluster -- --fleet FILE [options]

  --fleet FILE                   provisioning file: { "meters": [{ "id", "password" }, ...] }
  --dir DIR                      where node configs and JetStream data go (default: a new temp dir)
  --nodes N                      cluster size (default 3)
  --mqtt-port N                  MQTT port of the first node; the others use the next ones
                                 (default: free ports)
  --headend-user U               head-end login; repeat it for several gateway processes (default headend)
  --headend-password P           their password (or MQTT_PASSWORD in the environment)
  --headend-password-file F      read the password from a file instead (keeps it out of ps)
  --help                         this text

Point the gateway at it with MQTT_URL=<first node> MQTT_FAILOVER_URLS=<the others> MQTT_ACK_QOS=0
(acks at QoS 1 are JetStream writes that hold back the gateway's own PUBACKs: docs/broker.md).
`;

const args = z.object({
  fleet: z.string().min(1),
  dir: z.string().optional(),
  nodes: z.coerce.number().int().min(1).max(7).default(3),
  'mqtt-port': z.coerce.number().int().min(1).max(65_000).optional(),
  'headend-user': headendUsers,
  'headend-password': z
    .string({ error: 'required (or MQTT_PASSWORD in the environment)' })
    .min(12, 'at least 12 characters'),
});
function fail(message: string): never {
  process.stderr.write(`broker-cluster: ${message}\n\n${USAGE}`);
  process.exit(2);
}

let values: Record<string, string | string[] | boolean | undefined>;
try {
  ({ values } = parseArgs({
    options: {
      fleet: { type: 'string' },
      dir: { type: 'string' },
      nodes: { type: 'string' },
      'mqtt-port': { type: 'string' },
      'headend-user': { type: 'string', multiple: true },
      'headend-password': { type: 'string' },
      'headend-password-file': { type: 'string' },
      help: { type: 'boolean' },
    },
  }));
} catch (err) {
  fail((err as Error).message);
}
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const password = headendPassword(values, fail);
const parsed = args.safeParse({ ...values, 'headend-password': password });
if (!parsed.success) fail(parsed.error.issues.map((i) => `--${i.path.join('.')}: ${i.message}`).join('; '));
const a = parsed.data;
const fleet = readFleetFile(a.fleet, fail);

const dir = path.resolve(a.dir ?? mkdtempSync(path.join(os.tmpdir(), 'kw-nats-')));
const base = a['mqtt-port'];
// Fixed MQTT ports are base, base+1, ...; the cluster, client and monitoring ports above them.
const ports =
  base === undefined
    ? undefined
    : Array.from({ length: a.nodes }, (_, i) => ({
        mqtt: base + i,
        client: base + 100 + i,
        cluster: base + 200 + i,
        http: base + 300 + i,
      }));
const cluster = await NatsCluster.create({
  dir,
  nodes: a.nodes,
  ports,
  headends: a['headend-user'].map((username) => ({ username, password: a['headend-password'] })),
  meters: fleet.meters,
});
cluster.onUnexpectedExit = (name, how) => process.stderr.write(`node ${name} exited (${how})\n`);
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  process.stdout.write('stopping the cluster\n');
  await cluster.stop();
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
try {
  await cluster.start();
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`);
  await cluster.stop();
  process.exit(1);
}
process.stdout.write(
  [
    `NATS cluster of ${a.nodes} nodes up (${fleet.meters.length} meters), configs and data in ${dir}`,
    ...cluster.nodes.map((n) => `  ${n.name}: ${n.mqttUrl} (monitoring http://${n.host}:${n.ports.http})`),
    `MQTT_URL=${cluster.urls[0]} MQTT_FAILOVER_URLS=${cluster.urls.slice(1).join(',')} MQTT_ACK_QOS=0`,
    'Ctrl-C stops every node.',
    '',
  ].join('\n'),
);
// A node that dies on its own is reported, not restarted: this is a tool to watch failover.
await new Promise(() => {});
