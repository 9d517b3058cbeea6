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
  /** The other nodes of a clustered broker (comma list): the gateway moves to the next when its node dies. */
  MQTT_FAILOVER_URLS: z
    .string()
    .transform((s) =>
      s
        .split(',')
        .map((u) => u.trim())
        .filter(Boolean),
    )
    .pipe(z.array(z.url({ protocol: /^(mqtt|mqtts|tcp|ws|wss)$/ })))
    .default([]),
  /** #11 QoS of the gateway's acks to the meters: 0 for a NATS cluster (docs/broker.md), else 1. */
  MQTT_ACK_QOS: z.coerce.number().int().min(0).max(1).default(1),
  MQTT_USERNAME: z.string().default('headend'),
  MQTT_PASSWORD: z.string().min(1).optional(),
  EMBEDDED_MQTT_PORT: port.default(18830),
  /** MQTT shared-subscription group for scaled-out gateways (EMQX/HiveMQ/Mosquitto 2). */
  MQTT_SHARE_GROUP: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/)
    .optional(),
  COMMAND_SIGNING_KEY: z.base64().optional(),
  /**
   * #10 the firmware key's public half: uploads and meters check image manifests against it.
   * Not the command key. Unset: the key generated in DATA_DIR/secrets.json (dev and demo).
   */
  FIRMWARE_PUBLIC_KEY: z.base64().optional(),
  /**
   * #10 the firmware key's private half, for the demo's own image only. A real deployment keeps
   * it offline (the vendor signs with `npm run firmware -- sign`) and leaves this unset.
   */
  FIRMWARE_SIGNING_KEY: z.base64().optional(),
  /** #10 where uploaded images are kept (default DATA_DIR/firmware). */
  FIRMWARE_DIR: z.string().optional(),
  /** #10 the largest image an upload may carry (bytes). */
  FIRMWARE_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(16 * 1024 * 1024)
    .default(16 * 1024 * 1024),
  SERVICES: z.string().optional(),
  SIM_METERS: z.coerce.number().int().min(0).max(100_000).default(25),
  /**
   * Simulated seconds per real second while meters catch up. High by default: a meter never
   * runs more than 16 days ahead of the head-end's acknowledgements, so the history goes at
   * the pace the gateway commits it, with memory bounded.
   */
  SIM_SPEED: z.coerce.number().min(1).max(100_000_000).default(10_000_000),
  /** About 13 months: a year of statistics and tariff comparisons, and last month's bills. */
  SIM_BACKFILL_DAYS: z.coerce.number().int().min(0).max(1000).default(400),
  /**
   * The simulator's faults, on its simulated clock, once it has caught up with real time (the
   * backfilled history has none: hundreds of past tampers and incidents would bury the demo).
   * 0 turns one off.
   */
  SIM_TAMPER_EVERY_HOURS: z.coerce.number().min(0).max(100_000).default(6),
  SIM_FEEDER_OUTAGE_EVERY_HOURS: z.coerce.number().min(0).max(100_000).default(8),
  SIM_FEEDER_OUTAGE_MINUTES: z.coerce.number().positive().max(10_080).default(4),
  SIM_LAST_GASP_SHARE: z.coerce.number().min(0).max(1).default(0.6),
  SIM_STRAGGLERS: z.coerce.number().int().min(0).max(100_000).default(1),
  /** Real seconds after the catch-up: one tamper, and 30 s later one feeder outage (0 = off). */
  SIM_FIRST_FAULTS_AFTER_S: z.coerce.number().int().min(0).max(86_400).default(30),
  DEMO_SEED: bool.optional(),
  /** Once the demo's history is in: a network tariff on its area, last month collected and invoiced to the supplier. */
  DEMO_NETWORK_CHARGES: bool.default(true),
  /** #10 D: once the demo's history is in, one signed image and a small campaign the simulated meters run to the end. */
  DEMO_FIRMWARE: bool.default(true),
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
  SESSION_TTL_HOURS: z.coerce
    .number()
    .int()
    .min(1)
    .max(24 * 90)
    .default(12),
  /** Refuse to run on a PostgreSQL that may lose committed data unless this is set. */
  UNSAFE_ALLOW_NON_DURABLE_DB: bool.default(false),
  GATEWAY_BATCH_MAX: z.coerce.number().int().min(1).max(100_000).default(2000),
  GATEWAY_LANES: z.coerce.number().int().min(1).max(32).default(2),
  /** MQTT client id of the gateway; aedes requires the `kw-` prefix for head-end logins. */
  GATEWAY_CLIENT_ID: z
    .string()
    .regex(/^kw-[A-Za-z0-9_-]{1,60}$/)
    .default('kw-gateway'),
  GATEWAY_FLUSH_MS: z.coerce.number().int().min(0).max(5000).default(50),
  /** First resend delay of an unanswered command (s); doubles per attempt up to COMMAND_MAX_RETRY_S. */
  COMMAND_RETRY_S: z.coerce.number().int().min(1).max(3600).default(30),
  COMMAND_MAX_RETRY_S: z.coerce.number().int().min(1).max(86_400).default(900),
  /** A command not applied within this many seconds of being queued is refused by the meter (EXPIRED). */
  COMMAND_TTL_S: z.coerce
    .number()
    .int()
    .min(10)
    .max(30 * 86_400)
    .default(86_400),
  /**
   * Memory (estimated: 6 bytes per payload byte, measured for decoded messages with their VEE
   * rows) the gateway may hold in messages waiting for the database, MiB; beyond it, it stops
   * reading from the broker (backpressure). 64 MiB holds ~10,000 day batches or ~70,000 single readings.
   */
  GATEWAY_MAX_BUFFER_MB: z.coerce.number().int().min(1).max(4096).default(64),
  /** Longest a database statement may run (ms); a hung database fails queries instead of hanging them. */
  DB_STATEMENT_TIMEOUT_MS: z.coerce.number().int().min(1000).max(3_600_000).default(30_000),
  /** Fallback sweep of undispatched domain events (normally woken at once by NOTIFY), ms. */
  EVENTS_SWEEP_MS: z.coerce.number().int().min(100).max(600_000).default(2000),
  /** After a NOTIFY, gather events this long before dispatching them together (ms). */
  EVENTS_GATHER_MS: z.coerce.number().int().min(0).max(10_000).default(100),
  /**
   * A domain event job still running after this many seconds is taken to belong to a dead
   * process and is retried (handlers are idempotent). Handlers take well under a second.
   */
  JOB_TIMEOUT_S: z.coerce.number().int().min(1).max(3600).default(60),
  /** How often the queue's maintenance (retrying timed-out jobs, archiving) runs, seconds. */
  JOBS_MAINTENANCE_S: z.coerce.number().int().min(1).max(3600).default(30),
  /** Dispatched domain events are kept this many days. */
  EVENTS_RETENTION_DAYS: z.coerce.number().int().min(1).max(3650).default(7),
  /** Bearer token that /metrics requires; unset = /metrics is open (bind METRICS_PORT to a private address instead). */
  METRICS_TOKEN: z.string().min(16).optional(),
  /** Serve /metrics on this port only (on METRICS_HOST), not on the public PORT. */
  METRICS_PORT: port.optional(),
  METRICS_HOST: z.string().default('127.0.0.1'),
  /**
   * Behind a reverse proxy: which X-Forwarded-* to believe (client address for rate limits and
   * audit, https for the Secure cookie). false (default), true (any hop), a number of hops, or
   * a comma list of proxy addresses/CIDRs.
   */
  TRUST_PROXY: z.string().default('false'),
  /** Extra origins (comma list, e.g. https://portal.example.com) allowed to send state-changing requests. */
  ALLOWED_ORIGINS: z.string().default(''),
  /** Email for alerts: smtp://user:pass@host:port (STARTTLS when offered) or smtps://. Unset: the outbox table. */
  SMTP_URL: z.url({ protocol: /^smtps?$/ }).optional(),
  SMTP_FROM: z.string().min(3).max(254).default('Kilowire <alerts@kilowire.invalid>'),
  /** SMS for alerts: smpp://system_id:password@host:port. Unset: the outbox table. */
  SMPP_URL: z.url({ protocol: /^smpp$/ }).optional(),
  /** Sender of SMS: up to 11 letters/digits (alphanumeric) or a number. */
  SMS_FROM: z
    .string()
    .regex(/^(\+?\d{3,15}|[A-Za-z0-9 ]{1,11})$/, 'up to 11 letters/digits, or a phone number')
    .default('Kilowire'),
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
  /** Stripe secret API key (sk_live_... / sk_test_...). With STRIPE_WEBHOOK_SECRET, payments go through Stripe. */
  STRIPE_SECRET_KEY: z
    .string()
    .regex(/^(sk|rk)_(test|live)_[A-Za-z0-9]+$/, 'a Stripe secret key: sk_test_... or sk_live_...')
    .optional(),
  /** Signing secret of the Stripe webhook endpoint (whsec_...). */
  STRIPE_WEBHOOK_SECRET: z
    .string()
    .regex(/^whsec_[A-Za-z0-9+/=_-]+$/, 'a Stripe webhook signing secret: whsec_...')
    .optional(),
  /** Another address for api.stripe.com (a proxy, or a test stand-in): https://host:port. */
  STRIPE_API_URL: z.url({ protocol: /^https?$/ }).optional(),
  /** The portal's public address, for the payment pages' return links (https://portal.example.com). */
  PUBLIC_URL: z.url({ protocol: /^https?$/ }).optional(),
  /**
   * Where the sandbox provider delivers its webhooks (default: this API on HOST:PORT). Set it
   * when the jobs service runs apart from the api.
   */
  SANDBOX_WEBHOOK_URL: z.url({ protocol: /^https?$/ }).optional(),
  /** Sandbox webhook signing secret (whsec_...); unset: generated once and kept in the database. */
  SANDBOX_WEBHOOK_SECRET: z
    .string()
    .regex(/^whsec_[A-Za-z0-9+/=_-]{16,}$/, 'whsec_ followed by at least 16 characters')
    .optional(),
  /** Webhooks signed longer ago than this are refused (s); Stripe's own default is 300. */
  PAYMENT_WEBHOOK_TOLERANCE_S: z.coerce.number().int().min(10).max(3600).default(300),
  /** Smallest and largest single top-up, and the most per account per local day, in minor units. */
  TOPUP_MIN_MINOR: z.coerce.number().int().min(1).max(10_000_000).default(500),
  TOPUP_MAX_MINOR: z.coerce.number().int().min(1).max(10_000_000).default(25_000),
  TOPUP_DAILY_MAX_MINOR: z.coerce.number().int().min(1).max(100_000_000).default(50_000),
  /** A bill is due this many days after it is issued (local days). */
  BILL_DUE_DAYS: z.coerce.number().int().min(0).max(90).default(14),
  /**
   * When the daily bill run looks for accounts whose billing period ended (5-field cron, UTC).
   * It bills every period that ended in the account's local calendar and has no bill yet.
   */
  BILL_RUN_CRON: z
    .string()
    .regex(/^\s*(\S+\s+){4}\S+\s*$/, 'a 5-field cron expression, e.g. "0 6 * * *"')
    .default('0 6 * * *'),
  /** Concurrent transactions (connections) one bill run uses. */
  BILL_RUN_WORKERS: z.coerce.number().int().min(1).max(16).default(2),
  /** Accounts billed per transaction in a bill run. */
  BILL_RUN_CHUNK: z.coerce.number().int().min(1).max(5000).default(500),
  /**
   * A running bill run whose items have not moved for this long (s) is handed to whichever
   * jobs process looks next: its process died (kill -9, OOM) and its pg-boss job would only be
   * retried after the job's 30-minute expiry.
   */
  BILL_RUN_STALL_S: z.coerce.number().int().min(2).max(3600).default(120),
  /**
   * Prepayment reconciliation: when (5-field cron, UTC) the mirror posts completed days and
   * compares each meter's reported credit with the ledger's; above CREDIT_DRIFT_MINOR
   * (absolute, minor units) the supplier gets a credit_drift alert.
   */
  RECONCILE_CRON: z
    .string()
    .regex(/^\s*(\S+\s+){4}\S+\s*$/, 'a 5-field cron expression, e.g. "7 * * * *"')
    .default('7 * * * *'),
  CREDIT_DRIFT_MINOR: z.coerce.number().int().min(1).max(1_000_000).default(200),
  // #9 collection
  /**
   * When (5-field cron, UTC) the daily collection looks for due days (a local day is due at
   * D+1 at the operator's cut-off in the area's time zone) and for days with late data.
   */
  COLLECTION_CRON: z
    .string()
    .regex(/^\s*(\S+\s+){4}\S+\s*$/, 'a 5-field cron expression, e.g. "*/15 * * * *"')
    .default('*/15 * * * *'),
  /** How many local days back a missed collection is still caught up (after downtime). */
  COLLECTION_CATCHUP_DAYS: z.coerce.number().int().min(1).max(62).default(7),
  // #9 collection end
  /**
   * #9 When (5-field cron, UTC) network operators invoice the previous month's network use to
   * each supplier; a month not fully collected yet is skipped until the next firing.
   */
  NETWORK_INVOICE_CRON: z
    .string()
    .regex(/^\s*(\S+\s+){4}\S+\s*$/, 'a 5-field cron expression, e.g. "0 7 3 * *"')
    .default('0 7 3 * *'),
  /**
   * #11 Monthly partitions of the reading tables exist this many months past the current one
   * (a reading no partition covers goes to the default partition, so this is slack, not a limit).
   */
  PARTITIONS_AHEAD_MONTHS: z.coerce.number().int().min(1).max(24).default(3),
  /** #11 When (5-field cron, UTC) the jobs service creates the reading partitions ahead. */
  PARTITIONS_CRON: z
    .string()
    .regex(/^\s*(\S+\s+){4}\S+\s*$/, 'a 5-field cron expression, e.g. "17 2 * * *"')
    .default('17 2 * * *'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

/** The demo simulator's faults (SIM_*); 0 turns one off. Absent: none. */
export interface SimFaults {
  tamperEveryHours: number;
  feederOutageEveryHours: number;
  feederOutageMinutes: number;
  lastGaspShare: number;
  stragglers: number;
  firstFaultsAfterS: number;
}

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
  /** Other nodes of a clustered broker, tried in turn after `mqttUrl`. */
  mqttFailoverUrls: string[];
  /** MQTT_ACK_QOS. */
  mqttAckQos: 0 | 1;
  commandSigningKey: string;
  commandPublicKey: string;
  /** #10 firmware manifests are checked against this (base64 raw Ed25519). */
  firmwarePublicKey: string;
  /** #10 only set for the demo's own image (env or generated secrets); null when the key is kept offline. */
  firmwareSigningKey: string | null;
  firmwareDir: string;
  firmwareMaxBytes: number;
  services: Set<Service>;
  sim: { meters: number; speed: number; backfillDays: number; faults?: SimFaults };
  demoSeed: boolean;
  /** The demo's network tariff, last month's collection and its network-use invoice (#9). */
  demoNetworkCharges: boolean;
  /** #10 D: the demo's firmware image and its small finished campaign. */
  demoFirmware: boolean;
  demoTz: string;
  cookieSecure: boolean;
  sessionTtlHours: number;
  unsafeAllowNonDurableDb: boolean;
  gateway: { batchMax: number; lanes: number; flushMs: number; clientId: string; maxBufferBytes: number };
  commands: { retryS: number; maxRetryS: number; ttlS: number };
  dbStatementTimeoutMs: number;
  events: {
    sweepMs: number;
    gatherMs: number;
    retentionDays: number;
    jobTimeoutS: number;
    maintenanceS: number;
  };
  metrics: { token: string | undefined; port: number | undefined; host: string };
  trustProxy: boolean | number | string[];
  allowedOrigins: string[];
  notify: NotifyConfig;
  alerts: { lookbackDays: number };
  payments: PaymentsConfig;
  bills: {
    dueDays: number;
    runCron: string;
    runWorkers: number;
    runChunk: number;
    /** s without progress before a running run is handed to another jobs process. */
    stallS: number;
    reconcileCron: string;
    driftMinor: number;
  };
  // #9 collection
  collection: { cron: string; catchUpDays: number };
  // #9 collection end
  /** #9 network-use charges. */
  netbilling: { invoiceCron: string };
  /** #11 reading partitions made ahead by the jobs service. */
  partitions: { cron: string; aheadMonths: number };
  logLevel: string;
}

