import pg from 'pg';
import type { Logger } from '../log.ts';
import { RateLimitedLog } from '../log.ts';

/**
 * LISTEN on one or more channels over a connection of its own (not a pool slot, which a
 * long-lived LISTEN would hold forever), reconnecting with backoff when the database
 * restarts. NOTIFY is only a wake-up call: every user also sweeps on a timer, so a
 * notification lost while reconnecting delays work by at most one sweep.
 */
export class Listener {
  private client: pg.Client | undefined;
  private stopped = false;
  private retryMs = 250;
  private timer: NodeJS.Timeout | undefined;
  private readonly warn: RateLimitedLog;

  constructor(
    private readonly url: string,
    private readonly channels: string[],
    private readonly onNotify: (channel: string, payload: string) => void,
    log: Logger,
    /** Called after every (re)connection: whatever was notified meanwhile is found by a sweep. */
    private readonly onConnected: () => void = () => undefined,
  ) {
    for (const c of channels) if (!/^[a-z_][a-z0-9_]*$/.test(c)) throw new Error(`bad channel ${c}`);
    this.warn = new RateLimitedLog(log, 30_000);
  }

  start(): void {
    void this.connect();
  }

  get connected(): boolean {
    return this.client !== undefined;
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const c = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 5_000, keepAlive: true });
    // Without a listener a lost connection would be an unhandled 'error' and end the process.
    c.on('error', (err) => this.lost(c, err));
    c.on('end', () => this.lost(c, new Error('connection ended')));
    c.on('notification', (n) => this.onNotify(n.channel, n.payload ?? ''));
    try {
      await c.connect();
      for (const ch of this.channels) await c.query(`LISTEN ${ch}`);
    } catch (err) {
      await c.end().catch(() => undefined);
      this.warn.warn(
        'listen',
        { err: (err as Error).message, channels: this.channels },
        'LISTEN failed; retrying',
      );
      this.schedule();
      return;
    }
    if (this.stopped) {
      await c.end().catch(() => undefined);
      return;
    }
    this.client = c;
    this.retryMs = 250;
    this.onConnected();
  }

  private lost(c: pg.Client, err: Error): void {
    if (this.client !== c) return;
    this.client = undefined;
    if (this.stopped) return;
    this.warn.warn(
      'lost',
      { err: err.message, channels: this.channels },
      'LISTEN connection lost; reconnecting',
    );
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.connect(), this.retryMs);
    this.timer.unref();
    this.retryMs = Math.min(this.retryMs * 2, 5_000);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const c = this.client;
    this.client = undefined;
    await c?.end().catch(() => undefined);
  }
}
