import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addDays, encodeUp, localDate, localMidnight } from '@kilowire/protocol';
import { evaluateEvents, evaluateLimits, raiseTariffChanged } from '../src/alerts/rules.ts';
import type { RunningJobs } from '../src/jobs/service.ts';
import { createStaffUser, type CreatedHousehold } from '../src/accounts/repo.ts';
import type { TestDb } from './support/db.ts';
import { startGatewayWorld, type GatewayWorld } from './support/gateway-world.ts';
import { settleEvents, startTestJobs } from './support/jobs.ts';
import { readingsMsg, waitFor, type RawMeter } from './support/world.ts';

/**
 * Alert rules: once per crossing, from readings and events through the real gateway, the
 * durable domain events it commits, and the jobs service that hands them to the rules.
 */
let world: GatewayWorld;
let db: TestDb;
let jobs: RunningJobs;
let hh: CreatedHousehold[];
let meters: RawMeter[];
const TZ = 'Europe/London';
const now = () => Math.floor(Date.now() / 1000);
const today = () => localDate(now(), TZ);

beforeAll(async () => {
  world = await startGatewayWorld(5, {
    rawMeters: true,
    beforeClose: async () => {
      await jobs?.stop();
    },
  });
  ({ db, hh, meters } = world);
  jobs = await startTestJobs(db.pool, { lookbackDays: 2 });
});

const settle = () => settleEvents(db.pool, jobs);

afterAll(async () => {
  await world?.close();
});

async function alertsOf(meterId: number, type?: string) {
  return (
    await db.pool.query<{
      id: number;
      type: string;
      dedupe_key: string;
      message: string;
      figures: Record<string, unknown>;
      consumer_id: number | null;
      severity: string;
    }>(
      `SELECT id, type, dedupe_key, message, figures, consumer_id, severity FROM alerts WHERE meter_id = $1 AND ($2::text IS NULL OR type = $2) ORDER BY id`,
      [meterId, type ?? null],
    )
  ).rows;
}

async function deliveriesOf(alertId: number) {
  return (
    await db.pool.query<{ channel: string; recipient: string; audience: string }>(
      'SELECT channel, recipient, audience FROM deliveries WHERE alert_id = $1 ORDER BY channel, recipient',
      [alertId],
    )
  ).rows;
}

/** A limit counts from when it was set; these scenarios replay days just past, so set it before them. */
async function setLimit(meterId: number, daily: number | null, hourly: number | null, setDaysAgo = 5) {
  await db.pool.query(
    `INSERT INTO meter_limits (meter_id, daily_limit_wh, hourly_limit_wh, updated_at)
     VALUES ($1, $2, $3, now() - make_interval(days => $4))
     ON CONFLICT (meter_id) DO UPDATE SET daily_limit_wh = $2, hourly_limit_wh = $3, updated_at = excluded.updated_at`,
    [meterId, daily, hourly, setDaysAgo],
  );
}

