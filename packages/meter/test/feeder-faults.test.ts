import { connectAsync, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeUp, encodeDown, topics, type UpKind } from '@kilowire/protocol';
import type { Clock } from '../src/client.ts';
import { Fleet, type MeterDescriptor } from '../src/fleet.ts';
import { startOwnMosquitto, seeded } from './fault-broker.ts';
import { keys, until } from './helpers.ts';

/** What the head-end saw: every message on meters/+/up/#, decoded, with its real arrival time. */
interface Seen {
  at: number;
  meter: string;
  kind: UpKind;
  msg: unknown;
}
interface SeenEvent {
  at: number;
  meter: string;
  code: string;
  t: number;
  data?: Record<string, unknown>;
}

/**
 * A head-end stand-in on the real broker: records and decodes what the meters publish, and
 * acknowledges readings and events as the gateway would (so outboxes drain and a reconnect
 * does not replay the whole history).
 */
async function headEnd(url: string, name: string) {
  const seen: Seen[] = [];
  const client: MqttClient = await connectAsync(url, { protocolVersion: 4, clientId: `he-${name}` });
  client.on('message', (topic, payload) => {
    const [, meter, , kind] = topic.split('/') as [string, string, string, UpKind];
    const msg = decodeUp(kind, payload);
    seen.push({ at: Date.now(), meter, kind, msg });
    if (kind === 'readings' || kind === 'events') {
      const seq = (msg as { seq: number }).seq;
      void client.publishAsync(
        topics.down(meter, 'acks'),
        encodeDown('acks', { v: 1, kind: 'ack', stream: kind, upTo: seq }),
        { qos: 1 },
      );
    }
  });
  await client.subscribeAsync('meters/+/up/#', { qos: 1 });
  const events = (): SeenEvent[] =>
    seen.flatMap((s) =>
      s.kind === 'events'
        ? (s.msg as { events: { code: string; t: number; data?: Record<string, unknown> }[] }).events.map(
            (e) => ({ at: s.at, meter: s.meter, code: e.code, t: e.t, data: e.data }),
          )
        : [],
    );
  return { seen, events, close: () => client.endAsync() };
}

const feederA = Array.from({ length: 20 }, (_, i) => `FA${String(i + 1).padStart(2, '0')}`);
const feederB = Array.from({ length: 10 }, (_, i) => `FB${String(i + 1).padStart(2, '0')}`);
const descriptors = (): MeterDescriptor[] => [
  ...feederA.map((id) => ({ id, password: 'x', feederId: 'FEEDER-A' })),
  ...feederB.map((id) => ({ id, password: 'x', feederId: 'FEEDER-B' })),
];

let broker: Awaited<ReturnType<typeof startOwnMosquitto>>;
beforeAll(async () => {
  broker = await startOwnMosquitto();
});
afterAll(async () => {
  await broker?.close();
});