export interface PaymentsConfig {
  /** Both set: Stripe. Neither: the sandbox. Secrets: never logged. */
  stripeSecretKey: string | undefined;
  stripeWebhookSecret: string | undefined;
  stripeApiUrl: string | undefined;
  /** Absolute base for return links; unset: links are relative to the portal that made the request. */
  publicUrl: string | undefined;
  /** Where sandbox webhooks go. */
  sandboxWebhookUrl: string;
  /** Unset: generated and kept in the database. */
  sandboxWebhookSecret: string | undefined;
  toleranceS: number;
  minMinor: number;
  maxMinor: number;
  dailyMaxMinor: number;
}

/** Payment settings with every default: the sandbox (tests and a fresh checkout). */
export function defaultPaymentsConfig(over: Partial<PaymentsConfig> = {}): PaymentsConfig {
  return {
    stripeSecretKey: undefined,
    stripeWebhookSecret: undefined,
    stripeApiUrl: undefined,
    publicUrl: undefined,
    sandboxWebhookUrl: 'http://127.0.0.1:8080/api/payments/webhook',
    sandboxWebhookSecret: undefined,
    toleranceS: 300,
    minMinor: 500,
    maxMinor: 25_000,
    dailyMaxMinor: 50_000,
    ...over,
  };
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
  /** #10 added later: a secrets file written before it gets the pair on first load. */
  firmwareSigningKey: string;
  firmwarePublicKey: string;
}

