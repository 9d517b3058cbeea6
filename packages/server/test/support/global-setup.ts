import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres, type EmbeddedPg } from '../../src/db/embedded.ts';
import { logger } from '../../src/log.ts';

/**
 * With DATABASE_URL set (CI's second pass, or a developer's own server) tests use that
 * server; otherwise one embedded PostgreSQL serves the whole run, exactly as `npm start`
 * would on a fresh machine. Each test file then creates its own database on it.
 */
let embedded: EmbeddedPg | undefined;

export async function setup(project: TestProject): Promise<void> {
  let url = process.env.DATABASE_URL;
  if (!url) {
    const port = Number(process.env.TEST_EMBEDDED_PG_PORT ?? 54339);
    const dir = path.resolve('.test-data', String(port));
    embedded = await startEmbeddedPostgres(dir, port, 'kilowire-test', logger('test-pg'));
    url = embedded.url;
  }
  project.provide('databaseUrl', url);
  project.provide('mqttUrl', process.env.MQTT_URL ?? '');
}

export async function teardown(): Promise<void> {
  await embedded?.stop();
}
