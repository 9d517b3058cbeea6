import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localMidnight } from '@kilowire/protocol';
import { collectDay } from '../src/collection/collect.ts';
import type { CreatedHousehold } from '../src/accounts/repo.ts';
import type { TestDb } from './support/db.ts';
import { startGatewayWorld, type GatewayWorld } from './support/gateway-world.ts';
import { readingsMsg, waitFor, type RawMeter } from './support/world.ts';

// The daily collection over real ingest: meters publish through the broker, the gateway
// stores intervals (and the household rollups), and the collection reads the raw intervals.

let world: GatewayWorld;
let db: TestDb;
let hh: CreatedHousehold[];
let meters: RawMeter[];
let area: string;

const HH = 1800;
const SPRING = '2026-03-29'; // Europe/London: 23 hours, 46 half-hours
const AUTUMN = '2026-10-25'; // Europe/London: 25 hours, 50 half-hours
const springT0 = localMidnight(SPRING, 'Europe/London');
const autumnT0 = localMidnight(AUTUMN, 'Europe/London');
/** A day's profile whose values differ per interval (a swapped or lost slot would show). */
const profile = (n: number, k: number) => Array.from({ length: n }, (_, i) => 40 + ((i * 7 + k) % 90));
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

async function count(meterId: number): Promise<number> {
  return (
    await one<{ n: number }>('SELECT count(*)::int AS n FROM interval_readings WHERE meter_id = $1', [
      meterId,
    ])
  ).n;
}

/** The first row of a query (tests only: the row must exist). */
async function one<T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<T> {
  return (await db.pool.query<T>(sql, params)).rows[0]!;
}

interface RunRow {
  id: number;
  wh: number;
}

async function meterDays(runId: number) {
  return (
    await db.pool.query<{
      meter_id: number;
      wh: number;
      actual: number;
      estimated: number;
      expected: number;
      slot_wh: number[];
      last_data_at: Date | null;
      feeder_id: string;
      supplier_id: number;
    }>('SELECT * FROM collection_meter_days WHERE run_id = $1 ORDER BY meter_id', [runId])
  ).rows;
}

/** The raw intervals of the area's local day, and the household rollups, for the cross-check. */
async function rawTotals(day: string) {
  const r = await db.pool.query<{ wh: string; n: string; est: string }>(
    `SELECT coalesce(sum(r.wh), 0) AS wh, count(*) AS n, count(*) FILTER (WHERE r.flags & 1 = 1) AS est
       FROM interval_readings r JOIN meters m ON m.id = r.meter_id
      WHERE m.area_id = $1 AND (r.ts AT TIME ZONE 'Europe/London')::date = $2`,
    [area, day],
  );
  const d = await db.pool.query<{ wh: string; n: string; est: string }>(
    `SELECT coalesce(sum(d.wh), 0) AS wh, coalesce(sum(d.intervals), 0) AS n, coalesce(sum(d.estimated), 0) AS est
       FROM daily_rollups d JOIN meters m ON m.id = d.meter_id WHERE m.area_id = $1 AND d.day = $2`,
    [area, day],
  );
  return { raw: r.rows[0]!, rollups: d.rows[0]! };
}

