import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { z } from 'zod';
import { generateSigningKeyPair, publicKeyB64FromPrivate } from '@kilowire/protocol';

/**
 * All settings in one schema, read from the environment (and `--services=` on the command
 * line). Validation lists every problem at once; `main` prints them and exits non-zero.
 */
const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((s) => s === 'true' || s === '1' || s === 'yes');
const port = z.coerce.number().int().min(1).max(65535);

export const SERVICES = ['broker', 'gateway', 'jobs', 'api', 'simulator'] as const;
export type Service = (typeof SERVICES)[number];

export const envSchema = z.object({
  PORT: port.default(8080),
  HOST: z.string().default('127.0.0.1'),
  DATA_DIR: z.string().default('./data'),
  DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }).optional(),
  EMBEDDED_PG_PORT: port.default(54329),
  MQTT_URL: z.url({ protocol: /^(mqtt|mqtts|tcp|ws|wss)$/ }).optional(),
  MQTT_USERNAME: z.string().default('headend'),
  MQTT_PASSWORD: z.string().min(1).optional(),
  EMBEDDED_MQTT_PORT: port.default(18830),
  /** MQTT shared-subscription group for scaled-out gateways (EMQX/HiveMQ/Mosquitto 2). */
  MQTT_SHARE_GROUP: z.string().regex(/^[A-Za-z0-9_-]+$/).optional(),
  COMMAND_SIGNING_KEY: z.base64().optional(),
  SERVICES: z.string().optional(),
  SIM_METERS: z.coerce.number().int().min(0).max(100_000).default(25),
  SIM_SPEED: z.coerce.number().min(1).max(100_000).default(1440),
  SIM_BACKFILL_DAYS: z.coerce.number().int().min(0).max(400).default(3),
  DEMO_SEED: bool.optional(),
  /** Time zone of the demo households' meters (their calendar days, time-of-use bands). */
  DEMO_TZ: z
    .string()
    .refine((tz) => {
      try {
        new Intl.DateTimeFormat('en', { timeZone: tz });
        return true;
      } catch {
        return false;
      }
    }, 'not an IANA time zone')
    .default('Europe/London'),
  COOKIE_SECURE: bool.default(false),
  SESSION_TTL_HOURS: z.coerce.number().int().min(1).max(24 * 90).default(12),
  /** Refuse to run on a PostgreSQL that may lose committed data unless this is set. */
  UNSAFE_ALLOW_NON_DURABLE_DB: bool.default(false),
  GATEWAY_BATCH_MAX: z.coerce.number().int().min(1).max(100_000).default(2000),
  GATEWAY_LANES: z.coerce.number().int().min(1).max(32).default(2),
  /** MQTT client id of the gateway; aedes requires the `kw-` prefix for head-end logins. */
  GATEWAY_CLIENT_ID: z.string().regex(/^kw-[A-Za-z0-9_-]{1,60}$/).default('kw-gateway'),
  GATEWAY_FLUSH_MS: z.coerce.number().int().min(0).max(5000).default(5),
  COMMAND_RETRY_S: z.coerce.number().int().min(1).max(3600).default(30),
  /** Email for alerts: smtp://user:pass@host:port (STARTTLS when offered) or smtps://. Unset: the outbox table. */
  SMTP_URL: z.url({ protocol: /^smtps?$/ }).optional(),
  SMTP_FROM: z.string().min(3).max(254).default('Kilowire <alerts@kilowire.invalid>'),
  /** SMS for alerts: smpp://system_id:password@host:port. Unset: the outbox table. */
  SMPP_URL: z.url({ protocol: /^smpp$/ }).optional(),
  /** Sender of SMS: up to 11 letters/digits (alphanumeric) or a number. */
  SMS_FROM: z.string().regex(/^(\+?\d{3,15}|[A-Za-z0-9 ]{1,11})$/, 'up to 11 letters/digits, or a phone number').default('Kilowire'),
  /** Delivery attempts after the first, with exponential backoff from NOTIFY_RETRY_DELAY_S. */
  NOTIFY_RETRY_LIMIT: z.coerce.number().int().min(0).max(20).default(5),
  NOTIFY_RETRY_DELAY_S: z.coerce.number().int().min(1).max(3600).default(30),
  /** How often idle delivery workers poll the queue (pg-boss minimum 0.5 s). */
  NOTIFY_POLL_S: z.coerce.number().min(0.5).max(60).default(2),
  NOTIFY_CONCURRENCY: z.coerce.number().int().min(1).max(50).default(4),
  /** Fallback sweep of undispatched deliveries (normally woken at once by NOTIFY). */
  NOTIFY_DISPATCH_MS: z.coerce.number().int().min(100).max(600_000).default(5000),
  /** Limit alerts consider local today and this many days before (late or resent readings). */
  ALERT_LOOKBACK_DAYS: z.coerce.number().int().min(0).max(31).default(1),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export interface Config {
  port: number;
  host: string;
  dataDir: string;
  /** Unset: embedded PostgreSQL under dataDir/pg. */
  databaseUrl: string | undefined;
  embeddedPgPort: number;
  /** Unset: embedded aedes broker. */
  mqttUrl: string | undefined;
  mqttUsername: string;
  mqttPassword: string;
  embeddedMqttPort: number;
  mqttShareGroup: string | undefined;
  commandSigningKey: string;
  commandPublicKey: string;
  services: Set<Service>;
  sim: { meters: number; speed: number; backfillDays: number };
  demoSeed: boolean;
  demoTz: string;
  cookieSecure: boolean;
  sessionTtlHours: number;
  unsafeAllowNonDurableDb: boolean;
  gateway: { batchMax: number; lanes: number; flushMs: number; commandRetryS: number; clientId: string };
  notify: NotifyConfig;
  alerts: { lookbackDays: number };
  logLevel: string;
}

