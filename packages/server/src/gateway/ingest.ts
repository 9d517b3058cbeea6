import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { from as copyFrom } from 'pg-copy-streams';
import { DayFinder, type EventsMessage, type ReadingsMessage, type StatusMessage } from '@kilowire/protocol';
import type { PoolClient } from '../db/pool.ts';
import type { IntervalRow, VeeIssue, VeeResult } from './vee.ts';

/** One accepted readings message, after VEE. */
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
}

export interface AckInfo {
  serial: string;
  stream: 'readings' | 'events';
  upTo: number;
  above: number[];
}

export interface BatchResult {
  acks: AckInfo[];
  newReadings: number;
}

/**
 * Insert interval rows idempotently on (meter, ts) and keep the local-calendar rollups
 * current, in one statement. An actual reading replaces an estimate (never the reverse);
 * `old` is read from the same snapshot so the rollups get the exact delta. Rows must be
 * unique on (meter, ts) — ON CONFLICT cannot touch a row twice in one statement.
 */
const UPSERT_READINGS = `
WITH input AS (
  SELECT * FROM unnest($1::int[], $2::float8[], $3::int[], $4::int[], $5::smallint[]) AS t(meter_id, epoch, wh, exp_wh, flags)
), rows AS (
  SELECT meter_id, to_timestamp(epoch) AS ts, wh, exp_wh, flags FROM input
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
  SELECT ins.meter_id, ins.ts, ins.wh - coalesce(old.wh, 0) AS dwh,
         CASE WHEN old.wh IS NULL THEN 1 ELSE 0 END AS dn,
         (ins.flags & 1) - CASE WHEN old.wh IS NULL THEN 0 ELSE 1 END AS de
  FROM ins LEFT JOIN old ON old.meter_id = ins.meter_id AND old.ts = ins.ts
), d AS (
  SELECT delta.meter_id, (delta.ts AT TIME ZONE m.tz)::date AS day, sum(dwh) AS wh, sum(dn) AS n, sum(de) AS e
  FROM delta JOIN meters m ON m.id = delta.meter_id GROUP BY 1, 2
), up_d AS (
  INSERT INTO daily_rollups AS r (meter_id, day, wh, intervals, estimated)
  SELECT meter_id, day, wh, n, e FROM d ORDER BY meter_id, day
  ON CONFLICT (meter_id, day) DO UPDATE SET wh = r.wh + excluded.wh, intervals = r.intervals + excluded.intervals,
    estimated = r.estimated + excluded.estimated
)
SELECT coalesce(sum(dn), 0)::int AS new_rows FROM delta`;

const INSERT_REGISTERS = `
INSERT INTO register_reads (meter_id, ts, import_wh, rate1_wh, rate2_wh, export_wh)
SELECT meter_id, to_timestamp(epoch), i, r1, r2, e
FROM unnest($1::int[], $2::float8[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[]) AS t(meter_id, epoch, i, r1, r2, e)
ON CONFLICT DO NOTHING`;

const INSERT_ISSUES = `
INSERT INTO vee_issues (meter_id, ts, rule, detail)
SELECT meter_id, to_timestamp(epoch), rule, detail::jsonb
FROM unnest($1::int[], $2::float8[], $3::text[], $4::text[]) AS t(meter_id, epoch, rule, detail)
ON CONFLICT DO NOTHING`;

const INSERT_EVENTS = `
INSERT INTO meter_events (meter_id, seq, idx, ts, code, data)
SELECT meter_id, seq, idx, to_timestamp(epoch), code, data::jsonb
FROM unnest($1::int[], $2::bigint[], $3::smallint[], $4::float8[], $5::text[], $6::text[]) AS t(meter_id, seq, idx, epoch, code, data)
ON CONFLICT DO NOTHING`;

/**
 * Fold the committed sequence numbers into each meter's watermark and return what to
 * acknowledge. The usual case — no gap outstanding and this batch continues the watermark
 * — is plain arithmetic; only gaps go through kw_advance_seq.
 */