beforeAll(async () => {
  world = await startGatewayWorld(3, { rawMeters: true });
  ({ db, hh, meters } = world);
  area = (await one<{ area_id: string }>('SELECT area_id FROM meters WHERE id = $1', [hh[0]!.meterId]))
    .area_id;
  // Installed well before the days collected here (seedMeters installs them "now").
  await db.pool.query(`UPDATE meters SET created_at = '2026-01-01Z' WHERE area_id = $1`, [area]);

  // Meter 0: both clock-change days in full.
  const a = profile(46, 0);
  const b = profile(50, 3);
  await meters[0]!.readings(readingsMsg(1, springT0, a, 0));
  await meters[0]!.readings(readingsMsg(2, autumnT0, b, sum(a)));
  // Meter 1: the autumn day with two intervals never sent; the register covers them (VEE
  // estimates 2 intervals of 150 Wh).
  const c1 = profile(20, 5);
  const c2 = profile(28, 9);
  await meters[1]!.readings(readingsMsg(1, autumnT0, c1, 0));
  await meters[1]!.readings(readingsMsg(2, autumnT0 + 22 * HH, c2, sum(c1) + 300));
  // Meter 2: the first 30 half-hours of the autumn day only (then it goes silent).
  await meters[2]!.readings(readingsMsg(1, autumnT0, profile(30, 1), 0));
  await waitFor(async () => (await count(hh[0]!.meterId)) === 96, 20_000, 'meter 0 intervals');
  await waitFor(async () => (await count(hh[1]!.meterId)) === 50, 20_000, 'meter 1 intervals');
  await waitFor(async () => (await count(hh[2]!.meterId)) === 30, 20_000, 'meter 2 intervals');
}, 60_000);

afterAll(async () => {
  await world?.close();
});

