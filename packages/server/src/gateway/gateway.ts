import { randomBytes } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import {
  ProtocolError,
  decodeUp,
  encodeDown,
  parseTopic,
  topics,
  type AckMessage,
  type ReplyMessage,
  type StatusMessage,
} from '@kilowire/protocol';
import type { Pool } from '../db/pool.ts';
import { tx } from '../db/pool.ts';
import type { Logger } from '../log.ts';
import { metrics } from '../metrics.ts';
import { writeBatch, type EventsItem, type ReadingsItem } from './ingest.ts';
import { runVee, type MeterInfo } from './vee.ts';

interface Lane {
  readings: ReadingsItem[];
  events: EventsItem[];
  /** Latest status per meter: a snapshot, so only the newest matters. */
  statuses: Map<number, StatusMessage>;
  flushTimer: NodeJS.Timeout | undefined;
  flushing: Promise<void> | undefined;
}

export interface GatewayOptions {
  pool: Pool;
  log: Logger;
  mqttUrl: string;
  username: string;
  password: string;
  /** Stable client id so the broker keeps our session (and queued QoS 1 messages) across restarts. */
  clientId?: string;
  shareGroup?: string;
  batchMax?: number;
  /** Parallel write lanes (database connections), meters split by id. Default 2. */
  lanes?: number;
  flushMs?: number;
  commandRetryS?: number;
  /** Messages waiting for the database beyond which new ones are dropped unacknowledged (the meter resends). */
  maxQueued?: number;
  /** Head-end clock (epoch seconds) for the "future reading" check. */
  now?: () => number;
  /**
   * Told after each COMMIT (after the acks went out) which meters and event messages the
   * batch wrote, e.g. for alert rules. Must return at once; exceptions are logged.
   */
  onCommitted?: (batch: { meterIds: number[]; events: { meterId: number; seq: number }[] }) => void;
}

/**
 * The gateway: subscribes to every meter's up topics, validates each payload with the
 * protocol codec, runs VEE, writes readings and events in batches (one transaction per
 * batch) and acknowledges on the acks topic only after COMMIT. mqtt.js's own PUBACK goes
 * out at once; holding it until the commit would stall the connection's stream.
 */
export class Gateway {
  private client: MqttClient | undefined;
  private readonly meters = new Map<string, MeterInfo | null>();
  private readonly unknownAt = new Map<string, number>();
  private readonly lanes: Lane[];
  private commandTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private lastRejectLog = 0;
  private rejectLogBudget = 0;
  readonly stats = { received: 0, rejected: 0, stored: 0, batches: 0, acksSent: 0, dropped: 0 };

  constructor(private readonly o: GatewayOptions) {
    this.lanes = Array.from({ length: Math.max(1, o.lanes ?? 2) }, () => ({
      readings: [],
      events: [],
      statuses: new Map(),
      flushTimer: undefined,
      flushing: undefined,
    }));
  }

  /** A meter always maps to the same lane, so its batches commit in order and rollup rows never contend. */
  private lane(meterId: number): Lane {
    return this.lanes[meterId % this.lanes.length]!;
  }