function advanceSql(stream: 'readings' | 'events', withRegisters: boolean): string {
  const up = `${stream}_upto`;
  const ab = `${stream}_above`;
  const fast = `st.${ab} = '{}' AND s.mn <= st.${up} + 1 AND s.mx - s.mn + 1 = s.n`;
  const reg = withRegisters
    ? `, last_reg_at = CASE WHEN s.reg_at IS NOT NULL AND (st.last_reg_at IS NULL OR s.reg_at > st.last_reg_at) THEN s.reg_at ELSE st.last_reg_at END,
         last_reg_import = CASE WHEN s.reg_at IS NOT NULL AND (st.last_reg_at IS NULL OR s.reg_at > st.last_reg_at) THEN s.reg_import ELSE st.last_reg_import END`
    : '';
  return `
WITH raw AS (
  SELECT * FROM unnest($1::int[], $2::bigint[], $3::float8[], $4::bigint[]) AS t(meter_id, seq, reg_epoch, reg_import)
), s AS (
  SELECT meter_id, array_agg(DISTINCT seq) AS seqs, min(seq) AS mn, max(seq) AS mx, count(DISTINCT seq) AS n,
         to_timestamp(max(reg_epoch)) AS reg_at,
         (array_agg(reg_import ORDER BY reg_epoch DESC NULLS LAST))[1] AS reg_import
  FROM raw GROUP BY meter_id
)
UPDATE meter_ingest_state st SET
  ${up} = CASE WHEN ${fast} THEN greatest(st.${up}, s.mx) ELSE (kw_advance_seq(st.${up}, st.${ab}, s.seqs)).new_upto END,
  ${ab} = CASE WHEN ${fast} THEN st.${ab} ELSE (kw_advance_seq(st.${up}, st.${ab}, s.seqs)).new_above END,
  last_data_at = now()${reg}
FROM s JOIN meters m ON m.id = s.meter_id
WHERE st.meter_id = s.meter_id
RETURNING m.serial, st.${up} AS upto, st.${ab} AS above`;
}

type Cols = [number[], number[], number[], (number | null)[], number[]];

/** node-pg's generic array serialiser is slow for 100k elements; integers need no quoting. */
function pgArray(values: readonly (number | null)[]): string {
  return `{${values.map((v) => (v === null ? 'NULL' : String(v))).join(',')}}`;
}

function pushRows(
  rows: IntervalRow[],
  seen: Map<string, number>,
  cols: Cols,
  days: string[],
  tz: string,
  finder: DayFinder,
): void {
  for (const r of rows) {
    const key = `${r.meterId}:${r.ts}`;
    const at = seen.get(key);
    if (at !== undefined) {
      // The same interval twice in one batch (a resend): keep the actual over an estimate.
      if ((cols[4][at]! & 1) === 1 && (r.flags & 1) === 0) {
        cols[2][at] = r.wh;
        cols[3][at] = r.expWh;
        cols[4][at] = r.flags;
      }
      continue;
    }
    seen.set(key, cols[0].length);
    days.push(finder.day(r.ts, tz));
    cols[0].push(r.meterId);
    cols[1].push(r.ts);
    cols[2].push(r.wh);
    cols[3].push(r.expWh);
    cols[4].push(r.flags);
  }
}

async function upsertReadings(c: PoolClient, cols: Cols): Promise<number> {
  const res = await c.query<{ new_rows: number }>(UPSERT_READINGS, [
    pgArray(cols[0]),
    pgArray(cols[1]),
    pgArray(cols[2]),
    pgArray(cols[3]),
    pgArray(cols[4]),
  ]);
  return res.rows[0]?.new_rows ?? 0;
}

const ADD_DAILY = `
INSERT INTO daily_rollups AS r (meter_id, day, wh, intervals, estimated)
SELECT * FROM unnest($1::int[], $2::date[], $3::bigint[], $4::int[], $5::int[]) ORDER BY 1, 2
ON CONFLICT (meter_id, day) DO UPDATE SET wh = r.wh + excluded.wh, intervals = r.intervals + excluded.intervals,
  estimated = r.estimated + excluded.estimated`;

/**
 * The common case, at COPY speed: no interval of the batch is in the table yet, so COPY them
 * all and add the batch's own per-day sums to the rollups. Any existing (meter, ts) — a resend,
 * an estimate to replace — makes COPY fail on the primary key; the savepoint undoes it and
 * the caller takes the upsert path, which handles every case. Returns null then.
 */
async function copyNewReadings(c: PoolClient, cols: Cols, days: string[]): Promise<number | null> {
  await c.query('SAVEPOINT kw_copy');
  try {
    const n = cols[0].length;
    const chunks: string[] = [];
    let buf = '';
    for (let i = 0; i < n; i++) {
      const exp = cols[3][i];
      buf += `${cols[0][i]}\t${new Date(cols[1][i]! * 1000).toISOString()}\t${cols[2][i]}\t${exp === null || exp === undefined ? '\\N' : exp}\t${cols[4][i]}\n`;
      if (buf.length > 256 * 1024) {
        chunks.push(buf);
        buf = '';
      }
    }
    if (buf) chunks.push(buf);
    await pipeline(
      Readable.from(chunks),
      c.query(copyFrom('COPY interval_readings (meter_id, ts, wh, exp_wh, flags) FROM STDIN')),
    );
  } catch (err) {
    await c.query('ROLLBACK TO SAVEPOINT kw_copy');
    if ((err as { code?: string }).code === '23505') return null;
    throw err;
  }
  await c.query('RELEASE SAVEPOINT kw_copy');
  const sums = new Map<string, { meterId: number; day: string; wh: number; n: number; e: number }>();
  for (let i = 0; i < cols[0].length; i++) {
    const key = `${cols[0][i]}|${days[i]}`;
    let s = sums.get(key);
    if (!s) {
      s = { meterId: cols[0][i]!, day: days[i]!, wh: 0, n: 0, e: 0 };
      sums.set(key, s);
    }
    s.wh += cols[2][i]!;
    s.n += 1;
    s.e += cols[4][i]! & 1;
  }
  const agg = [...sums.values()];
  await c.query(ADD_DAILY, [
    pgArray(agg.map((a) => a.meterId)),
    `{${agg.map((a) => a.day).join(',')}}`,
    pgArray(agg.map((a) => a.wh)),
    pgArray(agg.map((a) => a.n)),
    pgArray(agg.map((a) => a.e)),
  ]);
  return cols[0].length;
}