describe('daily limit through the gateway', () => {
  it('fires once per crossing: more readings the same day add nothing, the next day crossing is new', async () => {
    const h = hh[0]!;
    const m = meters[0]!;
    await setLimit(h.meterId, 2000, null);
    await db.pool.query('UPDATE consumers SET email = $2 WHERE id = $1', [h.consumerId, 'c0@example.test']);
    const dayBefore = addDays(today(), -2);
    const yesterday = addDays(today(), -1);
    const d0 = localMidnight(dayBefore, TZ);
    // 1.5 kWh: under the limit.
    await m.readings(readingsMsg(1, d0, [500, 500, 500], 0));
    await m.waitAck((a) => a.kind === 'ack' && a.stream === 'readings' && a.upTo === 1);
    await settle();
    expect(await alertsOf(h.meterId)).toEqual([]);
    // 2.5 kWh: crossed.
    await m.readings(readingsMsg(2, d0 + 3 * 1800, [1000], 1500));
    await m.waitAck((a) => a.kind === 'ack' && a.upTo === 2);
    const [first] = await waitFor(async () => {
      await settle();
      const a = await alertsOf(h.meterId, 'daily_limit');
      return a.length ? a : undefined;
    });
    expect(first!.dedupe_key).toBe(dayBefore);
    expect(first!.message).toContain('You used 2.5 kWh on');
    expect(first!.message).toContain('above your daily limit of 2.0 kWh');
    expect(first!.figures).toEqual({ day: dayBefore, wh: 2500, limitWh: 2000 });
    // Default channels: web + email (daily_limit); no mobile, so no SMS.
    expect(await deliveriesOf(first!.id)).toEqual([
      { channel: 'email', recipient: 'c0@example.test', audience: 'consumer' },
    ]);
    // More the same day (and a resend): still one alert.
    await m.readings(readingsMsg(3, d0 + 4 * 1800, [800, 800], 2500));
    await m.readings(readingsMsg(3, d0 + 4 * 1800, [800, 800], 2500));
    await m.waitAck((a) => a.kind === 'ack' && a.upTo === 3);
    await settle();
    expect(await alertsOf(h.meterId, 'daily_limit')).toHaveLength(1);
    // The next day crosses too: a new alert.
    const d1 = localMidnight(yesterday, TZ);
    await m.readings(readingsMsg(4, d1, [2100], 4100));
    await m.waitAck((a) => a.kind === 'ack' && a.upTo === 4);
    const both = await waitFor(async () => {
      await settle();
      const a = await alertsOf(h.meterId, 'daily_limit');
      return a.length === 2 ? a : undefined;
    });
    expect(both.map((a) => a.dedupe_key)).toEqual([dayBefore, yesterday]);
    expect(both[1]!.message).toContain('You used 2.1 kWh');
  });

  it('judges no day before the one the limit was set on', async () => {
    const h = hh[4]!;
    const m = meters[4]!;
    await setLimit(h.meterId, 1000, null, 0);
    // Yesterday far above the new limit: it was set today, so yesterday is not an alert.
    await m.readings(readingsMsg(1, localMidnight(addDays(today(), -1), TZ), [3000], 0));
    await m.waitAck((a) => a.kind === 'ack' && a.upTo === 1);
    await settle();
    expect(await alertsOf(h.meterId, 'daily_limit')).toEqual([]);
  });

  it('a tamper event through the gateway alerts the consumer and the supplier staff', async () => {
    const h = hh[1]!;
    const { rows } = await db.pool.query<{ supplier_id: number }>(
      'SELECT supplier_id FROM meters WHERE id = $1',
      [h.meterId],
    );
    await createStaffUser(db.pool, {
      role: 'supplier',
      email: 'ops@sup.test',
      password: 'x-not-used-1',
      orgId: rows[0]!.supplier_id,
      name: 'Ops',
    });
    await db.pool.query('UPDATE consumers SET email = $2, mobile = $3 WHERE id = $1', [
      h.consumerId,
      'c1@example.test',
      '+447700900001',
    ]);
    const t = now() - 600;
    await meters[1]!.raw(
      'events',
      encodeUp('events', {
        v: 1,
        seq: 7,
        events: [
          { t, code: 'power.fail' },
          { t, code: 'tamper.cover' },
        ],
      }),
    );
    const [a] = await waitFor(async () => {
      await settle();
      const x = await alertsOf(h.meterId, 'tamper');
      return x.length ? x : undefined;
    });
    expect(a!.dedupe_key).toBe('7:1');
    expect(a!.severity).toBe('critical');
    expect(a!.message).toContain('Meter cover opened');
    expect(a!.message).toContain(h.meterSerial);
    expect(await deliveriesOf(a!.id)).toEqual([
      { channel: 'email', recipient: 'c1@example.test', audience: 'consumer' },
      { channel: 'email', recipient: 'ops@sup.test', audience: 'staff' },
      { channel: 'sms', recipient: '+447700900001', audience: 'consumer' },
    ]);
    // power.fail raises no alert rule here. (#9 outages: a meter off alone past the outage
    // window becomes a single-household incident whose `outage` alert the outage sweep may
    // already have raised; that path is tested in outages*.test.ts.)
    expect((await alertsOf(h.meterId)).filter((x) => x.type !== 'outage')).toHaveLength(1);
  });
});

