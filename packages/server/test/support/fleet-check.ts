import { Fleet } from '@kilowire/meter';
import { generateSigningKeyPair } from '@kilowire/protocol';
import type { CreatedHousehold } from '../../src/accounts/repo.ts';
import type { Pool } from '../../src/db/pool.ts';
import { waitFor } from './world.ts';

/**
 * Whether every interval each meter of `fleet` produced is in the database exactly once (no
 * estimate left, the sum equal to the meter's import register, nothing left in its outbox)
 * and the rollups equal the raw data. Returns true, or what is off for the first meter.
 */
export async function fleetStoredExactly(
  pool: Pool,
  fleet: Fleet,
  hh: CreatedHousehold[],
): Promise<string | true> {
  for (const h of hh) {
    const m = fleet.meter(h.meterSerial)!;
    const { rows } = await pool.query<{ n: number; wh: number; est: number; first: number | null }>(
      `SELECT count(*)::int AS n, coalesce(sum(wh), 0)::bigint AS wh, count(*) FILTER (WHERE flags & 1 = 1)::int AS est,
              extract(epoch FROM min(ts))::bigint AS first
       FROM interval_readings WHERE meter_id = $1`,
      [h.meterId],
    );
    const r = rows[0]!;
    const produced = r.first === null ? -1 : (m.cursor - r.first) / m.intervalS;
    if (r.wh !== m.registers['1.0.1.8.0'] || r.n !== produced || r.est !== 0 || m.outbox.length > 0) {
      return `${h.meterSerial}: db ${r.n} rows / ${r.wh} Wh (${r.est} estimated), meter ${produced} intervals / ${m.registers['1.0.1.8.0']} Wh, outbox ${m.outbox.length}`;
    }
    const roll = await pool.query<{ d: number; mo: number }>(
      `SELECT (SELECT coalesce(sum(wh), 0) FROM daily_rollups WHERE meter_id = $1)::bigint AS d,
              (SELECT coalesce(sum(wh), 0) FROM monthly_rollups WHERE meter_id = $1)::bigint AS mo`,
      [h.meterId],
    );
    if (roll.rows[0]!.d !== r.wh || roll.rows[0]!.mo !== r.wh)
      return `${h.meterSerial}: rollups ${JSON.stringify(roll.rows[0])} vs ${r.wh}`;
  }
  return true;
}

/**
 * Real meters (outbox, resend until acknowledged) reporting one reading per message while
 * they catch up two simulated days fast: the load of the crash and outage tests.
 */
export function startReportingFleet(
  brokerUrl: string,
  hh: CreatedHousehold[],
  o: {
    speed: number;
    seed: number;
    backfillDays?: number;
    serverPublicKey?: string;
    failoverUrls?: string[];
    connectsPerSecond?: number;
    resendAfterMs?: number;
    maxResendAfterMs?: number;
    resubscribeIfDeafMs?: number;
    log?: (line: string) => void;
  },
): Fleet {
  const fleet = new Fleet({
    brokerUrl,
    failoverUrls: o.failoverUrls,
    connectsPerSecond: o.connectsPerSecond,
    resendAfterMs: o.resendAfterMs,
    maxResendAfterMs: o.maxResendAfterMs,
    resubscribeIfDeafMs: o.resubscribeIfDeafMs,
    log: o.log,
    serverPublicKey: o.serverPublicKey ?? generateSigningKeyPair().publicKey,
    meters: hh.map((h, i) => ({ id: h.meterSerial, password: h.meterCredential, seed: i + o.seed })),
    speed: o.speed,
    backfillDays: o.backfillDays ?? 2,
    batchIntervals: 1,
    tickMs: 100,
  });
  fleet.start();
  return fleet;
}

/** Wait until the fleet has caught up with real time and every reading it produced is stored exactly once. */
export async function waitStoredExactly(
  pool: Pool,
  fleet: Fleet,
  hh: CreatedHousehold[],
  ms = 90_000,
): Promise<void> {
  await waitFor(
    () => fleet.stats().simMinS >= Date.now() / 1000 - 1800,
    ms,
    'fleet caught up with real time',
  );
  let last: string | true = 'not checked';
  await waitFor(
    async () => {
      last = await fleetStoredExactly(pool, fleet, hh).catch((e: unknown) => String(e));
      return last === true;
    },
    ms,
    'every produced reading stored once',
  ).catch(() => {
    throw new Error(`incomplete: ${String(last)}`);
  });
}
