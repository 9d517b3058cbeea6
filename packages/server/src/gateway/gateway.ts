import { randomBytes } from 'node:crypto';
import mqtt, { type IPublishPacket, type MqttClient } from 'mqtt';
import {
  ProtocolError,
  decodeUp,
  encodeDown,
  mqttServers,
  parseTopic,
  topics,
  type AckMessage,
  type GatewayRejectCode,
  type ProtocolErrorCode,
  type ReplyMessage,
  type StatusMessage,
} from '@kilowire/protocol';
import {
  COMMANDS_CHANNEL,
  DEFAULT_TIMING,
  applyReplies,
  claimDueCommands,
  expireCommands,
  type CommandTiming,
} from '../commands/lifecycle.ts';
import { Listener } from '../db/listener.ts';
import { isConnectionError, tx, type Pool } from '../db/pool.ts';
import { FwTransfer, type FwTransferOptions } from '../firmware/transfer.ts';
import { RateLimitedLog, type Logger } from '../log.ts';
import { metrics } from '../metrics.ts';
import { meterForIngest } from '../meters/lookup.ts';
import { storeStatuses } from '../meters/status.ts';
import { ingest, type EventsItem, type IngestResult, type ReadingsItem } from '../readings/ingest.ts';
import { FUTURE_TOLERANCE_S, runVee, type MeterInfo } from '../readings/vee.ts';

/** Something the gateway holds until it is committed, with the memory it is counted as. */
interface Held<T> {
  v: T;
  bytes: number;
}

interface Lane {
  readings: Held<ReadingsItem>[];
  events: Held<EventsItem>[];
  /** Latest status per meter: a snapshot, so only the newest matters. */
  statuses: Map<number, Held<StatusMessage>>;
  /** Replies in arrival order: the first answer to a command is the one that counts. */
  replies: Held<{ meterId: number; reply: ReplyMessage }>[];
  flushTimer: NodeJS.Timeout | undefined;
  flushing: Promise<void> | undefined;
  /** Consecutive failed commits: the retry backoff. */
  failures: number;
}

export interface GatewayOptions {
  pool: Pool;
  log: Logger;
  mqttUrl: string;
  /** Other nodes of a clustered broker: each reconnect after `mqttUrl` tries the next one. */
  failoverUrls?: string[];
  /**
   * #11 QoS of the acks to the meters (default 1). 0 for a NATS cluster: there every QoS 1
   * publish is a JetStream write that NATS makes before it reads our next packet, so acks
   * published at QoS 1 held back our PUBACKs of the readings it delivers (its consumer then
   * stalls at max_ack_pending); at QoS 0 an ack goes straight to a connected meter, one that
   * is offline misses it, resends and is acked again.
   */
  ackQos?: 0 | 1;
  username: string;
  password: string;
  /** Stable client id so the broker keeps our session (and queued QoS 1 messages) across restarts (without a share group). */
  clientId?: string;
  shareGroup?: string;
  batchMax?: number;
  /** Parallel write lanes (database connections), meters split by id. Default 2. */
  lanes?: number;
  flushMs?: number;
  /** Command resend backoff and expiry. */
  commands?: Partial<CommandTiming>;
  /**
   * Estimated memory of held messages (MEMORY_PER_PAYLOAD_BYTE per payload byte) beyond which
   * the gateway stops reading from the broker (backpressure: the broker queues, the meters keep
   * their outboxes). Default 64 MiB.
   */
  maxBufferBytes?: number;
  /** Most meters whose details are cached (oldest dropped first). */
  maxCachedMeters?: number;
  /** Head-end clock (epoch seconds) for the "future reading" check. */
  now?: () => number;
  /** Database URL for the LISTEN connection that wakes the command sender (optional: it also ticks every second). */
  databaseUrl?: string;
  /** #10 where firmware images are (config.firmwareDir); unset, block requests are refused (FW_NOT_OFFERED). */
  firmwareDir?: string;
  /** #10 firmware block pacing and caches (see FwTransferOptions). */
  firmware?: Omit<FwTransferOptions, 'pool' | 'log' | 'dir'>;
}

type RejectCode = ProtocolErrorCode | GatewayRejectCode;

