/**
 * Where does the gateway's time go? Not part of `npm run bench`; run by hand:
 *
 *   node --import tsx bench/profile-ingest.ts            (embedded PostgreSQL, like the bench)
 *   DATABASE_URL=postgres://... node --import tsx bench/profile-ingest.ts
 *
 * For batches shaped like the gateway's (2,000 messages of 1 or 48 readings) it times the
 * JavaScript side per message (decode + validation, VEE) and each SQL statement of
 * ingest, then prints EXPLAIN ANALYZE of the readings UPSERT for one batch of each shape.
 */
import { readFileSync } from 'node:fs';
import { decodeUp, encodeUp, type ReadingsMessage } from '@kilowire/protocol';
import { provision, startDatabase } from './db.ts';
import { nowMs, runCleanups } from './lib.ts';
import {
  ingest,
  rootLogger,
  runVee,
  tx,
  type MeterInfo,
  type PoolClient,
  type ReadingsItem,
} from '@kilowire/server';

const BATCH = 2000;

/** CPU time (user + system) a PostgreSQL backend has used, ms (Linux, same machine only). */
function backendCpuMs(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
  } catch {
    return 0; // a remote DATABASE_URL: no figure
  }
}

function msg(seq: number, startS: number, k: number, before: number): ReadingsMessage {
  const whs = Array.from({ length: k }, (_, j) => 50 + ((seq * 7 + j * 13) % 400));
  const total = before + whs.reduce((a, b) => a + b, 0);
  return {
    v: 1,
    seq,
    intervalS: 1800,
    intervals: whs.map((wh, i) => ({ t: startS + i * 1800, wh })),
    registers: { '1.0.1.8.0': total, '1.0.1.8.1': total, '1.0.1.8.2': 0, '1.0.2.8.0': 0 },
  };
}

/** A client whose query() records the time of every statement, keyed by its first words. */
function timed(c: PoolClient, acc: Map<string, number>, explain: boolean): PoolClient {
  const orig = c.query.bind(c) as (...a: unknown[]) => Promise<{ rows: unknown[] }>;
  const wrapped = (...a: unknown[]): unknown => {
    // COPY streams (pg-copy-streams submittables): timed from submission to 'finish'.
    if (typeof a[0] !== 'string') {
      const t = nowMs();
      const stream = orig(...a) as unknown as NodeJS.WritableStream;
      stream.on('finish', () => acc.set('COPY', (acc.get('COPY') ?? 0) + nowMs() - t));
      return stream;
    }
    return timedQuery(...a);
  };
  const timedQuery = async (...a: unknown[]) => {
    let sql = a[0] as string;
    const key =
      /INSERT INTO (\w+)|UPDATE (\w+)|^\s*(BEGIN|COMMIT)/.exec(sql)?.slice(1).find(Boolean) ??
      sql.trim().slice(0, 30);
    const isUpsert = sql.includes('INSERT INTO interval_readings');
    if (explain && isUpsert) sql = `EXPLAIN (ANALYZE, BUFFERS, TIMING ON) ${sql}`;
    const t = nowMs();
    const res = await orig(sql, ...a.slice(1));
    acc.set(key, (acc.get(key) ?? 0) + nowMs() - t);
    if (explain && isUpsert) {
      process.stdout.write(
        (res.rows as { 'QUERY PLAN': string }[]).map((r) => r['QUERY PLAN']).join('\n') + '\n',
      );
      return { rows: [{ new_rows: 0 }] };
    }
    return res;
  };
  return new Proxy(c, {
    get: (target, p) => (p === 'query' ? wrapped : (Reflect.get(target, p) as unknown)),
  });
}

async function main(): Promise<void> {
  rootLogger.level = 'warn';
  const db = await startDatabase();
  const shapes = (process.env.PROFILE_SHAPES ?? '1,48').split(',').map(Number);
  for (const k of shapes) {
    const meters = await provision(db.pool, BATCH, { prefix: 'P', passwordHash: 'x' });
    const info: MeterInfo[] = meters.map((m) => ({
      id: m.meterId,
      serial: m.serial,
      tz: 'Europe/London',
      intervalS: 1800,
      maxPowerW: 23000,
      lastRegAt: null,
      lastRegImport: null,
    }));
    const batches = Number(process.env.PROFILE_BATCHES ?? 4);
    const startS = Math.floor((Date.now() / 1000 - (batches + 1) * k * 1800 - 86_400) / 86_400) * 86_400;
    const reg = new Array<number>(BATCH).fill(0);
    let decodeMs = 0;
    let veeMs = 0;
    const stmt = new Map<string, number>();
    let total = 0;
    // CPU time rather than wall time: on a shared 2-core machine the wall time of a batch
    // moves with everyone else's load, the CPU it costs much less (for A/B comparisons).
    let jsCpuMs = 0;
    let pgCpuMs = 0;
    for (let b = 0; b < batches; b++) {
      const items: ReadingsItem[] = [];
      for (let i = 0; i < BATCH; i++) {
        const m = msg(b + 1, startS + b * k * 1800, k, reg[i]!);
        reg[i] = m.registers['1.0.1.8.0'];
        const payload = encodeUp('readings', m);
        let t = nowMs();
        const decoded = decodeUp('readings', payload);
        decodeMs += nowMs() - t;
        t = nowMs();
        const vee = runVee(info[i]!, decoded, Math.floor(Date.now() / 1000));
        veeMs += nowMs() - t;
        items.push({ meterId: info[i]!.id, serial: info[i]!.serial, tz: info[i]!.tz, msg: decoded, vee });
      }
      const explain = b === batches - 1;
      const t = nowMs();
      const cpu0 = process.cpuUsage();
      let pg0 = 0;
      let pid = 0;
      await tx(db.pool, async (c) => {
        if (!explain) {
          pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
          pg0 = backendCpuMs(pid);
        }
        return ingest(timed(c, explain ? new Map<string, number>() : stmt, explain), items, []);
      });
      if (!explain) {
        total += nowMs() - t;
        const cpu = process.cpuUsage(cpu0);
        jsCpuMs += (cpu.user + cpu.system) / 1000;
        pgCpuMs += backendCpuMs(pid) - pg0;
      }
    }
    const n = (batches - 1) * BATCH;
    process.stdout.write(
      `\n== ${k} reading(s) per message, batches of ${BATCH} messages (${BATCH * k} rows)\n` +
        `JS per message: decode+schema ${((decodeMs / (batches * BATCH)) * 1000).toFixed(1)} us, VEE ${((veeMs / (batches * BATCH)) * 1000).toFixed(1)} us\n` +
        `ingest per batch: ${(total / (batches - 1)).toFixed(0)} ms = ${((n * k) / (total / 1000)).toFixed(0)} rows/s, ${(n / (total / 1000)).toFixed(0)} msgs/s\n` +
        `CPU per batch: gateway JS ${(jsCpuMs / (batches - 1)).toFixed(0)} ms, PostgreSQL backend ${(pgCpuMs / (batches - 1)).toFixed(0)} ms (incl. COMMIT)\n` +
        [...stmt]
          .map(([key, ms]) => `  ${key.padEnd(20)} ${(ms / (batches - 1)).toFixed(1)} ms/batch`)
          .join('\n') +
        '\n',
    );
  }
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => runCleanups());
