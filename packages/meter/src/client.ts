import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import { decodeDown, mqttServers, parseTopic, topics } from '@kilowire/protocol';
import type { Meter, OutgoingMessage } from './meter.ts';

/** Wall-clock time and timers, injectable so tests and the fleet can drive time themselves. */
export interface Clock {
  now(): number;
  /** Returns a function that cancels the timer. */
  every(ms: number, fn: () => void): () => void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  every(ms, fn) {
    const h = setInterval(fn, ms);
    return () => clearInterval(h);
  },
};

/**
 * How a meter waits before it tries the broker again: exponential backoff with full jitter.
 * The n-th attempt after a loss waits a uniformly random time in [0, min(capMs, baseMs·2^n)),
 * so a whole fleet dropped by one broker restart spreads its reconnects over a window that
 * widens while the broker stays away, instead of hitting it again in the same second. The
 * count starts again only once a connection has held for `stableMs`: a broker that accepts
 * and then drops (overloaded, restarting again) keeps the meters backing off.
 */
export interface ReconnectBackoff {
  baseMs: number;
  capMs: number;
  stableMs: number;
}

export const DEFAULT_RECONNECT_BACKOFF: ReconnectBackoff = { baseMs: 1000, capMs: 60_000, stableMs: 30_000 };

/** The wait before attempt `attempt` (0 = first retry after a loss), `random` in [0, 1). */
export function reconnectDelayMs(
  attempt: number,
  b: ReconnectBackoff,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(b.capMs, b.baseMs * 2 ** Math.min(attempt, 40));
  return Math.floor(random() * ceiling);
}

/** The per-connection state of the backoff: how many attempts since the last stable connection. */
export class Backoff {
  private attempt = 0;
  private connectedAtMs: number | null = null;

  constructor(
    private readonly b: ReconnectBackoff,
    private readonly random: () => number = Math.random,
  ) {}

  get attempts(): number {
    return this.attempt;
  }

  connected(nowMs: number): void {
    this.connectedAtMs = nowMs;
  }

  /** The connection (or an attempt) is gone: how long to wait before the next attempt. */
  lost(nowMs: number): number {
    if (this.connectedAtMs !== null && nowMs - this.connectedAtMs >= this.b.stableMs) this.attempt = 0;
    this.connectedAtMs = null;
    return reconnectDelayMs(this.attempt++, this.b, this.random);
  }
}

export interface MeterClientOptions {
  meter: Meter;
  brokerUrl: string;
  /** Other nodes of a broker cluster: after `brokerUrl`, each reconnect tries the next one. */
  failoverUrls?: string[];
  /**
   * Subscribe afresh (unsubscribe, subscribe) when readings have waited this long for an ack
   * and nothing at all came down since the subscription, and connect again if that did not
   * help either (twice this long later; then the two in turn). For clustered brokers that can
   * grant a subscription that never delivers (docs/broker.md). Off by default.
   */
  resubscribeIfDeafMs?: number;
  /** The meter's broker credential; the username is always the meter id. */
  password: string;
  clock?: Clock;
  /**
   * Drive the meter from an own timer every `tickMs`, with meter time = wall time. The fleet
   * turns this off and calls `tick` itself with simulated time (one timer for all meters).
   */
  autoTick?: boolean;
  tickMs?: number;
  /** Messages handed to the broker per tick at most, so a long backlog does not flood it. */
  maxPerTick?: number;
  /** A status that differs only by credit is sent at most this often. */
  statusEveryMs?: number;
  /**
   * A fixed wait between reconnect attempts instead of the backoff (tests that want a meter
   * back at once). Unset: `reconnect` (exponential backoff with full jitter).
   */
  reconnectPeriodMs?: number;
  /** The reconnect backoff (default DEFAULT_RECONNECT_BACKOFF); fields left out keep their default. */
  reconnect?: Partial<ReconnectBackoff>;
  /** Source of the backoff's jitter (tests); default Math.random. */
  random?: () => number;
  connectTimeoutMs?: number;
  mqtt?: Partial<IClientOptions>;
  /**
   * A slow link (simulator): each firmware block is taken in only this many ms after it
   * arrived, as if it had trickled in over a narrow radio channel. Default 0.
   */
  fwBlockDelayMs?: number;
  log?: (line: string) => void;
}