/**
 * Secrets missing from the environment are generated once and kept in dataDir/secrets.json
 * (mode 0600). A multi-process deployment sets them in the environment instead, so every
 * process signs with the same key.
 */
export function loadOrCreateSecrets(dataDir: string): SecretsFile {
  const file = path.join(dataDir, 'secrets.json');
  if (existsSync(file)) {
    const old = JSON.parse(readFileSync(file, 'utf8')) as Partial<SecretsFile>;
    if (old.firmwareSigningKey && old.firmwarePublicKey) return old as SecretsFile;
    const fw = generateSigningKeyPair();
    const secrets = {
      ...old,
      firmwareSigningKey: fw.privateKey,
      firmwarePublicKey: fw.publicKey,
    } as SecretsFile;
    writeFileSync(file, JSON.stringify(secrets, null, 2), { mode: 0o600 });
    return secrets;
  }
  mkdirSync(dataDir, { recursive: true });
  const kp = generateSigningKeyPair();
  const fw = generateSigningKeyPair();
  const secrets: SecretsFile = {
    commandSigningKey: kp.privateKey,
    commandPublicKey: kp.publicKey,
    mqttPassword: randomBytes(24).toString('base64url'),
    embeddedPgPassword: randomBytes(24).toString('base64url'),
    firmwareSigningKey: fw.privateKey,
    firmwarePublicKey: fw.publicKey,
  };
  writeFileSync(file, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  chmodSync(file, 0o600);
  return secrets;
}

export function parseServices(arg: string | undefined): Set<Service> {
  if (!arg) return new Set(SERVICES);
  const out = new Set<Service>();
  for (const s of arg
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)) {
    if (!(SERVICES as readonly string[]).includes(s))
      throw new ConfigError([`unknown service "${s}" (known: ${SERVICES.join(', ')})`]);
    out.add(s as Service);
  }
  return out;
}

