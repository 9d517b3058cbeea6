import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { from as copyFrom } from 'pg-copy-streams';
import { DayFinder, type EventsMessage, type ReadingsMessage } from '@kilowire/protocol';
import type { PoolClient } from '../db/pool.ts';
import { emitEvents } from '../events/emit.ts';
import type { NewEvent } from '../events/types.ts';
import type { VeeIssue, VeeResult } from './vee.ts';

/**
 * The write side of what meters send with sequence numbers: interval readings (with their
 * register snapshots and VEE findings) and meter events. One call per gateway batch, in the
 * gateway's transaction; it returns the acknowledgements to publish after COMMIT and writes
 * the domain events (readings committed, each new meter event) in the same transaction.
 */

/** One readings message, after VEE. */
export interface ReadingsItem {
  meterId: number;
  serial: string;
  /** The meter's time zone: rollups are per local calendar day. */
  tz: string;
  msg: ReadingsMessage;
  vee: VeeResult;
}

export interface EventsItem {
  meterId: number;
  serial: string;
  msg: EventsMessage;
  /** Refused as a whole (an event dated in the future): acknowledged, recorded, not stored. */
  refused?: 'FUTURE_EVENT';
}

export interface AckInfo {
  serial: string;
  stream: 'readings' | 'events';
  upTo: number;
  above: number[];
}

/** A message whose sequence number was already committed but whose data differs from what was stored. */
export interface SeqConflict {
  meterId: number;
  serial: string;
  stream: 'readings' | 'events';
  seq: number;
}

export interface IngestResult {
  acks: AckInfo[];
  newReadings: number;
  newEvents: number;
  conflicts: SeqConflict[];
}

/**
 * Insert interval rows idempotently on (meter, ts) and keep the local-calendar rollups
 * current, in one statement. An actual reading replaces an estimate (never the reverse);
 * `old` is read from the same snapshot so the rollups get the exact delta. Rows must be
 * unique on (meter, ts) — ON CONFLICT cannot touch a row twice in one statement. The local
 * day of each row comes from the caller (the same calendar code as the COPY path), so one
 * engine decides which day a reading counts for.
 */
const UPSERT_READINGS = `
WITH rows AS (
  SELECT meter_id, to_timestamp(epoch) AS ts, day, wh, exp_wh, flags
    FROM unnest($1::int[], $2::float8[], $3::date[], $4::int[], $5::int[], $6::smallint[]) AS t(meter_id, epoch, day, wh, exp_wh, flags)
), old AS (
  -- Served by the partial index on estimated rows: only estimates can be replaced.
  SELECT r.meter_id, r.ts, r.wh FROM interval_readings r JOIN rows i ON r.meter_id = i.meter_id AND r.ts = i.ts
  WHERE r.flags & 1 = 1
), ins AS (
  INSERT INTO interval_readings AS cur (meter_id, ts, wh, exp_wh, flags)
  SELECT meter_id, ts, wh, exp_wh, flags FROM rows ORDER BY meter_id, ts
  ON CONFLICT (meter_id, ts) DO UPDATE SET wh = excluded.wh, exp_wh = excluded.exp_wh, flags = excluded.flags
    WHERE cur.flags & 1 = 1 AND excluded.flags & 1 = 0
  RETURNING meter_id, ts, wh, flags
), delta AS (
  SELECT ins.meter_id, rows.day, ins.wh - coalesce(old.wh, 0) AS dwh,
         CASE WHEN old.wh IS NULL THEN 1 ELSE 0 END AS dn,
         (ins.flags & 1) - CASE WHEN old.wh IS NULL THEN 0 ELSE 1 END AS de
  FROM ins JOIN rows ON rows.meter_id = ins.meter_id AND rows.ts = ins.ts
  LEFT JOIN old ON old.meter_id = ins.meter_id AND old.ts = ins.ts
), d AS (
  SELECT meter_id, day, sum(dwh) AS wh, sum(dn) AS n, sum(de) AS e FROM delta GROUP BY 1, 2
), up_d AS (
  INSERT INTO daily_rollups AS r (meter_id, day, wh, intervals, estimated)
  SELECT meter_id, day, wh, n, e FROM d ORDER BY meter_id, day
  ON CONFLICT (meter_id, day) DO UPDATE SET wh = r.wh + excluded.wh, intervals = r.intervals + excluded.intervals,
    estimated = r.estimated + excluded.estimated
)
SELECT coalesce(sum(dn), 0)::int AS new_rows FROM delta`;

