/**
 * (o) Reconnect storm (issue #11): N meters (20,000; quick 2,000) connected and reporting, the
 * whole broker tier restarted at once, meters coming back on their own jittered backoff while
 * they keep producing readings into their outboxes.
 *
 * The broker tier is two Mosquitto nodes: this machine's hard fd limit is 20,000 per process
 * (no CAP_SYS_RESOURCE to raise it), and one Mosquitto needs a descriptor per client plus its
 * listener and epoll. Node A (the hub) takes half the meters and the gateway; node B the other
 * half and bridges them to A (up topics out, down topics in). Production config otherwise:
 * per-meter passwords, the ACL, username as client id, no persistence, so sessions and queued
 * down messages are gone after the restart and both sides must subscribe again. Two Fleet
 * processes (one per node), the gateway a separate process whose RSS is sampled.
 *
 * Measured: meters held connected, gateway RSS (reporting and through the storm), time from
 * the restart to every meter back (storm_reconnect_s) and to every meter back with the
 * backlog acknowledged (storm_recovery_s), the backlog's peak, and — production held, the
 * outboxes drained — readings produced minus readings stored (storm_lost).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
  type Child,
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
  produced: number;
}

export interface StormResult {
  target: number;
  /** Held connected through a reporting window before the restart. */
  connected: number;
  secondsToConnect: number;
  headendRssMb: number | null;
  /** Peak gateway RSS from the restart until recovered. */
  stormHeadendRssMb: number | null;
  reconnectSeconds: number | null;
  recoverySeconds: number | null;
  backlogBefore: number;
  /** Lowest backlog over the reporting window: what the recovery waits to be back to. */
  steadyBacklog: number;
  backlogPeak: number;
  /** Messages acknowledged from the restart until recovered, per second of recovery. */
  drainMsgsPerS: number | null;
  produced: number;
  stored: number;
  lost: number | null;
  fleetRssMb: number | null;
  mosquittoRssMb: number | null;
}

