import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { localMidnight } from '@kilowire/protocol';
import {
  collectionSubscriber,
  cutoffOf,
  markDirty,
  runCollectionSchedule,
} from '../src/collection/schedule.ts';
import type { DomainEvent } from '../src/events/types.ts';
import type { CreatedHousehold } from '../src/accounts/repo.ts';
import type { TestDb } from './support/db.ts';
import { startGatewayWorld, type GatewayWorld } from './support/gateway-world.ts';
import { readingsMsg, waitFor, type RawMeter } from './support/world.ts';

// The schedule of the daily collection with a pinned clock, over real ingest (broker and
// gateway): due days only after the cut-off, late data through the readings.committed
// subscriber, catching up after downtime within a bound.

let world: GatewayWorld;
let db: TestDb;
let hh: CreatedHousehold[];
let meters: RawMeter[];
let area: string;

const TZ = 'Europe/London';
const D = '2026-11-10';
const t0 = localMidnight(D, TZ);
const HH = 1800;
const whs = (n: number) => Array.from({ length: n }, (_, i) => 100 + i);
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

async function one<T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<T> {
  return (await db.pool.query<T>(sql, params)).rows[0]!;
}
const count = async (meterId: number) =>
  (
    await one<{ n: number }>('SELECT count(*)::int AS n FROM interval_readings WHERE meter_id = $1', [
      meterId,
    ])
  ).n;

async function committedEventsAfter(id: number): Promise<DomainEvent[]> {
  const r = await db.pool.query<{
    id: number;
    type: 'readings.committed';
    meter_id: number | null;
    payload: never;
  }>(
    `SELECT id, type, meter_id, payload FROM domain_events WHERE type = 'readings.committed' AND id > $1 ORDER BY id`,
    [id],
  );
  return r.rows.map((e) => ({
    id: e.id,
    type: e.type,
    meterId: e.meter_id,
    payload: e.payload,
    createdAt: new Date(),
  }));
}

beforeAll(async () => {
  world = await startGatewayWorld(2, { rawMeters: true });
  ({ db, hh, meters } = world);
  area = (await one<{ area_id: string }>('SELECT area_id FROM meters WHERE id = $1', [hh[0]!.meterId]))
    .area_id;
  await db.pool.query(`UPDATE meters SET created_at = '2026-01-01Z' WHERE area_id = $1`, [area]);
  await meters[0]!.readings(readingsMsg(1, t0, whs(48), 0));
  await meters[1]!.readings(readingsMsg(1, t0, whs(40), 0));
  await waitFor(
    async () => (await count(hh[0]!.meterId)) === 48 && (await count(hh[1]!.meterId)) === 40,
    20_000,
  );
}, 60_000);

afterAll(async () => {
  await world?.close();
});