const INSERT_REGISTERS = `
INSERT INTO register_reads (meter_id, ts, import_wh, rate1_wh, rate2_wh, rate3_wh, export_wh)
SELECT meter_id, to_timestamp(epoch), i, r1, r2, r3, e
FROM unnest($1::int[], $2::float8[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[]) AS t(meter_id, epoch, i, r1, r2, r3, e)
ON CONFLICT DO NOTHING`;

const INSERT_ISSUES = `
INSERT INTO vee_issues (meter_id, ts, rule, detail, needs_review)
SELECT meter_id, to_timestamp(epoch), rule, detail::jsonb, review
FROM unnest($1::int[], $2::float8[], $3::text[], $4::text[], $5::bool[]) AS t(meter_id, epoch, rule, detail, review)
ON CONFLICT DO NOTHING`;

/** New events only (RETURNING): each becomes a domain event; a resent one is already known. */
const INSERT_EVENTS = `
INSERT INTO meter_events (meter_id, seq, idx, ts, code, data)
SELECT meter_id, seq, idx, to_timestamp(epoch), code, data::jsonb
FROM unnest($1::int[], $2::bigint[], $3::smallint[], $4::float8[], $5::text[], $6::text[]) AS t(meter_id, seq, idx, epoch, code, data)
ON CONFLICT DO NOTHING
RETURNING meter_id, seq, idx, extract(epoch FROM ts)::bigint AS t, code, data`;

/** Lock and read the sequence state of the batch's meters (in id order: no deadlock between gateways). */
const LOCK_STATE = `
SELECT meter_id, readings_upto, readings_above, events_upto, events_above,
       extract(epoch FROM last_reg_at)::float8 AS last_reg_at FROM meter_ingest_state
 WHERE meter_id = ANY($1::int[]) ORDER BY meter_id FOR UPDATE`;

/**
 * Store the new watermarks. They are computed in JS from the rows locked by LOCK_STATE (no
 * other transaction can move them meanwhile), so the statement is a plain keyed update: the
 * former GROUP BY/array_agg/kw_advance_seq statement was the costliest of a one-reading batch.
 */
function advanceSql(stream: 'readings' | 'events'): string {
  return `
UPDATE meter_ingest_state st SET ${stream}_upto = u.upto, ${stream}_above = u.above::bigint[], last_data_at = now(),
  last_reg_at = coalesce(to_timestamp(u.reg_epoch), st.last_reg_at),
  last_reg_import = coalesce(u.reg_import, st.last_reg_import)
FROM unnest($1::int[], $2::bigint[], $3::text[], $4::float8[], $5::bigint[]) AS u(meter_id, upto, above, reg_epoch, reg_import)
WHERE st.meter_id = u.meter_id`;
}

/**
 * Fold a meter's newly committed sequence numbers into its watermark (what kw_advance_seq
 * does in SQL): everything up to `upto` is committed, `above` lists committed numbers past a gap.
 */
export function advanceSeq(
  upto: number,
  above: Iterable<number>,
  seqs: Iterable<number>,
): { upto: number; above: number[] } {
  const pending = new Set<number>();
  for (const x of above) if (x > upto) pending.add(x);
  for (const x of seqs) if (x > upto) pending.add(x);
  let u = upto;
  while (pending.delete(u + 1)) u++;
  return { upto: u, above: [...pending].filter((x) => x > u).sort((x, y) => x - y) };
}

/**
 * Columns of interval rows: meter, start (epoch s), Wh, export Wh (NO_EXP: none), flags.
 * Typed arrays, sized for the whole batch up front: `push` of epoch seconds (beyond V8's
 * small integers) into growing arrays cost ~0.5 µs a row, a third of a day batch's
 * JavaScript (docs/performance.md, "#11 Ingest").
 */
type Cols = [Int32Array, Float64Array, Int32Array, Int32Array, Int32Array];
/** Export Wh not sent (the schema's Wh are never negative). */
const NO_EXP = -1;

