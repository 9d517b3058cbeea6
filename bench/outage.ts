/**
 * (k) Outage detection (#9): from the first last gasp published to the incident opened and
 * the operator's alert queued (its deliveries rows committed), with the rest of the fleet
 * reporting normally.
 *
 * Kilowire runs as one process (`--services=gateway,jobs`) against a Mosquitto with
 * per-meter passwords. A Fleet process holds the background meters connected and reporting
 * at speed (a half-hour reading per meter every 10 real seconds); the meters of the outage
 * feeders are a Fleet in this process, so that the bench can cut their power. Each round one
 * feeder loses power: a quarter of its meters' radios die before their last gasp leaves (as
 * real radios do), the rest send it. The latency is the first powerFail() call (the last gasp
 * handed to the socket) to the moment a poll (every 25 ms) sees the incident's
 * `incident_opened` alert with its deliveries. Then power comes back and the incident is
 * restored before the next round.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Fleet } from '@kilowire/meter';
import { generateSigningKeyPair } from '@kilowire/protocol';
import { createStaffUser, type Pool } from '@kilowire/server';
import { provision } from './db.ts';
import {
  log,
  nowMs,
  percentile,
  sleep,
  spawnChild,
  startMeterMosquitto,
  waitFor,
  spawnKilowire,
  fleetChildArgs,
} from './lib.ts';

export interface OutageResult {
  /** Background meters reporting meanwhile. */
  meters: number;
  rounds: number;
  feederMeters: number;
  p50S: number;
  p95S: number;
  maxS: number;
  /** Incidents opened per round (must be exactly 1). */
  incidentsPerRound: number;
  /** incident_opened alerts per round (must be exactly 1). */
  alertsPerRound: number;
  /** Messages the background fleet published per second while the rounds ran (the load). */
  backgroundMsgsPerS: number;
}

