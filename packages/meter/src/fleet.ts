import { join } from 'node:path';
import type { MeterMode, TariffSpec } from '@kilowire/protocol';
import { MeterClient, systemClock, type Clock, type ReconnectBackoff } from './client.ts';
import type { HouseholdProfile } from './load.ts';
import { BACKLOG_BATCH, Meter } from './meter.ts';
import { FileStore, MemoryStore, type MeterStore } from './store.ts';

export interface MeterDescriptor {
  id: string;
  password: string;
  tz?: string;
  mode?: MeterMode;
  intervalS?: 900 | 1800;
  hardwareClass?: string;
  profile?: Partial<HouseholdProfile>;
  initialCreditMinor?: number;
  seed?: number;
  /** The tariff a meter without saved state is made with (default DEFAULT_TARIFF). */
  initialTariff?: TariffSpec;
  /** Where the history of a meter without saved state begins, epoch s (wins over `backfillDays`). */
  startS?: number;
  /**
   * The meter's simulated clock starts this many seconds into its first interval (default 0).
   * Meters catching up from the same cursor otherwise all close an interval on the same tick;
   * different phases spread a fleet's readings over the interval, as real meters' clocks are.
   */
  phaseS?: number;
  /** The feeder (low-voltage circuit) the meter hangs on: a feeder outage takes all of them at once. */
  feederId?: string;
  /** Factory image of a meter without saved state: version (default 1.0.0) and security sequence (default 0). */
  firmwareVersion?: string;
  firmwareSequence?: number;
}

export type TamperKind = 'cover' | 'terminal' | 'magnetic';

/** The shape of a feeder outage. Times are real milliseconds (the fleet converts simulated ones). */
export interface FeederOutageOptions {
  /** How long mains is off for the feeder, real ms. */
  forMs: number;
  /** Share of the feeder's meters whose last gasp gets out (default 0.6); the others just go silent. */
  lastGaspShare?: number;
  /** Restores spread over this many real ms, as breakers and meter power supplies come up (default 3000). */
  restoreJitterMs?: number;
  /** Meters that stay off longer: a count (>= 1) or a share of the feeder (< 1). Default 0. */
  stragglers?: number;
  /** How much longer the stragglers stay off, real ms (default `forMs`). */
  stragglerExtraMs?: number;
}

/** What a feeder outage did, meter by meter (ids), for logs and tests. */
export interface FeederOutageReport {
  feederId: string;
  meters: string[];
  lastGasp: string[];
  silent: string[];
  stragglers: string[];
}

export interface FleetFaults {
  /** Open a random meter's cover (or terminal cover, or a magnet) every N simulated hours. */
  tamperEverySimHours?: number;
  /** A random meter loses mains (last gasp) every N simulated hours, restored 1-30 simulated minutes later. */
  powerLossEverySimHours?: number;
  /** All meters of a random feeder lose mains every N simulated hours (see FeederOutageOptions). */
  feederOutageEverySimHours?: number;
  /** How long a scheduled feeder outage lasts, simulated minutes (default 5). */
  feederOutageSimMinutes?: number;
  /** Share of a feeder's meters whose last gasp gets out (default 0.6). */
  lastGaspShare?: number;
  /** Meters of a feeder that stay off longer than the rest (count, or share if < 1; default 0). */
  stragglers?: number;
  /** How much longer stragglers stay off, simulated minutes (default: the outage's length). */
  stragglerExtraSimMinutes?: number;
  /** One random household loses mains every N simulated hours, for `householdOutageSimMinutes`. */
  householdOutageEverySimHours?: number;
  /** How long a scheduled household outage lasts, simulated minutes (default 20). */
  householdOutageSimMinutes?: number;
  /**
   * Scheduled faults wait until the fleet has caught up with real time (default false). A
   * fleet that backfills months at high speed would otherwise fill the history with hundreds
   * of tampers and outages, each an alert or an incident when it reaches the head-end.
   */
  onlyWhenCaughtUp?: boolean;
  /**
   * Once caught up, this many real seconds later: one tamper on a random meter, and (when
   * feeder outages are scheduled) one feeder outage `firstOutageDelayS` after it — so whoever
   * just started the fleet sees both without waiting hours. 0 or unset: off.
   */
  firstFaultsAfterS?: number;
  /** Real seconds between the first tamper and the first feeder outage (default 30). */
  firstOutageDelayS?: number;
  /** A random meter loses its network for 5-60 s every N real minutes. */
  dropEveryMinutes?: number;
  /** A random meter's process restarts from its store every N real minutes. */
  restartEveryMinutes?: number;
  /**
   * Share of meters (0-1) that lose power once per firmware image at a random point of its
   * transfer or activation (a block received, verified, scheduled, on trial): the meter is
   * dropped without a clean shutdown and boots again from its durable state.
   */
  fwPowerLossShare?: number;
  /** Share of meters (0-1) on a slow link: each firmware block reaches them `slowLinkBlockDelayMs` late. */
  slowLinkShare?: number;
  /** Added delay per firmware block on a slow link, real ms (default 500). */
  slowLinkBlockDelayMs?: number;
}