function sizedCols(n: number): Cols {
  return [new Int32Array(n), new Float64Array(n), new Int32Array(n), new Int32Array(n), new Int32Array(n)];
}

/** node-pg's generic array serialiser is slow for 100k elements; integers need no quoting. */
function pgArray(values: ArrayLike<number | null>, nullAs?: number): string {
  // Numbers alone: the built-in join is several times faster than mapping each to a string.
  if (nullAs === undefined && (ArrayBuffer.isView(values) || !(values as (number | null)[]).includes(null))) {
    return `{${(values as number[]).join(',')}}`;
  }
  const parts = new Array<string>(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    parts[i] = v === null || v === nullAs ? 'NULL' : String(v);
  }
  return `{${parts.join(',')}}`;
}

/**
 * Where each (meter, ts) of the batch is in the columns, to keep one row per interval. Rows
 * of one meter nearly always come in ascending time (a message's intervals are ascending and
 * its messages arrive in order), so a row later than the meter's latest is new without any
 * lookup; the index of every row is built only when one is not (an overlap or a resend).
 */
class RowIndex {
  private readonly latest = new Map<number, number>();
  private at: Map<number, number> | undefined;

  /** One key per (meter, ts): ts is a multiple of 900 s, meter ids stay below 2^30. */
  private static key(meterId: number, ts: number): number {
    return meterId * 8_388_608 + ts / 900;
  }

  /** The column index of an earlier row (of the first `i`) for this interval, or undefined; then records `i` as its row. */
  find(meterId: number, ts: number, i: number, cols: Cols): number | undefined {
    const latest = this.latest.get(meterId);
    if (latest === undefined || ts > latest) {
      this.latest.set(meterId, ts);
      this.at?.set(RowIndex.key(meterId, ts), i);
      return undefined;
    }
    if (!this.at) {
      this.at = new Map();
      for (let k = 0; k < i; k++) this.at.set(RowIndex.key(cols[0][k]!, cols[1][k]!), k);
    }
    const key = RowIndex.key(meterId, ts);
    const prev = this.at.get(key);
    if (prev === undefined) this.at.set(key, i);
    return prev;
  }
}

/** Add one row from column `n` on unless the batch has it already; returns the new row count. */
function pushRow(
  meterId: number,
  ts: number,
  wh: number,
  expWh: number,
  flags: number,
  seen: RowIndex,
  cols: Cols,
  days: string[],
  n: number,
  tz: string,
  finder: DayFinder,
): number {
  const at = seen.find(meterId, ts, n, cols);
  if (at !== undefined) {
    // The same interval twice in one batch (a resend): keep the actual over an estimate.
    if ((cols[4][at]! & 1) === 1 && (flags & 1) === 0) {
      cols[2][at] = wh;
      cols[3][at] = expWh;
      cols[4][at] = flags;
    }
    return n;
  }
  days[n] = finder.day(ts, tz);
  cols[0][n] = meterId;
  cols[1][n] = ts;
  cols[2][n] = wh;
  cols[3][n] = expWh;
  cols[4][n] = flags;
  return n + 1;
}

/** Add a message's intervals (with their VEE flags), then VEE's estimates, from column `n` on; returns the new row count. */
function pushRows(
  it: ReadingsItem,
  seen: RowIndex,
  cols: Cols,
  days: string[],
  n: number,
  finder: DayFinder,
): number {
  const { meterId, tz } = it;
  const ivs = it.msg.intervals;
  const flags = it.vee.flags;
  for (let i = 0; i < flags.length; i++) {
    const iv = ivs[i]!;
    n = pushRow(meterId, iv.t, iv.wh, iv.exp ?? NO_EXP, flags[i]!, seen, cols, days, n, tz, finder);
  }
  for (const r of it.vee.estimates) {
    n = pushRow(meterId, r.ts, r.wh, r.expWh ?? NO_EXP, r.flags, seen, cols, days, n, tz, finder);
  }
  return n;
}

/**
 * One entry per (meter, local day) of the batch, in first-seen order. The batch's rows come
 * grouped by meter and in time, so a Map lookup is needed only where (meter, day) changes.
 */