export async function benchOutage(
  dbUrl: string,
  pool: Pool,
  opts: { meters: number; rounds: number; feederMeters: number; passwordHash: string },
): Promise<OutageResult> {
  log(`  provisioning ${opts.meters} background and ${opts.rounds * opts.feederMeters} outage households`);
  const background = await provision(pool, opts.meters, {
    prefix: 'K',
    passwordHash: opts.passwordHash,
    concurrency: 12,
  });
  const out = await provision(pool, opts.rounds * opts.feederMeters, {
    prefix: 'KO',
    passwordHash: opts.passwordHash,
    concurrency: 12,
  });
  // The outage households sit on feeders of their own, one per round.
  const { rows: area } = await pool.query<{ area_id: string; operator_id: number }>(
    `SELECT m.area_id, na.operator_id FROM meters m JOIN network_areas na ON na.id = m.area_id WHERE m.id = $1`,
    [out[0]!.meterId],
  );
  const { area_id: areaId, operator_id: operatorId } = area[0]!;
  const feeders: string[] = [];
  for (let r = 0; r < opts.rounds; r++) {
    const f = `${areaId}-OUT${r}`;
    feeders.push(f);
    await pool.query(`INSERT INTO feeders (id, area_id, name) VALUES ($1, $2, $3)`, [
      f,
      areaId,
      `Outage feeder ${r}`,
    ]);
    await pool.query(`UPDATE meters SET feeder_id = $1 WHERE id = ANY($2::int[])`, [
      f,
      out.slice(r * opts.feederMeters, (r + 1) * opts.feederMeters).map((h) => h.meterId),
    ]);
  }
  await createStaffUser(pool, {
    role: 'operator',
    email: `control-${areaId.toLowerCase()}@bench.test`,
    password: 'bench-operator-password',
    orgId: operatorId,
    name: 'Control room',
  });
  await pool.query(`UPDATE network_settings SET oncall_mobiles = '{+447700900999}' WHERE operator_id = $1`, [
    operatorId,
  ]);

  const dir = mkdtempSync(path.join(os.tmpdir(), 'kw-bench-outage-'));
  const headend = { username: 'headend', password: 'bench-headend-secret' };
  const broker = await startMeterMosquitto('mosquitto (outages)', dir, headend, [...background, ...out]);
  const keys = generateSigningKeyPair();
  try {
    const kw = spawnKilowire('kilowire (gateway,jobs)', 'gateway,jobs', {
      dbUrl,
      mqttUrl: broker.url,
      login: headend,
      dataDir: path.join(dir, 'kw-data'),
      env: {
        GATEWAY_CLIENT_ID: `kw-bench-outage-${process.pid}`,
        COMMAND_SIGNING_KEY: keys.privateKey,
      },
    });
    try {
      await kw.waitFor('outage detection started', 90_000);
      const jobFile = path.join(dir, 'fleet.json');
      writeFileSync(
        jobFile,
        JSON.stringify({
          brokerUrl: broker.url,
          serverPublicKey: keys.publicKey,
          meters: background.map((h) => ({ id: h.serial, password: h.credential })),
          speed: 180,
          backfillDays: 0.5,
          connectsPerSecond: 400,
        }),
      );
      let connected = 0;
      let published = 0;
      const fleetProc = spawnChild('fleet process (outages)', 'bash', fleetChildArgs(jobFile), {
        onLine: (l) => {
          if (!l.startsWith('STATS ')) return;
          const st = JSON.parse(l.slice(6)) as { connected: number; published: number };
          connected = st.connected;
          published = st.published;
        },
      });
      const local = new Fleet({
        brokerUrl: broker.url,
        serverPublicKey: keys.publicKey,
        meters: out.map((h, i) => ({ id: h.serial, password: h.credential, seed: i + 1 })),
        speed: 1,
        backfillDays: 0,
        connectsPerSecond: 400,
        summaryEveryMs: 3_600_000,
      });
      local.start();
      try {
        await waitFor(
          () => connected >= opts.meters && local.stats().connected === out.length,
          180_000,
          `${opts.meters + out.length} meters connected`,
          250,
        );
        await sleep(5_000);
        log(
          `  ${connected} background meters reporting; ${opts.rounds} feeder outages of ${opts.feederMeters} meters`,
        );
        const latencies: number[] = [];
        const load0 = { at: nowMs(), published };
        for (let r = 0; r < opts.rounds; r++) {
          const meters = out.slice(r * opts.feederMeters, (r + 1) * opts.feederMeters);
          const t0 = nowMs();
          meters.forEach((h, i) => {
            const c = local.client(h.serial)!;
            // A quarter of the radios die before the last gasp leaves.
            if (i % 4 === 3) c.dropConnection();
            c.powerFail();
          });
          await waitFor(
            async () =>
              (
                await pool.query(
                  `SELECT 1 FROM outage_incidents i
                     JOIN alerts a ON a.operator_id = i.operator_id AND a.type = 'incident_opened'
                                  AND a.dedupe_key = 'incident:' || i.id
                    WHERE i.feeder_id = $1 AND EXISTS (SELECT 1 FROM deliveries d WHERE d.alert_id = a.id)`,
                  [feeders[r]],
                )
              ).rowCount,
            120_000,
            `incident on ${feeders[r]}`,
            25,
          );
          const s = (nowMs() - t0) / 1000;
          latencies.push(s);
          log(
            `  round ${r + 1}: incident opened and alert queued ${s.toFixed(2)} s after the first last gasp`,
          );
          for (const h of meters) local.client(h.serial)!.powerRestore();
          await waitFor(
            async () =>
              (
                await pool.query(
                  `SELECT 1 FROM outage_incidents WHERE feeder_id = $1 AND status = 'restored'`,
                  [feeders[r]],
                )
              ).rowCount,
            120_000,
            `restoration of ${feeders[r]}`,
            250,
          );
        }
        const backgroundMsgsPerS = (published - load0.published) / ((nowMs() - load0.at) / 1000);
        const counts = (
          await pool.query<{ incidents: number; alerts: number }>(
            `SELECT (SELECT count(*)::int FROM outage_incidents WHERE feeder_id = ANY($1::text[])) AS incidents,
                    (SELECT count(*)::int FROM alerts WHERE operator_id = $2 AND type = 'incident_opened') AS alerts`,
            [feeders, operatorId],
          )
        ).rows[0]!;
        if (counts.incidents !== opts.rounds || counts.alerts !== opts.rounds) {
          // The run fails on this; say what the extra incidents were, so the log can explain it.
          const { rows: extra } = await pool.query<{ line: string }>(
            `SELECT format('  incident %s %s feeder=%s meter=%s follows=%s status=%s first=%s detected=%s restored=%s: %s',
                           i.id, i.kind, i.feeder_id, m.serial, i.follows_id, i.status,
                           to_char(i.first_failure_at, 'HH24:MI:SS'), to_char(i.detected_at, 'HH24:MI:SS'),
                           to_char(i.restored_at, 'HH24:MI:SS'),
                           (SELECT string_agg(e.kind || ' ' || to_char(e.at, 'HH24:MI:SS') || ' ' || coalesce(e.text, ''), ' | ' ORDER BY e.id)
                              FROM outage_incident_events e WHERE e.incident_id = i.id)) AS line
               FROM outage_incidents i LEFT JOIN meters m ON m.id = i.meter_id
              WHERE i.feeder_id = ANY($1::text[]) ORDER BY i.id`,
            [feeders],
          );
          for (const x of extra) log(x.line);
        }
        const sorted = [...latencies].sort((a, b) => a - b);
        return {
          meters: connected,
          rounds: opts.rounds,
          feederMeters: opts.feederMeters,
          p50S: percentile(sorted, 50),
          p95S: percentile(sorted, 95),
          maxS: sorted[sorted.length - 1] ?? NaN,
          incidentsPerRound: counts.incidents / opts.rounds,
          alertsPerRound: counts.alerts / opts.rounds,
          backgroundMsgsPerS,
        };
      } finally {
        await local.stop();
        await fleetProc.stop();
      }
    } finally {
      await kw.stop();
    }
  } finally {
    await broker.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
