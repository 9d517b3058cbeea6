import { readFileSync } from 'node:fs';
import path from 'node:path';
import { privateKeyFromB64 } from '@kilowire/protocol';
import { ConfigError, embeddedPgPassword, loadConfig, type Config, type SimFaults } from './config.ts';
import {
  EmbeddedPgError,
  startEmbeddedPostgres,
  stopEmbeddedPostgresNow,
  type EmbeddedPg,
} from './db/embedded.ts';
import { createPool, isConnectionError, waitForDatabase, type Pool } from './db/pool.ts';
import { durabilityProblems, migrate } from './db/migrate.ts';
import { startEmbeddedBroker, type EmbeddedBroker } from './broker/embedded.ts';
import { Gateway } from './gateway/gateway.ts';
import { logger, rootLogger, type Logger } from './log.ts';
import { demoTariffs } from './demo/tariffs.ts';
import { seedDemo, type DemoLogins, type FleetFile } from './demo/seed.ts';
import { issueDemoBills } from './demo/bills.ts';
import { demoNetworkCharges } from './demo/network.ts';
import { demoFirmware } from './demo/firmware.ts'; // #10 D
import { reconcileAll } from './money/reconcile.ts';
import type { FleetFaults } from '@kilowire/meter';

/**
 * One codebase, several roles of process: `--services=broker,gateway,jobs,api,simulator`
 * (default: all). Start order follows dependencies; stop runs in reverse order, the
 * embedded database last. Every role waits for a database that is not up yet and rides
 * out one that restarts; the API answers /readyz 503 meanwhile.
 */
export interface Running {
  config: Config;
  pool: Pool;
  stop(): Promise<void>;
}

/** Run `fn` until it succeeds, retrying while the database is unreachable (aborted by `signal`). */
async function whileDbUnreachable<T>(
  fn: () => Promise<T>,
  log: Logger,
  signal: AbortSignal | undefined,
  pool: Pool,
): Promise<T> {
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (!isConnectionError(err) || signal?.aborted) throw err;
      log.warn({ err: (err as Error).message }, 'database went away while starting; waiting for it');
      await waitForDatabase(pool, log, signal);
    }
  }
}

