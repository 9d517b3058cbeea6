import type { FastifyInstance, InjectOptions } from 'fastify';
import { generateSigningKeyPair, privateKeyFromB64 } from '@kilowire/protocol';
import { buildApi } from '../../src/api/app.ts';
import { defaultNotifyConfig, defaultPaymentsConfig, type Config } from '../../src/config.ts';
import type { Pool } from '../../src/db/pool.ts';
import { rootLogger } from '../../src/log.ts';
import {
  createArea,
  createHousehold,
  createOrganisation,
  createStaffUser,
  type CreatedHousehold,
} from '../../src/accounts/repo.ts';
import { hashPassword } from '../../src/auth/passwords.ts';

export const PASSWORD = 'correct horse battery staple';

export function testConfig(over: Partial<Config> = {}): Config {
  const kp = generateSigningKeyPair();
  const fw = generateSigningKeyPair();
  return {
    port: 0,
    host: '127.0.0.1',
    dataDir: '/nonexistent',
    databaseUrl: undefined,
    embeddedPgPort: 0,
    mqttUrl: undefined,
    mqttUsername: 'headend',
    mqttPassword: 'x',
    embeddedMqttPort: 0,
    mqttShareGroup: undefined,
    mqttFailoverUrls: [],
    mqttAckQos: 1,
    commandSigningKey: kp.privateKey,
    commandPublicKey: kp.publicKey,
    firmwarePublicKey: fw.publicKey,
    firmwareSigningKey: fw.privateKey,
    firmwareDir: '/nonexistent/firmware',
    firmwareMaxBytes: 16 * 1024 * 1024,
    services: new Set(['api']),
    sim: { meters: 0, speed: 1, backfillDays: 0 },
    demoSeed: false,
    demoNetworkCharges: false,
    demoFirmware: false, // #10 D
    demoTz: 'Europe/London',
    cookieSecure: false,
    sessionTtlHours: 12,
    unsafeAllowNonDurableDb: false,
    gateway: { batchMax: 100, lanes: 2, flushMs: 5, clientId: 'kw-test', maxBufferBytes: 64 * 1024 * 1024 },
    commands: { retryS: 30, maxRetryS: 900, ttlS: 86_400 },
    dbStatementTimeoutMs: 30_000,
    events: { sweepMs: 500, gatherMs: 20, retentionDays: 7, jobTimeoutS: 60, maintenanceS: 30 },
    metrics: { token: undefined, port: undefined, host: '127.0.0.1' },
    trustProxy: false,
    allowedOrigins: [],
    notify: defaultNotifyConfig(),
    alerts: { lookbackDays: 1 },
    payments: defaultPaymentsConfig(),
    bills: {
      dueDays: 14,
      runCron: '0 6 * * *',
      runWorkers: 2,
      runChunk: 500,
      stallS: 120,
      reconcileCron: '7 * * * *',
      driftMinor: 200,
    },
    // #9 collection
    collection: { cron: '*/15 * * * *', catchUpDays: 7 },
    // #9 collection end
    netbilling: { invoiceCron: '0 7 3 * *' },
    partitions: { cron: '17 2 * * *', aheadMonths: 3 }, // #11
    logLevel: 'silent',
    ...over,
  };
}

export async function testApi(
  pool: Pool,
  opts: { config?: Partial<Config>; ready?: () => { started?: boolean; mqtt: boolean } } = {},
): Promise<FastifyInstance> {
  const config = testConfig(opts.config);
  const app = await buildApi({
    pool,
    config,
    log: rootLogger.child({ sub: 'api-test' }, { level: 'silent' }),
    commandKey: privateKeyFromB64(config.commandSigningKey),
    ...(opts.ready ? { ready: opts.ready } : {}),
  });
  await app.ready();
  return app;
}

/**
 * The small world every API test needs: two suppliers, two network operators (area A, area B),
 * a household of each supplier in each area, one staff user per organisation, an admin.
 */
export interface World {
  sup1: number;
  sup2: number;
  opA: number;
  opB: number;
  /** households: supplier 1/2 x area A/B */
  h1A: CreatedHousehold;
  h1B: CreatedHousehold;
  h2A: CreatedHousehold;
  h2B: CreatedHousehold;
  login: {
    h1A: string;
    h1B: string;
    h2A: string;
    h2B: string;
    sup1: string;
    /** A supplier agent of supplier 1 (sup1 itself is a supplier admin). */
    agent1: string;
    sup2: string;
    opA: string;
    opB: string;
    admin: string;
  };
}

