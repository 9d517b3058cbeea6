/**
 * (e) Connection capacity: one Fleet process holding N simulated meters connected to a
 * Mosquitto with the production-style per-meter password file and pattern ACL, meters
 * provisioned in the database and reporting, and the gateway as a separate process
 * (`main.ts --services=gateway`) whose RSS is read from /proc while they report.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateSigningKeyPair } from '@kilowire/protocol';
import { provision } from './db.ts';
import {
  log,
  onCleanup,
  rssMb,
  sleep,
  spawnChild,
  startMeterMosquitto,
  spawnKilowire,
  fleetChildArgs,
} from './lib.ts';
import type { Pool } from '@kilowire/server';

interface FleetLine {
  connected: number;
  published: number;
  acked: number;
  backlog: number;
  errors: number;
  rssMb: number;
}

export interface FleetResult {
  target: number;
  connected: number;
  secondsToConnect: number;
  headendRssMb: number | null;
  headendRssIdleMb: number | null;
  fleetRssMb: number | null;
  mosquittoRssMb: number | null;
  publishedDuringWindow: number;
  ackedDuringWindow: number;
  storedReadings: number;
  windowSeconds: number;
  /** The database stopped hard for `outageSeconds`, then restarted, meters reporting throughout. */
  outage: {
    seconds: number;
    /** Peak gateway RSS from the stop until the meters' backlog was back to where it was. */
    headendRssMb: number | null;
    /** From the restart until the backlog was back (s). */
    catchupSeconds: number | null;
    /** Messages the meters still held when the database came back (a measure of the outage's size). */
    backlogAtRestart: number;
    gatewaySurvived: boolean;
  } | null;
}

