import { Listener } from '../db/listener.ts';
import { RateLimitedLog, type Logger } from '../log.ts';

export interface SweeperOptions {
  /** For log lines: what is swept ('event dispatch', 'delivery dispatch'). */
  name: string;
  /** One unit of work; returns how much it did. Repeated until it does nothing. */
  work: () => Promise<number>;
  /** After each round that ran to the end (housekeeping); optional. */
  after?: () => Promise<void>;
  /** Fallback sweep interval, ms. */
  sweepMs: number;
  /** NOTIFY channel that wakes it, and the database to LISTEN on; unset = timer only. */
  channel?: { name: string; databaseUrl: string };
  /** After a NOTIFY, wait this long before running (coalesces a burst of notifications), ms. */
  gatherMs?: number;
  log: Logger;
}

/**
 * Runs a unit of work until it finds nothing left, one run at a time, whenever it is woken:
 * by NOTIFY (a LISTEN connection that reconnects by itself), by a timer (the fallback for a
 * notification missed while reconnecting), or by `kick()`. A wake-up during a run makes the
 * run go round once more, so nothing notified is left for the next sweep. Failures are
 * logged (at most every 10 s) and retried on the next wake-up.
 */
export class Sweeper {
  private timer: NodeJS.Timeout | undefined;
  private gather: NodeJS.Timeout | undefined;
  private listener: Listener | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private readonly errLog: RateLimitedLog;

  constructor(private readonly o: SweeperOptions) {
    this.errLog = new RateLimitedLog(o.log, 10_000);
  }

  start(): void {
    const ch = this.o.channel;
    if (ch) {
      this.listener = new Listener(
        ch.databaseUrl,
        [ch.name],
        () => this.soon(),
        this.o.log,
        () => this.kick(),
      );
      this.listener.start();
    }
    this.timer = setInterval(() => this.kick(), this.o.sweepMs);
    this.kick();
  }

  /** Run after the gathering delay (or at once without one). */
  private soon(): void {
    if (!this.o.gatherMs) {
      this.kick();
      return;
    }
    if (this.gather || this.stopped) return;
    this.gather = setTimeout(() => {
      this.gather = undefined;
      this.kick();
    }, this.o.gatherMs);
  }

  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          while ((await this.o.work()) > 0 && !this.stopped);
          await this.o.after?.();
        } catch (err) {
          this.errLog.error(this.o.name, { err }, `${this.o.name} failed; will retry`);
        }
      } while (this.again && !this.stopped);
    })().finally(() => {
      this.running = undefined;
    });
  }

  /** Resolves when no run is in progress (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.gather);
    await this.listener?.stop();
    await this.idle();
  }
}