describe('collection schedule', () => {
  const cutoff = cutoffOf(D, TZ, '06:00');

  it('the cut-off is D+1 06:00 local', () => {
    expect(new Date(cutoff * 1000).toISOString()).toBe('2026-11-11T06:00:00.000Z');
  });

  it('collects a day only once its cut-off has passed, and once', async () => {
    expect(await runCollectionSchedule(db.pool, { nowS: cutoff - 60, catchUpDays: 1 })).toEqual([]);
    const runs = await runCollectionSchedule(db.pool, { nowS: cutoff + 60, catchUpDays: 1 });
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ areaId: area, day: D, version: 1, reason: 'cutoff', created: true });
    expect(runs[0]!.wh).toBe(sum(whs(48)) + sum(whs(40)));
    expect(runs[0]).toMatchObject({ meters: 2, completeMeters: 1 });
    // The next pass finds nothing due.
    expect(await runCollectionSchedule(db.pool, { nowS: cutoff + 120, catchUpDays: 1 })).toEqual([]);
  });

  it('a later cut-off of the operator moves the day', async () => {
    const op = await one<{ operator_id: number }>('SELECT operator_id FROM network_areas WHERE id = $1', [
      area,
    ]);
    await db.pool.query(`UPDATE network_settings SET collection_cutoff = '09:30' WHERE operator_id = $1`, [
      op.operator_id,
    ]);
    try {
      const next = '2026-11-11';
      const c = cutoffOf(next, TZ, '09:30');
      expect(await runCollectionSchedule(db.pool, { nowS: c - 1, catchUpDays: 1 })).toEqual([]);
      const runs = await runCollectionSchedule(db.pool, { nowS: c, catchUpDays: 1 });
      expect(runs.map((r) => r.day)).toEqual([next]);
    } finally {
      await db.pool.query(`UPDATE network_settings SET collection_cutoff = '06:00' WHERE operator_id = $1`, [
        op.operator_id,
      ]);
    }
  });

  it('late data marks the day dirty (once, however often the event is handled) and the schedule makes version 2', async () => {
    const lastEvent = (await one<{ id: number }>('SELECT coalesce(max(id), 0)::int AS id FROM domain_events'))
      .id;
    await meters[1]!.readings(readingsMsg(2, t0 + 40 * HH, whs(8), sum(whs(40))));
    await waitFor(async () => (await count(hh[1]!.meterId)) === 48, 20_000);
    const events = await waitFor(async () => {
      const e = await committedEventsAfter(lastEvent);
      return e.length ? e : undefined;
    });
    const sub = collectionSubscriber(db.pool);
    await sub.handle(events);
    await sub.handle(events); // handled again after a crash: still one mark
    const dirty = await db.pool.query<{ day: string }>(
      `SELECT to_char(day, 'YYYY-MM-DD') AS day FROM collection_dirty WHERE area_id = $1`,
      [area],
    );
    expect(dirty.rows).toEqual([{ day: D }]);

    const runs = await runCollectionSchedule(db.pool, { nowS: cutoff + 3600, catchUpDays: 1 });
    expect(runs.map((r) => [r.day, r.version, r.reason, r.completeMeters])).toEqual([[D, 2, 'late_data', 2]]);
    expect(runs[0]!.wh).toBe(sum(whs(48)) + sum(whs(40)) + sum(whs(8)));
    expect((await one<{ n: number }>('SELECT count(*)::int AS n FROM collection_dirty')).n).toBe(0);
    // Version 1 still says what it said at the cut-off.
    const v1 = await one<{ wh: number; complete_meters: number }>(
      'SELECT wh, complete_meters FROM collection_runs WHERE area_id = $1 AND day = $2 AND version = 1',
      [area, D],
    );
    expect(v1).toEqual({ wh: sum(whs(48)) + sum(whs(40)), complete_meters: 1 });
    expect(await runCollectionSchedule(db.pool, { nowS: cutoff + 7200, catchUpDays: 1 })).toEqual([]);
  });

  it('readings of a day not yet due mark nothing', async () => {
    const today = '2026-11-28';
    const n = await markDirty(
      db.pool,
      [[hh[0]!.meterId, today]],
      new Date(cutoffOf(today, TZ, '06:00') * 1000 - 1000),
    );
    expect(n).toBe(0);
    expect(
      await markDirty(db.pool, [[hh[0]!.meterId, today]], new Date(cutoffOf(today, TZ, '06:00') * 1000)),
    ).toBe(1);
    await db.pool.query('DELETE FROM collection_dirty');
  });

  it('after downtime it catches up the missed days, oldest first, no further back than the bound', async () => {
    // Last collected: 2026-11-11. Now: 2026-11-16 07:00, so 11-12 .. 11-15 are due (4 days).
    const now = cutoffOf('2026-11-15', TZ, '06:00') + 3600;
    const runs = await runCollectionSchedule(db.pool, { nowS: now, catchUpDays: 3 });
    expect(runs.map((r) => r.day)).toEqual(['2026-11-13', '2026-11-14', '2026-11-15']);
    expect(runs.every((r) => r.reason === 'cutoff' && r.version === 1)).toBe(true);
    // Seven days back reaches 11-12, and also 11-09 (the day before the data began: its meters
    // were installed, so it is collected, every meter missing).
    const more = await runCollectionSchedule(db.pool, { nowS: now, catchUpDays: 7 });
    expect(more.map((r) => r.day)).toEqual(['2026-11-09', '2026-11-12']);
    expect(more[0]).toMatchObject({ meters: 2, completeMeters: 0, wh: 0 });
  });
});