export interface MeterClientCounters {
  connects: number;
  published: number;
  publishErrors: number;
  /** Readings/events messages released by head-end acks. */
  acked: number;
  resendRequests: number;
  commandsOk: number;
  commandsFailed: number;
  commandsRejected: number;
  /** Commands answered before and resent by the head-end: the stored reply went out again, nothing was applied. */
  commandsRepeated: number;
  /** Down messages that could not be decoded or were not addressed to us; ignored. */
  malformed: number;
  ignored: number;
  errors: number;
  /** Firmware block requests published, blocks stored, blocks that failed their check. */
  fwRequests: number;
  fwBlocks: number;
  fwBadBlocks: number;
  /** Reboots into a new image (activations), and reverts after a trial that did not confirm. */
  fwReboots: number;
  fwReverts: number;
}

/**
 * MQTT transport of one meter. It owns no state worth keeping: everything unacknowledged
 * lives in the meter's outbox, so a dropped connection, a broker restart or a new client
 * object loses nothing — the outbox is simply offered again on the next connect.
 */
export class MeterClient {
  readonly meter: Meter;
  readonly counters: MeterClientCounters = {
    connects: 0,
    published: 0,
    publishErrors: 0,
    acked: 0,
    resendRequests: 0,
    commandsOk: 0,
    commandsFailed: 0,
    commandsRejected: 0,
    commandsRepeated: 0,
    malformed: 0,
    ignored: 0,
    errors: 0,
    fwRequests: 0,
    fwBlocks: 0,
    fwBadBlocks: 0,
    fwReboots: 0,
    fwReverts: 0,
  };
  private readonly opts: MeterClientOptions;
  private readonly clock: Clock;
  private mqtt: MqttClient | null = null;
  private cancelTimer: (() => void) | null = null;
  private simNowS: number;
  private lastStatusKey = '';
  private lastStatusCredit: number | undefined;
  private lastStatusAtMs = 0;
  /** Whether the meter had produced up to wall time at the last tick. */
  private live = true;
  /** Started and not stopped/dropped: the client connects whenever the running image's radio works. */
  private wantOnline = false;
  private readonly delayed = new Set<ReturnType<typeof setTimeout>>();
  private readonly backoff: Backoff;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  /** When the down subscription was (re)made or last delivered something, ms. */
  private heardAtMs = 0;
  private deafStrikes = 0;

  constructor(opts: MeterClientOptions) {
    this.opts = opts;
    this.meter = opts.meter;
    this.clock = opts.clock ?? systemClock;
    this.simNowS = this.meter.cursor;
    this.backoff = new Backoff({ ...DEFAULT_RECONNECT_BACKOFF, ...opts.reconnect }, opts.random);
  }

  /** Attempts since the last stable connection (0 while connected for a while). */
  get reconnectAttempts(): number {
    return this.backoff.attempts;
  }

  get connected(): boolean {
    return this.mqtt?.connected ?? false;
  }

  /** `host:port` of the broker node the client is connected to (with failoverUrls it changes). */
  get brokerAddress(): string | undefined {
    if (!this.mqtt?.connected) return undefined;
    return `${this.mqtt.options.host}:${this.mqtt.options.port}`;
  }

  /** Connect (and reconnect automatically until `stop` or `dropConnection`). */
  start(): void {
    this.wantOnline = true;
    if ((this.opts.autoTick ?? true) && !this.cancelTimer) {
      this.cancelTimer = this.clock.every(this.opts.tickMs ?? 1000, () => this.tick());
    }
    this.connectMqtt();
  }

  /**
   * Open the MQTT connection, unless one is open or the running image cannot bring the radio
   * up (a `no_reconnect` image on trial): then the meter stays dark until it reverts.
   */
  private connectMqtt(): void {
    if (this.mqtt || !this.meter.radioWorks) return;
    // A retry still pending for a client given up (power fail, reboot) is not this one's.
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    const id = this.meter.id;
    const client = connect(this.opts.brokerUrl, {
      protocolVersion: 4,
      clientId: id,
      username: id,
      password: this.opts.password,
      clean: false,
      keepalive: 60,
      // mqtt.js retries at a fixed period; the meter backs off itself (onClose) and reconnects
      // the same client object with its stores, so the session and the QoS 1 messages in
      // flight are resent as mqtt.js's own retry would.
      reconnectPeriod: 0,
      connectTimeout: this.opts.connectTimeoutMs ?? 30_000,
      ...(this.opts.failoverUrls?.length && {
        servers: mqttServers([this.opts.brokerUrl, ...this.opts.failoverUrls]),
      }),
      ...this.opts.mqtt,
    });
    this.mqtt = client;
    client.on('connect', () => this.onConnect(client));
    client.on('close', () => this.onClose(client));
    client.on('message', (topic, payload) => this.onMessage(topic, payload));
    client.on('error', (err) => {
      this.counters.errors++;
      this.opts.log?.(`${id}: mqtt error: ${err.message}`);
    });
  }

