import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { localMidnight } from '@kilowire/protocol';
import type { Gateway } from '../src/gateway/gateway.ts';
import type { TestDb } from './support/db.ts';
import { startGatewayWorld, type GatewayWorld } from './support/gateway-world.ts';
import { readingsMsg, sleep, type RawMeter } from './support/world.ts';
import type { CreatedHousehold } from '../src/accounts/repo.ts';

let world: GatewayWorld;
let db: TestDb;
let gw: Gateway;
let hh: CreatedHousehold[];
let meters: RawMeter[];

beforeAll(async () => {
  world = await startGatewayWorld(7, { rawMeters: true });
  ({ db, gw, hh, meters } = world);
});

afterAll(async () => {
  await world?.close();
});

const DAY = 86_400;
const base = localMidnight('2026-06-01', 'Europe/London');

async function rows(meterId: number) {
  return (
    await db.pool.query<{ ts: Date; wh: number; flags: number }>(
      'SELECT ts, wh, flags FROM interval_readings WHERE meter_id = $1 ORDER BY ts',
      [meterId],
    )
  ).rows;
}

describe('ingest through the broker', () => {
  it('stores a reading exactly once, acknowledges it, and treats resends as harmless', async () => {
    const m = meters[0]!;
    const msg = readingsMsg(1, base, [400], 1000);
    await m.readings(msg);
    await m.waitAck((a) => a.kind === 'ack' && a.stream === 'readings' && a.upTo === 1);
    expect(await rows(hh[0]!.meterId)).toHaveLength(1);
    // Resend three times (the meter never saw the ack): still one row, rollup not inflated.
    for (let i = 0; i < 3; i++) {
      m.acks.length = 0;
      await m.readings(msg);
      await m.waitAck((a) => a.kind === 'ack' && a.upTo === 1);
    }
    const r = await rows(hh[0]!.meterId);
    expect(r).toHaveLength(1);
    expect(r[0]!.wh).toBe(400);
    const d = await db.pool.query('SELECT wh, intervals FROM daily_rollups WHERE meter_id = $1', [
      hh[0]!.meterId,
    ]);
    expect(d.rows).toEqual([{ wh: 400, intervals: 1 }]);
  });

  it('acknowledges only after the readings are committed', async () => {
    const m = meters[1]!;
    // Hold a lock that blocks the gateway's insert: no ack may arrive while the row cannot commit.
    const blocker = new pg.Client({ connectionString: db.url });
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query('LOCK TABLE interval_readings IN EXCLUSIVE MODE');
    await m.readings(readingsMsg(1, base, [100, 200], 0));
    await sleep(1000);
    expect(m.acks).toHaveLength(0);
    await blocker.query('COMMIT');
    await blocker.end();
    const ack = await m.waitAck((a) => a.kind === 'ack' && a.upTo === 1);
    expect(ack).toMatchObject({ stream: 'readings', upTo: 1 });
    expect((await rows(hh[1]!.meterId)).map((r) => r.wh)).toEqual([100, 200]);
  });

  it('detects a sequence gap, asks for the missing message, and closes the gap when it arrives', async () => {
    const m = meters[2]!;
    await m.readings(readingsMsg(1, base, [10], 0));
    await m.waitAck((a) => a.kind === 'ack' && a.upTo === 1);
    await m.readings(readingsMsg(3, base + 3600, [30], 60));
    const resend = await m.waitAck((a) => a.kind === 'resend');
    expect(resend).toMatchObject({ stream: 'readings', seqs: [2] });
    const partial = await m.waitAck((a) => a.kind === 'ack' && (a.seqs ?? []).includes(3));
    expect(partial).toMatchObject({ kind: 'ack', upTo: 1 });
    await m.readings(readingsMsg(2, base + 1800, [20], 10));
    await m.waitAck((a) => a.kind === 'ack' && a.upTo === 3);
    const r = await rows(hh[2]!.meterId);
    // The interval of seq 2 was first estimated from the register delta, then replaced by the actual.
    expect(r.map((x) => [x.wh, x.flags & 1])).toEqual([
      [10, 0],
      [20, 0],
      [30, 0],
    ]);
    const d = await db.pool.query('SELECT wh, intervals, estimated FROM daily_rollups WHERE meter_id = $1', [
      hh[2]!.meterId,
    ]);
    expect(d.rows).toEqual([{ wh: 60, intervals: 3, estimated: 0 }]);
  });

  it('VEE: estimates a real gap from the register delta, flags spikes and sum mismatches', async () => {
    const m = meters[3]!;
    const id = hh[3]!.meterId;
    await m.readings(readingsMsg(1, base, [100], 0));
    // Two intervals never sent (meter had no data); the registers say 300 Wh went through.
    await m.readings(readingsMsg(2, base + 3 * 1800, [50], 400));
    await m.waitAck((a) => a.kind === 'ack' && a.upTo === 2);
    let r = await rows(id);
    expect(r.map((x) => [x.wh, x.flags])).toEqual([
      [100, 0],
      [150, 1],
      [150, 1],
      [50, 0],
    ]);
    const d = await db.pool.query('SELECT wh, intervals, estimated FROM daily_rollups WHERE meter_id = $1', [
      id,
    ]);
    expect(d.rows).toEqual([{ wh: 450, intervals: 4, estimated: 2 }]);
    // Spike: 30 kWh in half an hour on a 23 kW connection; and registers that disagree with the intervals.
    const spike = readingsMsg(3, base + 4 * 1800, [30_000], 450);
    spike.registers['1.0.1.8.0'] = 450 + 30_000 + 999;
    await m.readings(spike);
    await m.waitAck((a) => a.kind === 'ack' && a.upTo === 3);
    r = await rows(id);
    expect(r.at(-1)!.flags).toBe(2 | 4);
    const issues = await db.pool.query<{ rule: string }>(
      'SELECT rule FROM vee_issues WHERE meter_id = $1 ORDER BY rule',
      [id],
    );
    expect(issues.rows.map((x) => x.rule)).toEqual(['gap_estimated', 'spike', 'sum_check']);
    const total = await db.pool.query<{ wh: number }>('SELECT wh FROM daily_rollups WHERE meter_id = $1', [
      id,
    ]);
    expect(total.rows[0]!.wh).toBe(30_450);
  });

  it("sums DST days correctly in the meter's local calendar (46 and 50 half-hours)", async () => {
    const m = meters[4]!;
    const id = hh[4]!.meterId;
    const spring = localMidnight('2026-03-29', 'Europe/London');
    const autumn = localMidnight('2026-10-25', 'Europe/London');
    expect(localMidnight('2026-03-30', 'Europe/London') - spring).toBe(23 * 3600);
    expect(localMidnight('2026-10-26', 'Europe/London') - autumn).toBe(25 * 3600);
    await m.readings(
      readingsMsg(
        1,
        spring,
        Array.from({ length: 46 }, () => 100),
        0,
      ),
    );
    await m.readings(
      readingsMsg(
        2,
        autumn,
        Array.from({ length: 50 }, (_, i) => i + 1),
        4600,
      ),
    );
    await m.waitAck((a) => a.kind === 'ack' && a.upTo === 2);
    const d = await db.pool.query(
      'SELECT day, wh, intervals FROM daily_rollups WHERE meter_id = $1 ORDER BY day',
      [id],
    );
    expect(d.rows).toEqual([
      { day: '2026-03-29', wh: 4600, intervals: 46 },
      { day: '2026-10-25', wh: 1275, intervals: 50 },
    ]);
    const mo = await db.pool.query(
      'SELECT month, wh FROM monthly_rollups WHERE meter_id = $1 ORDER BY month',
      [id],
    );
    expect(mo.rows).toEqual([
      { month: '2026-03-01', wh: 4600 },
      { month: '2026-10-01', wh: 1275 },
    ]);
  });

  it('refuses future readings and an unknown meter, counts them, and keeps serving', async () => {
    const m = meters[5]!;
    const before = gw.stats.rejected;
    const future = Math.floor(Date.now() / 1000 / 1800) * 1800 + 10 * DAY;
    await m.readings(readingsMsg(1, future, [10], 0));
    // Refused but acknowledged, so the meter stops resending what can never be stored.
    await m.waitAck((a) => a.kind === 'ack' && a.upTo === 1);
    expect(await rows(hh[5]!.meterId)).toHaveLength(0);
    expect(gw.stats.rejected - before).toBe(1);
    await m.readings(readingsMsg(2, base, [10], 0));
    await m.waitAck((a) => a.kind === 'ack' && a.upTo === 2);
    expect(await rows(hh[5]!.meterId)).toHaveLength(1);
  });

  it('stores band 3 (1.0.1.8.3) in register_reads, 0 when a meter does not send it, on the COPY and the upsert path; one-reading messages keep a snapshot only at a local midnight or as the first', async () => {
    const m = meters[6]!;
    const id = hh[6]!.meterId;
    const HH = 1800;
    // Seq 2's interval ends at a local midnight (June: no clock change since `base`).
    const b = base + 6 * DAY - 2 * HH;
    // An older meter (two bands): no 1.0.1.8.3 on the wire. Fresh rows: the COPY path.
    await m.readings(readingsMsg(1, b, [100], 0));
    await m.waitAck((a) => a.kind === 'ack' && a.stream === 'readings' && a.upTo === 1);
    // After a three-band tariff: seq 3 arrives before seq 2, so the gap is estimated first.
    const three = (seq: number, t: number, wh: number, total: number, rate3: number) => {
      const msg = readingsMsg(seq, t, [wh], total - wh);
      msg.registers = {
        '1.0.1.8.0': total,
        '1.0.1.8.1': 100,
        '1.0.1.8.2': total - 100 - rate3,
        '1.0.1.8.3': rate3,
        '1.0.2.8.0': 0,
      };
      return msg;
    };
    await m.readings(three(3, b + 2 * HH, 30, 160, 50));
    await m.waitAck((a) => a.kind === 'resend' && a.seqs.includes(2));
    expect((await rows(id)).map((r) => [r.wh, r.flags & 1])).toEqual([
      [100, 0],
      [30, 1],
      [30, 0],
    ]);
    // Seq 2 replaces the estimate: COPY fails on the key, so this batch goes the upsert path.
    await m.readings(three(2, b + HH, 20, 130, 20));
    await m.waitAck((a) => a.kind === 'ack' && a.upTo === 3);
    expect((await rows(id)).map((r) => [r.wh, r.flags & 1])).toEqual([
      [100, 0],
      [20, 0],
      [30, 0],
    ]);
    const reg = await db.pool.query<{ ts: Date; import_wh: string; rate3_wh: string }>(
      'SELECT ts, import_wh, rate3_wh FROM register_reads WHERE meter_id = $1 ORDER BY ts',
      [id],
    );
    // Seq 1: the meter's first snapshot (COPY path). Seq 2: at midnight (upsert path). Seq 3
    // ends at 00:30: billing needs no register there, its interval data is stored.
    expect(reg.rows.map((r) => [r.ts.getTime() / 1000 - b, Number(r.import_wh), Number(r.rate3_wh)])).toEqual(
      [
        [HH, 100, 0],
        [2 * HH, 130, 20],
      ],
    );
    // The watermark VEE checks the next message against is still the newest snapshot.
    const st = await db.pool.query<{ at: number; import: number }>(
      'SELECT extract(epoch FROM last_reg_at)::int AS at, last_reg_import AS import FROM meter_ingest_state WHERE meter_id = $1',
      [id],
    );
    expect(st.rows[0]).toEqual({ at: b + 3 * HH, import: 160 });
  });
});