function meterDaySums(
  cols: Cols,
  days: string[],
): { meterId: number; day: string; wh: number; n: number; e: number }[] {
  const sums = new Map<string, { meterId: number; day: string; wh: number; n: number; e: number }>();
  let s: { meterId: number; day: string; wh: number; n: number; e: number } | undefined;
  for (let i = 0; i < cols[0].length; i++) {
    const meterId = cols[0][i]!;
    const day = days[i]!;
    if (!s || s.meterId !== meterId || s.day !== day) {
      const key = `${meterId}|${day}`;
      s = sums.get(key);
      if (!s) {
        s = { meterId, day, wh: 0, n: 0, e: 0 };
        sums.set(key, s);
      }
    }
    s.wh += cols[2][i]!;
    s.n += 1;
    s.e += cols[4][i]! & 1;
  }
  return [...sums.values()];
}

/**
 * The upsert's sorts and hash joins (tens of thousands of rows) must not spill to disk. Only
 * the fallback paths need it: the COPY path has no big sort, and one round trip less counts
 * for a batch of one-reading messages.
 */
function roomToSort(c: PoolClient): Promise<unknown> {
  return c.query("SET LOCAL work_mem = '64MB'");
}

async function upsertReadings(c: PoolClient, cols: Cols, days: string[]): Promise<number> {
  await roomToSort(c);
  const res = await c.query<{ new_rows: number }>(UPSERT_READINGS, [
    pgArray(cols[0]),
    pgArray(cols[1]),
    `{${days.join(',')}}`,
    pgArray(cols[2]),
    pgArray(cols[3], NO_EXP),
    pgArray(cols[4]),
  ]);
  return res.rows[0]?.new_rows ?? 0;
}

const ADD_DAILY = `
INSERT INTO daily_rollups AS r (meter_id, day, wh, intervals, estimated)
SELECT * FROM unnest($1::int[], $2::date[], $3::bigint[], $4::int[], $5::int[]) ORDER BY 1, 2
ON CONFLICT (meter_id, day) DO UPDATE SET wh = r.wh + excluded.wh, intervals = r.intervals + excluded.intervals,
  estimated = r.estimated + excluded.estimated`;

/** PostgreSQL's binary COPY: signature, flags, header extension length. */
const COPY_HEADER = Buffer.from([
  0x50, 0x47, 0x43, 0x4f, 0x50, 0x59, 0x0a, 0xff, 0x0d, 0x0a, 0x00, 0, 0, 0, 0, 0, 0, 0, 0,
]);
/** timestamptz on the wire: microseconds since 2000-01-01 UTC. */
const PG_EPOCH_S = 946_684_800;
const COPY_CHUNK = 256 * 1024;

/**
 * The batch's intervals as one binary COPY stream. Text COPY spent most of a day batch
 * formatting ISO timestamps in JS and parsing them again in PostgreSQL; binary rows are
 * fixed-size integers on both sides (measured in docs/performance.md, "#11 Ingest").
 * Every value is a schema-checked integer (epoch >= 2000, Wh 0..1 MWh, flags small).
 */
function binaryRows(cols: Cols): Buffer {
  const n = cols[0].length;
  // Per row: field count (2), meter_id (4+4), ts (4+8), wh (4+4), exp_wh (4+4 or 4), flags (4+2).
  const buf = Buffer.allocUnsafe(COPY_HEADER.length + n * 44 + 2);
  COPY_HEADER.copy(buf, 0);
  // A DataView's setters compile to plain stores; Buffer's writeInt32BE checks every call
  // (~0.3 µs a row of a day batch).
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let o = COPY_HEADER.length;
  for (let i = 0; i < n; i++) {
    dv.setInt16(o, 5);
    dv.setInt32(o + 2, 4);
    dv.setInt32(o + 6, cols[0][i]!);
    dv.setInt32(o + 10, 8);
    const us = (cols[1][i]! - PG_EPOCH_S) * 1_000_000;
    const hi = Math.floor(us / 4_294_967_296);
    dv.setInt32(o + 14, hi);
    dv.setUint32(o + 18, us - hi * 4_294_967_296);
    dv.setInt32(o + 22, 4);
    dv.setInt32(o + 26, cols[2][i]!);
    const exp = cols[3][i]!;
    if (exp === NO_EXP) {
      dv.setInt32(o + 30, -1);
      o += 34;
    } else {
      dv.setInt32(o + 30, 4);
      dv.setInt32(o + 34, exp);
      o += 38;
    }
    dv.setInt32(o, 2);
    dv.setInt16(o + 4, cols[4][i]!);
    o += 6;
  }
  dv.setInt16(o, -1);
  return buf.subarray(0, o + 2);
}