/**
 * The estimated memory of a decoded message, per payload byte (objects, arrays, VEE rows):
 * measured 5.9 for one-reading messages and 4.4 for day batches (Node 20, heap after GC).
 */
const MEMORY_PER_PAYLOAD_BYTE = 6;

/**
 * #11 How long the first message of a partial batch waits for others. Nearly every reading
 * is acknowledged once per meter per batch and adds one rollup and one state row per meter per
 * batch, so batches that gather a meter's next messages cost less per reading: bench part c
 * (one-reading messages, machine to itself) used 197 µs of CPU per message at 5 ms, 180 at 25
 * and 155 at 50 (docs/performance.md, "#11 Ingest"). A meter does not notice 50 ms.
 */
export const DEFAULT_FLUSH_MS = 50;

/**
 * #11 With a shared subscription a meter's next message may commit on another gateway before
 * this one: a gap seen here is most often a message another gateway is committing right now.
 * It is asked for again only if it is still missing this long after (the meter's own resend
 * timer is 10 s; a message lost with a killed gateway is asked for after about this long).
 */
const SHARED_GAP_RECHECK_MS = 1_000;

/**
 * The gateway, an adapter between MQTT and the domains: it subscribes to every meter's up
 * topics, decodes each payload with the protocol codec, runs VEE, and commits readings,
 * events, status snapshots and command replies in batches (one transaction per batch and
 * lane); it acknowledges on the acks topic only after COMMIT and sends the commands the
 * command lifecycle hands it. mqtt.js's own PUBACK goes out as soon as a message is
 * admitted; when the gateway holds too much, or the database is down, it stops admitting
 * (the broker and the meters' outboxes hold the rest) instead of growing without bound.
 */
export class Gateway {
  private client: MqttClient | undefined;
  private readonly meters = new Map<string, MeterInfo | null>();
  private readonly unknownAt = new Map<string, number>();
  private readonly lanes: Lane[];
  private commandTimer: NodeJS.Timeout | undefined;
  private listener: Listener | undefined;
  private sending: Promise<number> | undefined;
  private sendAgain = false;
  private lastExpirySweep = 0;
  private stopped = false;
  private readonly rejectLog: RateLimitedLog;
  private readonly errLog: RateLimitedLog;
  /** Bytes held in lanes and in meter lookups. */
  private held = 0;
  /** The database failed with a connection error and no commit has succeeded since. */
  private dbDown = false;
  private probeTimer: NodeJS.Timeout | undefined;
  /** mqtt.js's callback for the message we have not admitted yet (at most one: the stream waits). */
  private waiting: (() => void) | undefined;
  /** The MQTT socket is corked until the event loop's next turn (see corkUntilIdle). */
  private corked = false;
  private readonly timing: CommandTiming;
  /** #11 gaps to recheck before a resend request (shared subscription only), by `serial|stream`. */
  private gaps = new Map<string, { seqs: Set<number>; tries: number; dueAt: number }>();
  private gapTimer: NodeJS.Timeout | undefined;
  private readonly messagesIn = new Map<string, { inc: () => void }>();
  /** #10 serves firmware blocks to meters with a live offer. */
  private fw: FwTransfer | undefined;
  /**
   * #11 Between CONNACK and mqtt.js's 'connect' event, mqtt.js first resends the QoS 1
   * messages that were in flight, one at a time, each after the broker's PUBACK, and queues
   * every new publish meanwhile (tens of seconds on a loaded NATS cluster, where each QoS 1
   * publish is a JetStream write). Acks and commands are not published then: they would all go
   * out at once at 'connect', and NATS handles one connection's packets in order, so the
   * PUBACKs of the readings it delivers to us would wait behind thousands of JetStream writes
   * (its consumer stalls at max_ack_pending). The meters resend and are acked then.
   */
  private ready = false;
  readonly stats = {
    received: 0,
    rejected: 0,
    stored: 0,
    batches: 0,
    acksSent: 0,
    conflicts: 0,
    retries: 0,
    paused: 0,
  };
  /** Rejections by stable code (also in kilowire_gateway_rejected_total{code}). */
  readonly rejectedByCode = new Map<RejectCode, number>();

