/**
 * The server package's public surface, for tools that drive Kilowire from outside (the
 * benchmarks, operations scripts): the process entry and the building blocks they compose.
 * Code inside the package imports its modules directly; nothing outside reaches past this file.
 */
export { startKilowire, type Running } from './main.ts';
export { loadConfig, embeddedPgPassword, envSchema, type Config } from './config.ts';
export { createPool, tx, withTx, waitForDatabase, type Pool, type PoolClient } from './db/pool.ts';
export { startEmbeddedPostgres, type EmbeddedPg } from './db/embedded.ts';
export { migrate } from './db/migrate.ts';
export {
  createArea,
  createHousehold,
  createOrganisation,
  createStaffUser,
  type CreatedHousehold,
} from './accounts/repo.ts';
export { hashPassword } from './auth/passwords.ts';
export { Gateway, type GatewayOptions } from './gateway/gateway.ts';
export { ingest, type ReadingsItem, type EventsItem } from './readings/ingest.ts';
export { runVee, type MeterInfo } from './readings/vee.ts';
export { buildApi } from './api/app.ts';
export { startJobs } from './jobs/service.ts';
export { mosquittoAcl, mosquittoPasswordLine, writeMosquittoConfig } from './broker/mosquitto.ts';
// #11 the clustered broker (bench/broker-cluster.ts measures it).
export { NatsCluster } from './broker/nats.ts';
export { metrics, registry } from './metrics.ts';
export { logger, rootLogger } from './log.ts';
export { freePort, waitPort, assertPortFree } from './net.ts';
export { createBillRun, runBillRun, billRunProgress } from './money/billrun.ts';
export { issueDemoBills } from './demo/bills.ts';
// #8 cases and extracts (the extract benchmark drives the real job path).
export { createExtract } from './extracts/extracts.ts';
export { EXTRACT_QUEUE, startCaseJobs } from './jobs/cases.ts';
export { startBoss } from './jobs/boss.ts';
// #9 collection (the collection benchmark collects a day of 100,000 meters).
export { collectDay, type CollectResult } from './collection/collect.ts';
export { fileLines } from './collection/queries.ts';
// #9 collection end
// #10 B firmware (the firmware benchmark offers an image to its meters as a campaign would).
export { offerImage } from './firmware/commands.ts';
// #10 B end
// #11 n failover (the failover benchmark issues commands while gateways are killed).
export { requestCommand } from './commands/lifecycle.ts';
// #11 n end