/**
 * The common case, at COPY speed: no interval of the batch is in the table yet, so COPY them
 * all and add the batch's own per-day sums to the rollups. Any existing (meter, ts) — a resend,
 * an estimate to replace — makes COPY fail on the primary key; the savepoint undoes it and
 * the caller takes the upsert path, which handles every case. Returns null then.
 */
async function copyNewReadings(
  c: PoolClient,
  cols: Cols,
  agg: ReturnType<typeof meterDaySums>,
): Promise<number | null> {
  await c.query('SAVEPOINT kw_copy');
  try {
    const buf = binaryRows(cols);
    const chunks: Buffer[] = [];
    for (let o = 0; o < buf.length; o += COPY_CHUNK) chunks.push(buf.subarray(o, o + COPY_CHUNK));
    await pipeline(
      Readable.from(chunks),
      c.query(
        copyFrom('COPY interval_readings (meter_id, ts, wh, exp_wh, flags) FROM STDIN WITH (FORMAT binary)'),
      ),
    );
  } catch (err) {
    await c.query('ROLLBACK TO SAVEPOINT kw_copy');
    if ((err as { code?: string }).code === '23505') return null;
    throw err;
  }
  await c.query('RELEASE SAVEPOINT kw_copy');
  await c.query(ADD_DAILY, [
    pgArray(agg.map((a) => a.meterId)),
    `{${agg.map((a) => a.day).join(',')}}`,
    pgArray(agg.map((a) => a.wh)),
    pgArray(agg.map((a) => a.n)),
    pgArray(agg.map((a) => a.e)),
  ]);
  return cols[0].length;
}

interface SeqState {
  /** End of the newest stored register snapshot (epoch s), null before the first. */
  lastRegAt: number | null;
  readingsUpto: number;
  readingsAbove: Set<number>;
  eventsUpto: number;
  eventsAbove: Set<number>;
}

async function lockState(c: PoolClient, meterIds: number[]): Promise<Map<number, SeqState>> {
  const ids = [...new Set(meterIds)];
  const { rows } = await c.query<{
    meter_id: number;
    readings_upto: number;
    readings_above: number[];
    events_upto: number;
    events_above: number[];
    last_reg_at: number | null;
  }>(LOCK_STATE, [pgArray(ids)]);
  return new Map(
    rows.map((r) => [
      r.meter_id,
      {
        lastRegAt: r.last_reg_at,
        readingsUpto: r.readings_upto,
        readingsAbove: new Set(r.readings_above),
        eventsUpto: r.events_upto,
        eventsAbove: new Set(r.events_above),
      },
    ]),
  );
}

function committed(st: SeqState | undefined, stream: 'readings' | 'events', seq: number): boolean {
  if (!st) return false;
  return stream === 'readings'
    ? seq <= st.readingsUpto || st.readingsAbove.has(seq)
    : seq <= st.eventsUpto || st.eventsAbove.has(seq);
}

/**
 * Which resent readings messages (sequence already committed) carry data that differs from
 * what was stored: every interval must exist as an actual reading with the same energy. A
 * resend of identical data stays harmless; anything else under a used number is refused.
 */
