import { pino, type Logger } from 'pino';

/**
 * One root logger; subsystems take a named child (`log.child({ sub: 'gateway' })`).
 * Secrets are redacted by path so a careless `log.info(config)` still leaks nothing.
 */
export const rootLogger: Logger = pino({
  level: process.env.LOG_LEVEL ?? 'info',
  redact: {
    paths: [
      'password',
      '*.password',
      'commandSigningKey',
      '*.commandSigningKey',
      'firmwareSigningKey',
      '*.firmwareSigningKey',
      'databaseUrl',
      '*.databaseUrl',
      'mqttPassword',
      '*.mqttPassword',
      'smtpUrl',
      '*.smtpUrl',
      '*.*.smtpUrl',
      'smppUrl',
      '*.smppUrl',
      '*.*.smppUrl',
      'req.headers.cookie',
      'res.headers["set-cookie"]',
    ],
    censor: '[redacted]',
  },
});

export function logger(sub: string): Logger {
  return rootLogger.child({ sub });
}
export type { Logger };

/**
 * Repeated failures (a database that is down, a flood of bad payloads) must not become a
 * logging outage: each key logs at most once per `everyMs`, with how many were suppressed.
 */
export class RateLimitedLog {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly log: Logger,
    private readonly everyMs = 10_000,
  ) {}

  private pass(key: string): number | null {
    const now = Date.now();
    const s = this.last.get(key);
    if (s && now - s.at < this.everyMs) {
      s.suppressed++;
      return null;
    }
    const suppressed = s?.suppressed ?? 0;
    // Bounded: keys are a fixed set of call sites (and codes), never per message.
    if (this.last.size > 1000) this.last.clear();
    this.last.set(key, { at: now, suppressed: 0 });
    return suppressed;
  }

  warn(key: string, obj: Record<string, unknown>, msg: string): void {
    const n = this.pass(key);
    if (n !== null) this.log.warn(n ? { ...obj, suppressed: n } : obj, msg);
  }

  error(key: string, obj: Record<string, unknown>, msg: string): void {
    const n = this.pass(key);
    if (n !== null) this.log.error(n ? { ...obj, suppressed: n } : obj, msg);
  }
}
