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