export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  argv: string[] = process.argv.slice(2),
): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  }
  const e = parsed.data;
  const servicesArg =
    argv.find((a) => a.startsWith('--services='))?.slice('--services='.length) ?? e.SERVICES;
  const services = parseServices(servicesArg);
  // With an external broker there is nothing to embed.
  if (e.MQTT_URL) services.delete('broker');
  const problems: string[] = [];
  // Only the gateway logs in to the broker (the simulator's meters use their own logins): a
  // jobs-only or api-only process given the deployment's MQTT_URL needs no broker password.
  if (e.MQTT_URL && !e.MQTT_PASSWORD && services.has('gateway'))
    problems.push('MQTT_PASSWORD: required when MQTT_URL is set and the gateway runs here');
  const trustProxy = parseTrustProxy(e.TRUST_PROXY);
  if (trustProxy === null)
    problems.push('TRUST_PROXY: expected true, false, a number of hops or a comma list of addresses');
  const allowedOrigins = e.ALLOWED_ORIGINS.split(',')
    .map((o) => o.trim())
    .filter(Boolean);
  for (const o of allowedOrigins) {
    if (!/^https?:\/\/[A-Za-z0-9.-]+(:\d+)?$/.test(o))
      problems.push(`ALLOWED_ORIGINS: "${o}" is not an origin like https://portal.example.com`);
  }
  if (e.METRICS_PORT !== undefined && e.METRICS_PORT === e.PORT)
    problems.push('METRICS_PORT: must differ from PORT');
  if (e.MQTT_FAILOVER_URLS.length > 0 && !e.MQTT_URL)
    problems.push('MQTT_FAILOVER_URLS: needs MQTT_URL (the first node of the cluster)');
  if (e.MQTT_SHARE_GROUP && !e.MQTT_URL) {
    problems.push(
      'MQTT_SHARE_GROUP: needs MQTT_URL (the embedded broker has no shared subscriptions; run one gateway with it)',
    );
  }
  if ((e.STRIPE_SECRET_KEY === undefined) !== (e.STRIPE_WEBHOOK_SECRET === undefined)) {
    problems.push(
      'STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET: set both to take payments through Stripe, or neither for the sandbox',
    );
  }
  if (e.STRIPE_SECRET_KEY && !e.PUBLIC_URL)
    problems.push('PUBLIC_URL: required with Stripe (its checkout page sends the household back there)');
  if (e.TOPUP_MIN_MINOR > e.TOPUP_MAX_MINOR)
    problems.push('TOPUP_MIN_MINOR: must not exceed TOPUP_MAX_MINOR');
  if (e.TOPUP_MAX_MINOR > e.TOPUP_DAILY_MAX_MINOR)
    problems.push('TOPUP_MAX_MINOR: must not exceed TOPUP_DAILY_MAX_MINOR');
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
  // #10 the firmware key: from the environment, else the generated pair (dev and demo). With
  // FIRMWARE_PUBLIC_KEY set and no FIRMWARE_SIGNING_KEY, the private half is offline: the
  // head-end can check images but never sign one.
  let firmwarePublicKey = secrets.firmwarePublicKey;
  let firmwareSigningKey: string | null = secrets.firmwareSigningKey;
  if (e.FIRMWARE_SIGNING_KEY) {
    firmwareSigningKey = e.FIRMWARE_SIGNING_KEY;
    try {
      firmwarePublicKey = publicKeyB64FromPrivate(e.FIRMWARE_SIGNING_KEY);
    } catch {
      throw new ConfigError(['FIRMWARE_SIGNING_KEY: must be a base64 Ed25519 private key (32 bytes)']);
    }
    if (e.FIRMWARE_PUBLIC_KEY && e.FIRMWARE_PUBLIC_KEY !== firmwarePublicKey)
      throw new ConfigError(['FIRMWARE_PUBLIC_KEY: is not the public half of FIRMWARE_SIGNING_KEY']);
  } else if (e.FIRMWARE_PUBLIC_KEY) {
    if (Buffer.from(e.FIRMWARE_PUBLIC_KEY, 'base64').length !== 32)
      throw new ConfigError(['FIRMWARE_PUBLIC_KEY: must be a base64 Ed25519 public key (32 bytes)']);
    firmwarePublicKey = e.FIRMWARE_PUBLIC_KEY;
    firmwareSigningKey = null;
  }
  if (firmwarePublicKey === commandPublicKey)
    throw new ConfigError(['FIRMWARE_PUBLIC_KEY: must not be the command key (a firmware key of its own)']);
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
    mqttFailoverUrls: e.MQTT_FAILOVER_URLS,
    mqttAckQos: e.MQTT_ACK_QOS === 0 ? 0 : 1,
    commandSigningKey,
    commandPublicKey,
    firmwarePublicKey,
    firmwareSigningKey,
    firmwareDir: path.resolve(e.FIRMWARE_DIR ?? path.join(dataDir, 'firmware')),
    firmwareMaxBytes: e.FIRMWARE_MAX_BYTES,
    services,
    sim: {
      meters: e.SIM_METERS,
      speed: e.SIM_SPEED,
      backfillDays: e.SIM_BACKFILL_DAYS,
      faults: {
        tamperEveryHours: e.SIM_TAMPER_EVERY_HOURS,
        feederOutageEveryHours: e.SIM_FEEDER_OUTAGE_EVERY_HOURS,
        feederOutageMinutes: e.SIM_FEEDER_OUTAGE_MINUTES,
        lastGaspShare: e.SIM_LAST_GASP_SHARE,
        stragglers: e.SIM_STRAGGLERS,
        firstFaultsAfterS: e.SIM_FIRST_FAULTS_AFTER_S,
      },
    },
    demoSeed: e.DEMO_SEED ?? !e.DATABASE_URL,
    demoNetworkCharges: e.DEMO_NETWORK_CHARGES,
    demoFirmware: e.DEMO_FIRMWARE, // #10 D
    demoTz: e.DEMO_TZ,
    cookieSecure: e.COOKIE_SECURE,
    sessionTtlHours: e.SESSION_TTL_HOURS,
    unsafeAllowNonDurableDb: e.UNSAFE_ALLOW_NON_DURABLE_DB,
    gateway: {
      batchMax: e.GATEWAY_BATCH_MAX,
      lanes: e.GATEWAY_LANES,
      flushMs: e.GATEWAY_FLUSH_MS,
      clientId: e.GATEWAY_CLIENT_ID,
      maxBufferBytes: e.GATEWAY_MAX_BUFFER_MB * 1024 * 1024,
    },
    commands: { retryS: e.COMMAND_RETRY_S, maxRetryS: e.COMMAND_MAX_RETRY_S, ttlS: e.COMMAND_TTL_S },
    dbStatementTimeoutMs: e.DB_STATEMENT_TIMEOUT_MS,
    events: {
      sweepMs: e.EVENTS_SWEEP_MS,
      gatherMs: e.EVENTS_GATHER_MS,
      retentionDays: e.EVENTS_RETENTION_DAYS,
      jobTimeoutS: e.JOB_TIMEOUT_S,
      maintenanceS: e.JOBS_MAINTENANCE_S,
    },
    metrics: { token: e.METRICS_TOKEN, port: e.METRICS_PORT, host: e.METRICS_HOST },
    trustProxy: trustProxy ?? false,
    allowedOrigins,
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
    payments: {
      stripeSecretKey: e.STRIPE_SECRET_KEY,
      stripeWebhookSecret: e.STRIPE_WEBHOOK_SECRET,
      stripeApiUrl: e.STRIPE_API_URL,
      publicUrl: e.PUBLIC_URL?.replace(/\/+$/, ''),
      sandboxWebhookUrl:
        e.SANDBOX_WEBHOOK_URL ??
        `http://${['0.0.0.0', '::'].includes(e.HOST) ? '127.0.0.1' : e.HOST.includes(':') ? `[${e.HOST}]` : e.HOST}:${e.PORT}/api/payments/webhook`,
      sandboxWebhookSecret: e.SANDBOX_WEBHOOK_SECRET,
      toleranceS: e.PAYMENT_WEBHOOK_TOLERANCE_S,
      minMinor: e.TOPUP_MIN_MINOR,
      maxMinor: e.TOPUP_MAX_MINOR,
      dailyMaxMinor: e.TOPUP_DAILY_MAX_MINOR,
    },
    bills: {
      dueDays: e.BILL_DUE_DAYS,
      runCron: e.BILL_RUN_CRON.trim(),
      runWorkers: e.BILL_RUN_WORKERS,
      runChunk: e.BILL_RUN_CHUNK,
      stallS: e.BILL_RUN_STALL_S,
      reconcileCron: e.RECONCILE_CRON.trim(),
      driftMinor: e.CREDIT_DRIFT_MINOR,
    },
    // #9 collection
    collection: { cron: e.COLLECTION_CRON.trim(), catchUpDays: e.COLLECTION_CATCHUP_DAYS },
    // #9 collection end
    netbilling: { invoiceCron: e.NETWORK_INVOICE_CRON.trim() },
    partitions: { cron: e.PARTITIONS_CRON.trim(), aheadMonths: e.PARTITIONS_AHEAD_MONTHS },
    logLevel: e.LOG_LEVEL,
  };
}

function parseTrustProxy(v: string): boolean | number | string[] | null {
  const t = v.trim().toLowerCase();
  if (['false', '0', 'no', ''].includes(t)) return false;
  if (['true', 'yes'].includes(t)) return true;
  if (/^\d+$/.test(t)) return Number(t);
  const list = v
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
  return list.every((x) => /^[0-9a-fA-F:.]+(\/\d+)?$/.test(x)) ? list : null;
}

/** The embedded PostgreSQL password lives with the other generated secrets. */
export function embeddedPgPassword(dataDir: string): string {
  return loadOrCreateSecrets(dataDir).embeddedPgPassword;
}