  /** Close cleanly (DISCONNECT sent, in-flight QoS 1 given a chance to complete). */
  async stop(): Promise<void> {
    this.wantOnline = false;
    this.clearDelayed();
    this.cancelTimer?.();
    this.cancelTimer = null;
    const client = this.mqtt;
    this.mqtt = null;
    if (!client) return;
    await new Promise<void>((resolve) => client.end(false, () => resolve()));
  }

  /** Lose the network abruptly (no DISCONNECT), and stay offline until `start` is called again. */
  dropConnection(): void {
    this.wantOnline = false;
    this.clearDelayed();
    this.cancelTimer?.();
    this.cancelTimer = null;
    const client = this.mqtt;
    this.mqtt = null;
    client?.end(true);
  }

  /** Advance the meter to `simNowS` (default: wall time) and send whatever is due. */
  tick(simNowS?: number, nowMs: number = this.clock.now()): void {
    this.simNowS = simNowS ?? Math.floor(nowMs / 1000);
    if (!this.meter.powerOn) return;
    this.checkDeaf(nowMs);
    this.meter.advanceTo(this.simNowS);
    this.firmwareStep();
    this.pump(nowMs);
    this.pumpFw(nowMs);
    // A meter that has just caught up a backlog says where it stands at once: its last status
    // may be from the middle of the history (credit-only changes are sent at most once a minute).
    const wasLive = this.live;
    this.live = this.meter.cursor + this.meter.intervalS > Math.floor(nowMs / 1000);
    this.maybeStatus(nowMs, this.live && !wasLive);
  }

  /**
   * Meter time for stamping events and judging command expiry: never behind what the meter
   * has already produced. A meter that ticks itself runs on the wall clock, also between
   * ticks (a command arriving right after a reconnect is judged by the time now, not by the
   * start of the interval in progress).
   */
  private nowS(): number {
    const wall = (this.opts.autoTick ?? true) ? Math.floor(this.clock.now() / 1000) : 0;
    return Math.max(wall, this.simNowS, this.meter.cursor);
  }

  // ------------------------------------------------------------------ faults a fleet can inject

  injectTamper(kind: 'cover' | 'terminal' | 'magnetic', atS = this.nowS()): void {
    this.meter.injectTamper(kind, atS);
    this.pump(this.clock.now());
  }

  /**
   * Mains off: one last-gasp publish, then the communications go dark with the meter. With
   * `lastGasp: false` the supercapacitor did not carry the radio that far (as for a good share
   * of real meters): the meter logs power.fail in its outbox and goes silent; the event leaves
   * with the rest of the outbox once mains is back.
   */
  powerFail(atS = this.nowS(), o: { lastGasp?: boolean } = {}): void {
    this.simNowS = atS;
    const lastGasp = this.meter.powerFail(atS, this.clock.now());
    const client = this.mqtt;
    if (client?.connected && (o.lastGasp ?? true)) for (const m of lastGasp) this.send(client, m);
    this.cancelTimer?.();
    this.cancelTimer = null;
    this.mqtt = null;
    // Give the last gasp a moment to leave the socket, as the supercapacitor would.
    if (client) setTimeout(() => client.end(true), 100).unref();
  }

  /** Mains back: the meter logs power.restored(_long) and, unless `connect` is false (its network is down too), reconnects. */
  powerRestore(atS = this.nowS(), o: { connect?: boolean } = {}): void {
    this.simNowS = atS;
    this.meter.powerRestore(atS);
    if (o.connect ?? true) this.start();
  }

  pressButton(atS = this.nowS()): boolean {
    const ok = this.meter.pressButton(atS);
    if (ok) this.afterStateChange();
    return ok;
  }

  // ------------------------------------------------------------------ internals

  /**
   * Activation and trial, driven by meter time. A due activation is a reboot: the connection
   * drops (no DISCONNECT, as a reset would), the meter switches to the new slot on trial, and
   * connects again if that image's radio works. A trial past its deadline reverts; the old
   * image's radio works, so the meter comes back online.
   */
  private firmwareStep(): void {
    const nowS = this.nowS();
    const action = this.meter.firmwareTick(nowS);
    if (action === 'reverted') {
      this.counters.fwReverts++;
      this.lastStatusKey = '';
      if (this.wantOnline) this.connectMqtt();
      return;
    }
    if (action !== 'reboot') return;
    const old = this.mqtt;
    this.mqtt = null;
    this.clearDelayed();
    old?.end(true);
    if (this.meter.bootFirmware(nowS)) this.counters.fwReboots++;
    this.lastStatusKey = '';
    if (this.wantOnline) this.connectMqtt();
  }