async function readingsConflicts(c: PoolClient, items: ReadingsItem[]): Promise<Set<number>> {
  const idx: number[] = [];
  const meter: number[] = [];
  const ts: number[] = [];
  const wh: number[] = [];
  items.forEach((it, i) => {
    for (const iv of it.msg.intervals) {
      idx.push(i);
      meter.push(it.meterId);
      ts.push(iv.t);
      wh.push(iv.wh);
    }
  });
  const bad = new Set<number>();
  if (!idx.length) return bad;
  await roomToSort(c);
  const { rows } = await c.query<{ i: number }>(
    `SELECT DISTINCT t.i FROM unnest($1::int[], $2::int[], $3::float8[], $4::int[]) AS t(i, meter_id, epoch, wh)
       LEFT JOIN interval_readings r ON r.meter_id = t.meter_id AND r.ts = to_timestamp(t.epoch)
      WHERE r.meter_id IS NULL OR r.wh <> t.wh OR r.flags & 1 = 1`,
    [pgArray(idx), pgArray(meter), pgArray(ts), pgArray(wh)],
  );
  for (const r of rows) bad.add(r.i);
  return bad;
}

/** Resent events messages whose events differ (code or time) from the stored ones. */
async function eventsConflicts(c: PoolClient, items: EventsItem[]): Promise<Set<number>> {
  const idx: number[] = [];
  const meter: number[] = [];
  const seq: number[] = [];
  const ev: number[] = [];
  const t: number[] = [];
  const code: string[] = [];
  items.forEach((it, i) => {
    if (it.refused) return;
    it.msg.events.forEach((e, k) => {
      idx.push(i);
      meter.push(it.meterId);
      seq.push(it.msg.seq);
      ev.push(k);
      t.push(e.t);
      code.push(e.code);
    });
  });
  const bad = new Set<number>();
  if (!idx.length) return bad;
  const { rows } = await c.query<{ i: number }>(
    `SELECT DISTINCT x.i FROM unnest($1::int[], $2::int[], $3::bigint[], $4::smallint[], $5::float8[], $6::text[])
            AS x(i, meter_id, seq, idx, epoch, code)
       LEFT JOIN meter_events e ON e.meter_id = x.meter_id AND e.seq = x.seq AND e.idx = x.idx
      WHERE e.meter_id IS NULL OR e.code <> x.code OR e.ts <> to_timestamp(x.epoch)`,
    [
      pgArray(idx),
      pgArray(meter),
      pgArray(seq),
      pgArray(ev),
      pgArray(t),
      `{${code.map((s) => `"${s}"`).join(',')}}`,
    ],
  );
  for (const r of rows) bad.add(r.i);
  // Messages of another length under the same number differ too (more events than stored).
  const { rows: counts } = await c.query<{ meter_id: number; seq: number; n: number }>(
    `SELECT meter_id, seq, count(*)::int AS n FROM meter_events
      WHERE (meter_id, seq) IN (SELECT * FROM unnest($1::int[], $2::bigint[]))
      GROUP BY 1, 2`,
    [pgArray(items.map((i) => i.meterId)), pgArray(items.map((i) => i.msg.seq))],
  );
  const stored = new Map(counts.map((r) => [`${r.meter_id}:${r.seq}`, r.n]));
  items.forEach((it, i) => {
    if (!it.refused && stored.get(`${it.meterId}:${it.msg.seq}`) !== it.msg.events.length) bad.add(i);
  });
  return bad;
}

/** Stable text of what a message carries, to tell a harmless duplicate from a reused number within one batch. */
function digest(msg: ReadingsMessage | EventsMessage): string {
  return 'intervals' in msg ? JSON.stringify([msg.intervals, msg.registers]) : JSON.stringify(msg.events);
}

/**
 * Split a stream's messages into fresh ones (to store), harmless duplicates (already
 * committed or repeated in this batch with the same content) and candidates for a conflict
 * check (already committed: their stored data decides).
 */
function classify<T extends { meterId: number; serial: string; msg: ReadingsMessage | EventsMessage }>(
  items: T[],
  state: Map<number, SeqState>,
  stream: 'readings' | 'events',
  conflicts: SeqConflict[],
): { fresh: T[]; resent: T[] } {
  const fresh: T[] = [];
  const resent: T[] = [];
  // The first message under each number; contents are compared only when a number repeats
  // (rare), never for every message of a batch.
  const inBatch = new Map<string, T>();
  for (const it of items) {
    const key = `${it.meterId}:${it.msg.seq}`;
    const prev = inBatch.get(key);
    if (prev !== undefined) {
      if (digest(prev.msg) !== digest(it.msg)) {
        conflicts.push({ meterId: it.meterId, serial: it.serial, stream, seq: it.msg.seq });
      }
      continue;
    }
    inBatch.set(key, it);
    (committed(state.get(it.meterId), stream, it.msg.seq) ? resent : fresh).push(it);
  }
  return { fresh, resent };
}