  private queued(): number {
    let n = 0;
    for (const l of this.lanes) n += l.readings.length + l.events.length;
    return n;
  }

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  async start(): Promise<void> {
    const o = this.o;
    const client = mqtt.connect(o.mqttUrl, {
      protocolVersion: 4,
      clientId: o.clientId ?? `kw-gateway-${randomBytes(4).toString('hex')}`,
      username: o.username,
      password: o.password,
      clean: false,
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
    });
    this.client = client;
    client.on('message', (topic, payload) => this.onMessage(topic, payload));
    client.on('connect', () => {
      metrics.mqttConnected.set(1);
      o.log.info('gateway connected to broker');
      client.subscribe(topics.allUp(o.shareGroup), { qos: 1 }, (err) => {
        if (err) o.log.error({ err }, 'subscribe failed');
      });
    });
    client.on('close', () => metrics.mqttConnected.set(0));
    client.on('error', (err) => o.log.warn({ err: err.message }, 'mqtt error'));
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`cannot reach MQTT broker at ${o.mqttUrl}`)), 15_000);
      client.once('connect', () => {
        clearTimeout(t);
        resolve();
      });
    });
    this.commandTimer = setInterval(
      () => void this.sendCommands().catch((err: unknown) => o.log.error({ err }, 'command sender')),
      1000,
    );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.commandTimer);
    await this.flush();
    await this.client?.endAsync();
  }

  private now(): number {
    return this.o.now ? this.o.now() : Math.floor(Date.now() / 1000);
  }

  private reject(code: string, meter: string | undefined, detail: string): void {
    this.stats.rejected++;
    metrics.rejected.inc({ code });
    // Log every rejection's meter and code, but at most ~20 lines a second: a hostile
    // flood must not turn into a logging outage.
    const now = Date.now();
    if (now - this.lastRejectLog > 1000) {
      this.lastRejectLog = now;
      this.rejectLogBudget = 20;
    }
    if (this.rejectLogBudget-- > 0)
      this.o.log.warn({ meter, code, detail: detail.slice(0, 200) }, 'payload rejected');
  }

  private onMessage(topic: string, payload: Buffer): void {
    this.stats.received++;
    const t = parseTopic(topic);
    if (!t || t.dir !== 'up') return this.reject('UNKNOWN_TOPIC', undefined, topic.slice(0, 100));
    metrics.messagesIn.inc({ kind: t.kind });
    const cached = this.meters.get(t.meterId);
    if (cached === undefined) {
      this.lookupMeter(t.meterId).then(
        () => this.onMessage(topic, payload),
        (err: unknown) => this.o.log.error({ err, meter: t.meterId }, 'meter lookup failed'),
      );
      this.stats.received--;
      return;
    }
    if (cached === null) return this.reject('UNKNOWN_METER', t.meterId, 'no such meter');
    try {
      switch (t.kind) {
        case 'readings': {
          if (this.queued() >= (this.o.maxQueued ?? 200_000)) {
            this.stats.dropped++;
            return this.reject('OVERLOADED', t.meterId, 'queue full');
          }
          const msg = decodeUp('readings', payload);
          const vee = runVee(cached, msg, this.now());
          if (vee.refused) this.reject(vee.refused, t.meterId, `seq ${msg.seq}`);
          for (const i of vee.issues) metrics.veeFindings.inc({ rule: i.rule });
          const lane = this.lane(cached.id);
          lane.readings.push({ meterId: cached.id, serial: cached.serial, tz: cached.tz, msg, vee });
          this.schedule(lane);
          return;
        }
        case 'events': {
          const msg = decodeUp('events', payload);
          const lane = this.lane(cached.id);
          lane.events.push({ meterId: cached.id, serial: cached.serial, msg });
          this.schedule(lane);
          return;
        }
        case 'status': {
          // Batched with the lane's next commit: 10,000 meters reconnecting are a few statements, not 10,000.
          const lane = this.lane(cached.id);
          lane.statuses.set(cached.id, decodeUp('status', payload));
          this.schedule(lane);
          return;
        }
        case 'replies':
          return void this.onReply(cached, decodeUp('replies', payload)).catch((err: unknown) =>
            this.o.log.error({ err }, 'reply update failed'),
          );
        case 'fw':
          decodeUp('fw', payload);
          // Firmware distribution arrives with the firmware campaign work; until then a
          // block request is valid but has nothing to answer.
          return this.reject('FW_NOT_OFFERED', t.meterId, 'no firmware offered');
      }
    } catch (err) {
      if (err instanceof ProtocolError) return this.reject(err.code, t.meterId, err.message);
      this.o.log.error({ err, meter: t.meterId }, 'unexpected error handling message');
      this.reject('INTERNAL', t.meterId, 'internal');
    }
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
      this.meters.set(serial, null);
      return;
    }
    const { rows } = await this.o.pool.query<{
      id: number;
      tz: string;
      interval_s: number;
      max_power_w: number;
      last_reg_at: Date | null;
      last_reg_import: number | null;
    }>(
      `SELECT m.id, m.tz, m.interval_s, m.max_power_w, s.last_reg_at, s.last_reg_import
       FROM meters m LEFT JOIN meter_ingest_state s ON s.meter_id = m.id WHERE m.serial = $1`,
      [serial],
    );
    const r = rows[0];
    if (!r) {
      this.unknownAt.set(serial, Date.now());
      this.meters.set(serial, null);
      // Forget the negative answer after a minute: the meter may be provisioned meanwhile.
      setTimeout(() => this.meters.get(serial) === null && this.meters.delete(serial), 60_000).unref();
      return;
    }
    this.meters.set(serial, {
      id: r.id,
      serial,
      tz: r.tz,
      intervalS: r.interval_s,
      maxPowerW: r.max_power_w,
      lastRegAt: r.last_reg_at ? r.last_reg_at.getTime() / 1000 : null,
      lastRegImport: r.last_reg_import,
    });
  }

  private schedule(lane: Lane): void {
    if (lane.readings.length + lane.events.length + lane.statuses.size >= (this.o.batchMax ?? 2000)) {
      void this.flushLane(lane);
      return;
    }
    lane.flushTimer ??= setTimeout(() => void this.flushLane(lane), this.o.flushMs ?? 5);
  }

  /** Commit everything queued in every lane. */
  async flush(): Promise<void> {
    await Promise.all(this.lanes.map((l) => this.flushLane(l)));
  }

  /**
   * Commit one lane's queue. Lanes run in parallel on their own connections (the database
   * uses every core); within a lane one batch at a time, so a meter's batches stay in order.
   */
  private async flushLane(lane: Lane): Promise<void> {
    clearTimeout(lane.flushTimer);
    lane.flushTimer = undefined;
    while (lane.flushing) await lane.flushing;
    if (!lane.readings.length && !lane.events.length && !lane.statuses.size) return;
    const readings = lane.readings;
    const events = lane.events;
    const statuses = lane.statuses;
    lane.readings = [];
    lane.events = [];
    lane.statuses = new Map();
    lane.flushing = this.writeAndAck(readings, events, statuses).finally(() => {
      lane.flushing = undefined;
      if (lane.readings.length || lane.events.length || lane.statuses.size) this.schedule(lane);
    });
    await lane.flushing;
  }

  private async writeAndAck(
    readings: ReadingsItem[],
    events: EventsItem[],
    statuses: Map<number, StatusMessage>,
  ): Promise<void> {
    const end = metrics.batchSeconds.startTimer();
    try {
      const res = await tx(this.o.pool, (c) => writeBatch(c, readings, events, statuses));
      end();
      this.stats.batches++;
      this.stats.stored += res.newReadings;
      metrics.readingsStored.inc(res.newReadings);
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
          if (missing.length)
            this.publishAck(a.serial, { v: 1, kind: 'resend', stream: a.stream, seqs: missing });
        }
      }
      if (this.o.onCommitted) {
        try {
          this.o.onCommitted({
            meterIds: [...new Set(readings.map((r) => r.meterId))],
            events: events.map((e) => ({ meterId: e.meterId, seq: e.msg.seq })),
          });
        } catch (err) {
          this.o.log.error({ err }, 'onCommitted hook failed');
        }
      }
    } catch (err) {
      end();
      // Nothing was acknowledged, so the meters will resend; the cached VEE state may be
      // ahead of the database, so reload it on next sight.
      for (const r of readings) this.meters.delete(r.serial);
      this.o.log.error(
        { err, readings: readings.length, events: events.length },
        'batch failed; meters will resend',
      );
    }
  }

  private publishAck(serial: string, msg: AckMessage): void {
    if (this.stopped && !this.client?.connected) return;
    this.stats.acksSent++;
    this.client?.publish(topics.down(serial, 'acks'), encodeDown('acks', msg), { qos: 1 });
  }

  private async onReply(m: MeterInfo, r: ReplyMessage): Promise<void> {
    // meter_id in the WHERE: a meter can only answer its own commands.
    const { rows } = await this.o.pool.query<{ type: string }>(
      `UPDATE commands SET status = $3, replied_at = now(), result_code = $4, result_detail = $5
       WHERE id = $1 AND meter_id = $2 AND status IN ('pending', 'sent') RETURNING type`,
      [r.id, m.id, r.result, r.code ?? null, r.detail ?? null],
    );
    if (rows[0]) metrics.commands.inc({ type: rows[0].type, result: r.result });
  }

  /**
   * Deliver open commands: per meter only the oldest open one (by counter), so a retry
   * never arrives after a newer command and gets refused as stale. Resent every
   * commandRetryS until the meter replies; expired after 50 attempts.
   */
  async sendCommands(): Promise<number> {
    if (!this.client?.connected) return 0;
    const retry = this.o.commandRetryS ?? 30;
    await this.o.pool.query(
      "UPDATE commands SET status = 'expired', result_code = 'NO_REPLY' WHERE status = 'sent' AND attempts >= 50",
    );
    const { rows } = await this.o.pool.query<{ id: string; serial: string; envelope: string }>(
      `WITH oldest AS (
         SELECT DISTINCT ON (c.meter_id) c.id, c.status, c.sent_at FROM commands c
         WHERE c.status IN ('pending', 'sent') ORDER BY c.meter_id, c.counter
       )
       UPDATE commands c SET status = 'sent', attempts = attempts + 1, sent_at = now()
       FROM oldest o, meters m
       WHERE c.id = o.id AND m.id = c.meter_id
         AND (o.sent_at IS NULL OR o.sent_at < now() - make_interval(secs => $1))
       RETURNING c.id, m.serial, c.envelope`,
      [retry],
    );
    for (const r of rows) {
      this.client.publish(topics.down(r.serial, 'commands'), r.envelope, { qos: 1 });
    }
    return rows.length;
  }
}