  constructor(private readonly o: GatewayOptions) {
    this.lanes = Array.from({ length: Math.max(1, o.lanes ?? 2) }, () => ({
      readings: [],
      events: [],
      statuses: new Map(),
      replies: [],
      flushTimer: undefined,
      flushing: undefined,
      failures: 0,
    }));
    this.rejectLog = new RateLimitedLog(o.log, 1_000);
    this.errLog = new RateLimitedLog(o.log, 10_000);
    this.timing = { ...DEFAULT_TIMING, ...o.commands };
  }

  /** A meter always maps to the same lane, so its batches commit in order and rollup rows never contend. */
  private lane(meterId: number): Lane {
    return this.lanes[meterId % this.lanes.length]!;
  }

  /** #10 firmware transfer counters (requests, blocks sent, refused, dropped); undefined without a firmware folder. */
  get firmwareStats(): FwTransfer['stats'] | undefined {
    return this.fw?.stats;
  }

  get connected(): boolean {
    return this.ready && (this.client?.connected ?? false);
  }

  /** Estimated memory of the messages currently held, bytes (for tests and metrics). */
  get heldBytes(): number {
    return this.held;
  }

  private get maxBuffer(): number {
    return this.o.maxBufferBytes ?? 64 * 1024 * 1024;
  }