describe('collectDay', () => {
  it('collects the spring clock-change day: 46 half-hours, the missing hour stays 0, totals equal the raw intervals', async () => {
    const run = await collectDay(db.pool, area, SPRING, 'cutoff');
    expect(run).toMatchObject({ version: 1, created: true, reason: 'cutoff', meters: 3 });
    const rows = await meterDays(run.runId);
    const m0 = rows.find((r) => r.meter_id === hh[0]!.meterId)!;
    expect(m0).toMatchObject({ actual: 46, estimated: 0, expected: 46 });
    expect(Number(m0.wh)).toBe(sum(profile(46, 0)));
    // 01:00-02:00 local never happened on this day.
    expect(m0.slot_wh[2]).toBe(0);
    expect(m0.slot_wh[3]).toBe(0);
    expect(m0.slot_wh.slice(0, 2)).toEqual(profile(46, 0).slice(0, 2));
    expect(m0.slot_wh.slice(4)).toEqual(profile(46, 0).slice(2));
    expect(sum(m0.slot_wh)).toBe(Number(m0.wh));
    // The other two meters sent nothing that day: in the collection, expected 46, missing.
    for (const r of rows.filter((x) => x.meter_id !== hh[0]!.meterId)) {
      expect(r).toMatchObject({ actual: 0, estimated: 0, expected: 46, wh: 0 });
    }
    const { raw, rollups } = await rawTotals(SPRING);
    expect(run.wh).toBe(Number(raw.wh));
    expect(run.wh).toBe(Number(rollups.wh));
    expect(run.actual + run.estimated).toBe(Number(raw.n));
    expect(run).toMatchObject({ expected: 3 * 46, completeMeters: 1 });
  });

  it('collects the autumn clock-change day: 50 half-hours, the repeated hour adds into the same slots, estimates counted', async () => {
    const run = await collectDay(db.pool, area, AUTUMN, 'cutoff');
    expect(run).toMatchObject({ version: 1, created: true, meters: 3, expected: 150 });
    const rows = await meterDays(run.runId);
    const [m0, m1, m2] = [0, 1, 2].map((i) => rows.find((r) => r.meter_id === hh[i]!.meterId)!);
    const b = profile(50, 3);
    expect(m0).toMatchObject({ actual: 50, estimated: 0, expected: 50 });
    // Local 01:00-01:30 and 01:30-02:00 happen twice (BST, then GMT).
    expect(m0!.slot_wh[2]).toBe(b[2]! + b[4]!);
    expect(m0!.slot_wh[3]).toBe(b[3]! + b[5]!);
    expect(m0!.slot_wh.slice(4)).toEqual(b.slice(6));
    expect(sum(m0!.slot_wh)).toBe(sum(b));
    expect(m1).toMatchObject({ actual: 48, estimated: 2, expected: 50 });
    expect(Number(m1!.wh)).toBe(sum(profile(20, 5)) + 300 + sum(profile(28, 9)));
    expect(m2).toMatchObject({ actual: 30, estimated: 0, expected: 50 });
    // Missing since: the end of the last interval it sent.
    expect(m2!.last_data_at!.getTime() / 1000).toBe(autumnT0 + 30 * HH);
    expect(m0!.feeder_id).toMatch(/^F-/);

    const { raw, rollups } = await rawTotals(AUTUMN);
    expect(run.wh).toBe(Number(raw.wh));
    expect(run.wh).toBe(Number(rollups.wh));
    expect(run.actual).toBe(Number(raw.n) - Number(raw.est));
    expect(run.estimated).toBe(Number(raw.est));
    expect(run.estimated).toBe(Number(rollups.est));
    expect(run.completeMeters).toBe(2);
  });

  it('raises the completeness alert once per version, saying how many meters are missing', async () => {
    const alerts = await db.pool.query<{ dedupe_key: string; message: string; figures: object }>(
      `SELECT dedupe_key, message, figures FROM alerts WHERE type = 'collection_incomplete' ORDER BY id`,
    );
    // 1 of 3 complete on the spring day, 2 of 3 on the autumn day: both below the default 98 %.
    expect(alerts.rows.map((r) => r.dedupe_key)).toEqual([
      `collection:${area}:${SPRING}:v1`,
      `collection:${area}:${AUTUMN}:v1`,
    ]);
    expect(alerts.rows[1]!.message).toContain('1 of 3 meters');
    expect(alerts.rows[1]!.figures).toMatchObject({ missingMeters: 1, meters: 3, completeMeters: 2 });
    // Collecting again with nothing changed: same version, no second alert.
    const again = await collectDay(db.pool, area, AUTUMN, 'manual');
    expect(again).toMatchObject({ version: 1, created: false, alerted: false, reason: 'cutoff' });
    const n = await one<{ n: number }>(
      `SELECT count(*)::int AS n FROM alerts WHERE type = 'collection_incomplete'`,
    );
    expect(n.n).toBe(2);
    expect(
      (await one<{ n: number }>('SELECT count(*)::int AS n FROM collection_runs WHERE day = $1', [AUTUMN])).n,
    ).toBe(1);
  });

  it('late data makes version 2 and leaves version 1 as it was; the database refuses to change version 1', async () => {
    const v1 = await one<RunRow>(
      `SELECT * FROM collection_runs WHERE area_id = $1 AND day = $2 AND version = 1`,
      [area, AUTUMN],
    );
    const v1Rows = await meterDays(Number(v1.id));
    // Meter 2 comes back and sends the rest of the day.
    const first = profile(30, 1);
    const rest = profile(20, 11);
    await meters[2]!.readings(readingsMsg(2, autumnT0 + 30 * HH, rest, sum(first)));
    await waitFor(async () => (await count(hh[2]!.meterId)) === 50, 20_000, 'late intervals');

    const v2 = await collectDay(db.pool, area, AUTUMN, 'late_data');
    expect(v2).toMatchObject({
      version: 2,
      created: true,
      reason: 'late_data',
      completeMeters: 3,
      meters: 3,
    });
    expect(v2.wh).toBe(Number(v1.wh) + sum(rest));
    expect(v2.wh).toBe(Number((await rawTotals(AUTUMN)).rollups.wh));
    // Version 1, its totals and its rows, are what they were.
    const v1After = await one<RunRow>('SELECT * FROM collection_runs WHERE id = $1', [v1.id]);
    expect(v1After).toEqual(v1);
    expect(await meterDays(Number(v1.id))).toEqual(v1Rows);
    // Complete now: no alert for version 2.
    expect(v2.alerted).toBe(false);

    // The database keeps version 1 as it is, whoever asks.
    await expect(
      db.pool.query('UPDATE collection_meter_days SET wh = wh + 1 WHERE run_id = $1', [v1.id]),
    ).rejects.toThrow(/kept as it was/);
    await expect(
      db.pool.query('DELETE FROM collection_meter_days WHERE run_id = $1', [v1.id]),
    ).rejects.toThrow(/kept as it was/);
    await expect(db.pool.query('UPDATE collection_runs SET wh = 0 WHERE id = $1', [v1.id])).rejects.toThrow(
      /kept as it was/,
    );
    // Nor can a meter be added to it (one installed since, not in version 1).
    const extra = await one<{ id: number }>(
      `INSERT INTO meters (serial, supplier_id, area_id, credential_hash)
       SELECT serial || '-X', supplier_id, area_id, 'x' FROM meters WHERE id = $1 RETURNING id`,
      [hh[0]!.meterId],
    );
    await expect(
      db.pool.query(
        `INSERT INTO collection_meter_days (run_id, meter_id, supplier_id, wh, actual, estimated, expected, slot_wh)
         SELECT $1, id, supplier_id, 1, 1, 0, 1, array_fill(0, ARRAY[48]) FROM meters WHERE id = $2`,
        [v1.id, extra.id],
      ),
    ).rejects.toThrow(/kept as it was/);
    await db.pool.query('DELETE FROM meters WHERE id = $1', [extra.id]);
  });

  it('counts a meter installed during the day from its installation, and leaves out one decommissioned before it', async () => {
    const DAY = '2026-11-02';
    const t0 = localMidnight(DAY, 'Europe/London');
    // Meter 0 installed (on record) at 10:10 local with no data yet: expected from the 10:00 interval.
    await db.pool.query('UPDATE meters SET created_at = to_timestamp($2) WHERE id = $1', [
      hh[0]!.meterId,
      t0 + 10 * 3600 + 600,
    ]);
    // Meter 1 decommissioned the day before.
    await db.pool.query(
      `UPDATE meters SET status = 'decommissioned', decommissioned_at = to_timestamp($2) WHERE id = $1`,
      [hh[1]!.meterId, t0 - 3600],
    );
    try {
      const run = await collectDay(db.pool, area, DAY, 'cutoff');
      const rows = await meterDays(run.runId);
      expect(rows.map((r) => r.meter_id)).toEqual([hh[0]!.meterId, hh[2]!.meterId]);
      expect(rows[0]!.expected).toBe(28);
      expect(rows[1]!.expected).toBe(48);
    } finally {
      await db.pool.query(
        `UPDATE meters SET status = 'active', decommissioned_at = NULL, created_at = '2026-01-01Z' WHERE area_id = $1`,
        [area],
      );
    }
  });

  it('a 15-minute meter expects 96 quarter-hours and two add into each half-hour slot', async () => {
    const DAY = '2026-11-03';
    const q = await one<{ id: number }>(
      `INSERT INTO meters (serial, supplier_id, area_id, feeder_id, interval_s, credential_hash, created_at)
       SELECT serial || '-Q', supplier_id, area_id, feeder_id, 900, 'x', '2026-01-01Z' FROM meters WHERE id = $1
       RETURNING id`,
      [hh[0]!.meterId],
    );
    const t = localMidnight(DAY, 'Europe/London');
    // Written as ingest writes them; the rows' insertion order is shuffled on purpose (the
    // collection must not depend on the order rows come back in).
    await db.pool.query(
      `INSERT INTO interval_readings (meter_id, ts, wh, flags)
       SELECT $1, to_timestamp($2 + i * 900), 10 + i, 0 FROM generate_series(0, 95) i ORDER BY (i * 37) % 96`,
      [q.id, t],
    );
    const run = await collectDay(db.pool, area, DAY, 'cutoff');
    const row = (await meterDays(run.runId)).find((r) => r.meter_id === q.id)!;
    expect(row).toMatchObject({ actual: 96, estimated: 0, expected: 96 });
    expect(row.slot_wh).toEqual(Array.from({ length: 48 }, (_, k) => 10 + 2 * k + 10 + 2 * k + 1));
    expect(Number(row.wh)).toBe(Array.from({ length: 96 }, (_, i) => 10 + i).reduce((a, b) => a + b, 0));
    // The half-hourly meters that sent nothing that day expect 48.
    expect((await meterDays(run.runId)).filter((r) => r.meter_id !== q.id).map((r) => r.expected)).toEqual([
      48, 48, 48,
    ]);
  });
});