/**
 * Advance the watermarks of the batch's meters and queue their acknowledgements. A meter
 * without an ingest state row (none was locked) is neither updated nor acknowledged.
 */
async function advance(
  c: PoolClient,
  stream: 'readings' | 'events',
  state: Map<number, SeqState>,
  seqs: Map<number, { serial: string; seqs: number[]; regAt: number | null; regImport: number | null }>,
  acks: AckInfo[],
): Promise<void> {
  const cols: [number[], number[], string[], (number | null)[], (number | null)[]] = [[], [], [], [], []];
  for (const [meterId, m] of seqs) {
    const st = state.get(meterId);
    if (!st) continue;
    const next =
      stream === 'readings'
        ? advanceSeq(st.readingsUpto, st.readingsAbove, m.seqs)
        : advanceSeq(st.eventsUpto, st.eventsAbove, m.seqs);
    cols[0].push(meterId);
    cols[1].push(next.upto);
    cols[2].push(`{${next.above.join(',')}}`);
    cols[3].push(m.regAt);
    cols[4].push(m.regImport);
    acks.push({ serial: m.serial, stream, upTo: next.upto, above: next.above });
  }
  if (cols[0].length) await c.query(advanceSql(stream), cols);
}

/**
 * Write one batch of readings and events messages in the caller's transaction and return the
 * acknowledgements to send after COMMIT. Every message's sequence number is acknowledged
 * (also refused and conflicting ones: the meter must stop resending them); only fresh,
 * accepted data is stored.
 */