export interface FleetOptions {
  brokerUrl: string;
  /**
   * Other nodes of a broker cluster. Meters are spread over `brokerUrl` and these (by id, so a
   * restarted meter starts where it was) and move to the next node when theirs goes away.
   */
  failoverUrls?: string[];
  serverPublicKey: string;
  /** The firmware key (base64 raw Ed25519) every meter checks image manifests with; without it they refuse offers. */
  firmwarePublicKey?: string;
  meters: MeterDescriptor[];
  /** One FileStore per meter under this directory; without it, state lives in memory. */
  stateDir?: string;
  fsync?: boolean;
  /** Simulated seconds per real second while catching up with real time. */
  speed?: number;
  /** Meters without saved state start this many days ago. */
  backfillDays?: number;
  /**
   * A meter produces no further than this many intervals beyond what the head-end has
   * acknowledged (default 32 days of half-hours). Catching up a year therefore goes at the
   * pace of the acks, and the outbox (kept in memory and rewritten to the state file on
   * every change) stays small whatever `speed` is. Intervals depend only on their instant,
   * so producing them later gives the very same readings.
   */
  maxUnackedIntervals?: number;
  /** Backlogs in local-day messages, so the history has register reads at local midnights (default false). */
  backlogByLocalDay?: boolean;
  batchIntervals?: number;
  /** First resend delay of an unacknowledged message and its cap, ms (default 10 s and 5 min, as a meter's). */
  resendAfterMs?: number;
  maxResendAfterMs?: number;
  /** See MeterClientOptions.resubscribeIfDeafMs (clustered brokers). */
  resubscribeIfDeafMs?: number;
  tickMs?: number;
  connectsPerSecond?: number;
  /**
   * Each meter's reconnect backoff after a lost connection (client.ts DEFAULT_RECONNECT_BACKOFF).
   * `connectsPerSecond` admits the first connections only; after a broker restart this jitter
   * is what spreads the fleet's return.
   */
  reconnect?: Partial<ReconnectBackoff>;
  faults?: FleetFaults;
  /** Consumers press the button on an armed meter after a few seconds (default true). */
  autoPressButton?: boolean;
  clock?: Clock;
  random?: () => number;
  log?: (line: string) => void;
  summaryEveryMs?: number;
}

export interface FleetStats {
  meters: number;
  connected: number;
  published: number;
  acked: number;
  /** Unacknowledged readings and events messages across the fleet. */
  backlog: number;
  commandsOk: number;
  commandsRejected: number;
  malformed: number;
  errors: number;
  faults: {
    tamper: number;
    powerLoss: number;
    drops: number;
    restarts: number;
    feederOutages: number;
    householdOutages: number;
    fwPowerLoss: number;
  };
  /** The simulated time of the meter furthest behind, epoch seconds. */
  simMinS: number;
}

interface Entry {
  desc: MeterDescriptor;
  store: MeterStore;
  client: MeterClient;
  /** The simulated clock: simStartS at realStartMs, then `speed` x real time until it meets real time. */
  simStartS: number;
  realStartMs: number;
  /** Counters of clients replaced by a restart, so fleet totals never go backwards. */
  retired: {
    published: number;
    acked: number;
    commandsOk: number;
    commandsRejected: number;
    malformed: number;
    errors: number;
  };
  offline: boolean;
  /** The outage that holds the meter's mains off: only its own restore may switch it back on. */
  outage: number;
  /** On a slow link (faults.slowLinkShare): firmware blocks reach it late. */
  slowLink: boolean;
  /** Firmware power loss (faults.fwPowerLossShare): the image it was drawn for, and the point of its progress (0-1) it strikes at, null for none. */
  fwLoss: { image: string; at: number | null } | null;
}

