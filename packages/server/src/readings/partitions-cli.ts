import { pathToFileURL } from 'node:url';
import { ConfigError, embeddedPgPassword, loadConfig } from '../config.ts';
import { createPool, isConnectionError } from '../db/pool.ts';
import {
  PartitionError,
  createMonth,
  detachMonth,
  ensurePartitions,
  listPartitions,
  parseMonth,
  type PartitionInfo,
} from './partitions.ts';

/**
 * #11 `npm run partitions -- list | create [YYYY-MM] | detach <YYYY-MM | legacy>`: the
 * monthly partitions of the reading tables, for an operator. Uses DATABASE_URL, or the
 * embedded PostgreSQL of a Kilowire running with the same DATA_DIR.
 */

const USAGE = `usage:
  npm run partitions -- list
      every partition of the reading tables: bounds (UTC), rows (estimate), size
  npm run partitions -- create [YYYY-MM]
      the partitions PARTITIONS_AHEAD_MONTHS ahead (what the jobs service does daily), or the given month's
  npm run partitions -- detach <YYYY-MM | legacy>
      detach a past month of every reading table for archive: each stays a plain table of the same
      name (dump it, then drop it); "legacy": the tables as they were before partitioning`;

class UsageError extends Error {}

function fmtBytes(n: number): string {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(1)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  return `${Math.round(n / 1024)} KiB`;
}

function table(parts: PartitionInfo[]): string {
  const rows = parts.map((p) => [
    p.name,
    p.isDefault ? 'DEFAULT' : `${p.from?.slice(0, 10) ?? '(start)'} .. ${p.to?.slice(0, 10) ?? '(end)'}`,
    p.rowsEstimate < 0 ? '?' : String(Math.round(p.rowsEstimate)),
    fmtBytes(p.bytes),
  ]);
  const head = ['partition', 'ts range (UTC, end excluded)', 'rows (est.)', 'size'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [head, ...rows]
    .map((r) =>
      r
        .map((c, i) => c.padEnd(w[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    if (!cmd || !['list', 'create', 'detach'].includes(cmd)) throw new UsageError('give a command');
    if (cmd === 'detach' && rest.length !== 1)
      throw new UsageError('detach takes one month (YYYY-MM) or "legacy"');
    if (rest.length > 1) throw new UsageError(`${cmd} takes at most one argument`);
    if (cmd === 'list' && rest.length) throw new UsageError('list takes no argument');
    const month = cmd === 'create' && rest[0] ? parseMonth(rest[0]) : undefined;
    if (cmd === 'detach' && rest[0] !== 'legacy') parseMonth(rest[0]!);

    // Read as the jobs service reads it (PARTITIONS_AHEAD_MONTHS, the database); settings
    // only the gateway needs (MQTT_PASSWORD) are not asked for.
    const config = loadConfig(env, ['--services=jobs']);
    const url =
      config.databaseUrl ??
      `postgres://postgres:${encodeURIComponent(embeddedPgPassword(config.dataDir))}@127.0.0.1:${config.embeddedPgPort}/kilowire`;
    // Moving rows out of a large default partition may take minutes; the DDL itself is instant.
    const pool = createPool(url, {
      max: 2,
      statementTimeoutMs: 600_000,
      applicationName: 'kilowire-partitions',
    });
    try {
      if (cmd === 'list') {
        process.stdout.write(`${table(await listPartitions(pool))}\n`);
      } else if (cmd === 'create') {
        const made = month
          ? await createMonth(pool, month)
          : await ensurePartitions(pool, { aheadMonths: config.partitions.aheadMonths });
        process.stdout.write(made.length ? `created ${made.join(', ')}\n` : 'nothing to create\n');
      } else {
        const gone = await detachMonth(pool, rest[0]!);
        process.stdout.write(
          `detached (now plain tables, no longer read by Kilowire):\n${table(gone)}\n` +
            `archive and drop each, e.g.: pg_dump -Fc -t ${gone[0]!.name} -f ${gone[0]!.name}.dump "$DATABASE_URL" && psql "$DATABASE_URL" -c 'DROP TABLE ${gone[0]!.name}'\n`,
        );
      }
    } catch (err) {
      if (isConnectionError(err) && !config.databaseUrl) {
        throw new PartitionError(
          `cannot reach the embedded PostgreSQL on 127.0.0.1:${config.embeddedPgPort}: start Kilowire (npm start) with the same DATA_DIR, or set DATABASE_URL`,
        );
      }
      throw err;
    } finally {
      await pool.end();
    }
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n${USAGE}\n`);
      return 2;
    }
    if (err instanceof PartitionError || err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
