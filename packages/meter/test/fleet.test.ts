import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Clock } from '../src/client.ts';
import { Fleet, formatStats } from '../src/fleet.ts';
import { DAY, keys } from './helpers.ts';

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

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('Fleet (no broker: connections are refused, metering goes on)', () => {
  it('fast-forwards each meter from its backfill start to real time, never beyond, and survives restarts', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'kw-fleet-'));
    dirs.push(stateDir);
    const realStart = Date.UTC(2026, 2, 10, 12, 0, 7);
    const mc = manualClock(realStart);
    const fleet = new Fleet({
      brokerUrl: 'mqtt://127.0.0.1:1',
      serverPublicKey: keys.publicKey,
      meters: [
        { id: 'F1', password: 'x', mode: 'prepayment' },
        { id: 'F2', password: 'x', tz: 'America/New_York', profile: { hasSolar: true } },
      ],
      stateDir,
      fsync: false,
      speed: 86_400, // a simulated day per real second
      backfillDays: 2,
      clock: mc.clock,
      random: () => 0.5,
    });
    fleet.start();
    try {
      const f1 = () => fleet.meter('F1')!;
      const startCursor = f1().cursor;
      expect(startCursor).toBe(
        Math.floor(realStart / 1000 - 2 * DAY) - (Math.floor(realStart / 1000 - 2 * DAY) % 1800),
      );

      mc.advance(1_000);
      const afterOneSecond = f1().cursor;
      expect(afterOneSecond - startCursor).toBeGreaterThanOrEqual(DAY - 1800);
      expect(afterOneSecond - startCursor).toBeLessThanOrEqual(DAY);

      fleet.powerLoss('F2', 300);
      expect(fleet.meter('F2')!.powerOn).toBe(false);
      mc.advance(500);
      fleet.tamper('F1', 'cover');
      fleet.restartMeter('F1');
      expect(f1().cursor).toBeGreaterThan(afterOneSecond);
      mc.advance(3_000);
      await new Promise((r) => setTimeout(r, 350)); // the power-restore timer is real
      mc.advance(250);

      const nowS = Math.floor(mc.clock.now() / 1000);
      for (const id of ['F1', 'F2']) {
        const m = fleet.meter(id)!;
        expect(m.powerOn).toBe(true);
        expect(m.cursor).toBeLessThanOrEqual(nowS);
        expect(nowS - m.cursor).toBeLessThan(1800);
      }
      // Two days of half-hours, nothing acknowledged: all still in the outbox, none lost by the restart.
      const intervals = f1()
        .outbox.flatMap((e) => (e.stream === 'readings' ? e.msg.intervals : []))
        .map((iv) => iv.t);
      expect(intervals[0]).toBe(startCursor);
      expect(intervals.length).toBe((f1().cursor - startCursor) / 1800);
      expect(new Set(intervals).size).toBe(intervals.length);
      const codes = (id: string) =>
        fleet
          .meter(id)!
          .outbox.flatMap((e) => (e.stream === 'events' ? e.msg.events.map((ev) => ev.code) : []));
      expect(codes('F1')).toContain('tamper.cover');
      expect(codes('F2')).toEqual(expect.arrayContaining(['power.fail', 'power.restored_long']));
      const stats = fleet.stats();
      expect(stats).toMatchObject({
        meters: 2,
        connected: 0,
        faults: { tamper: 1, powerLoss: 1, restarts: 1 },
      });
      expect(stats.backlog).toBeGreaterThan(0);
      expect(formatStats(stats)).toMatch(/^sim=\S+ connected=0\/2 /);
    } finally {
      await fleet.stop();
    }
  });
});