export async function startKilowire(config: Config, opts: { signal?: AbortSignal } = {}): Promise<Running> {
  const log = logger('main');
  const { signal } = opts;
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const s of stops.reverse()) await s().catch((err: unknown) => log.error({ err }, 'stop failed'));
    stops.length = 0;
  };
  let embeddedPg: EmbeddedPg | undefined;
  let databaseUrl = config.databaseUrl;
  try {
    if (!databaseUrl) {
      embeddedPg = await startEmbeddedPostgres(
        config.dataDir,
        config.embeddedPgPort,
        embeddedPgPassword(config.dataDir),
        logger('pg'),
      );
      databaseUrl = embeddedPg.url;
      const pgStop = embeddedPg.stop.bind(embeddedPg);
      stops.push(pgStop);
    }
    const pool = createPool(databaseUrl, {
      max: 20,
      statementTimeoutMs: config.dbStatementTimeoutMs,
      // With several processes of each role on one database, pg_stat_activity tells which
      // process holds a connection (and what it runs): kilowire/<services>/<pid>.
      applicationName: `kilowire/${[...config.services].join('+')}/${process.pid}`.slice(0, 63),
    });
    stops.push(() => pool.end());

    const state = { started: false };
    let gateway: Gateway | undefined;
    if (config.services.has('api')) {
      // Listening before the database answers: /healthz is live at once, /readyz and the API
      // say 503 until everything below has started.
      const { buildApi } = await import('./api/app.ts');
      const app = await buildApi({
        pool,
        config,
        log: logger('api'),
        commandKey: privateKeyFromB64(config.commandSigningKey),
        ready: () => ({ started: state.started, mqtt: gateway ? gateway.connected : true }),
      });
      await app.listen({ port: config.port, host: config.host });
      stops.push(() => app.close());
      if (config.metrics.port !== undefined) {
        const { startMetricsServer } = await import('./api/metrics-server.ts');
        const close = await startMetricsServer(
          config.metrics.port,
          config.metrics.host,
          config.metrics.token,
        );
        stops.push(close);
      }
    }

    await waitForDatabase(pool, log, signal);
    const problems = await whileDbUnreachable(() => durabilityProblems(pool), log, signal, pool);
    if (problems.length && !config.unsafeAllowNonDurableDb) {
      throw new ConfigError([
        `PostgreSQL may lose committed readings (${problems.join(', ')}); fix the server or set UNSAFE_ALLOW_NON_DURABLE_DB=true`,
      ]);
    }
    if (problems.length)
      log.warn({ problems }, 'running on a non-durable PostgreSQL (UNSAFE_ALLOW_NON_DURABLE_DB)');
    const applied = await whileDbUnreachable(() => migrate(pool), log, signal, pool);
    if (applied.length) log.info({ applied }, 'migrations applied');

    let demo: DemoLogins | null = null;
    if (config.demoSeed) {
      demo = await whileDbUnreachable(
        () =>
          seedDemo(pool, config.dataDir, config.commandPublicKey, {
            households: 25,
            tz: config.demoTz,
            historyDays: config.sim.backfillDays,
            tariffs: demoTariffs,
          }),
        log,
        signal,
        pool,
      );
    }

    let broker: EmbeddedBroker | undefined;
    let mqttUrl = config.mqttUrl;
    if (config.services.has('broker')) {
      broker = await startEmbeddedBroker({
        port: config.embeddedMqttPort,
        host: config.host,
        pool,
        headendUsername: config.mqttUsername,
        headendPassword: config.mqttPassword,
        log: logger('broker'),
        databaseUrl,
      });
      stops.push(() => broker!.close());
    }
    mqttUrl ??= `mqtt://127.0.0.1:${config.embeddedMqttPort}`;

    if (config.services.has('jobs')) {
      // Loaded per service, like the api: a gateway-only process never loads pg-boss or mailers.
      const { startJobs } = await import('./jobs/service.ts');
      const jobs = await whileDbUnreachable(
        () => startJobs({ pool, config, log: logger('jobs'), databaseUrl }),
        log,
        signal,
        pool,
      );
      stops.push(() => jobs.stop());
    }

    if (config.services.has('gateway')) {
      const gw = new Gateway({
        pool,
        log: logger('gateway'),
        mqttUrl,
        failoverUrls: config.mqttFailoverUrls,
        ackQos: config.mqttAckQos,
        username: config.mqttUsername,
        password: config.mqttPassword,
        clientId: config.gateway.clientId,
        shareGroup: config.mqttShareGroup,
        batchMax: config.gateway.batchMax,
        lanes: config.gateway.lanes,
        flushMs: config.gateway.flushMs,
        maxBufferBytes: config.gateway.maxBufferBytes,
        commands: config.commands,
        databaseUrl,
        // #10 B firmware blocks are served from here
        firmwareDir: config.firmwareDir,
      });
      gateway = gw;
      await gw.start();
      stops.push(() => gw.stop());
    }

    if (config.services.has('simulator') && config.sim.meters > 0) {
      const fleetFile = path.join(config.dataDir, 'fleet.json');
      let file: FleetFile;
      try {
        file = JSON.parse(readFileSync(fleetFile, 'utf8')) as FleetFile;
      } catch {
        throw new ConfigError([
          `simulator: no fleet file at ${fleetFile} (it is written by the demo seed; set DEMO_SEED=true)`,
        ]);
      }
      const simLog = logger('simulator');
      const { Fleet } = await import('@kilowire/meter');
      const meters = file.meters.slice(0, config.sim.meters).map((m) => ({ ...m }));
      // A fleet file written before meters carried their feeder: the database knows it.
      if (meters.some((m) => m.feederId === undefined)) {
        const feeders = await whileDbUnreachable(
          () =>
            meterFeeders(
              pool,
              meters.map((m) => m.id),
            ),
          log,
          signal,
          pool,
        );
        for (const m of meters) m.feederId ??= feeders.get(m.id);
      }
      const fleet = new Fleet({
        brokerUrl: mqttUrl,
        failoverUrls: config.mqttFailoverUrls,
        serverPublicKey: file.serverPublicKey,
        // #10 D the simulated meters check image manifests with the head-end's firmware key
        // (without it they refuse every offer, as a meter with no firmware key would).
        firmwarePublicKey: config.firmwarePublicKey,
        meters,
        stateDir: path.join(config.dataDir, 'meters'),
        speed: config.sim.speed,
        backfillDays: config.sim.backfillDays,
        // The history's register reads fall on local midnights, where bills need them.
        backlogByLocalDay: true,
        log: (line) => simLog.info(line),
        summaryEveryMs: 30_000,
        faults: simFaults(config.sim.faults),
      });
      fleet.start();
      stops.push(() => fleet.stop());
      if (config.demoSeed) {
        // Once the demo's history is in, last month's bills for the credit households and the
        // prepayment mirror's days — what a newcomer opens first. Safe to repeat on restarts.
        const demoMoney = demoMoneyWhenCaughtUp(
          pool,
          fleet,
          log,
          config.bills.driftMinor,
          config.demoNetworkCharges,
          config.demoFirmware ? config : null, // #10 D
        );
        stops.push(() => demoMoney.stop());
      }
    }

    state.started = true;
    if (demo && config.services.has('api')) printDemo(config, demo);
    return { config, pool, stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

function printDemo(config: Config, d: DemoLogins): void {
  const url = `http://${config.host === '0.0.0.0' ? 'localhost' : config.host}:${config.port}`;
  const lines = [
    '',
    `Kilowire is running: ${url}   (API docs: ${url}/docs)`,
    '',
    'Demo logins (demo data only; set DEMO_SEED=false in production):',
    ...d.staff.map((s) => `  ${s.role.padEnd(21)} ${s.email.padEnd(27)} ${s.password}`),
    `  consumers         ${d.consumers[0]?.consumerId ?? ''} .. ${d.consumers.at(-1)?.consumerId ?? ''}  password ${d.consumers[0]?.password ?? ''}`,
    ...d.consumers.slice(0, 6).map((c) => `    ${c.consumerId}  ${c.mode.padEnd(10)} meter ${c.meter}`),
    d.consumers.length > 6 ? `    ... and ${d.consumers.length - 6} more (every third is prepayment)` : '',
    '',
    'Ctrl-C stops everything; data stays in ' + config.dataDir,
    '',
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

/**
 * The demo's faults: none in the backfilled history (a year of tampers and outages would bury
 * what a newcomer came to see), then on the simulated clock at real time — a first tamper
 * `firstFaultsAfterS` after the catch-up and a first feeder outage 30 s later, so an alert and an
 * incident that opens and closes show within the first minutes; then every few hours.
 */
export function simFaults(f: SimFaults | undefined): FleetFaults | undefined {
  if (!f) return undefined;
  return {
    onlyWhenCaughtUp: true,
    tamperEverySimHours: f.tamperEveryHours || undefined,
    feederOutageEverySimHours: f.feederOutageEveryHours || undefined,
    feederOutageSimMinutes: f.feederOutageMinutes,
    lastGaspShare: f.lastGaspShare,
    stragglers: f.stragglers,
    firstFaultsAfterS: f.firstFaultsAfterS || undefined,
    firstOutageDelayS: 30,
  };
}

async function meterFeeders(pool: Pool, serials: string[]): Promise<Map<string, string>> {
  const { rows } = await pool.query<{ serial: string; feeder_id: string }>(
    'SELECT serial, feeder_id FROM meters WHERE serial = ANY($1::text[]) AND feeder_id IS NOT NULL',
    [serials],
  );
  return new Map(rows.map((r) => [r.serial, r.feeder_id]));
}

/** Longest a clean stop may take before the process exits anyway. */
const STOP_DEADLINE_MS = 20_000;

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`kilowire: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  rootLogger.level = config.logLevel;
  const ac = new AbortController();
  let running: Running | undefined;
  let stopping = false;
  // Installed before anything starts: Ctrl-C ends the process at any moment, also while it
  // waits for a database that is not there. A second Ctrl-C ends it at once.
  const shutdown = (sig: string) => {
    if (stopping) {
      process.stderr.write('kilowire: stopping now\n');
      stopEmbeddedPostgresNow();
      process.exit(130);
    }
    stopping = true;
    rootLogger.info({ sig }, 'stopping');
    ac.abort();
    setTimeout(() => {
      process.stderr.write(`kilowire: did not stop within ${STOP_DEADLINE_MS / 1000} s; exiting\n`);
      stopEmbeddedPostgresNow();
      process.exit(1);
    }, STOP_DEADLINE_MS).unref();
    if (running) {
      running.stop().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    }
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  try {
    running = await startKilowire(config, { signal: ac.signal });
  } catch (err) {
    if (stopping) process.exit(0);
    if (err instanceof ConfigError) process.stderr.write(`kilowire: ${err.message}\n`);
    else if (err instanceof EmbeddedPgError) process.stderr.write(`kilowire: ${err.message}\n`);
    else process.stderr.write(`kilowire: failed to start: ${(err as Error).message}\n`);
    process.exit(1);
  }
  if (stopping) {
    await running.stop().catch(() => undefined);
    process.exit(0);
  }
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('main.ts')) {
  void main();
}

/**
 * After the simulated fleet has caught up and its history is stored: issue last month's demo
 * bills and reconcile the prepayment meters. Polls (cheaply) until then; stop() ends it.
 */
function demoMoneyWhenCaughtUp(
  pool: Pool,
  fleet: { caughtUpAfterMs: number | null },
  log: Logger,
  driftMinor: number,
  networkCharges: boolean,
  /** #10 D: seed the demo's firmware image and campaign (null: DEMO_FIRMWARE=false). */
  firmware: Pick<Config, 'firmwareSigningKey' | 'firmwareDir'> | null,
): { stop(): Promise<void> } {
  let stopped = false;
  let wake: (() => void) | undefined;
  const sleep = (ms: number) =>
    new Promise<void>((r) => {
      wake = r;
      setTimeout(r, ms).unref();
    });
  const run = (async () => {
    while (!stopped && fleet.caughtUpAfterMs === null) await sleep(1000);
    // Caught up at the meters; wait until every meter's readings reached the last hour.
    while (!stopped) {
      try {
        const { rows } = await pool.query<{ behind: number }>(
          `SELECT count(*)::int AS behind FROM meters m
            WHERE NOT EXISTS (SELECT 1 FROM interval_readings r
                               WHERE r.meter_id = m.id AND r.ts > now() - interval '90 minutes')`,
        );
        if (rows[0]!.behind === 0) break;
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'demo: waiting for the database');
      }
      await sleep(2000);
    }
    if (stopped) return;
    try {
      const bills = await issueDemoBills(pool);
      const prepay = await reconcileAll(pool, { driftMinor });
      log.info(
        {
          bills: bills.issued,
          alreadyBilled: bills.alreadyBilled,
          failed: bills.failed,
          prepaymentMeters: prepay.length,
        },
        "demo: last month's bills issued and prepayment meters mirrored",
      );
    } catch (err) {
      log.error({ err }, "demo: last month's bills could not be issued (the daily bill run will try again)");
    }
    if (!stopped && firmware) {
      // #10 D: after the catch-up, so the simulated meters run on real time and are online
      // when the campaign engine offers them the image.
      try {
        const fw = await demoFirmware(pool, firmware, log);
        if (fw?.created)
          log.info(
            { imageId: fw.imageId, campaignId: fw.campaignId },
            'demo: firmware image and campaign seeded',
          );
      } catch (err) {
        log.error({ err }, 'demo: the firmware image and campaign could not be seeded');
      }
    }
    if (stopped || !networkCharges) return;
    try {
      // The network operator's side of the same month: collected, priced, invoiced to the supplier.
      const net = await demoNetworkCharges(pool);
      log.info(
        {
          collectedDays: net.collectedDays,
          invoices: net.invoices.reduce((n, r) => n + r.issued.length, 0),
        },
        'demo: last month collected and its network-use invoice issued',
      );
    } catch (err) {
      log.error({ err }, "demo: last month's network-use invoice could not be issued");
    }
  })();
  return {
    async stop() {
      stopped = true;
      wake?.();
      await run;
    },
  };
}
