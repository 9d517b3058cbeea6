/**
 * (b) Mosquitto's own QoS 1 rate between mqtt.js clients, and (c) end-to-end ingest through
 * the real Gateway: publish -> Mosquitto -> Gateway (decode, VEE, batch UPSERT with rollups,
 * COMMIT) -> ack on meters/{id}/down/acks -> counted by the load generator.
 */
import { Worker } from 'node:worker_threads';
import mqtt from 'mqtt';
import { log, onCleanup, withTimeout } from './lib.ts';
import type { FromWorker, PublisherJob, ToWorker } from './publisher-worker.ts';
import { envSchema, Gateway, logger, metrics, type Pool } from '@kilowire/server';

interface RunResult {
  messages: number;
  seconds: number;
  /** first publish -> last PUBACK from the broker */
  publishSeconds: number;
  resendRequests: number;
}

/** Run the publisher worker; `completedFeed` lets the caller report completions (broker mode). */
async function runPublisher(
  job: PublisherJob,
  timeoutMs: number,
  onReady?: (w: { post: (m: ToWorker) => void }) => void,
): Promise<RunResult> {
  // Module hooks registered by `--import tsx` do not reach worker threads on Node 20, so the
  // worker registers tsx itself before loading the TypeScript module.
  const entry = new URL('./publisher-worker.ts', import.meta.url).href;
  const boot = `import('tsx/esm/api').then((t) => { t.register(); return import(${JSON.stringify(entry)}); })`;
  const worker = new Worker(boot, { eval: true, workerData: job });
  const stopWorker = onCleanup('publisher worker', async () => {
    await worker.terminate();
  });
  const post = (m: ToWorker) => worker.postMessage(m);
  try {
    return await withTimeout(
      new Promise<RunResult>((resolve, reject) => {
        let lastProgress = '';
        worker.on('error', reject);
        worker.on('exit', (code) =>
          reject(new Error(`publisher worker exited (${code}) before finishing; ${lastProgress}`)),
        );
        worker.on('message', (m: FromWorker) => {
          switch (m.type) {
            case 'ready':
              log(
                `  publisher ready: ${m.messages} messages, ${(m.bytes / m.messages).toFixed(0)} bytes average`,
              );
              onReady?.({ post });
              post({ type: 'go' });
              return;
            case 'progress':
              lastProgress = `published ${m.published}, completed ${m.completed}`;
              return;
            case 'error':
              reject(new Error(m.message));
              return;
            case 'done':
              resolve({
                messages: m.completed,
                seconds: (m.completeAt - m.firstPublishAt) / 1000,
                publishSeconds: ((m.lastPublishAt || m.completeAt) - m.firstPublishAt) / 1000,
                resendRequests: m.resendRequests,
              });
              return;
          }
        });
      }),
      timeoutMs,
      `${job.mode} run`,
    );
  } finally {
    await stopWorker();
  }
}

export async function benchBroker(
  url: string,
  count: number,
): Promise<{ msgsPerS: number; messages: number }> {
  const sub = await mqtt.connectAsync(url, {
    protocolVersion: 4,
    clientId: `kw-bench-sub-${process.pid}`,
    clean: true,
    reconnectPeriod: 0,
  });
  const closeSub = onCleanup('broker-bench subscriber', () => sub.endAsync(true));
  try {
    let received = 0;
    let feed: ((m: ToWorker) => void) | undefined;
    sub.on('message', () => {
      received++;
    });
    await sub.subscribeAsync('bench/q1/#', { qos: 1 });
    // Report completions to the worker every few ms (its end-to-end window).
    const timer = setInterval(() => feed?.({ type: 'completed', n: received }), 5);
    try {
      const job = {
        url,
        mode: 'broker',
        connections: 4,
        inflightPerConn: 200,
        e2eWindow: 20_000,
        payloadBytes: 150,
      } as const;
      // Warm-up (JIT, socket buffers), then the measured run.
      const warm = Math.min(20_000, count);
      await runPublisher({ ...job, count: warm }, 60_000, (w) => (feed = w.post));
      if (received !== warm) throw new Error(`subscriber received ${received} of ${warm} QoS 1 messages`);
      received = 0;
      const r = await runPublisher({ ...job, count }, 120_000, (w) => (feed = w.post));
      if (received !== count) throw new Error(`subscriber received ${received} of ${count} QoS 1 messages`);
      return { msgsPerS: r.messages / r.seconds, messages: received };
    } finally {
      clearInterval(timer);
    }
  } finally {
    await closeSub();
  }
}