export async function ingest(
  c: PoolClient,
  readings: ReadingsItem[],
  events: EventsItem[],
): Promise<IngestResult> {
  const acks: AckInfo[] = [];
  const conflicts: SeqConflict[] = [];
  const domainEvents: NewEvent[] = [];
  let newReadings = 0;
  let newEvents = 0;
  if (!readings.length && !events.length) return { acks, newReadings, newEvents, conflicts };
  const state = await lockState(c, [...readings.map((r) => r.meterId), ...events.map((e) => e.meterId)]);

  const iss: [number[], number[], string[], string[], boolean[]] = [[], [], [], [], []];
  const addIssue = (i: VeeIssue) => {
    iss[0].push(i.meterId);
    iss[1].push(i.ts);
    iss[2].push(i.rule);
    iss[3].push(JSON.stringify(i.detail));
    iss[4].push(i.needsReview === true);
  };

  if (readings.length) {
    const { fresh, resent } = classify(readings, state, 'readings', conflicts);
    const bad = await readingsConflicts(c, resent);
    resent.forEach((it, i) => {
      if (bad.has(i))
        conflicts.push({ meterId: it.meterId, serial: it.serial, stream: 'readings', seq: it.msg.seq });
    });
    let total = 0;
    for (const it of fresh) total += it.vee.flags.length + it.vee.estimates.length;
    const all = sizedCols(total);
    const days = new Array<string>(total);
    let n = 0;
    const finder = new DayFinder();
    const seen = new RowIndex();
    const reg: [number[], number[], number[], number[], number[], number[], number[]] = [
      [],
      [],
      [],
      [],
      [],
      [],
      [],
    ];
    const seqs = new Map<
      number,
      { serial: string; seqs: number[]; regAt: number | null; regImport: number | null }
    >();
    const seqsOf = (it: ReadingsItem) => {
      let m = seqs.get(it.meterId);
      if (!m) seqs.set(it.meterId, (m = { serial: it.serial, seqs: [], regAt: null, regImport: null }));
      return m;
    };
    for (const it of fresh) {
      n = pushRows(it, seen, all, days, n, finder);
      it.vee.issues.forEach(addIssue);
      const r = it.vee.register;
      const m = seqsOf(it);
      m.seqs.push(it.msg.seq);
      const st = state.get(it.meterId);
      if (r && (m.regAt ?? st?.lastRegAt ?? -Infinity) < r.ts) {
        m.regAt = r.ts;
        m.regImport = r.import;
      }
      // Billing reads registers at local midnights (period boundaries) and estimates between
      // reads from the interval data, so a one-reading message keeps its snapshot only at a
      // day boundary (or as the meter's first): one register row per day instead of 48.
      // Messages of several intervals keep theirs (one row per many readings).
      if (
        r &&
        (it.msg.intervals.length > 1 ||
          !st ||
          st.lastRegAt === null ||
          finder.day(r.ts - 1, it.tz) !== finder.day(r.ts, it.tz))
      ) {
        reg[0].push(it.meterId);
        reg[1].push(r.ts);
        reg[2].push(r.import);
        reg[3].push(r.rate1);
        reg[4].push(r.rate2);
        reg[5].push(r.rate3);
        reg[6].push(r.export);
      }
    }
    const cols = all.map((col) => col.subarray(0, n)) as Cols;
    days.length = n;
    // Resent messages (harmless or conflicting) only refresh the acknowledgement.
    for (const it of resent) seqsOf(it).seqs.push(it.msg.seq);
    if (cols[0].length) {
      const agg = meterDaySums(cols, days);
      newReadings = (await copyNewReadings(c, cols, agg)) ?? (await upsertReadings(c, cols, days));
      domainEvents.push({
        type: 'readings.committed',
        meterId: null,
        // `stored`: interval readings written by the batch, summed by the health page's ingest rate.
        payload: {
          meterDays: agg.map((d): [number, string] => [d.meterId, d.day]),
          stored: cols[0].length,
        },
      });
    }
    if (reg[0].length) await c.query(INSERT_REGISTERS, reg);
    await advance(c, 'readings', state, seqs, acks);
  }

  if (events.length) {
    const { fresh, resent } = classify(events, state, 'events', conflicts);
    const bad = await eventsConflicts(c, resent);
    resent.forEach((it, i) => {
      if (bad.has(i))
        conflicts.push({ meterId: it.meterId, serial: it.serial, stream: 'events', seq: it.msg.seq });
    });
    const ev: [number[], number[], number[], number[], string[], (string | null)[]] = [
      [],
      [],
      [],
      [],
      [],
      [],
    ];
    const seqs = new Map<number, { serial: string; seqs: number[]; regAt: null; regImport: null }>();
    for (const it of [...fresh, ...resent]) {
      let m = seqs.get(it.meterId);
      if (!m) seqs.set(it.meterId, (m = { serial: it.serial, seqs: [], regAt: null, regImport: null }));
      m.seqs.push(it.msg.seq);
    }
    for (const it of fresh) {
      if (it.refused) {
        const latest = it.msg.events.reduce((m, e) => Math.max(m, e.t), 0);
        addIssue({ meterId: it.meterId, ts: latest, rule: 'future_event', detail: { seq: it.msg.seq } });
        continue;
      }
      it.msg.events.forEach((e, idx) => {
        ev[0].push(it.meterId);
        ev[1].push(it.msg.seq);
        ev[2].push(idx);
        ev[3].push(e.t);
        ev[4].push(e.code);
        ev[5].push(e.data ? JSON.stringify(e.data) : null);
      });
    }
    if (ev[0].length) {
      const ins = await c.query<{
        meter_id: number;
        seq: number;
        idx: number;
        t: number;
        code: string;
        data: Record<string, unknown> | null;
      }>(INSERT_EVENTS, ev);
      newEvents = ins.rows.length;
      for (const e of ins.rows) {
        domainEvents.push({
          type: 'meter.event',
          meterId: e.meter_id,
          payload: { seq: e.seq, idx: e.idx, code: e.code, t: e.t, data: e.data },
        });
      }
    }
    await advance(c, 'events', state, seqs, acks);
  }

  for (const k of conflicts) {
    addIssue({
      meterId: k.meterId,
      ts: Math.floor(Date.now() / 1000),
      rule: 'seq_conflict',
      detail: { stream: k.stream, seq: k.seq },
      needsReview: true,
    });
  }
  if (iss[0].length) await c.query(INSERT_ISSUES, iss);
  await emitEvents(c, domainEvents);
  return { acks, newReadings, newEvents, conflicts };
}