/** Status snapshots (latest per meter) onto the meters rows, in one statement. */
const UPDATE_STATUS = `
UPDATE meters m SET relay = s.relay, mode = s.mode, credit_minor = s.credit, firmware_version = s.fw,
  last_status = s.status::jsonb, last_seen_at = now()
FROM unnest($1::int[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[]) AS s(id, relay, mode, credit, fw, status)
WHERE m.id = s.id`;

/**
 * Write one batch of readings, events and status messages in the caller's transaction and return the
 * acknowledgements to send after COMMIT.
 */
export async function writeBatch(
  c: PoolClient,
  readings: ReadingsItem[],
  events: EventsItem[],
  statuses: ReadonlyMap<number, StatusMessage> = new Map(),
): Promise<BatchResult> {
  const acks: AckInfo[] = [];
  let newReadings = 0;
  // The batch's sorts and hash joins (tens of thousands of rows) must not spill to disk.
  await c.query("SET LOCAL work_mem = '64MB'");
  if (readings.length) {
    const cols: Cols = [[], [], [], [], []];
    const days: string[] = [];
    const finder = new DayFinder();
    const seen = new Map<string, number>();
    const reg: [number[], number[], number[], number[], number[], number[]] = [[], [], [], [], [], []];
    const iss: [number[], number[], string[], string[]] = [[], [], [], []];
    const adv: [number[], number[], (number | null)[], (number | null)[]] = [[], [], [], []];
    const addIssue = (i: VeeIssue) => {
      iss[0].push(i.meterId);
      iss[1].push(i.ts);
      iss[2].push(i.rule);
      iss[3].push(JSON.stringify(i.detail));
    };
    for (const it of readings) {
      pushRows(it.vee.rows, seen, cols, days, it.tz, finder);
      it.vee.issues.forEach(addIssue);
      const r = it.vee.register;
      if (r) {
        reg[0].push(it.meterId);
        reg[1].push(r.ts);
        reg[2].push(r.import);
        reg[3].push(r.rate1);
        reg[4].push(r.rate2);
        reg[5].push(r.export);
      }
      adv[0].push(it.meterId);
      adv[1].push(it.msg.seq);
      adv[2].push(r?.ts ?? null);
      adv[3].push(r?.import ?? null);
    }
    if (cols[0].length) {
      newReadings = (await copyNewReadings(c, cols, days)) ?? (await upsertReadings(c, cols));
    }
    if (reg[0].length) await c.query(INSERT_REGISTERS, reg);
    if (iss[0].length) await c.query(INSERT_ISSUES, iss);
    const res = await c.query<{ serial: string; upto: number; above: number[] }>(
      advanceSql('readings', true),
      adv,
    );
    for (const r of res.rows)
      acks.push({ serial: r.serial, stream: 'readings', upTo: r.upto, above: r.above });
  }
  if (statuses.size) {
    const ids = [...statuses.keys()].sort((a, b) => a - b);
    const st = ids.map((id) => statuses.get(id)!);
    await c.query(UPDATE_STATUS, [
      ids,
      st.map((s) => s.relay),
      st.map((s) => s.mode),
      st.map((s) => s.creditMinor ?? null),
      st.map((s) => s.firmware.version),
      st.map((s) => JSON.stringify(s)),
    ]);
  }
  if (events.length) {
    const ev: [number[], number[], number[], number[], string[], (string | null)[]] = [
      [],
      [],
      [],
      [],
      [],
      [],
    ];
    const adv: [number[], number[], null[], null[]] = [[], [], [], []];
    for (const it of events) {
      it.msg.events.forEach((e, idx) => {
        ev[0].push(it.meterId);
        ev[1].push(it.msg.seq);
        ev[2].push(idx);
        ev[3].push(e.t);
        ev[4].push(e.code);
        ev[5].push(e.data ? JSON.stringify(e.data) : null);
      });
      adv[0].push(it.meterId);
      adv[1].push(it.msg.seq);
      adv[2].push(null);
      adv[3].push(null);
    }
    await c.query(INSERT_EVENTS, ev);
    const res = await c.query<{ serial: string; upto: number; above: number[] }>(
      advanceSql('events', false),
      adv,
    );
    for (const r of res.rows) acks.push({ serial: r.serial, stream: 'events', upTo: r.upto, above: r.above });
  }
  return { acks, newReadings };
}
