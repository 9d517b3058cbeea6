/**
 * Load generator, run in a worker thread so its JavaScript does not share an event loop
 * with what is being measured. Several mqtt.js connections publish pre-encoded QoS 1
 * messages with a bounded window of unacknowledged PUBLISHes per connection and a bounded
 * end-to-end window (published but not yet completed: received by the subscriber in
 * `broker` mode, acknowledged by the gateway on meters/+/down/acks in `ingest` mode).
 */
import { parentPort, workerData } from 'node:worker_threads';
import mqtt, { type MqttClient } from 'mqtt';
import { encodeUp, topics, type ReadingsMessage } from '@kilowire/protocol';

export interface PublisherJob {
  url: string;
  mode: 'broker' | 'ingest';
  connections: number;
  inflightPerConn: number;
  e2eWindow: number;
  /** broker mode */
  count?: number;
  payloadBytes?: number;
  topicPrefix?: string;
  /** ingest mode: meters/{serial}/up/readings, seq 1..msgsPerMeter, consecutive half-hours from startS */
  meters?: string[];
  msgsPerMeter?: number;
  readingsPerMsg?: number;
  startS?: number;
}

export type ToWorker = { type: 'go' } | { type: 'completed'; n: number } | { type: 'stop' };
export type FromWorker =
  | { type: 'ready'; messages: number; bytes: number }
  | { type: 'progress'; published: number; completed: number }
  | {
      type: 'done';
      firstPublishAt: number;
      lastPublishAt: number;
      completeAt: number;
      published: number;
      completed: number;
      resendRequests: number;
    }
  | { type: 'error'; message: string };

const nowMs = () => performance.timeOrigin + performance.now();
const job = workerData as PublisherJob;
const port = parentPort!;

interface Msg {
  topic: string;
  payload: Buffer;
}

/** A readings message of consecutive half-hours whose registers add up (passes VEE's sum check). */
function readings(seq: number, startS: number, whs: number[], importBefore: number): ReadingsMessage {
  const total = importBefore + whs.reduce((a, b) => a + b, 0);
  return {
    v: 1,
    seq,
    intervalS: 1800,
    intervals: whs.map((wh, i) => ({ t: startS + i * 1800, wh })),
    registers: { '1.0.1.8.0': total, '1.0.1.8.1': total, '1.0.1.8.2': 0, '1.0.2.8.0': 0 },
  };
}

function build(): Msg[][] {
  const perConn: Msg[][] = Array.from({ length: job.connections }, () => []);
  if (job.mode === 'broker') {
    const prefix = job.topicPrefix ?? 'bench/q1';
    const body = Buffer.alloc(job.payloadBytes ?? 150, 'x');
    for (let i = 0; i < (job.count ?? 0); i++) {
      const c = i % job.connections;
      perConn[c]!.push({ topic: `${prefix}/${c}`, payload: body });
    }
    return perConn;
  }
  const meters = job.meters ?? [];
  const k = job.readingsPerMsg ?? 1;
  const registers = new Array<number>(meters.length).fill(0);
  // Round-robin over meters so every meter's sequence advances together, as a fleet would.
  for (let s = 1; s <= (job.msgsPerMeter ?? 0); s++) {
    for (let i = 0; i < meters.length; i++) {
      const start = job.startS! + (s - 1) * k * 1800;
      const whs = Array.from({ length: k }, (_, j) => 50 + ((i * 31 + (s * k + j) * 7) % 400));
      const msg = readings(s, start, whs, registers[i]!);
      registers[i] = msg.registers['1.0.1.8.0'];
      perConn[i % job.connections]!.push({
        topic: topics.up(meters[i]!, 'readings'),
        payload: encodeUp('readings', msg),
      });
    }
  }
  return perConn;
}