export async function benchStorm(
  dbUrl: string,
  pool: Pool,
  opts: { meters: number; passwordHash: string; reportSeconds: number },
): Promise<StormResult> {
  log(`  provisioning ${opts.meters} households`);
  const households = await provision(pool, opts.meters, {
    prefix: 'S',
    passwordHash: opts.passwordHash,
    concurrency: 12,
  });
  const half = Math.ceil(households.length / 2);
  const groups = [households.slice(0, half), households.slice(half)];

  const dir = mkdtempSync(path.join(os.tmpdir(), 'kw-bench-storm-'));
  onCleanup('storm dir', () => rmSync(dir, { recursive: true, force: true }));
  const headend = { username: 'headend', password: 'bench-headend-secret' };
  const bridge = { username: 'bridge-b', password: 'bench-bridge-secret' };
  // Each node its own directory: the config, passwd and acl files have fixed names.
  const [dirA, dirB] = ['a', 'b'].map((n) => path.join(dir, n));
  for (const d of [dirA!, dirB!]) mkdirSync(d);
  const hub = await startMeterMosquitto('mosquitto A (storm)', dirA!, headend, groups[0]!, {
    bridgeUser: bridge,
  });
  const nodeB = await startMeterMosquitto('mosquitto B (storm)', dirB!, headend, groups[1]!, {
    bridgeTo: { port: hub.port, ...bridge },
  });
  const nodes = [hub, nodeB];
  const children: Child[] = [];
  try {
    const gateway = spawnKilowire('gateway process (storm)', 'gateway', {
      dbUrl,
      mqttUrl: hub.url,
      login: headend,
      dataDir: path.join(dir, 'gw-data'),
      env: { GATEWAY_CLIENT_ID: `kw-bench-storm-${process.pid}` },
    });
    children.push(gateway);
    await gateway.waitFor('gateway connected to broker', 60_000);
    const { rows: before } = await pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM interval_readings',
    );

    const serverPublicKey = generateSigningKeyPair().publicKey;
    const last: (FleetLine | undefined)[] = [undefined, undefined];
    /** Lines seen per child: a phase waits for lines written after it began. */
    const seen = [0, 0];
    // Each meter half a day behind, at its own phase of the interval, so that the fleet's
    // readings flow steadily instead of 20,000 at once on each simulated half-hour.
    const nowS = Math.floor(Date.now() / 1000);
    groups.forEach((g, i) => {
      const jobFile = path.join(dir, `fleet-${i}.json`);
      writeFileSync(
        jobFile,
        JSON.stringify({
          brokerUrl: nodes[i]!.url,
          serverPublicKey,
          meters: g.map((h) => ({
            id: h.serial,
            password: h.credential,
            startS: nowS - 43_200,
            phaseS: Math.floor(Math.random() * 1800),
          })),
          // One half-hour reading per meter every 60 real seconds (20,000 meters: ~330 msgs/s),
          // never caught up within the part: the meters produce throughout the storm.
          speed: 30,
          backfillDays: 0,
          connectsPerSecond: 200,
          // One pass over 10,000 meters a second, not four: on two shared cores the fleet's
          // own ticking is what slows the connects (a first run: 15,460 of 20,000 in 230 s).
          tickMs: 1000,
        }),
      );
      children.push(
        spawnChild(`fleet process ${i} (storm)`, 'bash', fleetChildArgs(jobFile), {
          onLine: (l) => {
            if (!l.startsWith('STATS ')) return;
            last[i] = JSON.parse(l.slice(6)) as FleetLine;
            seen[i]!++;
          },
        }),
      );
    });
    const fleets = children.slice(1);
    const sum = (k: keyof FleetLine) => (last[0]?.[k] ?? 0) + (last[1]?.[k] ?? 0);
    const alive = () => {
      for (const c of children)
        if (c.proc.exitCode !== null) throw new Error(`a storm process exited:\n${c.output().slice(-3000)}`);
    };
    /** Resolves once both fleets have printed a line written after this call. */
    const fresh = async () => {
      const at = [...seen];
      while (seen[0]! <= at[0]! + 1 || seen[1]! <= at[1]! + 1) {
        alive();
        await sleep(200);
      }
    };

    // Connect: admitted at 2 x 200/s; wait until all are in or the count stalls.
    const t0 = Date.now();
    let best = 0;
    let bestAt = Date.now();
    let peakGw = 0;
    for (;;) {
      await sleep(1000);
      alive();
      peakGw = Math.max(peakGw, rssMb(gateway.proc.pid) ?? 0);
      const c = sum('connected');
      if (c > best) [best, bestAt] = [c, Date.now()];
      if (c >= opts.meters) break;
      // Two processes building 10,000 meters each take a while to print their first line:
      // a stall counts only once meters have started connecting.
      if (best > 0 && Date.now() - bestAt > 60_000) {
        log(`  storm: connected count stalled at ${best}`);
        break;
      }
      if (Date.now() - t0 > (opts.meters / 400) * 1000 + 180_000) {
        log(`  storm: gave up waiting for connections at ${best}`);
        break;
      }
    }
    const secondsToConnect = (Date.now() - t0) / 1000;
    log(`  storm: ${sum('connected')}/${opts.meters} connected after ${secondsToConnect.toFixed(0)} s`);

    // Reporting window: all held connected, gateway RSS sampled.
    let minConnected = sum('connected');
    const backlogs: number[] = [];
    const until = Date.now() + opts.reportSeconds * 1000;
    while (Date.now() < until) {
      await sleep(1000);
      alive();
      peakGw = Math.max(peakGw, rssMb(gateway.proc.pid) ?? 0);
      minConnected = Math.min(minConnected, sum('connected'));
      backlogs.push(sum('backlog'));
    }
    // What is normally in flight (sent, not yet acknowledged): the storm is over when the
    // backlog is back to this. The window's lowest, not its mean: meters still being admitted
    // pile up readings and inflate a mean (a 20,000-meter run: mean 16,644, at restart 10,421).
    const steadyBacklog = backlogs.length ? Math.min(...backlogs) : 0;

    // The storm: both nodes stopped at once (SIGTERM, as a service restart), started again on
    // the same port and config, the hub first so the bridge finds it.
    const backlogBefore = sum('backlog');
    const ackedBefore = sum('acked');
    log(
      `  storm: restarting both broker nodes (${sum('connected')} connected, backlog ${backlogBefore}, steady ${steadyBacklog.toFixed(0)})`,
    );
    const restartAt = Date.now();
    await Promise.all(nodes.map((n) => n.stop()));
    await hub.start();
    await nodeB.start();
    log(`  storm: both nodes back after ${((Date.now() - restartAt) / 1000).toFixed(1)} s`);
    await fresh();
    let stormPeak = 0;
    let backlogPeak = backlogBefore;
    let reconnectSeconds: number | null = null;
    let recoverySeconds: number | null = null;
    let ackedAtRecovery = ackedBefore;
    let lastLog = 0;
    while (Date.now() - restartAt < 240_000) {
      await sleep(500);
      alive();
      stormPeak = Math.max(stormPeak, rssMb(gateway.proc.pid) ?? 0);
      backlogPeak = Math.max(backlogPeak, sum('backlog'));
      const s = (Date.now() - restartAt) / 1000;
      if (Date.now() - lastLog > 10_000) {
        lastLog = Date.now();
        log(
          `  storm: +${s.toFixed(0)} s connected ${sum('connected')} backlog ${sum('backlog')} gw ${rssMb(gateway.proc.pid)} MB`,
        );
      }
      if (reconnectSeconds === null && sum('connected') >= opts.meters) reconnectSeconds = s;
      if (reconnectSeconds !== null && sum('backlog') <= Math.max(steadyBacklog * 1.25, 200)) {
        recoverySeconds = s;
        ackedAtRecovery = sum('acked');
        break;
      }
    }
    log(
      `  storm: every meter back after ${reconnectSeconds ?? '-'} s, backlog drained after ${recoverySeconds ?? '-'} s`,
    );

    // Lost: production held, outboxes drained, then produced against stored.
    for (const f of fleets) f.proc.kill('SIGUSR2');
    await fresh();
    const drainUntil = Date.now() + 120_000;
    while (sum('backlog') > 0 && Date.now() < drainUntil) {
      await sleep(500);
      alive();
    }
    await fresh();
    const drained = sum('backlog') === 0;
    const { rows: after } = await pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM interval_readings',
    );
    const produced = sum('produced');
    const stored = (after[0]?.n ?? 0) - (before[0]?.n ?? 0);
    if (!drained) log(`  storm: backlog not drained (${sum('backlog')} left): storm_lost not measured`);

    const result: StormResult = {
      target: opts.meters,
      connected: minConnected,
      secondsToConnect,
      headendRssMb: peakGw || null,
      stormHeadendRssMb: stormPeak || null,
      reconnectSeconds,
      recoverySeconds,
      backlogBefore,
      steadyBacklog: Math.round(steadyBacklog),
      backlogPeak,
      drainMsgsPerS: recoverySeconds ? (ackedAtRecovery - ackedBefore) / recoverySeconds : null,
      produced,
      stored,
      lost: drained ? produced - stored : null,
      fleetRssMb: Math.max(last[0]?.rssMb ?? 0, last[1]?.rssMb ?? 0) || null,
      mosquittoRssMb: Math.max(rssMb(hub.pid) ?? 0, rssMb(nodeB.pid) ?? 0) || null,
    };
    log(`  storm: ${JSON.stringify(result)}`);
    return result;
  } finally {
    for (const c of children.slice(1)) await c.stop(20_000);
    await children[0]?.stop(15_000);
    await nodeB.stop();
    await hub.stop();
  }
}
