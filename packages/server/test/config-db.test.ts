import { spawnSync } from 'node:child_process';
import { mkdtempSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.ts';
import { createPool } from '../src/db/pool.ts';
import { durabilityProblems, migrate } from '../src/db/migrate.ts';
import { createTestDb, type TestDb } from './support/db.ts';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'kw-cfg-'));

describe('configuration', () => {
  it('lists every problem at once', () => {
    try {
      loadConfig(
        { PORT: 'eighty', DATABASE_URL: 'mysql://x', SIM_METERS: '-1', LOG_LEVEL: 'loud', DATA_DIR: tmp() },
        [],
      );
      expect.unreachable('invalid config accepted');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const problems = (err as ConfigError).problems.join('\n');
      for (const key of ['PORT', 'DATABASE_URL', 'SIM_METERS', 'LOG_LEVEL']) expect(problems).toContain(key);
    }
  });

  it('refuses an unknown service and an external broker without a password', () => {
    expect(() => loadConfig({ DATA_DIR: tmp() }, ['--services=api,teleport'])).toThrow(/teleport/);
    expect(() => loadConfig({ DATA_DIR: tmp(), MQTT_URL: 'mqtt://127.0.0.1:1883' }, [])).toThrow(
      /MQTT_PASSWORD/,
    );
    // A process without the gateway never logs in to the broker: no password needed.
    const jobsOnly = loadConfig({ DATA_DIR: tmp(), MQTT_URL: 'mqtt://127.0.0.1:1883' }, [
      '--services=jobs,api',
    ]);
    expect([...jobsOnly.services].sort()).toEqual(['api', 'jobs']);
  });

  it('generates secrets once, owner-only, and keeps them across starts', () => {
    const dir = tmp();
    const a = loadConfig({ DATA_DIR: dir }, []);
    const b = loadConfig({ DATA_DIR: dir }, []);
    expect(a.commandSigningKey).toBe(b.commandSigningKey);
    expect(a.mqttPassword).toBe(b.mqttPassword);
    expect(statSync(path.join(dir, 'secrets.json')).mode & 0o777).toBe(0o600);
    expect(Buffer.from(a.commandPublicKey, 'base64')).toHaveLength(32);
  });

  it('exits non-zero with every error listed, and never prints a secret', () => {
    const dir = tmp();
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'packages/server/src/main.ts'], {
      env: { ...process.env, DATA_DIR: dir, PORT: 'x', SIM_SPEED: '0', COMMAND_SIGNING_KEY: 'c2VjcmV0' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('PORT');
    expect(r.stderr).toContain('SIM_SPEED');
    expect(r.stderr + r.stdout).not.toContain('c2VjcmV0');
  });
});

describe('database', () => {
  let db: TestDb;
  beforeAll(async () => {
    db = await createTestDb();
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('applies migrations exactly once when several processes start together', async () => {
    const fresh = await createTestDb();
    // createTestDb migrated it; wipe and let four pools race.
    await fresh.pool.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public');
    const pools = Array.from({ length: 4 }, () => createPool(fresh.url, 2));
    const results = await Promise.all(pools.map((p) => migrate(p)));
    const applied = results.flat();
    const files = (
      await fresh.pool.query<{ name: string }>('SELECT name FROM schema_migrations ORDER BY name')
    ).rows.map((r) => r.name);
    expect(applied.sort()).toEqual(files);
    expect(files.length).toBeGreaterThan(0);
    await Promise.all(pools.map((p) => p.end()));
    await fresh.drop();
  });

  it('detects a PostgreSQL that may lose commits', async () => {
    expect(await durabilityProblems(db.pool)).toEqual([]);
    const dbName = new URL(db.url).pathname.slice(1);
    await db.pool.query(`ALTER DATABASE ${dbName} SET synchronous_commit = off`);
    const p = createPool(db.url, 1);
    expect(await durabilityProblems(p)).toEqual(['synchronous_commit is off']);
    await p.end();
  });
});
