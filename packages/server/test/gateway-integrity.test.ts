import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Aedes } from 'aedes';
import mqtt from 'mqtt';
import { encodeUp, localMidnight, topics } from '@kilowire/protocol';
import { Gateway } from '../src/gateway/gateway.ts';
import { logger } from '../src/log.ts';
import { freePort } from '../src/net.ts';
import type { CreatedHousehold } from '../src/accounts/repo.ts';
import type { TestDb } from './support/db.ts';
import { startGatewayWorld, type GatewayWorld } from './support/gateway-world.ts';
import { readingsMsg, sleep, waitFor, type RawMeter } from './support/world.ts';

/**
 * What a sequence number promises: a number once committed stands for the data committed
 * with it. A resend of identical data is harmless; other data under a used number is
 * refused, counted and flagged for review. Registers going down are a reset or meter
 * exchange case, not sum-check failures; events dated in the future are refused.
 */
let world: GatewayWorld;
let db: TestDb;
let gw: Gateway;
let hh: CreatedHousehold[];
let meters: RawMeter[];
const TZ = 'Europe/London';
const D0 = localMidnight('2026-06-01', TZ);

beforeAll(async () => {
  world = await startGatewayWorld(4, { rawMeters: true });
  ({ db, gw, hh, meters } = world);
});
afterAll(async () => {
  await world?.close();
});

const rows = async (meterId: number) =>
  (
    await db.pool.query<{ t: number; wh: number; flags: number }>(
      'SELECT extract(epoch FROM ts)::int AS t, wh, flags FROM interval_readings WHERE meter_id = $1 ORDER BY ts',
      [meterId],
    )
  ).rows;
const issues = async (meterId: number) =>
  (
    await db.pool.query<{ rule: string; needs_review: boolean; detail: Record<string, unknown> }>(
      'SELECT rule, needs_review, detail FROM vee_issues WHERE meter_id = $1 ORDER BY ts, rule',
      [meterId],
    )
  ).rows;
const rollup = async (meterId: number) =>
  (
    await db.pool.query<{ wh: number; intervals: number }>(
      'SELECT wh, intervals FROM daily_rollups WHERE meter_id = $1',
      [meterId],
    )
  ).rows;
const conflicts = () => gw.rejectedByCode.get('SEQ_CONFLICT') ?? 0;

describe('sequence numbers', () => {
  it('a resend of identical data is acknowledged again and changes nothing', async () => {
    const h = hh[0]!;
    const m = meters[0]!;
    await m.readings(readingsMsg(1, D0, [100, 200], 0));
    await m.waitAck((a) => a.stream === 'readings' && a.kind === 'ack' && a.upTo === 1);
    const before = conflicts();
    m.acks.length = 0;
    await m.readings(readingsMsg(1, D0, [100, 200], 0));
    await m.waitAck((a) => a.kind === 'ack' && a.upTo === 1);
    expect(conflicts()).toBe(before);
    expect(await rows(h.meterId)).toEqual([
      { t: D0, wh: 100, flags: 0 },
      { t: D0 + 1800, wh: 200, flags: 0 },
    ]);
    expect(await rollup(h.meterId)).toEqual([{ wh: 300, intervals: 2 }]);
  });

  it('a used number with other energy is refused, counted and flagged, and stores nothing', async () => {
    const h = hh[0]!;
    const m = meters[0]!;
    const before = conflicts();
    m.acks.length = 0;
    await m.readings(readingsMsg(1, D0, [999, 200], 0));
    // Still acknowledged (the number is committed: the meter must stop sending it)...
    await m.waitAck((a) => a.kind === 'ack' && a.upTo === 1);
    await waitFor(() => conflicts() === before + 1, 5_000, 'conflict counted');
    // ...but nothing changed, and a person is asked to look.
    expect((await rows(h.meterId)).map((r) => r.wh)).toEqual([100, 200]);
    expect(await rollup(h.meterId)).toEqual([{ wh: 300, intervals: 2 }]);
    expect((await issues(h.meterId)).filter((i) => i.rule === 'seq_conflict')).toEqual([
      { rule: 'seq_conflict', needs_review: true, detail: { stream: 'readings', seq: 1 } },
    ]);
  });

  it('a used number carrying intervals never stored before is refused too', async () => {
    const h = hh[1]!;
    const m = meters[1]!;
    await m.readings(readingsMsg(1, D0, [50], 0));
    await m.readings(readingsMsg(2, D0 + 1800, [60], 50));
    await m.waitAck((a) => a.kind === 'ack' && a.upTo === 2);
    const before = conflicts();
    // seq 1 again, now with the next day's data: below the watermark, data not stored before.
    await m.readings(readingsMsg(1, D0 + 86_400, [70], 110));
    await waitFor(() => conflicts() === before + 1, 5_000, 'conflict counted');
    expect((await rows(h.meterId)).map((r) => r.t)).toEqual([D0, D0 + 1800]);
  });

  it('the same number twice in one batch with different content keeps the first and refuses the second', async () => {
    const h = hh[2]!;
    const m = meters[2]!;
    const before = conflicts();
    // Published back to back: they land in one gateway batch (flush window 2 ms) or two; either way one is refused.
    await Promise.all([m.readings(readingsMsg(1, D0, [10], 0)), m.readings(readingsMsg(1, D0, [11], 0))]);
    await m.waitAck((a) => a.kind === 'ack' && a.upTo === 1);
    await waitFor(() => conflicts() === before + 1, 5_000, 'conflict counted');
    expect((await rows(h.meterId)).map((r) => r.wh)).toEqual([10]);
  });
});