export interface IngestResult {
  shape: 'single' | 'day';
  messages: number;
  rows: number;
  seconds: number;
  msgsPerS: number;
  rowsPerS: number;
  rowsInDb: number;
  rollupIntervals: number;
  batches: number;
  /** Ack messages the gateway published (one per meter per batch). */
  acks: number;
  rejected: number;
  /** Times the gateway held intake back (backpressure). */
  paused: number;
  resendRequests: number;
  /** Gateway wall time inside writeAndAck transactions (sum of batch durations), s */
  batchSeconds: number;
}

/**
 * GATEWAY_LANES, GATEWAY_FLUSH_MS and MQTT_ACK_QOS through the product's own schema (same
 * defaults and checks as `npm start`), so one bench run can measure another value of them.
 */
function gatewayEnv(): { lanes: number; flushMs: number; ackQos: 0 | 1 } {
  const e = envSchema
    .pick({ GATEWAY_LANES: true, GATEWAY_FLUSH_MS: true, MQTT_ACK_QOS: true })
    .parse(process.env);
  return { lanes: e.GATEWAY_LANES, flushMs: e.GATEWAY_FLUSH_MS, ackQos: e.MQTT_ACK_QOS === 0 ? 0 : 1 };
}

/**
 * One ingest run: a fresh in-process Gateway (defaults: batchMax 2000, flushMs 50), meters
 * already provisioned, `msgsPerMeter` messages of `readingsPerMsg` half-hours each per meter.
 */
export async function benchIngest(
  brokerUrl: string,
  pool: Pool,
  meters: { serial: string; meterId: number }[],
  shape: 'single' | 'day',
  msgsPerMeter: number,
  timeoutMs: number,
): Promise<IngestResult> {
  const readingsPerMsg = shape === 'single' ? 1 : 48;
  const spanS = msgsPerMeter * readingsPerMsg * 1800;
  // Old enough that nothing is in the future, aligned to a UTC midnight.
  const startS = Math.floor((Date.now() / 1000 - spanS - 2 * 86_400) / 86_400) * 86_400;
  const gw = new Gateway({
    pool,
    log: logger('gateway'),
    mqttUrl: brokerUrl,
    username: 'headend',
    password: 'bench',
    clientId: `kw-bench-gw-${shape}-${process.pid}`,
    ...gatewayEnv(),
  });
  // Time spent in batch transactions, from the gateway's own histogram.
  const batchSum = async () =>
    (await metrics.batchSeconds.get()).values.find((v) => v.metricName?.endsWith('_sum'))?.value ?? 0;
  const batchSum0 = await batchSum();
  await gw.start();
  const stopGw = onCleanup(`gateway (${shape})`, () => gw.stop());
  try {
    const r = await runPublisher(
      {
        url: brokerUrl,
        mode: 'ingest',
        connections: 4,
        inflightPerConn: 200,
        // Enough for several full gateway batches in flight; beyond its buffer limit the
        // gateway would hold the broker back (backpressure), which is counted as "paused".
        e2eWindow: 8_000,
        meters: meters.map((m) => m.serial),
        msgsPerMeter,
        readingsPerMsg,
        startS,
      },
      timeoutMs,
    );
    const ids = meters.map((m) => m.meterId);
    const { rows: cnt } = await pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM interval_readings WHERE meter_id = ANY($1::int[])',
      [ids],
    );
    const { rows: roll } = await pool.query<{ n: number }>(
      'SELECT coalesce(sum(intervals), 0)::int AS n FROM daily_rollups WHERE meter_id = ANY($1::int[])',
      [ids],
    );
    const rows = meters.length * msgsPerMeter * readingsPerMsg;
    return {
      shape,
      messages: r.messages,
      rows,
      seconds: r.seconds,
      msgsPerS: r.messages / r.seconds,
      rowsPerS: rows / r.seconds,
      rowsInDb: cnt[0]?.n ?? 0,
      rollupIntervals: roll[0]?.n ?? 0,
      batches: gw.stats.batches,
      acks: gw.stats.acksSent,
      rejected: gw.stats.rejected,
      paused: gw.stats.paused,
      resendRequests: r.resendRequests,
      batchSeconds: (await batchSum()) - batchSum0,
    };
  } finally {
    await stopGw();
  }
}
