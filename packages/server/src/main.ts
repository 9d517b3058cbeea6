import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, embeddedPgPassword, loadConfig, type Config } from './config.ts';
import { startEmbeddedPostgres, type EmbeddedPg } from './db/embedded.ts';
import { createPool, type Pool } from './db/pool.ts';
import { durabilityProblems, migrate } from './db/migrate.ts';
import { startEmbeddedBroker, type EmbeddedBroker } from './broker/embedded.ts';
import { Gateway } from './gateway/gateway.ts';
import { AlertEngine } from './alerts/rules.ts';
import { logger, rootLogger } from './log.ts';
import { seedDemo, type DemoLogins, type FleetFile } from './demo/seed.ts';
import { privateKeyFromB64 } from '@kilowire/protocol';

/**
 * One codebase, several roles of process: `--services=broker,gateway,jobs,api,simulator`
 * (default: all). Start order follows dependencies; Ctrl-C stops in reverse order.
 */
export interface Running {
  config: Config;
  pool: Pool;
  stop(): Promise<void>;
}

export async function startKilowire(config: Config): Promise<Running> {
  const log = logger('main');
  const stops: (() => Promise<void>)[] = [];
  let embeddedPg: EmbeddedPg | undefined;
  let databaseUrl = config.databaseUrl;
  if (!databaseUrl) {
    embeddedPg = await startEmbeddedPostgres(config.dataDir, config.embeddedPgPort, embeddedPgPassword(config.dataDir), logger('pg'));
    databaseUrl = embeddedPg.url;
    stops.push(() => embeddedPg!.stop());
  }
  const pool = createPool(databaseUrl, 20);
  stops.push(() => pool.end());
  const stopAll = async () => {
    for (const s of stops.reverse()) await s().catch((err: unknown) => log.error({ err }, 'stop failed'));
  };
  try {
    const problems = await durabilityProblems(pool);
    if (problems.length && !config.unsafeAllowNonDurableDb) {
      throw new ConfigError([
        `PostgreSQL may lose committed readings (${problems.join(', ')}); fix the server or set UNSAFE_ALLOW_NON_DURABLE_DB=true`,
      ]);
    }
    if (problems.length) log.warn({ problems }, 'running on a non-durable PostgreSQL (UNSAFE_ALLOW_NON_DURABLE_DB)');
    const applied = await migrate(pool);
    if (applied.length) log.info({ applied }, 'migrations applied');

    let demo: DemoLogins | null = null;
    if (config.demoSeed) demo = await seedDemo(pool, config.dataDir, config.commandPublicKey, 25, config.demoTz);

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
      });
      stops.push(() => broker!.close());
    }
    mqttUrl ??= `mqtt://127.0.0.1:${config.embeddedMqttPort}`;

    if (config.services.has('jobs')) {
      // Loaded per service, like the api: a gateway-only process never loads pg-boss or mailers.
      const { startJobs } = await import('./jobs/service.ts');
      const jobs = await startJobs({ pool, config, log: logger('jobs') });
      stops.push(() => jobs.stop());
    }

    let gateway: Gateway | undefined;
    if (config.services.has('gateway')) {
      // Alert rules run after each committed batch, off the ack path.
      const alerts = new AlertEngine(pool, logger('alerts'), { lookbackDays: config.alerts.lookbackDays });
      stops.push(() => alerts.stop());
      gateway = new Gateway({
        pool,
        log: logger('gateway'),
        mqttUrl,
        username: config.mqttUsername,
        password: config.mqttPassword,
        clientId: config.gateway.clientId,
        shareGroup: config.mqttShareGroup,
        batchMax: config.gateway.batchMax,
        lanes: config.gateway.lanes,
        flushMs: config.gateway.flushMs,
        commandRetryS: config.gateway.commandRetryS,
        onCommitted: (b) => alerts.committed(b),
      });
      await gateway.start();
      stops.push(() => gateway!.stop());
    }

    if (config.services.has('api')) {
      // Loaded per service: a gateway-only process never loads the web stack.
      const { buildApi } = await import('./api/app.ts');
      const app = await buildApi({
        pool,
        config,
        log: logger('api'),
        commandKey: privateKeyFromB64(config.commandSigningKey),
        ready: () => ({ mqtt: gateway ? gateway.connected : true }),
      });
      await app.listen({ port: config.port, host: config.host });
      stops.push(() => app.close());
    }

    if (config.services.has('simulator') && config.sim.meters > 0) {
      const fleetFile = path.join(config.dataDir, 'fleet.json');
      let file: FleetFile;
      try {
        file = JSON.parse(readFileSync(fleetFile, 'utf8')) as FleetFile;
      } catch {
        throw new ConfigError([`simulator: no fleet file at ${fleetFile} (it is written by the demo seed; set DEMO_SEED=true)`]);
      }
      const simLog = logger('simulator');
      const { Fleet } = await import('@kilowire/meter');
      const fleet = new Fleet({
        brokerUrl: mqttUrl,
        serverPublicKey: file.serverPublicKey,
        meters: file.meters.slice(0, config.sim.meters).map((m) => ({ ...m })),
        stateDir: path.join(config.dataDir, 'meters'),
        speed: config.sim.speed,
        backfillDays: config.sim.backfillDays,
        log: (line) => simLog.info(line),
        summaryEveryMs: 30_000,
      });
      fleet.start();
      stops.push(() => fleet.stop());
    }

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
    ...d.staff.map((s) => `  ${s.role.padEnd(17)} ${s.email.padEnd(26)} ${s.password}`),
    `  consumers         ${d.consumers[0]?.consumerId ?? ''} .. ${d.consumers.at(-1)?.consumerId ?? ''}  password ${d.consumers[0]?.password ?? ''}`,
    ...d.consumers.slice(0, 6).map((c) => `    ${c.consumerId}  ${c.mode.padEnd(10)} meter ${c.meter}`),
    d.consumers.length > 6 ? `    ... and ${d.consumers.length - 6} more (every third is prepayment)` : '',
    '',
    'Ctrl-C stops everything; data stays in ' + config.dataDir,
    '',
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

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
  let running: Running;
  try {
    running = await startKilowire(config);
  } catch (err) {
    if (err instanceof ConfigError) process.stderr.write(`kilowire: ${err.message}\n`);
    else process.stderr.write(`kilowire: failed to start: ${(err as Error).message}\n`);
    process.exit(1);
  }
  let stopping = false;
  const shutdown = (sig: string) => {
    if (stopping) return;
    stopping = true;
    rootLogger.info({ sig }, 'stopping');
    running.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('main.ts')) {
  void main();
}