async function main(): Promise<void> {
  const perConn = build();
  const total = perConn.reduce((a, m) => a + m.length, 0);
  const bytes = perConn.reduce((a, m) => a + m.reduce((b, x) => b + x.payload.length, 0), 0);
  const clients: MqttClient[] = [];
  for (let c = 0; c < job.connections; c++) {
    clients.push(
      await mqtt.connectAsync(job.url, {
        protocolVersion: 4,
        clientId: `kw-bench-pub-${process.pid}-${c}-${Math.random().toString(36).slice(2, 8)}`,
        clean: true,
        reconnectPeriod: 0,
        username: 'bench',
        password: 'bench',
      }),
    );
  }

  let completed = 0;
  let resendRequests = 0;
  let ackClient: MqttClient | undefined;
  const done = { resolve: () => undefined as void };
  const finished = new Promise<void>((resolve) => (done.resolve = resolve));
  let completeAt = 0;
  const markComplete = () => {
    if (completed >= total && !completeAt) {
      completeAt = nowMs();
      done.resolve();
    }
  };

  if (job.mode === 'ingest') {
    // Per meter, the highest upTo acknowledged; seqs are 1..n so upTo counts committed messages.
    const upTo = new Map<string, number>();
    ackClient = await mqtt.connectAsync(job.url, {
      protocolVersion: 4,
      clientId: `kw-bench-acks-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
      clean: true,
      reconnectPeriod: 0,
      username: 'bench',
      password: 'bench',
    });
    ackClient.on('message', (topic, payload) => {
      const serial = topic.split('/')[1] ?? '';
      const a = JSON.parse(payload.toString()) as { kind: string; upTo?: number };
      if (a.kind === 'resend') {
        resendRequests++;
        return;
      }
      const prev = upTo.get(serial) ?? 0;
      if (a.upTo !== undefined && a.upTo > prev) {
        upTo.set(serial, a.upTo);
        completed += a.upTo - prev;
        pumpAll();
        markComplete();
      }
    });
    await ackClient.subscribeAsync('meters/+/down/acks', { qos: 1 });
  }

  let published = 0;
  let firstPublishAt = 0;
  let lastPublishAt = 0;
  const next = new Array<number>(job.connections).fill(0);
  const inflight = new Array<number>(job.connections).fill(0);

  const pump = (c: number) => {
    const list = perConn[c]!;
    const client = clients[c]!;
    while (
      next[c]! < list.length &&
      inflight[c]! < job.inflightPerConn &&
      published - completed < job.e2eWindow
    ) {
      const m = list[next[c]!]!;
      next[c]!++;
      inflight[c]!++;
      published++;
      if (!firstPublishAt) firstPublishAt = nowMs();
      client.publish(m.topic, m.payload, { qos: 1 }, (err) => {
        inflight[c]!--;
        if (err) {
          port.postMessage({ type: 'error', message: `publish failed: ${err.message}` } satisfies FromWorker);
          return;
        }
        if (published === total && inflight.every((x) => x === 0)) lastPublishAt = nowMs();
        pump(c);
      });
    }
  };
  function pumpAll(): void {
    for (let c = 0; c < job.connections; c++) pump(c);
  }

  port.on('message', (m: ToWorker) => {
    if (m.type === 'go') pumpAll();
    if (m.type === 'completed') {
      completed = m.n;
      pumpAll();
      markComplete();
    }
    if (m.type === 'stop') {
      done.resolve();
    }
  });
  const progress = setInterval(
    () => port.postMessage({ type: 'progress', published, completed } satisfies FromWorker),
    1000,
  );
  port.postMessage({ type: 'ready', messages: total, bytes } satisfies FromWorker);
  await finished;
  clearInterval(progress);
  port.postMessage({
    type: 'done',
    firstPublishAt,
    lastPublishAt,
    completeAt,
    published,
    completed,
    resendRequests,
  } satisfies FromWorker);
  await Promise.all([...clients, ...(ackClient ? [ackClient] : [])].map((c) => c.endAsync(true)));
  port.close();
}

main().catch((err: unknown) => {
  port.postMessage({ type: 'error', message: (err as Error).stack ?? String(err) } satisfies FromWorker);
  port.close();
});