export interface NotifyConfig {
  /** Unset: email goes to the outbox table. Secret (has the password): never logged. */
  smtpUrl: string | undefined;
  smtpFrom: string;
  /** Unset: SMS goes to the outbox table. Secret: never logged. */
  smppUrl: string | undefined;
  smsFrom: string;
  retryLimit: number;
  retryDelayS: number;
  pollS: number;
  concurrency: number;
  dispatchMs: number;
}

/** Notify settings with every default: outbox only (what tests and a fresh checkout get). */
export function defaultNotifyConfig(over: Partial<NotifyConfig> = {}): NotifyConfig {
  return {
    smtpUrl: undefined,
    smtpFrom: 'Kilowire <alerts@kilowire.invalid>',
    smppUrl: undefined,
    smsFrom: 'Kilowire',
    retryLimit: 5,
    retryDelayS: 30,
    pollS: 2,
    concurrency: 4,
    dispatchMs: 5000,
    ...over,
  };
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

interface SecretsFile {
  commandSigningKey: string;
  commandPublicKey: string;
  mqttPassword: string;
  embeddedPgPassword: string;
}

/**
 * Secrets missing from the environment are generated once and kept in dataDir/secrets.json
 * (mode 0600). A multi-process deployment sets them in the environment instead, so every
 * process signs with the same key.
 */
export function loadOrCreateSecrets(dataDir: string): SecretsFile {
  const file = path.join(dataDir, 'secrets.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as SecretsFile;
  mkdirSync(dataDir, { recursive: true });
  const kp = generateSigningKeyPair();
  const secrets: SecretsFile = {
    commandSigningKey: kp.privateKey,
    commandPublicKey: kp.publicKey,
    mqttPassword: randomBytes(24).toString('base64url'),
    embeddedPgPassword: randomBytes(24).toString('base64url'),
  };
  writeFileSync(file, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  chmodSync(file, 0o600);
  return secrets;
}

export function parseServices(arg: string | undefined): Set<Service> {
  if (!arg) return new Set(SERVICES);
  const out = new Set<Service>();
  for (const s of arg.split(',').map((x) => x.trim()).filter(Boolean)) {
    if (!(SERVICES as readonly string[]).includes(s)) throw new ConfigError([`unknown service "${s}" (known: ${SERVICES.join(', ')})`]);
    out.add(s as Service);
  }
  return out;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, argv: string[] = process.argv.slice(2)): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  }
  const e = parsed.data;
  const servicesArg = argv.find((a) => a.startsWith('--services='))?.slice('--services='.length) ?? e.SERVICES;
  const services = parseServices(servicesArg);
  // With an external broker there is nothing to embed.
  if (e.MQTT_URL) services.delete('broker');
  const problems: string[] = [];
  if (e.MQTT_URL && !e.MQTT_PASSWORD) problems.push('MQTT_PASSWORD: required when MQTT_URL is set');
  if (problems.length) throw new ConfigError(problems);

  const dataDir = path.resolve(e.DATA_DIR);
  const secrets = loadOrCreateSecrets(dataDir);
  let commandSigningKey = secrets.commandSigningKey;
  let commandPublicKey = secrets.commandPublicKey;
  if (e.COMMAND_SIGNING_KEY) {
    commandSigningKey = e.COMMAND_SIGNING_KEY;
    try {
      commandPublicKey = publicKeyB64FromPrivate(e.COMMAND_SIGNING_KEY);
    } catch {
      throw new ConfigError(['COMMAND_SIGNING_KEY: must be a base64 Ed25519 private key (32 bytes)']);
    }
  }
  return {
    port: e.PORT,
    host: e.HOST,
    dataDir,
    databaseUrl: e.DATABASE_URL,
    embeddedPgPort: e.EMBEDDED_PG_PORT,
    mqttUrl: e.MQTT_URL,
    mqttUsername: e.MQTT_USERNAME,
    mqttPassword: e.MQTT_PASSWORD ?? secrets.mqttPassword,
    embeddedMqttPort: e.EMBEDDED_MQTT_PORT,
    mqttShareGroup: e.MQTT_SHARE_GROUP,
    commandSigningKey,
    commandPublicKey,
    services,
    sim: { meters: e.SIM_METERS, speed: e.SIM_SPEED, backfillDays: e.SIM_BACKFILL_DAYS },
    demoSeed: e.DEMO_SEED ?? !e.DATABASE_URL,
    demoTz: e.DEMO_TZ,
    cookieSecure: e.COOKIE_SECURE,
    sessionTtlHours: e.SESSION_TTL_HOURS,
    unsafeAllowNonDurableDb: e.UNSAFE_ALLOW_NON_DURABLE_DB,
    gateway: {
      batchMax: e.GATEWAY_BATCH_MAX,
      lanes: e.GATEWAY_LANES,
      flushMs: e.GATEWAY_FLUSH_MS,
      commandRetryS: e.COMMAND_RETRY_S,
      clientId: e.GATEWAY_CLIENT_ID,
    },
    notify: {
      smtpUrl: e.SMTP_URL,
      smtpFrom: e.SMTP_FROM,
      smppUrl: e.SMPP_URL,
      smsFrom: e.SMS_FROM,
      retryLimit: e.NOTIFY_RETRY_LIMIT,
      retryDelayS: e.NOTIFY_RETRY_DELAY_S,
      pollS: e.NOTIFY_POLL_S,
      concurrency: e.NOTIFY_CONCURRENCY,
      dispatchMs: e.NOTIFY_DISPATCH_MS,
    },
    alerts: { lookbackDays: e.ALERT_LOOKBACK_DAYS },
    logLevel: e.LOG_LEVEL,
  };
}

/** The embedded PostgreSQL password lives with the other generated secrets. */
export function embeddedPgPassword(dataDir: string): string {
  return loadOrCreateSecrets(dataDir).embeddedPgPassword;
}