/**
 * Many meters in one process. One timer drives all of them (10,000 timers would cost more
 * than the meters), connections are admitted at a bounded rate so a cold start does not
 * stampede the broker, and each meter runs on its own simulated clock that fast-forwards
 * from its own cursor until it meets real time — nothing is ever produced in the future.
 */
export class Fleet {
  private readonly opts: FleetOptions;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly entries = new Map<string, Entry>();
  private readonly connectQueue: Entry[] = [];
  private connectBudget = 0;
  private cancelTick: (() => void) | null = null;
  private lastTickMs = 0;
  private lastSummaryMs = 0;
  private startedMs = 0;
  private fleetSimStartS = 0;
  private nextTamperSimS = Infinity;
  private nextPowerLossSimS = Infinity;
  private nextFeederOutageSimS = Infinity;
  private nextHouseholdOutageSimS = Infinity;
  /** The one-off first tamper and feeder outage (faults.firstFaultsAfterS): when, once caught up; null when done or off. */
  private firstTamperAtMs: number | null = null;
  private firstOutageAtMs: number | null = null;
  private firstFaultsPlanned = false;
  private faultsScheduled = false;
  private outageSeq = 0;
  private nextDropMs = Infinity;
  private nextRestartMs = Infinity;
  private caughtUpLogged = false;
  /** Set by `holdProduction`: simulated time stands still from this real instant on. */
  private holdAtMs: number | null = null;
  /** Real ms from start until every meter had produced up to real time and had it all acknowledged. */
  caughtUpAfterMs: number | null = null;
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  readonly faultCounts = {
    tamper: 0,
    powerLoss: 0,
    drops: 0,
    restarts: 0,
    feederOutages: 0,
    householdOutages: 0,
    fwPowerLoss: 0,
  };

  constructor(opts: FleetOptions) {
    this.opts = opts;
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? Math.random;
  }

  get speed(): number {
    return this.opts.speed ?? 1;
  }

  meter(id: string): Meter | undefined {
    return this.entries.get(id)?.client.meter;
  }

  client(id: string): MeterClient | undefined {
    return this.entries.get(id)?.client;
  }

  start(): void {
    const now = this.clock.now();
    this.startedMs = now;
    this.lastTickMs = now;
    this.lastSummaryMs = now;
    this.fleetSimStartS = Math.floor(now / 1000) - Math.round((this.opts.backfillDays ?? 0) * 86_400);
    for (const desc of this.opts.meters) {
      const store = this.opts.stateDir
        ? new FileStore(join(this.opts.stateDir, `${desc.id}.json`), { fsync: this.opts.fsync ?? true })
        : new MemoryStore();
      // Drawn only when asked for, so a seeded fleet without firmware faults repeats its old draws.
      const slowLink =
        (this.opts.faults?.slowLinkShare ?? 0) > 0 && this.random() < this.opts.faults!.slowLinkShare!;
      const entry: Entry = {
        desc,
        store,
        client: this.makeClient(desc, store, slowLink),
        simStartS: 0,
        realStartMs: now,
        retired: { published: 0, acked: 0, commandsOk: 0, commandsRejected: 0, malformed: 0, errors: 0 },
        offline: false,
        outage: 0,
        slowLink,
        fwLoss: null,
      };
      entry.simStartS = entry.client.meter.cursor + (desc.phaseS ?? 0);
      this.entries.set(desc.id, entry);
      this.connectQueue.push(entry);
    }
    if (!this.opts.faults?.onlyWhenCaughtUp) this.scheduleFaults(now, this.fleetSimStartS);
    this.cancelTick = this.clock.every(this.opts.tickMs ?? 250, () => this.tick());
  }

  async stop(): Promise<void> {
    this.cancelTick?.();
    this.cancelTick = null;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const all = [...this.entries.values()];
    // Closing in slices keeps a 10,000-meter shutdown from opening 10,000 DISCONNECT flows at once.
    for (let i = 0; i < all.length; i += 500) {
      await Promise.all(all.slice(i, i + 500).map((e) => e.client.stop()));
    }
  }

