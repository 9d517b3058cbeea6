/**
 * (n) Gateway failover (#11): three gateway processes share the meters' topics through a
 * Mosquitto shared subscription (MQTT_SHARE_GROUP); one of them is killed with SIGKILL every
 * few seconds and started again a second later, while a fleet of real meters (its own
 * process, one reading per message, catching up history at speed) reports and signed
 * commands are issued. Afterwards each meter's own count of produced intervals and its import
 * register are compared with what was stored: `lost` is the intervals a meter produced that
 * are not in interval_readings, `duplicated` the rows stored more than once (count(*) minus
 * count(distinct meter, ts)), `rollupMismatchDays` the meter-days whose daily rollup is not
 * the sum of the raw rows. The rate is the readings stored per second while the kills ran.
 * The same scenario as packages/server/test/gateway-failover.test.ts, bigger.
 */
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateSigningKeyPair, privateKeyFromB64 } from '@kilowire/protocol';
import { requestCommand, tx, type Pool } from '@kilowire/server';
import { provision } from './db.ts';
import {
  log,
  nowMs,
  sleep,
  spawnChild,
  startMeterMosquitto,
  waitFor,
  type Child,
  spawnKilowire,
  fleetChildArgs,
} from './lib.ts';

const GATEWAYS = 3;
const SHARE_GROUP = 'kw-bench-failover';

export interface FailoverResult {
  meters: number;
  kills: number;
  killSeconds: number;
  lost: number;
  duplicated: number;
  /** Meters whose stored energy differs from their import register. */
  whMismatchMeters: number;
  rollupMismatchDays: number;
  readingsStored: number;
  readingsPerS: number;
  /** Readings stored per second in the same run with all three gateways up, just before the kills. */
  baselineReadingsPerS: number;
  /** Readings the meters produce per second (each meter one every 1800 / speed s while catching up). */
  offeredReadingsPerS: number;
  /** pg_stat_database.deadlocks of the bench database, across the part. */
  deadlocks: number;
  /** Resend requests the meters got (gaps seen by a gateway: lost to a kill, or another gateway's still uncommitted). */
  resendRequests: number;
  /** Messages the meters published, against the intervals they produced (1 reading per message). */
  published: number;
  commands: number;
  commandsOk: number;
  /** Commands the meters applied (a repeated copy is answered from memory, not applied). */
  commandsApplied: number;
  drainSeconds: number;
  /** Mean seconds from a killed gateway's restart (spawn) to its broker connection. */
  restartSeconds: number;
}

interface FleetLine {
  connected: number;
  published: number;
  backlog: number;
  simMinS: number;
  commandsOk: number;
}