export async function benchFleet(
  dbUrl: string,
  pool: Pool,
  opts: {
    meters: number;
    connectsPerSecond: number;
    speed: number;
    backfillDays: number;
    reportSeconds: number;
    passwordHash: string;
    /** Stop the database hard for this long while the meters report (embedded server only). */
    outageSeconds?: number;
    outage?: { stopImmediate(): Promise<void>; start(): Promise<void> };
  },
): Promise<FleetResult> {
  log(`  provisioning ${opts.meters} households`);
  const households = await provision(pool, opts.meters, {
    prefix: 'F',
    passwordHash: opts.passwordHash,
    concurrency: 12,
  });

  const dir = mkdtempSync(path.join(os.tmpdir(), 'kw-bench-fleet-'));
  onCleanup('fleet dir', () => rmSync(dir, { recursive: true, force: true }));
  const headend = { username: 'headend', password: 'bench-headend-secret' };
  const broker = await startMeterMosquitto('mosquitto (fleet)', dir, headend, households);
  try {
    const gwData = path.join(dir, 'gw-data');
    const gateway = spawnKilowire('gateway process', 'gateway', {
      dbUrl,
      mqttUrl: broker.url,
      login: headend,
      dataDir: gwData,
      env: { GATEWAY_CLIENT_ID: `kw-bench-gw-${process.pid}` },
    });
    try {
      await gateway.waitFor('gateway connected to broker', 60_000);
      const headendRssIdleMb = rssMb(gateway.proc.pid);
      const { rows: before } = await pool.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM interval_readings',
      );

      const jobFile = path.join(dir, 'fleet.json');
      writeFileSync(
        jobFile,
        JSON.stringify({
          brokerUrl: broker.url,
          serverPublicKey: generateSigningKeyPair().publicKey,
          meters: households.map((h) => ({ id: h.serial, password: h.credential })),
          speed: opts.speed,
          backfillDays: opts.backfillDays,
          connectsPerSecond: opts.connectsPerSecond,
        }),
      );
      let last: FleetLine | undefined;
      const fleet = spawnChild('fleet process', 'bash', fleetChildArgs(jobFile), {
        onLine: (l) => {
          if (l.startsWith('STATS ')) last = JSON.parse(l.slice(6)) as FleetLine;
        },
      });
      try {
        // Connections are admitted at connectsPerSecond; wait until all are in or the count stalls.
        const t0 = Date.now();
        const deadline = t0 + (opts.meters / opts.connectsPerSecond) * 1000 + 120_000;
        let best = 0;
        let bestAt = Date.now();
        let peakGw = 0;
        for (;;) {
          await sleep(1000);
          if (fleet.proc.exitCode !== null)
            throw new Error(`fleet process exited:\n${fleet.output().slice(-3000)}`);
          if (gateway.proc.exitCode !== null)
            throw new Error(`gateway process exited:\n${gateway.output().slice(-3000)}`);
          peakGw = Math.max(peakGw, rssMb(gateway.proc.pid) ?? 0);
          const c = last?.connected ?? 0;
          if (c > best) {
            best = c;
            bestAt = Date.now();
          }
          if (c >= opts.meters) break;
          if (Date.now() - bestAt > 20_000 && Date.now() - t0 > 30_000) {
            log(`  connected count stalled at ${best}`);
            break;
          }
          if (Date.now() > deadline) {
            log(`  gave up waiting for connections at ${best}`);
            break;
          }
        }
        const secondsToConnect = (Date.now() - t0) / 1000;
        log(
          `  ${last?.connected ?? 0}/${opts.meters} connected after ${secondsToConnect.toFixed(0)} s; sampling for ${opts.reportSeconds} s`,
        );

        // While they report: sample the gateway's RSS every second.
        const startLine = last;
        const until = Date.now() + opts.reportSeconds * 1000;
        let minConnected = last?.connected ?? 0;
        while (Date.now() < until) {
          await sleep(1000);
          if (gateway.proc.exitCode !== null)
            throw new Error(`gateway process exited:\n${gateway.output().slice(-3000)}`);
          peakGw = Math.max(peakGw, rssMb(gateway.proc.pid) ?? 0);
          minConnected = Math.min(minConnected, last?.connected ?? 0);
        }
        const { rows: after } = await pool.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM interval_readings',
        );

        // The database goes away (pg_ctl stop -m immediate) while 10,000 meters keep reporting,
        // then comes back: the gateway must hold back (backpressure) instead of filling memory,
        // and catch up by itself.
        let outage: FleetResult['outage'] = null;
        if (opts.outage && opts.outageSeconds) {
          const backlogBefore = last?.backlog ?? 0;
          let peak = 0;
          log(`  outage: stopping the database for ${opts.outageSeconds} s (backlog ${backlogBefore})`);
          await opts.outage.stopImmediate();
          const downUntil = Date.now() + opts.outageSeconds * 1000;
          while (Date.now() < downUntil) {
            await sleep(500);
            peak = Math.max(peak, rssMb(gateway.proc.pid) ?? 0);
          }
          const backlogAtRestart = last?.backlog ?? 0;
          await opts.outage.start();
          const restartedAt = Date.now();
          let catchupSeconds: number | null = null;
          while (Date.now() - restartedAt < 180_000) {
            await sleep(500);
            if (gateway.proc.exitCode !== null) break;
            peak = Math.max(peak, rssMb(gateway.proc.pid) ?? 0);
            if ((last?.backlog ?? Infinity) <= Math.max(backlogBefore, 200)) {
              catchupSeconds = (Date.now() - restartedAt) / 1000;
              break;
            }
          }
          outage = {
            seconds: opts.outageSeconds,
            headendRssMb: peak || null,
            catchupSeconds,
            backlogAtRestart,
            gatewaySurvived: gateway.proc.exitCode === null,
          };
          log(`  outage: ${JSON.stringify(outage)}`);
        }
        const result: FleetResult = {
          target: opts.meters,
          // Held for the whole reporting window, not just touched once.
          connected: minConnected,
          secondsToConnect,
          headendRssMb: peakGw || null,
          headendRssIdleMb,
          fleetRssMb: last?.rssMb ?? null,
          mosquittoRssMb: rssMb(broker.pid),
          publishedDuringWindow: (last?.published ?? 0) - (startLine?.published ?? 0),
          ackedDuringWindow: (last?.acked ?? 0) - (startLine?.acked ?? 0),
          storedReadings: (after[0]?.n ?? 0) - (before[0]?.n ?? 0),
          windowSeconds: opts.reportSeconds,
          outage,
        };
        log(`  fleet: ${JSON.stringify(last)}`);
        return result;
      } finally {
        await fleet.stop(20_000);
      }
    } finally {
      await gateway.stop(15_000);
    }
  } finally {
    await broker.stop();
  }
}