  private makeClient(desc: MeterDescriptor, store: MeterStore, slowLink: boolean): MeterClient {
    const startS =
      desc.startS ?? Math.floor(this.clock.now() / 1000) - Math.round((this.opts.backfillDays ?? 0) * 86_400);
    const meter = new Meter({
      id: desc.id,
      tz: desc.tz ?? 'Europe/London',
      intervalS: desc.intervalS ?? 1800,
      hardwareClass: desc.hardwareClass,
      serverPublicKey: this.opts.serverPublicKey,
      firmwarePublicKey: this.opts.firmwarePublicKey,
      firmwareVersion: desc.firmwareVersion,
      firmwareSequence: desc.firmwareSequence,
      store,
      seed: desc.seed,
      profile: desc.profile,
      mode: desc.mode ?? 'credit',
      initialCreditMinor: desc.initialCreditMinor,
      tariff: desc.initialTariff,
      startS,
      batchIntervals: this.opts.batchIntervals ?? 1,
      backlogByLocalDay: this.opts.backlogByLocalDay ?? false,
      resendAfterMs: this.opts.resendAfterMs,
      maxResendAfterMs: this.opts.maxResendAfterMs,
    });
    const urls = [this.opts.brokerUrl, ...(this.opts.failoverUrls ?? [])];
    let first = 0;
    for (const ch of desc.id) first = (first * 31 + ch.charCodeAt(0)) % urls.length;
    return new MeterClient({
      meter,
      brokerUrl: urls[first]!,
      failoverUrls: [...urls.slice(first + 1), ...urls.slice(0, first)],
      resubscribeIfDeafMs: this.opts.resubscribeIfDeafMs,
      password: desc.password,
      clock: this.clock,
      autoTick: false,
      fwBlockDelayMs: slowLink ? (this.opts.faults?.slowLinkBlockDelayMs ?? 500) : 0,
      reconnect: this.opts.reconnect,
      log: this.opts.log,
    });
  }

  /**
   * Meters produce nothing more (their simulated clocks stop) but stay connected, resend and
   * take acks: what was produced can then be drained and counted against what was stored.
   */
  holdProduction(): void {
    this.holdAtMs ??= this.clock.now();
  }

  /** A meter's simulated now: fast-forwarding from its start until it meets real time. */
  private simNow(e: Entry, nowMs: number): number {
    if (this.holdAtMs !== null) nowMs = Math.min(nowMs, this.holdAtMs);
    const real = Math.floor(nowMs / 1000);
    return Math.min(real, e.simStartS + Math.floor((this.speed * (nowMs - e.realStartMs)) / 1000));
  }

  private fleetSimNow(nowMs: number): number {
    const real = Math.floor(nowMs / 1000);
    return Math.min(real, this.fleetSimStartS + Math.floor((this.speed * (nowMs - this.startedMs)) / 1000));
  }