export async function buildWorld(pool: Pool): Promise<World> {
  const sup1 = await createOrganisation(pool, 'supplier', 'sup1', 'Supplier One');
  const sup2 = await createOrganisation(pool, 'supplier', 'sup2', 'Supplier Two');
  const opA = await createOrganisation(pool, 'network_operator', 'opa', 'Operator A');
  const opB = await createOrganisation(pool, 'network_operator', 'opb', 'Operator B');
  await createArea(pool, 'A', opA, 'Area A', ['A-F1']);
  await createArea(pool, 'B', opB, 'Area B', ['B-F1']);
  const passwordHash = await hashPassword(PASSWORD);
  const hh = (
    loginId: string,
    supplierId: number,
    areaId: string,
    serial: string,
    mode: 'credit' | 'prepayment',
  ) =>
    createHousehold(pool, {
      loginId,
      password: PASSWORD,
      passwordHash,
      name: `Household ${loginId}`,
      supplierId,
      mode,
      billingCycleDay: 7,
      meter: { serial, areaId },
    });
  const h1A = await hh('C1A', sup1, 'A', 'KW1A', 'credit');
  const h1B = await hh('C1B', sup1, 'B', 'KW1B', 'prepayment');
  const h2A = await hh('C2A', sup2, 'A', 'KW2A', 'credit');
  const h2B = await hh('C2B', sup2, 'B', 'KW2B', 'prepayment');
  await createStaffUser(pool, {
    role: 'supplier',
    email: 'staff@sup1.test',
    password: PASSWORD,
    orgId: sup1,
    name: 'Sup1 Staff',
  });
  await createStaffUser(pool, {
    role: 'supplier',
    staffRole: 'agent',
    email: 'agent@sup1.test',
    password: PASSWORD,
    orgId: sup1,
    name: 'Sup1 Agent',
  });
  await createStaffUser(pool, {
    role: 'supplier',
    email: 'staff@sup2.test',
    password: PASSWORD,
    orgId: sup2,
    name: 'Sup2 Staff',
  });
  await createStaffUser(pool, {
    role: 'operator',
    email: 'staff@opa.test',
    password: PASSWORD,
    orgId: opA,
    name: 'OpA Staff',
  });
  await createStaffUser(pool, {
    role: 'operator',
    email: 'staff@opb.test',
    password: PASSWORD,
    orgId: opB,
    name: 'OpB Staff',
  });
  await createStaffUser(pool, {
    role: 'admin',
    email: 'admin@kilowire.test',
    password: PASSWORD,
    orgId: null,
    name: 'Admin',
  });
  return {
    sup1,
    sup2,
    opA,
    opB,
    h1A,
    h1B,
    h2A,
    h2B,
    login: {
      h1A: 'C1A',
      h1B: 'C1B',
      h2A: 'C2A',
      h2B: 'C2B',
      sup1: 'staff@sup1.test',
      agent1: 'agent@sup1.test',
      sup2: 'staff@sup2.test',
      opA: 'staff@opa.test',
      opB: 'staff@opb.test',
      admin: 'admin@kilowire.test',
    },
  };
}

let ipCounter = 0;
/** A distinct client address per call, so per-IP login limits do not couple unrelated tests. */
export function nextIp(): string {
  ipCounter++;
  return `10.${(ipCounter >> 16) & 255}.${(ipCounter >> 8) & 255}.${ipCounter & 255}`;
}

/** Body for POST /api/session: consumer ID (no @) or staff email. */
export function loginBody(identifier: string, password = PASSWORD): Record<string, string> {
  return identifier.includes('@') ? { email: identifier, password } : { consumerId: identifier, password };
}

/** The `name=value` pair of the kw_session cookie set by a response, or undefined. */
export function sessionCookie(res: { headers: Record<string, unknown> }): string | undefined {
  const raw = res.headers['set-cookie'];
  const list = Array.isArray(raw) ? (raw as string[]) : typeof raw === 'string' ? [raw] : [];
  const c = list.find((s) => s.startsWith('kw_session='));
  return c?.split(';')[0];
}

/** Sign in and return the cookie header value for later requests. */
export async function login(
  app: FastifyInstance,
  identifier: string,
  opts: { cookie?: string; ip?: string } = {},
): Promise<string> {
  const res = await app.inject({
    method: 'POST',
    url: '/api/session',
    remoteAddress: opts.ip ?? nextIp(),
    headers: { 'content-type': 'application/json', ...(opts.cookie ? { cookie: opts.cookie } : {}) },
    payload: loginBody(identifier),
  });
  if (res.statusCode !== 200) throw new Error(`login ${identifier} failed: ${res.statusCode} ${res.body}`);
  const c = sessionCookie(res);
  if (!c) throw new Error('no session cookie');
  return c;
}

export function as(cookie: string | undefined, opts: InjectOptions): InjectOptions {
  return { ...opts, headers: { ...(opts.headers ?? {}), ...(cookie ? { cookie } : {}) } };
}