describe('registers', () => {
  it('a register that goes down is a reset case for review: no sum-check flags, the new value is the baseline', async () => {
    const h = hh[3]!;
    const m = meters[3]!;
    await m.readings(readingsMsg(1, D0, [100, 100], 5000));
    await m.waitAck((a) => a.kind === 'ack' && a.upTo === 1);
    // The meter was exchanged or reset: registers start again near zero.
    await m.readings(readingsMsg(2, D0 + 3600, [40], 0));
    await m.waitAck((a) => a.kind === 'ack' && a.upTo === 2);
    // The next message continues the new baseline and passes the sum check.
    await m.readings(readingsMsg(3, D0 + 5400, [30, 30], 40));
    await m.waitAck((a) => a.kind === 'ack' && a.upTo === 3);
    const all = await issues(h.meterId);
    expect(all.map((i) => [i.rule, i.needs_review])).toEqual([['register_reset', true]]);
    expect(all[0]!.detail).toMatchObject({ before: 5200, now: 40 });
    expect((await rows(h.meterId)).map((r) => r.flags)).toEqual([0, 0, 0, 0, 0]);
  });
});

describe('events', () => {
  it('an event dated in the future is refused (FUTURE_EVENT), acknowledged and not stored', async () => {
    const h = hh[0]!;
    const m = meters[0]!;
    const before = gw.rejectedByCode.get('FUTURE_EVENT') ?? 0;
    const future = Math.floor(Date.now() / 1000) + 3 * 86_400;
    m.acks.length = 0;
    await m.raw(
      'events',
      encodeUp('events', { v: 1, seq: 1, events: [{ code: 'tamper.cover', t: future }] }),
    );
    await m.waitAck((a) => a.stream === 'events' && a.kind === 'ack' && a.upTo === 1);
    expect(gw.rejectedByCode.get('FUTURE_EVENT')).toBe(before + 1);
    const ev = await db.pool.query('SELECT 1 FROM meter_events WHERE meter_id = $1', [h.meterId]);
    expect(ev.rowCount).toBe(0);
    expect((await issues(h.meterId)).some((i) => i.rule === 'future_event')).toBe(true);
  });

  it('an events message resent with other events under its number is refused', async () => {
    const h = hh[1]!;
    const m = meters[1]!;
    const t = Math.floor(Date.now() / 1000) - 60;
    await m.raw('events', encodeUp('events', { v: 1, seq: 1, events: [{ code: 'power.fail', t }] }));
    await m.waitAck((a) => a.stream === 'events' && a.kind === 'ack' && a.upTo === 1);
    const before = conflicts();
    await m.raw('events', encodeUp('events', { v: 1, seq: 1, events: [{ code: 'tamper.cover', t }] }));
    await waitFor(() => conflicts() === before + 1, 5_000, 'conflict counted');
    const ev = await db.pool.query<{ code: string }>('SELECT code FROM meter_events WHERE meter_id = $1', [
      h.meterId,
    ]);
    expect(ev.rows).toEqual([{ code: 'power.fail' }]);
  });
});

describe('retained messages (the gateway is the second wall)', () => {
  it('ignores a retained message a broker replays, counting it as RETAINED', async () => {
    // A broker with no rules at all (not ours): it stores retained messages and replays them.
    const port = await freePort();
    const aedes = await Aedes.createBroker();
    const server = net.createServer(aedes.handle);
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
    try {
      const h = hh[2]!;
      const pub = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
        protocolVersion: 4,
        reconnectPeriod: 0,
      });
      await pub.publishAsync(
        topics.up(h.meterSerial, 'readings'),
        encodeUp('readings', readingsMsg(9, D0 + 7200, [1], 10)),
        {
          qos: 1,
          retain: true,
        },
      );
      await pub.endAsync();
      const g = new Gateway({
        pool: db.pool,
        log: logger('test-gateway-retained'),
        mqttUrl: `mqtt://127.0.0.1:${port}`,
        username: 'x',
        password: 'x',
        clientId: `kw-retained-${process.pid}`,
      });
      await g.start();
      await waitFor(() => g.rejectedByCode.get('RETAINED') === 1, 5_000, 'retained refused');
      await sleep(100);
      await g.stop();
      expect((await rows(h.meterId)).map((r) => r.t)).not.toContain(D0 + 7200);
    } finally {
      await new Promise<void>((r) => aedes.close(() => server.close(() => r())));
    }
  });
});