export async function benchFailover(
  dbUrl: string,
  pool: Pool,
  opts: { meters: number; kills: number; killEveryMs: number; baselineSeconds: number; passwordHash: string },
): Promise<FailoverResult> {
  log(`  provisioning ${opts.meters} households`);
  const hh = await provision(pool, opts.meters, {
    prefix: 'GF',
    passwordHash: opts.passwordHash,
    concurrency: 12,
  });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kw-bench-failover-'));
  const logins = Array.from({ length: GATEWAYS }, (_, i) => ({
    username: `headend-${i}`,
    password: `bench-failover-secret-${i}`,
  }));
  const broker = await startMeterMosquitto('mosquitto (failover)', dir, logins, hh);
  const cmdKeys = generateSigningKeyPair();
  let spawned = 0;
  /** Seconds from each restart's spawn to its 'gateway connected to broker'. */
  const restarts: number[] = [];
  const startGateway = (i: number): Child => {
    const at = nowMs();
    let seen = false;
    return spawnKilowire(`kilowire gateway ${i} (failover, #${++spawned})`, 'gateway', {
      dbUrl,
      mqttUrl: broker.url,
      login: logins[i]!,
      dataDir: path.join(dir, `kw-data-${i}`),
      env: {
        COMMAND_MAX_RETRY_S: '4',
        MQTT_SHARE_GROUP: SHARE_GROUP,
        GATEWAY_CLIENT_ID: `kw-bench-failover-${i}`,
        COMMAND_SIGNING_KEY: cmdKeys.privateKey,
        COMMAND_RETRY_S: '2',
      },
      onLine: (l) => {
        if (seen || !l.includes('gateway connected to broker')) return;
        seen = true;
        if (spawned > GATEWAYS) restarts.push((nowMs() - at) / 1000);
      },
    });
  };
  const gws: Child[] = Array.from({ length: GATEWAYS }, (_, i) => startGateway(i));
  try {
    await Promise.all(gws.map((g) => g.waitFor('gateway connected to broker', 90_000)));
    // One reading per meter and real second, for about the kills' time plus a quarter: the
    // meters are still catching up when the last kill comes.
    const killSeconds = (opts.kills * opts.killEveryMs) / 1000;
    const speed = 1800;
    const backfillDays = ((opts.baselineSeconds + killSeconds * 1.25 + 10) * speed) / 86_400;
    const jobFile = path.join(dir, 'fleet.json');
    writeFileSync(
      jobFile,
      JSON.stringify({
        brokerUrl: broker.url,
        serverPublicKey: cmdKeys.publicKey,
        meters: hh.map((h) => ({ id: h.serial, password: h.credential })),
        speed,
        backfillDays,
        connectsPerSecond: 500,
      }),
    );
    let st: FleetLine = { connected: 0, published: 0, backlog: 0, simMinS: 0, commandsOk: 0 };
    let metersWritten = false;
    let lastSeen: FleetLine | null = null;
    const fleet = spawnChild('fleet process (failover)', 'bash', fleetChildArgs(jobFile), {
      onLine: (l) => {
        if (l.startsWith('STATS ')) st = JSON.parse(l.slice(6)) as FleetLine;
        if (l === 'METERS written') metersWritten = true;
      },
    });
    try {
      await waitFor(() => st.connected >= opts.meters, 120_000, `${opts.meters} meters connected`, 250);
      const stored = async () =>
        (await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM interval_readings')).rows[0]!.n;
      const deadlocks = async () =>
        (
          await pool.query<{ n: number }>(
            'SELECT deadlocks::int AS n FROM pg_stat_database WHERE datname = current_database()',
          )
        ).rows[0]!.n;
      const dl0 = await deadlocks();
      const key = privateKeyFromB64(cmdKeys.privateKey);
      let commands = 0;
      const b0 = { at: nowMs(), n: await stored() };
      await sleep(opts.baselineSeconds * 1000);
      const r0 = { at: nowMs(), n: await stored() };
      const baselineReadingsPerS = ((r0.n - b0.n) * 1000) / (r0.at - b0.at);
      log(`  ${baselineReadingsPerS.toFixed(0)} readings/s stored with all ${GATEWAYS} gateways up`);
      for (let k = 0; k < opts.kills; k++) {
        await sleep(Math.max(0, r0.at + k * opts.killEveryMs - nowMs()));
        const i = k % GATEWAYS;
        await gws[i]!.waitFor('gateway connected to broker', 60_000);
        gws[i]!.proc.kill('SIGKILL');
        await new Promise<void>((r) =>
          gws[i]!.proc.exitCode !== null ? r() : gws[i]!.proc.once('exit', () => r()),
        );
        // Commands meanwhile: ten meters each kill, claimed by whichever gateways are up.
        await tx(pool, async (c) => {
          for (let j = 0; j < 10; j++) {
            const h = hh[(commands++ * 7919) % hh.length]!;
            await requestCommand(
              c,
              key,
              { id: h.meterId, serial: h.serial },
              { type: 'thresholds.set', lowCreditMinor: 100 + commands },
              { actorId: null },
            );
          }
        });
        await sleep(1_000);
        gws[i] = startGateway(i);
      }
      await sleep(Math.max(0, r0.at + opts.kills * opts.killEveryMs - nowMs()));
      const r1 = { at: nowMs(), n: await stored() };
      const readingsPerS = ((r1.n - r0.n) * 1000) / (r1.at - r0.at);
      log(
        `  ${opts.kills} kills in ${((r1.at - r0.at) / 1000).toFixed(0)} s: ${readingsPerS.toFixed(0)} readings/s stored`,
      );
      await Promise.all(gws.map((g) => g.waitFor('gateway connected to broker', 60_000)));

      // Drained: the meters caught up with real time and hold nothing unacknowledged.
      const d0 = nowMs();
      let shown = d0;
      await waitFor(
        () => {
          if (nowMs() - shown > 10_000) {
            shown = nowMs();
            log(`  draining: backlog ${st.backlog} messages, ${st.published} published`);
          }
          return st.simMinS >= Date.now() / 1000 - 1800 && st.backlog === 0;
        },
        300_000,
        'every meter caught up and acknowledged',
        250,
      ).catch((err: unknown) => log(`  ${(err as Error).message}: backlog ${st.backlog}`));
      const drainSeconds = (nowMs() - d0) / 1000;
      // A meter still closing its last catch-up interval when the drain looked complete would
      // count as a loss (a full run measured 1,750 such "lost" readings, all still in outboxes):
      // hold production first (the first SIGUSR2), let the outboxes empty, then count.
      fleet.proc.kill('SIGUSR2');
      await waitFor(() => metersWritten, 30_000, 'meter states written', 50);
      metersWritten = false;
      const heldAt = Date.now();
      let heldStats = 0;
      await waitFor(
        () => {
          if (st !== lastSeen) {
            lastSeen = st;
            if (Date.now() - heldAt > 1_100) heldStats++;
          }
          return heldStats >= 2 && st.backlog === 0;
        },
        120_000,
        'outboxes empty after production stopped',
        100,
      ).catch((err: unknown) => log(`  ${(err as Error).message}: backlog ${st.backlog}`));
      fleet.proc.kill('SIGUSR2');
      await waitFor(() => metersWritten, 30_000, 'meter states written', 50);
      const meters = JSON.parse(readFileSync(`${jobFile}.meters.json`, 'utf8')) as {
        id: string;
        cursor: number;
        intervalS: number;
        importWh: number;
        outbox: number;
        resendRequests: number;
      }[];
      const { rows } = await pool.query<{ serial: string; n: number; wh: number; first: number | null }>(
        `SELECT m.serial, count(r.ts)::int AS n, coalesce(sum(r.wh), 0)::bigint AS wh,
                extract(epoch FROM min(r.ts))::bigint AS first
           FROM meters m LEFT JOIN interval_readings r ON r.meter_id = m.id
          WHERE m.serial = ANY($1::text[]) GROUP BY m.serial`,
        [meters.map((m) => m.id)],
      );
      const db = new Map(rows.map((r) => [r.serial, r]));
      let lost = 0;
      let whMismatchMeters = 0;
      for (const m of meters) {
        const r = db.get(m.id);
        // Intervals from the first stored one to the meter's cursor: what it produced.
        const produced = r?.first == null ? 0 : (m.cursor - r.first) / m.intervalS;
        lost += Math.max(0, produced - (r?.n ?? 0));
        if ((r?.wh ?? 0) !== m.importWh) whMismatchMeters++;
      }
      const ids = hh.map((h) => h.meterId);
      const dup = await pool.query<{ n: number; d: number }>(
        `SELECT count(*)::int AS n, count(DISTINCT (meter_id, ts))::int AS d FROM interval_readings WHERE meter_id = ANY($1::int[])`,
        [ids],
      );
      const roll = await pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM daily_rollups d FULL JOIN (
           SELECT r.meter_id, (r.ts AT TIME ZONE m.tz)::date AS day, count(*)::int AS k, sum(r.wh)::bigint AS wh
             FROM interval_readings r JOIN meters m ON m.id = r.meter_id WHERE r.meter_id = ANY($1::int[]) GROUP BY 1, 2
         ) x ON x.meter_id = d.meter_id AND x.day = d.day
         WHERE (d.meter_id = ANY($1::int[]) OR x.meter_id = ANY($1::int[]))
           AND (d.intervals IS DISTINCT FROM x.k OR d.wh IS DISTINCT FROM x.wh)`,
        [ids],
      );
      await waitFor(
        async () =>
          (
            await pool.query<{ n: number }>(
              `SELECT count(*)::int AS n FROM commands WHERE meter_id = ANY($1::int[]) AND status NOT IN ('ok')`,
              [ids],
            )
          ).rows[0]!.n === 0,
        60_000,
        'every command answered',
        250,
      ).catch((err: unknown) => log(`  ${(err as Error).message}`));
      const ok = await pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM commands WHERE meter_id = ANY($1::int[]) AND status = 'ok'`,
        [ids],
      );
      await sleep(1_500); // the next STATS line carries the last replies
      const result: FailoverResult = {
        meters: opts.meters,
        kills: opts.kills,
        killSeconds,
        lost,
        duplicated: dup.rows[0]!.n - dup.rows[0]!.d,
        whMismatchMeters,
        rollupMismatchDays: roll.rows[0]!.n,
        readingsStored: dup.rows[0]!.n,
        readingsPerS,
        baselineReadingsPerS,
        offeredReadingsPerS: (opts.meters * speed) / 1800,
        deadlocks: (await deadlocks()) - dl0,
        resendRequests: meters.reduce((s, m) => s + m.resendRequests, 0),
        published: st.published,
        commands,
        commandsOk: ok.rows[0]!.n,
        commandsApplied: st.commandsOk,
        drainSeconds,
        restartSeconds: restarts.reduce((a, b) => a + b, 0) / Math.max(1, restarts.length),
      };
      log(`  ${JSON.stringify(result)}`);
      return result;
    } finally {
      await fleet.stop();
    }
  } finally {
    await Promise.all(gws.map((g) => g.stop()));
    await broker.stop();
  }
}