describe('rules evaluated directly', () => {
  it('hourly limit: one alert per local clock hour over the limit, with the figures', async () => {
    const h = hh[2]!;
    await setLimit(h.meterId, null, 1000);
    const base = localMidnight(addDays(today(), -1), TZ) + 10 * 3600; // 10:00 local yesterday
    await db.pool.query(
      `INSERT INTO interval_readings (meter_id, ts, wh) VALUES ($1, to_timestamp($2), 600), ($1, to_timestamp($2 + 1800), 500),
         ($1, to_timestamp($2 + 3600), 400), ($1, to_timestamp($2 + 5400), 400)`,
      [h.meterId, base],
    );
    expect(await evaluateLimits(db.pool, [h.meterId], { lookbackDays: 2 })).toHaveLength(1);
    expect(await evaluateLimits(db.pool, [h.meterId], { lookbackDays: 2 })).toHaveLength(0);
    const [a] = await alertsOf(h.meterId, 'hourly_limit');
    expect(a!.message).toMatch(
      /^You used 1\.1 kWh between 10:00 and 11:00 on \d+ \w{3}, above your hourly limit of 1\.0 kWh/,
    );
    expect(a!.dedupe_key).toBe(new Date(base * 1000).toISOString().slice(0, 16) + 'Z');
    // The 11:00 hour reaches the limit once more usage arrives.
    await db.pool.query(
      'UPDATE interval_readings SET wh = 600 WHERE meter_id = $1 AND ts = to_timestamp($2)',
      [h.meterId, base + 5400],
    );
    expect(await evaluateLimits(db.pool, [h.meterId], { lookbackDays: 2 })).toHaveLength(1);
    expect((await alertsOf(h.meterId, 'hourly_limit'))[1]!.message).toContain(
      'reaching your hourly limit of 1.0 kWh',
    );
  });

  it('disconnected and credit-low events: one alert per event, with reason and amounts', async () => {
    const h = hh[3]!;
    const t = now() - 300;
    await db.pool.query(
      `INSERT INTO meter_events (meter_id, seq, idx, ts, code, data) VALUES
         ($1, 3, 0, to_timestamp($2), 'credit.low', '{"creditMinor": 150, "thresholdMinor": 200}'),
         ($1, 4, 0, to_timestamp($2), 'relay.disconnected', '{"reason": "credit"}'),
         ($1, 4, 1, to_timestamp($2), 'relay.connected', null)`,
      [h.meterId, t],
    );
    const keys = [
      { meterId: h.meterId, seq: 3 },
      { meterId: h.meterId, seq: 4 },
    ];
    // credit.low, relay.disconnected, and relay.connected (the supply back on, #8).
    expect(await evaluateEvents(db.pool, keys)).toHaveLength(3);
    expect(await evaluateEvents(db.pool, keys)).toHaveLength(0);
    const [low] = await alertsOf(h.meterId, 'credit_low');
    expect(low!.message).toContain('is £1.50, below the low-credit threshold of £2.00');
    const [off] = await alertsOf(h.meterId, 'disconnected');
    expect(off!.message).toContain('was disconnected because the credit ran out');
    expect(off!.severity).toBe('critical');
  });

  it('raiseTariffChanged: one alert per meter and version', async () => {
    const ids = hh.map((h) => h.meterId);
    const t = {
      meterIds: ids,
      version: 'T1-v2',
      name: 'Green Flex',
      effectiveFrom: '2026-12-01',
      detail: 'Unit rate 24.5p/kWh.',
    };
    expect(await raiseTariffChanged(db.pool, t)).toHaveLength(hh.length);
    expect(await raiseTariffChanged(db.pool, t)).toHaveLength(0);
    const [a] = await alertsOf(hh[0]!.meterId, 'tariff_changed');
    expect(a!.message).toBe(
      `Your tariff for meter ${hh[0]!.meterSerial} changes to "Green Flex" from 1 Dec. Unit rate 24.5p/kWh.`,
    );
    // Defaults: tariff_changed goes by email too (household 0 has an address), never by SMS.
    expect(await deliveriesOf(a!.id)).toEqual([
      { channel: 'email', recipient: 'c0@example.test', audience: 'consumer' },
    ]);
  });
});