  async start(): Promise<void> {
    const o = this.o;
    const client = mqtt.connect(o.mqttUrl, {
      protocolVersion: 4,
      clientId: o.clientId ?? `kw-gateway-${randomBytes(4).toString('hex')}`,
      username: o.username,
      password: o.password,
      // #11 One gateway keeps its session, so the broker queues the meters' messages while it
      // restarts. Sharing a group, a kept session would be a black hole: Mosquitto goes on
      // handing a dead member its share (queued for a client that may never come back; bench
      // part n measured the meters sending 2.5 messages per reading then). A clean session
      // ends with the connection and the live members get everything.
      clean: o.shareGroup !== undefined,
      reconnectPeriod: 1000,
      // #11 A cluster node restoring our session under load (NATS: JetStream calls of up to
      // 4 s each) can take more than 10 s to answer CONNECT; giving up starts a second
      // takeover of the same session while the first is still being set up. As the meters: 30 s.
      connectTimeout: 30_000,
      // mqtt.js logs a few debug lines per packet; even switched off they cost ~1 % of the
      // gateway's main thread at full rate. DEBUG=mqttjs* still turns them on.
      ...(!process.env.DEBUG?.includes('mqttjs') && { log: () => undefined }),
      ...(o.failoverUrls?.length && { servers: mqttServers([o.mqttUrl, ...o.failoverUrls]) }),
    });
    this.client = client;
    if (o.firmwareDir) {
      this.fw = new FwTransfer(
        { pool: o.pool, log: o.log, dir: o.firmwareDir, ...o.firmware },
        (serial, payload, done) => {
          if (!this.ready) return false;
          client.publish(topics.down(serial, 'fw'), payload, { qos: 1 }, () => done());
          return true;
        },
        (serial, detail) => this.reject('FW_NOT_OFFERED', serial, detail),
      );
      this.fw.start();
    }
    // Overriding handleMessage is mqtt.js's backpressure hook: the next packet is read only
    // after the callback, so holding it stops the stream (and the PUBACK) at the TCP level.
    client.handleMessage = (packet: IPublishPacket, callback: (err?: Error) => void) => {
      this.corkUntilIdle(client);
      try {
        this.onMessage(packet.topic, packet.payload as Buffer, packet.retain);
      } catch (err) {
        this.o.log.error({ err }, 'unexpected error admitting a message');
      }
      this.admit(() => callback());
    };
    client.on('connect', () => {
      this.ready = true;
      metrics.mqttConnected.set(1);
      o.log.info('gateway connected to broker');
      const topic = topics.allUp(o.shareGroup);
      // Connected but deaf otherwise: a cluster node may refuse while its JetStream fails over
      // (and keep half of the attempt), so unsubscribe and try again while connected.
      const subscribe = () =>
        client.subscribe(topic, { qos: 1 }, (err) => {
          if (!err) return;
          o.log.error({ err }, 'subscribe failed');
          setTimeout(() => {
            if (!this.stopped && client.connected) client.unsubscribe(topic, () => subscribe());
          }, 2000).unref();
        });
      subscribe();
    });
    client.on('close', () => {
      this.ready = false;
      metrics.mqttConnected.set(0);
      // Every failed attempt too: how long a failover took, and through which attempts.
      o.log.info('gateway connection to broker closed');
    });
    client.on('error', (err) => this.errLog.warn('mqtt', { err: err.message }, 'mqtt error'));
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`cannot reach MQTT broker at ${o.mqttUrl}`)), 15_000);
      client.once('connect', () => {
        clearTimeout(t);
        resolve();
      });
    });
    if (o.databaseUrl) {
      this.listener = new Listener(
        o.databaseUrl,
        [COMMANDS_CHANNEL],
        () => this.kickCommands(),
        o.log,
        () => this.kickCommands(),
      );
      this.listener.start();
    }
    this.commandTimer = setInterval(() => this.kickCommands(), 1000);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.commandTimer);
    clearTimeout(this.probeTimer);
    clearTimeout(this.gapTimer);
    await this.listener?.stop();
    while (this.sending) await this.sending.catch(() => 0);
    await this.fw?.stop();
    // One last commit of what we hold, bounded: with the database gone, the meters resend.
    await Promise.race([this.flush(), new Promise((r) => setTimeout(r, 5_000).unref())]);
    this.waiting?.();
    this.waiting = undefined;
    await this.client?.endAsync(true);
  }

  private now(): number {
    return this.o.now ? this.o.now() : Math.floor(Date.now() / 1000);
  }

  /**
   * mqtt.js handles each received packet in its own tick and writes each PUBACK in its own
   * `writev`, so a chunk of 100 messages from the broker costs 100 syscalls, each waking the
   * broker (bench part c: 23 % of the gateway's main thread was in `writev`). Corking the
   * socket until the event loop's next turn sends the PUBACKs (and acks) of the whole chunk
   * in one write. The PUBACK still goes out once the message is admitted, before the next
   * read from the socket: nothing about when a message counts as delivered changes.
   */
  private corkUntilIdle(client: MqttClient): void {
    const stream = client.stream as { cork?: () => void; uncork?: () => void } | undefined;
    if (this.corked || !stream?.cork || !stream.uncork) return;
    this.corked = true;
    stream.cork();
    setImmediate(() => {
      this.corked = false;
      stream.uncork!();
    });
  }

  /** Let mqtt.js read the next message now, or once we hold less and the database is back. */
  private admit(next: () => void): void {
    if (this.stopped || (!this.dbDown && this.held < this.maxBuffer)) {
      next();
      return;
    }
    this.stats.paused++;
    this.waiting = next;
    if (!this.dbDown)
      this.errLog.warn('full', { heldBytes: this.held }, 'holding intake: buffer full until commits free it');
  }

  private release(): void {
    if (!this.waiting || this.dbDown || this.held >= this.maxBuffer * 0.75) return;
    const w = this.waiting;
    this.waiting = undefined;
    w();
  }

  private reject(code: RejectCode, meter: string | undefined, detail: string): void {
    this.stats.rejected++;
    this.rejectedByCode.set(code, (this.rejectedByCode.get(code) ?? 0) + 1);
    metrics.rejected.inc({ code });
    // Log each code at most once a second (with a count of the rest): a hostile flood must
    // not turn into a logging outage.
    this.rejectLog.warn(`reject:${code}`, { meter, code, detail: detail.slice(0, 200) }, 'payload rejected');
  }

  private onMessage(topic: string, payload: Buffer, retained = false): void {
    this.stats.received++;
    const t = parseTopic(topic);
    if (!t || t.dir !== 'up') return this.reject('UNKNOWN_TOPIC', undefined, topic.slice(0, 100));
    // A retained message is old data the broker replays to every new subscriber: never data
    // a meter is sending now. The broker configuration refuses them; this is the second wall.
    if (retained) return this.reject('RETAINED', t.meterId, `retained ${t.kind}`);
    // The labelled child, looked up once per kind: inc({ kind }) hashes the labels on every message.
    let counter = this.messagesIn.get(t.kind);
    if (!counter) this.messagesIn.set(t.kind, (counter = metrics.messagesIn.labels({ kind: t.kind })));
    counter.inc();
    const cached = this.meters.get(t.meterId);
    if (cached === undefined) {
      this.held += payload.length;
      this.lookupMeter(t.meterId).then(
        () => {
          this.held -= payload.length;
          this.stats.received--;
          this.onMessage(topic, payload);
          this.release();
        },
        (err: unknown) => {
          this.held -= payload.length;
          // Not acknowledged, so the meter resends; while the database is down we stop reading.
          if (isConnectionError(err)) this.databaseDown(err);
          else this.errLog.error('lookup', { err, meter: t.meterId }, 'meter lookup failed');
          this.release();
        },
      );
      return;
    }
    if (cached === null) return this.reject('UNKNOWN_METER', t.meterId, 'no such meter');
    try {
      switch (t.kind) {
        case 'readings': {
          const msg = decodeUp('readings', payload);
          const vee = runVee(cached, msg, this.now());
          if (vee.refused) this.reject(vee.refused, t.meterId, `seq ${msg.seq}`);
          for (const i of vee.issues) metrics.veeFindings.inc({ rule: i.rule });
          const lane = this.lane(cached.id);
          lane.readings.push(
            this.hold(payload, { meterId: cached.id, serial: cached.serial, tz: cached.tz, msg, vee }),
          );
          this.schedule(lane);
          return;
        }
        case 'events': {
          const msg = decodeUp('events', payload);
          const lane = this.lane(cached.id);
          const future = msg.events.some((e) => e.t > this.now() + FUTURE_TOLERANCE_S);
          if (future) this.reject('FUTURE_EVENT', t.meterId, `seq ${msg.seq}`);
          const item: EventsItem = future
            ? { meterId: cached.id, serial: cached.serial, msg, refused: 'FUTURE_EVENT' }
            : { meterId: cached.id, serial: cached.serial, msg };
          lane.events.push(this.hold(payload, item));
          this.schedule(lane);
          return;
        }
        case 'status': {
          // Batched with the lane's next commit: 10,000 meters reconnecting are a few statements, not 10,000.
          const lane = this.lane(cached.id);
          const older = lane.statuses.get(cached.id);
          if (older) this.held -= older.bytes;
          lane.statuses.set(cached.id, this.hold(payload, decodeUp('status', payload)));
          this.schedule(lane);
          return;
        }
        case 'replies': {
          // In the lane, in arrival order, committed with the batch: replies are applied in order.
          const lane = this.lane(cached.id);
          lane.replies.push(this.hold(payload, { meterId: cached.id, reply: decodeUp('replies', payload) }));
          this.schedule(lane);
          return;
        }
        case 'fw': {
          const req = decodeUp('fw', payload);
          // Not batched with the lanes: a block request is answered from the offer and the
          // image, never written (progress is gathered and flushed on its own, lossily).
          if (!this.fw) return this.reject('FW_NOT_OFFERED', t.meterId, 'no firmware folder');
          this.fw.request({ id: cached.id, serial: cached.serial }, req);
          return;
        }
      }
    } catch (err) {
      if (err instanceof ProtocolError) return this.reject(err.code, t.meterId, err.message);
      this.o.log.error({ err, meter: t.meterId }, 'unexpected error handling message');
      this.reject('INTERNAL', t.meterId, 'internal');
    }
  }

  /** Count a decoded message against the memory bound. */
  private hold<T>(payload: Buffer, v: T): Held<T> {
    const bytes = payload.length * MEMORY_PER_PAYLOAD_BYTE;
    this.held += bytes;
    return { v, bytes };
  }

  private readonly lookups = new Map<string, Promise<void>>();

  /** One lookup per unknown serial at a time, so its queued messages replay in arrival order. */
  private lookupMeter(serial: string): Promise<void> {
    let p = this.lookups.get(serial);
    if (!p) {
      p = this.loadMeter(serial).finally(() => this.lookups.delete(serial));
      this.lookups.set(serial, p);
    }
    return p;
  }

  private async loadMeter(serial: string): Promise<void> {
    if (this.meters.has(serial)) return;
    const last = this.unknownAt.get(serial);
    if (last && Date.now() - last < 60_000) {
      this.cache(serial, null);
      return;
    }
    const m = await meterForIngest(this.o.pool, serial);
    if (!m) {
      this.unknownAt.set(serial, Date.now());
      if (this.unknownAt.size > 10_000) this.unknownAt.clear();
      this.cache(serial, null);
      // Forget the negative answer after a minute: the meter may be provisioned meanwhile.
      setTimeout(() => this.meters.get(serial) === null && this.meters.delete(serial), 60_000).unref();
      return;
    }
    this.cache(serial, m);
  }

  /** Bounded cache: past the limit the oldest tenth is dropped (and reloaded on next sight). */
  private cache(serial: string, m: MeterInfo | null): void {
    const max = this.o.maxCachedMeters ?? 1_000_000;
    if (this.meters.size >= max) {
      let n = Math.ceil(max / 10);
      for (const k of this.meters.keys()) {
        if (n-- <= 0) break;
        this.meters.delete(k);
      }
    }
    this.meters.set(serial, m);
  }

  private pending(lane: Lane): number {
    return lane.readings.length + lane.events.length + lane.statuses.size + lane.replies.length;
  }

  private schedule(lane: Lane, delayMs?: number): void {
    if (lane.flushing) return; // the running flush reschedules when it ends
    if (delayMs === undefined && this.pending(lane) >= (this.o.batchMax ?? 2000)) {
      clearTimeout(lane.flushTimer);
      lane.flushTimer = undefined;
      void this.flushLane(lane);
      return;
    }
    lane.flushTimer ??= setTimeout(
      () => {
        lane.flushTimer = undefined;
        void this.flushLane(lane);
      },
      delayMs ?? this.o.flushMs ?? DEFAULT_FLUSH_MS,
    );
  }

  /** Commit everything queued in every lane (one attempt each). */
  async flush(): Promise<void> {
    for (const l of this.lanes) {
      clearTimeout(l.flushTimer);
      l.flushTimer = undefined;
    }
    await Promise.all(this.lanes.map((l) => this.flushLane(l)));
  }

  /**
   * Commit one lane's queue. Lanes run in parallel on their own connections (the database
   * uses every core); within a lane one batch at a time, so a meter's batches stay in order.
   * A batch that failed because the database is away goes back to the front of the lane and is
   * retried with backoff (nothing was acknowledged, and retrying beats waiting for resends); one
   * that failed for any other reason is dropped unacknowledged so it cannot stall the lane.
   */
  private async flushLane(lane: Lane): Promise<void> {
    while (lane.flushing) await lane.flushing;
    if (!this.pending(lane)) return;
    const batchMax = this.o.batchMax ?? 2000;
    const readings = lane.readings.splice(0, batchMax);
    const events = lane.events.splice(0, Math.max(0, batchMax - readings.length));
    const statuses = lane.statuses;
    const replies = lane.replies;
    lane.statuses = new Map();
    lane.replies = [];
    let batchBytes = 0;
    for (const list of [readings, events, replies, [...statuses.values()]])
      for (const h of list) batchBytes += h.bytes;
    let ok = false;
    lane.flushing = this.writeAndAck(
      readings.map((h) => h.v),
      events.map((h) => h.v),
      new Map([...statuses].map(([id, h]) => [id, h.v])),
      replies.map((h) => h.v),
    )
      .then(
        () => {
          ok = true;
          this.held -= batchBytes;
        },
        (err: unknown) => {
          if (!isConnectionError(err)) {
            // Not the database being away but something in the batch itself: retrying would
            // stall the lane for every meter in it. Drop it unacknowledged (as before): the
            // meters resend, and the error is in the log.
            this.held -= batchBytes;
            this.errLog.error(
              'batch',
              { err, readings: readings.length, events: events.length },
              'batch failed; dropped unacknowledged (the meters resend)',
            );
            return;
          }
          // The database is away: back to the front, in order, retried with backoff; newer
          // statuses win over the failed batch's.
          lane.readings = readings.concat(lane.readings);
          lane.events = events.concat(lane.events);
          for (const [id, h] of statuses) {
            if (lane.statuses.has(id)) this.held -= h.bytes;
            else lane.statuses.set(id, h);
          }
          lane.replies = replies.concat(lane.replies);
          lane.failures++;
          this.stats.retries++;
          this.databaseDown(err);
        },
      )
      .finally(() => {
        lane.flushing = undefined;
        if (ok) {
          lane.failures = 0;
          this.databaseUp();
        }
        this.release();
        if (this.pending(lane) && !this.stopped) {
          this.schedule(lane, ok ? undefined : Math.min(5_000, 100 * 2 ** Math.min(lane.failures, 6)));
        }
      });
    await lane.flushing;
  }

  private databaseDown(err: unknown): void {
    if (!this.dbDown) {
      this.o.log.warn(
        { err: (err as Error).message },
        'database unavailable: holding intake until it answers',
      );
    }
    this.dbDown = true;
    this.probe(250);
  }

  private databaseUp(): void {
    if (!this.dbDown) return;
    this.dbDown = false;
    clearTimeout(this.probeTimer);
    this.probeTimer = undefined;
    this.o.log.info('database answers again: resuming intake');
    this.release();
  }

  /** While the database is down and no batch is retrying, check it with backoff. */
  private probe(delayMs: number): void {
    if (this.probeTimer || this.stopped) return;
    this.probeTimer = setTimeout(() => {
      this.probeTimer = undefined;
      this.o.pool.query('SELECT 1').then(
        () => this.databaseUp(),
        () => {
          if (this.dbDown) this.probe(Math.min(delayMs * 2, 5_000));
        },
      );
    }, delayMs);
    this.probeTimer.unref();
  }

  private async writeAndAck(
    readings: ReadingsItem[],
    events: EventsItem[],
    statuses: Map<number, StatusMessage>,
    replies: { meterId: number; reply: ReplyMessage }[],
  ): Promise<void> {
    const end = metrics.batchSeconds.startTimer();
    let res: IngestResult;
    let applied: Awaited<ReturnType<typeof applyReplies>>;
    try {
      ({ res, applied } = await tx(this.o.pool, async (c) => {
        const r = await ingest(c, readings, events);
        await storeStatuses(c, statuses);
        const a = await applyReplies(c, replies);
        return { res: r, applied: a };
      }));
    } catch (err) {
      // The cached VEE state may be ahead of the database: reload it on next sight.
      for (const r of readings) this.meters.delete(r.serial);
      throw err;
    } finally {
      end();
    }
    this.stats.batches++;
    this.stats.stored += res.newReadings;
    metrics.readingsStored.inc(res.newReadings);
    for (const a of applied) metrics.commands.inc({ type: a.type, result: a.result });
    // A meter that answered may have its next command waiting: send it now, not at the next tick.
    if (applied.length) this.kickCommands();
    for (const k of res.conflicts) {
      this.stats.conflicts++;
      this.reject('SEQ_CONFLICT', k.serial, `${k.stream} seq ${k.seq} reused with other data`);
      // Its VEE state was advanced by data that was not stored.
      this.meters.delete(k.serial);
    }
    // Only now, after COMMIT, may the meters forget these messages.
    for (const a of res.acks) {
      this.publishAck(a.serial, {
        v: 1,
        kind: 'ack',
        stream: a.stream,
        upTo: a.upTo,
        seqs: a.above.slice(0, 500),
      });
      if (a.above.length) {
        const missing: number[] = [];
        const have = new Set(a.above);
        const top = a.above[a.above.length - 1]!;
        for (let s = a.upTo + 1; s < top && missing.length < 100; s++) if (!have.has(s)) missing.push(s);
        if (missing.length) this.requestResend(a.serial, a.stream, missing);
      }
    }
  }

  /**
   * Ask a meter for the messages missing below its newest committed one. One gateway sees a
   * meter's messages in order (one lane), so a gap is a lost message: ask at once. Sharing the
   * topics with other gateways, recheck first (SHARED_GAP_RECHECK_MS): measured in bench part
   * (n), asking at once made the meters send about half their messages twice. A gap asked for
   * is watched a few more times (2, 4, 8, 16 s): its resend may have gone to a gateway that was
   * killed next, and a meter that has caught up sends nothing newer to reveal the gap again —
   * its own timer, after a slow spell, can be minutes away.
   */
  private requestResend(serial: string, stream: 'readings' | 'events', seqs: number[]): void {
    if (!this.o.shareGroup) {
      this.publishAck(serial, { v: 1, kind: 'resend', stream, seqs });
      return;
    }
    const key = `${serial}|${stream}`;
    const known = this.gaps.get(key);
    if (known) for (const s of seqs) known.seqs.add(s);
    else this.gaps.set(key, { seqs: new Set(seqs), tries: 0, dueAt: Date.now() + SHARED_GAP_RECHECK_MS });
    this.watchGaps();
  }

  private watchGaps(): void {
    if (this.gapTimer || this.stopped || !this.gaps.size) return;
    this.gapTimer = setTimeout(() => {
      void this.recheckGaps().finally(() => {
        this.gapTimer = undefined;
        this.watchGaps();
      });
    }, SHARED_GAP_RECHECK_MS);
    this.gapTimer.unref();
  }

  /** Resend requests for the due gaps still open in the database (committed meanwhile by another gateway: not asked). */
  private async recheckGaps(): Promise<void> {
    const now = Date.now();
    const due = [...this.gaps].filter(([, g]) => g.dueAt <= now);
    if (this.stopped || !due.length) return;
    for (const [k] of due) this.gaps.delete(k);
    const serials = [...new Set(due.map(([k]) => k.slice(0, k.lastIndexOf('|'))))];
    try {
      const { rows } = await this.o.pool.query<{
        serial: string;
        readings_upto: number;
        readings_above: number[];
        events_upto: number;
        events_above: number[];
      }>(
        `SELECT m.serial, st.readings_upto, st.readings_above, st.events_upto, st.events_above
           FROM meters m JOIN meter_ingest_state st ON st.meter_id = m.id WHERE m.serial = ANY($1::text[])`,
        [serials],
      );
      const state = new Map(rows.map((r) => [r.serial, r]));
      for (const [key, g] of due) {
        const serial = key.slice(0, key.lastIndexOf('|'));
        const stream = key.slice(key.lastIndexOf('|') + 1) as 'readings' | 'events';
        const r = state.get(serial);
        if (!r) continue;
        const upTo = stream === 'readings' ? r.readings_upto : r.events_upto;
        const above = new Set(stream === 'readings' ? r.readings_above : r.events_above);
        const missing = [...g.seqs].filter((s) => s > upTo && !above.has(s)).sort((a, b) => a - b);
        if (!missing.length) continue;
        this.publishAck(serial, { v: 1, kind: 'resend', stream, seqs: missing });
        if (g.tries < 4 && !this.gaps.has(key)) {
          this.gaps.set(key, {
            seqs: new Set(missing),
            tries: g.tries + 1,
            dueAt: now + SHARED_GAP_RECHECK_MS * 2 ** (g.tries + 1),
          });
        }
      }
    } catch (err) {
      // The meters' own resend timers cover what is not asked for.
      this.errLog.warn('gaps', { err: (err as Error).message }, 'gap recheck failed');
    }
  }

  private publishAck(serial: string, msg: AckMessage): void {
    const client = this.client;
    if (!this.ready || !client) return;
    this.stats.acksSent++;
    client.publish(topics.down(serial, 'acks'), encodeDown('acks', msg), { qos: this.o.ackQos ?? 1 });
  }

  /** Run the command sender now (coalesced: one run at a time, one more if asked meanwhile). */
  private kickCommands(): void {
    if (this.stopped) return;
    if (this.sending) {
      this.sendAgain = true;
      return;
    }
    this.sending = this.sendCommands()
      .catch((err: unknown) => {
        if (isConnectionError(err)) this.databaseDown(err);
        else this.errLog.error('commands', { err }, 'command sender failed');
        return 0;
      })
      .finally(() => {
        this.sending = undefined;
        if (this.sendAgain) {
          this.sendAgain = false;
          this.kickCommands();
        }
      });
  }

  /**
   * Deliver what the command lifecycle says is due (claimed, so another gateway never sends
   * the same command at the same time), and give up on expired commands every few seconds.
   * Returns how many were published.
   */
  async sendCommands(): Promise<number> {
    if (!this.ready || !this.client || this.dbDown) return 0;
    if (Date.now() - this.lastExpirySweep > 5_000) {
      this.lastExpirySweep = Date.now();
      await tx(this.o.pool, (c) => expireCommands(c));
    }
    let total = 0;
    for (;;) {
      const due = await tx(this.o.pool, (c) => claimDueCommands(c, this.timing, 500));
      for (const d of due) {
        this.client.publish(topics.down(d.serial, 'commands'), d.envelope, { qos: 1 });
      }
      total += due.length;
      if (due.length < 500 || this.stopped) return total;
    }
  }
}