  private clearDelayed(): void {
    for (const t of this.delayed) clearTimeout(t);
    this.delayed.clear();
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
  }

  /** A connection or a connection attempt ended: try again after the backoff, unless we let it go. */
  private onClose(client: MqttClient): void {
    if (client !== this.mqtt || !this.wantOnline || this.reconnectTimer) return;
    const nowMs = this.clock.now();
    const delay = this.opts.reconnectPeriodMs ?? this.backoff.lost(nowMs);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (client !== this.mqtt || !this.wantOnline || client.connected || client.disconnecting) return;
      // Without its stores reconnect() would start with empty ones: the QoS 1 messages in
      // flight would be forgotten instead of resent under their packet ids.
      client.reconnect({ incomingStore: client.incomingStore, outgoingStore: client.outgoingStore });
    }, delay);
  }

  private pumpFw(nowMs: number): void {
    const client = this.mqtt;
    if (!client?.connected) return;
    const req = this.meter.firmwareDue(nowMs);
    if (!req) return;
    this.counters.fwRequests++;
    client.publish(topics.up(this.meter.id, 'fw'), req, { qos: 1 }, (err) => {
      if (err) this.counters.publishErrors++;
      else this.counters.published++;
    });
  }

  private onBlock(payload: Buffer): void {
    const before = this.meter.firmwarePending?.state;
    let r: { changed: boolean; bad: boolean };
    try {
      r = this.meter.handleBlock(payload, this.nowS());
    } catch (err) {
      this.counters.malformed++;
      this.opts.log?.(`${this.meter.id}: ignored firmware block: ${(err as Error).message}`);
      return;
    }
    if (r.bad) this.counters.fwBadBlocks++;
    else if (r.changed) this.counters.fwBlocks++;
    const nowMs = this.clock.now();
    this.pump(nowMs);
    this.pumpFw(nowMs);
    // The head-end hears of verified / given up at once, of progress at each quarter.
    this.maybeStatus(nowMs, this.meter.firmwarePending?.state !== before);
  }

  private onConnect(client: MqttClient): void {
    if (client !== this.mqtt) return;
    this.counters.connects++;
    this.backoff.connected(this.clock.now());
    this.subscribeDown(client);
    this.meter.resetSendState();
    this.maybeStatus(this.clock.now(), true);
    this.pump(this.clock.now());
    this.pumpFw(this.clock.now());
  }

  /**
   * Without its subscription no ack or command reaches the meter while it goes on publishing.
   * A cluster node may refuse it while its JetStream fails over, and may keep half of the
   * failed attempt: unsubscribe and try again, a few seconds later, while connected.
   */
  private checkDeaf(nowMs: number): void {
    const limit = this.opts.resubscribeIfDeafMs;
    const client = this.mqtt;
    if (!limit || !client?.connected || this.meter.outbox.length === 0) return;
    // After the first step each waits twice as long: a head-end that is itself stalled or
    // catching up acks no meter, and thousands of remedies at once would load the broker more.
    if (nowMs - this.heardAtMs < (this.deafStrikes > 0 ? 2 * limit : limit)) return;
    this.heardAtMs = nowMs;
    // A fresh subscription (a consumer that never delivers), then a new connection, on the next
    // node of a cluster (a path that swallows what we publish), and so on until something comes.
    if (++this.deafStrikes % 2 === 0) {
      this.opts.log?.(`${this.meter.id}: still no ack after a fresh subscription, connecting again`);
      client.stream.destroy();
      return;
    }
    this.opts.log?.(`${this.meter.id}: no ack for ${limit} ms, subscribing afresh`);
    client.unsubscribe(topics.meterDown(this.meter.id), () => {
      if (client === this.mqtt && client.connected) this.subscribeDown(client);
    });
  }

  private subscribeDown(client: MqttClient): void {
    const topic = topics.meterDown(this.meter.id);
    this.heardAtMs = this.clock.now();
    client.subscribe(topic, { qos: 1 }, (err) => {
      if (!err) return;
      this.counters.errors++;
      this.opts.log?.(`${this.meter.id}: subscribe failed: ${err.message}`);
      const t = setTimeout(
        () => {
          this.delayed.delete(t);
          if (client !== this.mqtt || !client.connected) return;
          client.unsubscribe(topic, () => {
            if (client === this.mqtt && client.connected) this.subscribeDown(client);
          });
        },
        2000 + Math.floor(Math.random() * 2000),
      );
      this.delayed.add(t);
    });
  }

  private onMessage(topic: string, payload: Buffer): void {
    this.heardAtMs = this.clock.now();
    this.deafStrikes = 0;
    try {
      const parsed = parseTopic(topic);
      if (!parsed || parsed.dir !== 'down' || parsed.meterId !== this.meter.id) {
        this.counters.malformed++;
        return;
      }
      switch (parsed.kind) {
        case 'acks': {
          const ack = decodeDown('acks', payload);
          if (ack.kind === 'resend') this.counters.resendRequests++;
          this.counters.acked += this.meter.handleAck(ack);
          if (ack.kind === 'resend') this.pump(this.clock.now());
          else this.pumpFw(this.clock.now());
          return;
        }
        case 'commands': {
          const out = this.meter.handleCommand(payload, this.nowS());
          if (out.repeated) this.counters.commandsRepeated++;
          else if (out.result === 'ok') this.counters.commandsOk++;
          else if (out.result === 'failed') this.counters.commandsFailed++;
          else this.counters.commandsRejected++;
          this.afterStateChange();
          return;
        }
        case 'fw': {
          const delay = this.opts.fwBlockDelayMs ?? 0;
          if (delay <= 0) return this.onBlock(payload);
          const t = setTimeout(() => {
            this.delayed.delete(t);
            this.onBlock(payload);
          }, delay);
          this.delayed.add(t);
          return;
        }
      }
    } catch (err) {
      this.counters.malformed++;
      this.opts.log?.(`${this.meter.id}: ignored down message on ${topic}: ${(err as Error).message}`);
    }
  }

  private afterStateChange(): void {
    const nowMs = this.clock.now();
    this.pump(nowMs);
    this.pumpFw(nowMs);
    this.maybeStatus(nowMs, true);
  }

  private pump(nowMs: number): void {
    const client = this.mqtt;
    if (!client?.connected) return;
    for (const m of this.meter.due(nowMs, this.opts.maxPerTick ?? 50)) this.send(client, m);
  }

  private send(client: MqttClient, m: OutgoingMessage): void {
    client.publish(topics.up(this.meter.id, m.kind), m.payload, { qos: 1 }, (err) => {
      if (err) {
        this.counters.publishErrors++;
        return;
      }
      this.counters.published++;
      this.meter.delivered(m.kind, m.key);
      // A reply off the meter may be what held a block request back (pacing).
      if (m.kind === 'replies') this.pumpFw(this.clock.now());
    });
  }

  /** Status goes out on connect, after commands, and whenever relay/mode/emergency state moves. */
  private maybeStatus(nowMs: number, force: boolean): void {
    const client = this.mqtt;
    if (!client?.connected) return;
    const s = this.meter.status(this.nowS());
    const fw = s.firmware.pending;
    // A download reports itself at each quarter (the head-end shows progress), not every block.
    const quarter = fw ? Math.floor((4 * fw.blocks) / fw.of) : -1;
    const key = `${s.relay}|${s.mode}|${s.lastCounter}|${s.firmware.version}|${fw?.state}|${quarter}|${this.meter.credit.emergencyInUse}`;
    const creditMoved = s.creditMinor !== this.lastStatusCredit;
    const stale = nowMs - this.lastStatusAtMs >= (this.opts.statusEveryMs ?? 60_000);
    if (!force && key === this.lastStatusKey && !(creditMoved && stale)) return;
    this.lastStatusKey = key;
    this.lastStatusCredit = s.creditMinor;
    this.lastStatusAtMs = nowMs;
    client.publish(topics.up(this.meter.id, 'status'), this.meter.statusPayload(s.t), { qos: 1 }, (err) => {
      if (err) {
        this.counters.publishErrors++;
        return;
      }
      this.counters.published++;
      // The confirmation of a trial boot: the new image came online and the broker took its
      // status (PUBACK) — the head-end can see the new version. Only then is the image kept.
      if (
        fw?.state === 'trial' &&
        client === this.mqtt &&
        this.meter.confirmFirmware(s.firmware.version, this.nowS())
      )
        this.afterStateChange();
    });
  }
}