  /** Real milliseconds that `simS` simulated seconds take at the current pace (at least one tick). */
  private realMsFor(simS: number, nowMs: number): number {
    const caughtUp = this.fleetSimNow(nowMs) >= Math.floor(nowMs / 1000);
    return Math.max(this.opts.tickMs ?? 250, (simS * 1000) / (caughtUp ? 1 : this.speed));
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  tick(): void {
    const nowMs = this.clock.now();
    const dt = nowMs - this.lastTickMs;
    this.lastTickMs = nowMs;

    const perSecond = this.opts.connectsPerSecond ?? 200;
    this.connectBudget = Math.min(perSecond, this.connectBudget + (perSecond * dt) / 1000);
    while (this.connectBudget >= 1 && this.connectQueue.length > 0) {
      const e = this.connectQueue.shift()!;
      this.connectBudget--;
      if (!e.offline && e.client.meter.powerOn) e.client.start();
    }

    let behind = false;
    for (const e of this.entries.values()) {
      try {
        const simNow = this.paced(e.client.meter, this.simNow(e, nowMs));
        e.client.tick(simNow, nowMs);
        this.maybeFirmwarePowerLoss(e);
        const m = e.client.meter;
        if (m.cursor + m.intervalS <= Math.floor(nowMs / 1000) || m.outbox.length > 0) behind = true;
        if (
          (this.opts.autoPressButton ?? true) &&
          e.client.meter.relay.state === 'armed' &&
          this.random() < 0.05
        ) {
          e.client.pressButton(simNow);
        }
      } catch (err) {
        e.client.counters.errors++;
        this.opts.log?.(`${e.desc.id}: tick failed: ${(err as Error).message}`);
      }
    }

    if (!behind && !this.caughtUpLogged) {
      this.caughtUpLogged = true;
      this.caughtUpAfterMs = nowMs - this.startedMs;
      this.opts.log?.(
        `caught up with real time after ${(this.caughtUpAfterMs / 1000).toFixed(1)} s: ${formatStats(this.stats())}`,
      );
    }

    this.runFaults(nowMs);
    if (nowMs - this.lastSummaryMs >= (this.opts.summaryEveryMs ?? 10_000)) {
      this.lastSummaryMs = nowMs;
      this.opts.log?.(formatStats(this.stats()));
    }
  }

  /** How far a meter may run now: to `simNow`, but no more than `maxUnackedIntervals` ahead of its acks. */
  private paced(m: Meter, simNow: number): number {
    let unacked = 0;
    for (const e of m.outbox) if (e.stream === 'readings') unacked += e.msg.intervals.length;
    const room = (this.opts.maxUnackedIntervals ?? 32 * BACKLOG_BATCH) - unacked;
    if (room <= 0) return m.cursor;
    return Math.min(simNow, m.cursor + room * m.intervalS);
  }

  /** The first occurrence of each scheduled fault: one period after `simS` (real faults: after `nowMs`). */
  private scheduleFaults(nowMs: number, simS: number): void {
    this.faultsScheduled = true;
    const f = this.opts.faults ?? {};
    if (f.tamperEverySimHours) this.nextTamperSimS = simS + f.tamperEverySimHours * 3600;
    if (f.powerLossEverySimHours) this.nextPowerLossSimS = simS + f.powerLossEverySimHours * 3600;
    if (f.feederOutageEverySimHours) this.nextFeederOutageSimS = simS + f.feederOutageEverySimHours * 3600;
    if (f.householdOutageEverySimHours)
      this.nextHouseholdOutageSimS = simS + f.householdOutageEverySimHours * 3600;
    if (f.dropEveryMinutes) this.nextDropMs = nowMs + f.dropEveryMinutes * 60_000;
    if (f.restartEveryMinutes) this.nextRestartMs = nowMs + f.restartEveryMinutes * 60_000;
  }

  private runFaults(nowMs: number): void {
    const f = this.opts.faults ?? {};
    if (!this.faultsScheduled) {
      // onlyWhenCaughtUp: the schedule starts at the moment the fleet met real time.
      if (this.caughtUpAfterMs === null) return;
      this.scheduleFaults(nowMs, Math.floor(nowMs / 1000));
    }
    const simNow = this.fleetSimNow(nowMs);
    if (
      f.firstFaultsAfterS &&
      this.caughtUpAfterMs !== null &&
      !this.firstFaultsPlanned &&
      // ...and every meter's clock is at real time (a slow fleet starts on an interval boundary
      // behind now), so the first faults are stamped now, where a newcomer looks.
      this.slowestSimNow(nowMs) >= Math.floor(nowMs / 1000) - 1
    ) {
      this.firstFaultsPlanned = true;
      this.firstTamperAtMs = nowMs + f.firstFaultsAfterS * 1000;
      if (f.feederOutageEverySimHours)
        this.firstOutageAtMs = this.firstTamperAtMs + (f.firstOutageDelayS ?? 30) * 1000;
    }
    if (this.firstTamperAtMs !== null && nowMs >= this.firstTamperAtMs) {
      this.firstTamperAtMs = null;
      const e = this.pick();
      if (e) this.tamper(e.desc.id);
    }
    if (this.firstOutageAtMs !== null && nowMs >= this.firstOutageAtMs) {
      this.firstOutageAtMs = null;
      this.scheduledFeederOutage(nowMs);
    }
    if (f.tamperEverySimHours && simNow >= this.nextTamperSimS) {
      this.nextTamperSimS = simNow + f.tamperEverySimHours * 3600;
      const e = this.pick();
      if (e) this.tamper(e.desc.id);
    }
    if (f.powerLossEverySimHours && simNow >= this.nextPowerLossSimS) {
      this.nextPowerLossSimS = simNow + f.powerLossEverySimHours * 3600;
      const e = this.pick();
      // Between one and thirty minutes: some short, some "long" (>= 3 min) outages.
      if (e) this.powerLoss(e.desc.id, this.realMsFor(60 + Math.floor(this.random() * 29 * 60), nowMs));
    }
    if (f.feederOutageEverySimHours && simNow >= this.nextFeederOutageSimS) {
      this.nextFeederOutageSimS = simNow + f.feederOutageEverySimHours * 3600;
      this.scheduledFeederOutage(nowMs);
    }
    if (f.householdOutageEverySimHours && simNow >= this.nextHouseholdOutageSimS) {
      this.nextHouseholdOutageSimS = simNow + f.householdOutageEverySimHours * 3600;
      const e = this.pick();
      if (e) this.householdOutage(e.desc.id, this.realMsFor((f.householdOutageSimMinutes ?? 20) * 60, nowMs));
    }
    if (f.dropEveryMinutes && nowMs >= this.nextDropMs) {
      this.nextDropMs = nowMs + f.dropEveryMinutes * 60_000;
      const e = this.pick();
      if (e) this.dropNetwork(e.desc.id, 5_000 + Math.floor(this.random() * 55_000));
    }
    if (f.restartEveryMinutes && nowMs >= this.nextRestartMs) {
      this.nextRestartMs = nowMs + f.restartEveryMinutes * 60_000;
      const e = this.pick();
      if (e) this.restartMeter(e.desc.id);
    }
  }

  private slowestSimNow(nowMs: number): number {
    let min = Infinity;
    for (const e of this.entries.values()) min = Math.min(min, this.simNow(e, nowMs));
    return min;
  }

  /** A feeder outage of the configured shape on a random feeder that has mains. */
  private scheduledFeederOutage(nowMs: number): void {
    const f = this.opts.faults ?? {};
    const feeders = this.feeders().filter((id) =>
      [...this.entries.values()].some((e) => e.desc.feederId === id && e.client.meter.powerOn),
    );
    const feeder = feeders[Math.floor(this.random() * feeders.length)];
    if (feeder === undefined) return;
    const forMs = this.realMsFor((f.feederOutageSimMinutes ?? 5) * 60, nowMs);
    this.feederOutage(feeder, {
      forMs,
      lastGaspShare: f.lastGaspShare,
      stragglers: f.stragglers,
      stragglerExtraMs:
        f.stragglerExtraSimMinutes === undefined
          ? undefined
          : this.realMsFor(f.stragglerExtraSimMinutes * 60, nowMs),
      // A few simulated seconds, like the restores of a real feeder.
      restoreJitterMs: this.realMsFor(5, nowMs),
    });
  }

  /** The feeders of the fleet's meters, in order of first appearance. */
  feeders(): string[] {
    const ids = new Set<string>();
    for (const e of this.entries.values()) if (e.desc.feederId !== undefined) ids.add(e.desc.feederId);
    return [...ids];
  }

  private pick(): Entry | undefined {
    const online = [...this.entries.values()].filter((e) => !e.offline && e.client.meter.powerOn);
    return online[Math.floor(this.random() * online.length)];
  }

  private entry(id: string): Entry {
    const e = this.entries.get(id);
    if (!e) throw new Error(`no meter ${id} in this fleet`);
    return e;
  }

  // ------------------------------------------------------------------ fault injection API

  tamper(id: string, kind?: TamperKind): void {
    const e = this.entry(id);
    const kinds = ['cover', 'terminal', 'magnetic'] as const;
    const k = kind ?? kinds[Math.floor(this.random() * kinds.length)] ?? 'cover';
    e.client.injectTamper(k, this.simNow(e, this.clock.now()));
    this.faultCounts.tamper++;
    this.opts.log?.(`fault: tamper.${k} on ${id}`);
  }

  /** Mains lost now (last gasp), restored after `forMs` real milliseconds. */
  powerLoss(id: string, forMs: number): void {
    const e = this.entry(id);
    if (!e.client.meter.powerOn) return;
    const outage = ++this.outageSeq;
    e.outage = outage;
    e.client.powerFail(this.simNow(e, this.clock.now()));
    this.faultCounts.powerLoss++;
    this.opts.log?.(`fault: power loss on ${id} for ${Math.round(forMs)} ms`);
    this.later(forMs, () => this.restore(e, outage));
  }

  /**
   * All meters of `feederId` lose mains at this instant. A share of them get their last gasp
   * out, the others go silent (their power.fail waits in the outbox); after `forMs` they come
   * back within `restoreJitterMs` of each other, except the stragglers, which stay off
   * `stragglerExtraMs` longer. Meters already without mains are left as they are. Who gasps
   * and who straggles is drawn with the fleet's `random`, so a seeded fleet repeats it.
   */
  feederOutage(feederId: string, o: FeederOutageOptions): FeederOutageReport {
    const nowMs = this.clock.now();
    const on = [...this.entries.values()].filter(
      (e) => e.desc.feederId === feederId && e.client.meter.powerOn,
    );
    const share = Math.min(1, Math.max(0, o.lastGaspShare ?? 0.6));
    const gasping = new Set(this.shuffled(on).slice(0, Math.round(share * on.length)));
    const nStragglers = Math.min(
      on.length,
      (o.stragglers ?? 0) < 1 ? Math.round((o.stragglers ?? 0) * on.length) : Math.floor(o.stragglers ?? 0),
    );
    const stragglers = new Set(this.shuffled(on).slice(0, nStragglers));
    const outage = ++this.outageSeq;
    for (const e of on) {
      e.outage = outage;
      // One instant for the whole feeder: each meter's simulated now (they may differ by a tick).
      e.client.powerFail(this.simNow(e, nowMs), { lastGasp: gasping.has(e) });
    }
    const jitter = o.restoreJitterMs ?? 3000;
    const extra = o.stragglerExtraMs ?? o.forMs;
    for (const e of on) {
      const at = o.forMs + (stragglers.has(e) ? extra : 0) + Math.floor(this.random() * jitter);
      this.later(at, () => this.restore(e, outage));
    }
    this.faultCounts.feederOutages++;
    const ids = (es: Iterable<Entry>) => [...es].map((e) => e.desc.id);
    const report: FeederOutageReport = {
      feederId,
      meters: ids(on),
      lastGasp: ids(on.filter((e) => gasping.has(e))),
      silent: ids(on.filter((e) => !gasping.has(e))),
      stragglers: ids(stragglers),
    };
    this.opts.log?.(
      `fault: feeder outage on ${feederId} for ${Math.round(o.forMs)} ms: ${report.meters.length} meters, ` +
        `${report.lastGasp.length} last gasps, ${report.stragglers.length} stragglers (+${Math.round(extra)} ms)`,
    );
    return report;
  }

  /** One household loses mains now for `forMs` real ms (with its last gasp unless `lastGasp` is false). */
  householdOutage(id: string, forMs: number, o: { lastGasp?: boolean } = {}): void {
    const e = this.entry(id);
    if (!e.client.meter.powerOn) return;
    const outage = ++this.outageSeq;
    e.outage = outage;
    e.client.powerFail(this.simNow(e, this.clock.now()), { lastGasp: o.lastGasp ?? true });
    this.faultCounts.householdOutages++;
    this.opts.log?.(`fault: household outage on ${id} for ${Math.round(forMs)} ms`);
    this.later(forMs, () => this.restore(e, outage));
  }

  private restore(e: Entry, outage: number): void {
    if (e.outage !== outage) return;
    e.outage = 0;
    // A meter whose network is also down reconnects when the network comes back (dropNetwork).
    e.client.powerRestore(this.simNow(e, this.clock.now()), { connect: !e.offline });
  }

  /** A Fisher-Yates shuffle drawn from the fleet's `random`. */
  private shuffled<T>(xs: T[]): T[] {
    const a = [...xs];
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1));
      [a[i], a[j]] = [a[j]!, a[i]!];
    }
    return a;
  }

  /** The meter's network goes away for `forMs` real milliseconds; the meter keeps metering. */
  dropNetwork(id: string, forMs: number): void {
    const e = this.entry(id);
    if (e.offline) return;
    e.offline = true;
    e.client.dropConnection();
    this.faultCounts.drops++;
    this.opts.log?.(`fault: network drop on ${id} for ${forMs} ms`);
    this.later(forMs, () => {
      e.offline = false;
      if (e.client.meter.powerOn) this.connectQueue.push(e);
    });
  }

  /**
   * faults.fwPowerLossShare: once per image, a drawn share of the meters lose power when the
   * image's progress reaches a drawn point — downloading counts 0-0.7 by blocks held, verified
   * 0.75, scheduled 0.8, on trial 0.9 — and boot again from their durable state.
   */
  private maybeFirmwarePowerLoss(e: Entry): void {
    const share = this.opts.faults?.fwPowerLossShare ?? 0;
    const p = e.client.meter.firmwarePending;
    if (share <= 0 || !p) return;
    if (e.fwLoss?.image !== p.manifest.sha256) {
      e.fwLoss = { image: p.manifest.sha256, at: this.random() < share ? this.random() * 0.95 : null };
    }
    if (e.fwLoss.at === null) return;
    const of = p.have.length;
    const progress =
      p.state === 'downloading'
        ? (0.7 * [...p.have].filter((c) => c === '1').length) / of
        : { verified: 0.75, scheduled: 0.8, trial: 0.9 }[p.state];
    if (progress < e.fwLoss.at) return;
    e.fwLoss.at = null;
    this.faultCounts.fwPowerLoss++;
    this.opts.log?.(`fault: power loss on ${e.desc.id} during firmware ${p.state} (${p.manifest.version})`);
    this.restartMeter(e.desc.id);
  }

  /** Kill the meter "process" and boot a new one from its store, as after a watchdog reset. */
  restartMeter(id: string): void {
    const e = this.entry(id);
    const old = e.client;
    old.dropConnection();
    for (const k of [
      'published',
      'acked',
      'commandsOk',
      'commandsRejected',
      'malformed',
      'errors',
    ] as const) {
      e.retired[k] += old.counters[k];
    }
    e.client = this.makeClient(e.desc, e.store, e.slowLink);
    e.simStartS = Math.max(this.simNow(e, this.clock.now()), e.client.meter.cursor);
    e.realStartMs = this.clock.now();
    this.faultCounts.restarts++;
    this.opts.log?.(`fault: restart of ${id}`);
    if (!e.offline) this.connectQueue.push(e);
  }

  stats(): FleetStats {
    const s: FleetStats = {
      meters: this.entries.size,
      connected: 0,
      published: 0,
      acked: 0,
      backlog: 0,
      commandsOk: 0,
      commandsRejected: 0,
      malformed: 0,
      errors: 0,
      faults: { ...this.faultCounts },
      simMinS: Infinity,
    };
    const nowMs = this.clock.now();
    for (const e of this.entries.values()) {
      const c = e.client.counters;
      if (e.client.connected) s.connected++;
      s.published += c.published + e.retired.published;
      s.acked += c.acked + e.retired.acked;
      s.commandsOk += c.commandsOk + e.retired.commandsOk;
      s.commandsRejected += c.commandsRejected + e.retired.commandsRejected;
      s.malformed += c.malformed + e.retired.malformed;
      s.errors += c.errors + e.retired.errors;
      s.backlog += e.client.meter.outbox.length;
      s.simMinS = Math.min(s.simMinS, this.simNow(e, nowMs));
    }
    if (!Number.isFinite(s.simMinS)) s.simMinS = Math.floor(nowMs / 1000);
    return s;
  }
}

export function formatStats(s: FleetStats): string {
  const sim = new Date(s.simMinS * 1000).toISOString().slice(0, 16);
  const f = s.faults;
  return (
    `sim=${sim}Z connected=${s.connected}/${s.meters} published=${s.published} acked=${s.acked} ` +
    `backlog=${s.backlog} commands=${s.commandsOk} rejected=${s.commandsRejected} malformed=${s.malformed} ` +
    `errors=${s.errors} faults=t${f.tamper}/p${f.powerLoss}/d${f.drops}/r${f.restarts}` +
    `/feeder${f.feederOutages}/household${f.householdOutages}`
  );
}