describe('feeder outage on a real broker', () => {
  it('takes exactly the feeder dark at one instant, about the share gasp, the rest come back within the jitter, stragglers later, the other feeder keeps reporting', async () => {
    const he = await headEnd(broker.url, 'feeder');
    // 600x: a half-hour interval every 3 real seconds (so every meter reports within a few
    // seconds), and an outage of a few real seconds is tens of simulated minutes long.
    const fleet = new Fleet({
      brokerUrl: broker.url,
      serverPublicKey: keys.publicKey,
      meters: descriptors(),
      speed: 600,
      backfillDays: 1,
      tickMs: 100,
      autoPressButton: false,
      random: seeded(42),
    });
    fleet.start();
    try {
      await until('all 30 meters connected', () => fleet.stats().connected === 30, 15_000);
      await new Promise((r) => setTimeout(r, 500));

      const forMs = 4000;
      const jitterMs = 1000;
      const extraMs = 4000;
      const outageAt = Date.now();
      const report = fleet.feederOutage('FEEDER-A', {
        forMs,
        lastGaspShare: 0.6,
        restoreJitterMs: jitterMs,
        stragglers: 2,
        stragglerExtraMs: extraMs,
      });
      expect(report.meters.sort()).toEqual(feederA);
      expect(report.lastGasp).toHaveLength(12); // round(0.6 x 20)
      expect([...report.lastGasp, ...report.silent].sort()).toEqual(feederA);
      expect(report.stragglers).toHaveLength(2);
      for (const id of feederA) expect(fleet.meter(id)!.powerOn).toBe(false);
      for (const id of feederB) expect(fleet.meter(id)!.powerOn).toBe(true);

      // While the feeder is off: the broker hears the gasps and then nothing from feeder A;
      // feeder B goes on publishing.
      await new Promise((r) => setTimeout(r, forMs - 100));
      const during = he.seen.filter((s) => s.at >= outageAt && s.at < outageAt + forMs - 100);
      const gasps = he
        .events()
        .filter((e) => e.code === 'power.fail' && e.at >= outageAt && e.at < outageAt + forMs);
      expect(gasps.map((g) => g.meter).sort()).toEqual([...report.lastGasp].sort());
      const quietFrom = outageAt + 500;
      expect(during.filter((s) => s.meter.startsWith('FA') && s.at >= quietFrom)).toEqual([]);
      const bReporting = new Set(
        during.filter((s) => s.kind === 'readings' && s.at >= quietFrom).map((s) => s.meter),
      );
      expect([...bReporting].sort()).toEqual(feederB);
      expect(fleet.stats().connected).toBe(10);

      await until(
        'every meter of feeder A back and its restore reported',
        () =>
          new Set(
            he
              .events()
              .filter((e) => e.code.startsWith('power.restored'))
              .map((e) => e.meter),
          ).size === 20,
        forMs + extraMs + jitterMs + 10_000,
      );
      const restores = he.events().filter((e) => e.code.startsWith('power.restored'));
      const first = new Map<string, SeenEvent>();
      for (const r of restores) if (!first.has(r.meter)) first.set(r.meter, r);
      expect(restores.every((r) => feederA.includes(r.meter))).toBe(true);
      // Tens of simulated minutes off: the long kind, with how long it was.
      for (const r of first.values()) {
        expect(r.code).toBe('power.restored_long');
        expect(r.data?.offS).toBeGreaterThanOrEqual(180);
      }
      const strag = new Set(report.stragglers);
      const back = [...first.values()].filter((r) => !strag.has(r.meter)).map((r) => r.at - outageAt);
      const late = [...first.values()].filter((r) => strag.has(r.meter)).map((r) => r.at - outageAt);
      expect(Math.min(...back)).toBeGreaterThanOrEqual(forMs);
      // Within a few seconds of each other (the jitter, plus reconnect time on a busy machine).
      expect(Math.max(...back) - Math.min(...back)).toBeLessThan(jitterMs + 1500);
      expect(Math.min(...late)).toBeGreaterThanOrEqual(forMs + extraMs);
      expect(Math.min(...late) - Math.max(...back)).toBeGreaterThan(1500);
      for (const r of first.values()) {
        const off = r.data!.offS as number;
        if (strag.has(r.meter)) expect(off).toBeGreaterThanOrEqual(((forMs + extraMs) * 600) / 1000 - 1);
        else expect(off).toBeLessThan(((forMs + jitterMs + 500) * 600) / 1000);
      }

      // The silent ones logged the failure and report it once back: every meter of the feeder
      // reports one power.fail, all stamped with the same instant.
      await until(
        'every power.fail reported',
        () =>
          new Set(
            he
              .events()
              .filter((e) => e.code === 'power.fail')
              .map((e) => e.meter),
          ).size === 20,
      );
      const fails = he.events().filter((e) => e.code === 'power.fail');
      expect(new Set(fails.map((f) => f.t)).size).toBe(1);
      for (const f of fails) {
        if (report.silent.includes(f.meter)) expect(f.at).toBeGreaterThanOrEqual(outageAt + forMs);
      }
      expect(fleet.stats().faults).toMatchObject({ feederOutages: 1, householdOutages: 0 });
      await until('all 30 meters connected again', () => fleet.stats().connected === 30);

      // A single household: one meter dark, its gasp, then power.restored (a minute, short kind).
      const hhAt = Date.now();
      fleet.householdOutage('FB03', 100);
      expect(feederB.filter((id) => !fleet.meter(id)!.powerOn)).toEqual(['FB03']);
      await until('the household restore', () =>
        he.events().some((e) => e.meter === 'FB03' && e.code.startsWith('power.restored') && e.at >= hhAt),
      );
      const hh = he.events().filter((e) => e.meter === 'FB03' && e.at >= hhAt);
      expect(hh.map((e) => e.code)).toEqual(['power.fail', 'power.restored']);
      expect(fleet.stats().faults.householdOutages).toBe(1);
    } finally {
      await fleet.stop();
      await he.close();
    }
  }, 60_000);

  it('the first faults come at real time once caught up: a tamper, then a feeder outage that restores', async () => {
    const he = await headEnd(broker.url, 'first');
    const fleet = new Fleet({
      brokerUrl: broker.url,
      serverPublicKey: keys.publicKey,
      meters: descriptors().map((d) => ({ ...d, id: `X${d.id}` })),
      // Meters start on the interval boundary before now: at 1000x their clocks meet real time
      // within a couple of seconds, and only then come the first faults.
      speed: 1000,
      backfillDays: 0,
      tickMs: 100,
      autoPressButton: false,
      random: seeded(7),
      faults: {
        onlyWhenCaughtUp: true,
        firstFaultsAfterS: 1,
        firstOutageDelayS: 1,
        tamperEverySimHours: 1000,
        feederOutageEverySimHours: 1000,
        // Three seconds: at real time a simulated minute is a real one.
        feederOutageSimMinutes: 0.05,
        lastGaspShare: 1,
      },
    });
    const startedAt = Date.now();
    fleet.start();
    try {
      await until(
        'a feeder restored',
        () => he.events().filter((e) => e.code === 'power.restored').length >= 10,
        20_000,
      );
      expect(fleet.caughtUpAfterMs).not.toBeNull();
      const ev = he.events();
      const tamper = ev.filter((e) => e.code.startsWith('tamper.'));
      expect(tamper).toHaveLength(1);
      expect(['tamper.cover', 'tamper.terminal', 'tamper.magnetic']).toContain(tamper[0]!.code);
      // Stamped at real now, not somewhere in a backfilled history.
      expect(Math.abs(tamper[0]!.t - tamper[0]!.at / 1000)).toBeLessThan(5);
      const fails = ev.filter((e) => e.code === 'power.fail');
      const feeder = fails[0]!.meter.startsWith('XFA') ? 'XFA' : 'XFB';
      expect(fails.every((f) => f.meter.startsWith(feeder))).toBe(true);
      expect(fails).toHaveLength(feeder === 'XFA' ? 20 : 10);
      expect(fails[0]!.at - tamper[0]!.at).toBeGreaterThanOrEqual(900);
      expect(fails[0]!.at - startedAt).toBeLessThan(12_000);
      expect(fleet.stats().faults).toMatchObject({ tamper: 1, feederOutages: 1 });
    } finally {
      await fleet.stop();
      await he.close();
    }
  }, 40_000);
});

