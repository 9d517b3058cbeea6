/**
 * (a) The floor the gateway is compared with: raw COPY of narrow reading rows
 * (meter_id, ts, wh, flags) into interval_readings (primary key in place), in
 * (meter, ts) order, on one connection and on two concurrently.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { log, nowMs } from './lib.ts';
import { type Pool } from '@kilowire/server';

/** Meter ids far above anything provisioned (interval_readings has no foreign key). */
const BASE_METER = 10_000_000;

function tsStrings(n: number, startS: number): string[] {
  return Array.from({ length: n }, (_, i) =>
    new Date((startS + i * 1800) * 1000).toISOString().replace('T', ' ').replace('.000Z', '+00'),
  );
}

/** Text-format COPY rows for meters [m0, m1), `perMeter` half-hours each, in 256 kB chunks. */
function rows(m0: number, m1: number, ts: string[]): Readable {
  function* gen(): Generator<Buffer> {
    let chunk = '';
    for (let m = m0; m < m1; m++) {
      const id = String(BASE_METER + m);
      for (let i = 0; i < ts.length; i++) {
        chunk += `${id}\t${ts[i]!}\t${50 + ((m * 31 + i * 7) % 400)}\t0\n`;
        if (chunk.length > 256_000) {
          yield Buffer.from(chunk);
          chunk = '';
        }
      }
    }
    if (chunk) yield Buffer.from(chunk);
  }
  return Readable.from(gen(), { objectMode: false });
}

/** Binary-format COPY rows (what the gateway sends since #11): int4, int8 µs since 2000, int4, int2. */
function binaryRows(m0: number, m1: number, startS: number, perMeter: number): Readable {
  function* gen(): Generator<Buffer> {
    // Signature, flags, header extension; then per row 2 + (4+4) + (4+8) + (4+4) + (4+2) bytes.
    yield Buffer.from([
      0x50, 0x47, 0x43, 0x4f, 0x50, 0x59, 0x0a, 0xff, 0x0d, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    const ROW = 36;
    const per = Math.floor(256_000 / ROW);
    let buf = Buffer.allocUnsafe(per * ROW);
    let o = 0;
    for (let m = m0; m < m1; m++) {
      for (let i = 0; i < perMeter; i++) {
        const us = (startS + i * 1800 - 946_684_800) * 1_000_000;
        const hi = Math.floor(us / 4_294_967_296);
        buf.writeInt16BE(4, o);
        buf.writeInt32BE(4, o + 2);
        buf.writeInt32BE(BASE_METER + m, o + 6);
        buf.writeInt32BE(8, o + 10);
        buf.writeInt32BE(hi, o + 14);
        buf.writeUInt32BE(us - hi * 4_294_967_296, o + 18);
        buf.writeInt32BE(4, o + 22);
        buf.writeInt32BE(50 + ((m * 31 + i * 7) % 400), o + 26);
        buf.writeInt32BE(2, o + 30);
        buf.writeInt16BE(0, o + 34);
        o += ROW;
        if (o === buf.length) {
          yield buf;
          buf = Buffer.allocUnsafe(per * ROW);
          o = 0;
        }
      }
    }
    const trailer = Buffer.alloc(2);
    trailer.writeInt16BE(-1);
    yield Buffer.concat([buf.subarray(0, o), trailer]);
  }
  return Readable.from(gen(), { objectMode: false });
}

async function copyRange(
  url: string,
  m0: number,
  m1: number,
  ts: string[],
  binaryFrom?: number,
): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    if (binaryFrom !== undefined) {
      const sink = c.query(
        copyFrom('COPY interval_readings (meter_id, ts, wh, flags) FROM STDIN WITH (FORMAT binary)'),
      );
      await pipeline(binaryRows(m0, m1, binaryFrom, ts.length), sink);
      return;
    }
    const sink = c.query(copyFrom('COPY interval_readings (meter_id, ts, wh, flags) FROM STDIN'));
    await pipeline(rows(m0, m1, ts), sink);
  } finally {
    await c.end();
  }
}

export interface CopyResult {
  rows: number;
  oneConnRowsPerS: number;
  twoConnRowsPerS: number;
  /** Binary-format COPY on one connection: an extra figure, not the ratio's baseline. */
  binaryRowsPerS: number;
}

export async function benchCopy(url: string, pool: Pool, totalRows: number): Promise<CopyResult> {
  const perMeter = 48 * 30; // a month of half-hours per meter
  const meters = Math.ceil(totalRows / perMeter);
  const n = meters * perMeter;
  const ts = tsStrings(perMeter, Math.floor(Date.UTC(2024, 0, 1) / 1000));

  // Warm-up (connection, catalog, WAL segment creation) not counted.
  await copyRange(url, meters * 3, meters * 3 + 10, ts);
  await pool.query('TRUNCATE interval_readings');
  await pool.query('CHECKPOINT');

  let t = nowMs();
  await copyRange(url, 0, meters, ts);
  const one = n / ((nowMs() - t) / 1000);
  log(`COPY 1 connection: ${n} rows, ${Math.round(one)} rows/s`);
  await pool.query('TRUNCATE interval_readings');
  await pool.query('CHECKPOINT');

  t = nowMs();
  const half = Math.floor(meters / 2);
  await Promise.all([copyRange(url, 0, half, ts), copyRange(url, half, meters, ts)]);
  const two = n / ((nowMs() - t) / 1000);
  log(`COPY 2 connections: ${n} rows, ${Math.round(two)} rows/s`);
  const { rows: check } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM interval_readings');
  if (check[0]?.n !== n) throw new Error(`COPY stored ${check[0]?.n} rows, expected ${n}`);
  await pool.query('TRUNCATE interval_readings');
  await pool.query('CHECKPOINT');

  // The same rows in binary format (the gateway's format since #11), reported on the side:
  // the ingest ratio keeps text COPY as its baseline.
  const startS = Math.floor(Date.UTC(2024, 0, 1) / 1000);
  t = nowMs();
  await copyRange(url, 0, meters, ts, startS);
  const binary = n / ((nowMs() - t) / 1000);
  log(`COPY binary, 1 connection: ${n} rows, ${Math.round(binary)} rows/s`);
  const { rows: checkB } = await pool.query<{ n: number; first: number }>(
    'SELECT count(*)::int AS n, extract(epoch FROM min(ts))::int AS first FROM interval_readings',
  );
  if (checkB[0]?.n !== n || checkB[0]?.first !== startS)
    throw new Error(
      `binary COPY stored ${checkB[0]?.n} rows from ${checkB[0]?.first}, expected ${n} from ${startS}`,
    );
  await pool.query('TRUNCATE interval_readings');
  await pool.query('CHECKPOINT');
  return { rows: n, oneConnRowsPerS: one, twoConnRowsPerS: two, binaryRowsPerS: binary };
}
