import type { NatsCluster, NatsNode } from '../../src/broker/nats.ts';

/**
 * What the NATS monitoring port (/connz, /jsz) says about MQTT sessions: each connection's
 * subscriptions, and each JetStream consumer behind an MQTT subscription (one per filter:
 * `meters/X/down/#` is two). For the broker-cluster test's progress lines and its post-mortem.
 */

export interface NatsConnection {
  node: string;
  cid: number;
  port: number;
  start: string;
  last_activity: string;
  in_msgs: number;
  out_msgs: number;
  pending_bytes: number;
  authorized_user?: string;
  subscriptions_list_detail?: { subject: string; msgs: number }[];
}

export interface NatsConsumer {
  /** The node this view is from (followers lag the leader). */
  node: string;
  stream: string;
  name: string;
  config?: { filter_subject?: string; deliver_subject?: string };
  cluster?: { leader?: string };
  delivered?: { stream_seq: number };
  ack_floor?: { stream_seq: number };
  num_pending: number;
  num_ack_pending: number;
  num_redelivered: number;
  push_bound?: boolean;
}

interface Jsz {
  account_details?: {
    stream_detail?: { name: string; consumer_detail?: Omit<NatsConsumer, 'node' | 'stream'>[] }[];
  }[];
}

const live = (cluster: NatsCluster): NatsNode[] => cluster.nodes.filter((_, i) => cluster.alive(i));

function get<T>(n: NatsNode, p: string): Promise<T | undefined> {
  return fetch(`http://${n.host}:${n.ports.http}${p}`)
    .then((r) => r.json() as Promise<T>)
    .catch(() => undefined);
}

/** Every client connection on the live nodes, with its subscriptions. */
export async function natsConnections(cluster: NatsCluster): Promise<NatsConnection[]> {
  const nodes = live(cluster);
  const all = await Promise.all(
    nodes.map((n) => get<{ connections?: NatsConnection[] }>(n, '/connz?subs=detail&auth=true&limit=10000')),
  );
  return all.flatMap((z, i) => (z?.connections ?? []).map((c) => ({ ...c, node: nodes[i]!.name })));
}

/** Every consumer of account KW as each live node sees it. */
export async function natsConsumers(cluster: NatsCluster): Promise<NatsConsumer[]> {
  const nodes = live(cluster);
  const all = await Promise.all(
    nodes.map((n) => get<Jsz>(n, '/jsz?acc=KW&accounts=true&streams=true&consumers=true&config=true')),
  );
  return all.flatMap((j, i) =>
    (j?.account_details?.[0]?.stream_detail ?? []).flatMap((st) =>
      (st.consumer_detail ?? []).map((c) => ({ ...c, node: nodes[i]!.name, stream: st.name })),
    ),
  );
}

export function formatConsumer(c: NatsConsumer): string {
  return (
    `${c.node} ${c.stream}/${c.name} filter=${c.config?.filter_subject} leader=${c.cluster?.leader} ` +
    `delivered=${c.delivered?.stream_seq} ackfloor=${c.ack_floor?.stream_seq} pending=${c.num_pending} ` +
    `ackpending=${c.num_ack_pending} redelivered=${c.num_redelivered} push_bound=${c.push_bound}`
  );
}

export function formatConnection(c: NatsConnection): string {
  const subs = (c.subscriptions_list_detail ?? []).map((s) => `${s.subject}(${s.msgs})`).join(' ');
  return `${c.node} cid=${c.cid} port=${c.port} start=${c.start} last=${c.last_activity} in=${c.in_msgs} out=${c.out_msgs} pend=${c.pending_bytes} subs=${subs}`;
}