/** A clock the test moves by hand; the fleet's single timer fires on each `advance`. */
function manualClock(startMs: number) {
  let now = startMs;
  const fns: (() => void)[] = [];
  const clock: Clock = {
    now: () => now,
    every(_ms, fn) {
      fns.push(fn);
      return () => fns.splice(fns.indexOf(fn), 1);
    },
  };
  return {
    clock,
    advance(ms: number, stepMs = 250) {
      for (let t = 0; t < ms; t += stepMs) {
        now += stepMs;
        for (const f of [...fns]) f();
      }
    },
  };
}

describe('fault shapes (no broker)', () => {
  const offline = (random: () => number, faults = {}, clock?: Clock) =>
    new Fleet({
      brokerUrl: 'mqtt://127.0.0.1:1',
      serverPublicKey: keys.publicKey,
      meters: [...descriptors(), { id: 'LONE', password: 'x' }],
      speed: 86_400,
      backfillDays: 2,
      autoPressButton: false,
      random,
      faults,
      clock,
    });

  it('is repeatable with a seeded random, takes shares and counts as asked, and spares meters already off', async () => {
    const shapes = [];
    for (let run = 0; run < 2; run++) {
      const fleet = offline(seeded(99));
      fleet.start();
      try {
        fleet.householdOutage('FA05', 60_000);
        const r = fleet.feederOutage('FEEDER-A', { forMs: 60_000, lastGaspShare: 0.25, stragglers: 0.1 });
        expect(r.meters).not.toContain('FA05'); // already off by its own outage
        expect(r.meters).toHaveLength(19);
        expect(r.lastGasp).toHaveLength(5); // round(0.25 x 19)
        expect(r.stragglers).toHaveLength(2); // round(0.1 x 19)
        expect(fleet.meter('LONE')!.powerOn).toBe(true);
        expect(feederB.every((id) => fleet.meter(id)!.powerOn)).toBe(true);
        const none = fleet.feederOutage('FEEDER-B', { forMs: 60_000, lastGaspShare: 0 });
        expect(none.lastGasp).toEqual([]);
        expect(none.silent).toHaveLength(10);
        expect(fleet.feeders()).toEqual(['FEEDER-A', 'FEEDER-B']);
        expect(fleet.stats().faults).toMatchObject({ feederOutages: 2, householdOutages: 1 });
        shapes.push(r);
      } finally {
        await fleet.stop();
      }
    }
    expect(shapes[1]).toEqual(shapes[0]);
    const other = offline(seeded(100));
    other.start();
    const r = other.feederOutage('FEEDER-A', { forMs: 60_000, lastGaspShare: 0.25, stragglers: 0.1 });
    await other.stop();
    expect(r.lastGasp).not.toEqual(shapes[0]!.lastGasp);
  });

  it('scheduled feeder outages and tampers land in the backfilled history unless they wait for the fleet to catch up', async () => {
    const counts = [];
    for (const onlyWhenCaughtUp of [false, true]) {
      const mc = manualClock(Date.UTC(2026, 2, 10, 12, 0, 0));
      const fleet = offline(
        seeded(5),
        {
          feederOutageEverySimHours: 6,
          householdOutageEverySimHours: 12,
          tamperEverySimHours: 6,
          onlyWhenCaughtUp,
        },
        mc.clock,
      );
      fleet.start();
      try {
        // A day and a half of history (without a head-end the fleet never catches up), in steps
        // with real pauses: restores run on real timers, and a feeder still off is not picked.
        for (let i = 0; i < 6; i++) {
          mc.advance(250);
          await new Promise((r) => setTimeout(r, 300));
        }
        counts.push({ ...fleet.stats().faults });
      } finally {
        await fleet.stop();
      }
    }
    expect(counts[0]!.feederOutages).toBeGreaterThanOrEqual(4);
    expect(counts[0]!.householdOutages).toBeGreaterThanOrEqual(2);
    expect(counts[0]!.tamper).toBeGreaterThanOrEqual(5);
    expect(counts[1]).toMatchObject({ feederOutages: 0, householdOutages: 0, tamper: 0 });
  });
});
