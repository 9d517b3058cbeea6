/**
 * (g) Top-up latency: from the payment provider's webhook arriving at the API to the meter's
 * credit.add reply committed, with a fleet of prepayment meters reporting normally.
 *
 * Kilowire runs as one process (`--services=api,gateway,jobs`, as `npm start` does) against
 * a Mosquitto with per-meter passwords; a Fleet process holds the meters connected and
 * reporting. Each top-up is paid by a webhook signed exactly as the sandbox (and Stripe) sign
 * them, sent at a steady rate; its latency is the credit command's `replied_at` (set in the
 * gateway's transaction that stores the reply, just before its COMMIT) minus the moment the
 * webhook request was sent.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Stripe from 'stripe';
import { generateSigningKeyPair } from '@kilowire/protocol';
import type { Pool } from '@kilowire/server';
import { provision } from './db.ts';
import {
  freePort,
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

export interface TopupResult {
  meters: number;
  topups: number;
  ratePerS: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  /** Top-ups whose credit the meter had not confirmed by the end (should be 0). */
  missing: number;
  /** credit.add commands per top-up (should be exactly 1). */
  commandsPerTopup: number;
}

export async function benchTopup(
  dbUrl: string,
  pool: Pool,
  opts: { meters: number; topups: number; ratePerS: number; passwordHash: string },
): Promise<TopupResult> {
  log(`  provisioning ${opts.meters} prepayment households`);
  const households = await provision(pool, opts.meters, {
    prefix: 'P',
    passwordHash: opts.passwordHash,
    concurrency: 12,
  });
  const serials = households.map((h) => h.serial);
  await pool.query(
    `UPDATE accounts SET mode = 'prepayment' WHERE id IN (SELECT account_id FROM meters WHERE serial = ANY($1))`,
    [serials],
  );

  const dir = mkdtempSync(path.join(os.tmpdir(), 'kw-bench-topup-'));
  const headend = { username: 'headend', password: 'bench-headend-secret' };
  const broker = await startMeterMosquitto('mosquitto (top-ups)', dir, headend, households);
  const keys = generateSigningKeyPair();
  const webhookSecret = `whsec_bench${randomUUID().replace(/-/g, '')}`;
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  try {
    const kw = spawnKilowire('kilowire (api,gateway,jobs)', 'api,gateway,jobs', {
      dbUrl,
      mqttUrl: broker.url,
      login: headend,
      dataDir: path.join(dir, 'kw-data'),
      env: {
        GATEWAY_CLIENT_ID: `kw-bench-topup-${process.pid}`,
        LOG_LEVEL: 'warn',
        PORT: String(port),
        COMMAND_SIGNING_KEY: keys.privateKey,
        SANDBOX_WEBHOOK_SECRET: webhookSecret,
      },
    });
    try {
      await waitFor(
        async () => {
          try {
            return (await fetch(`${base}/readyz`)).ok;
          } catch {
            return false;
          }
        },
        90_000,
        'kilowire ready',
        250,
      );
      const jobFile = path.join(dir, 'fleet.json');
      writeFileSync(
        jobFile,
        JSON.stringify({
          brokerUrl: broker.url,
          serverPublicKey: keys.publicKey,
          meters: households.map((h) => ({ id: h.serial, password: h.credential, mode: 'prepayment' })),
          // Reporting normally: wall-clock meters, a half-hour reading each, plus their status.
          speed: 1,
          backfillDays: 0.05,
          connectsPerSecond: 400,
        }),
      );
      let connected = 0;
      const fleet = spawnChild('fleet process (top-ups)', 'bash', fleetChildArgs(jobFile), {
        onLine: (l) => {
          if (l.startsWith('STATS ')) connected = (JSON.parse(l.slice(6)) as { connected: number }).connected;
        },
      });
      try {
        await waitFor(() => connected >= opts.meters, 120_000, `${opts.meters} meters connected`, 250);
        // Let the backfill settle so the measurement sees steady reporting, not the first burst.
        await sleep(5_000);
        log(`  ${connected} meters connected; ${opts.topups} top-ups at ${opts.ratePerS}/s`);

        const { rows: topups } = await pool.query<{ id: string }>(
          `INSERT INTO topups (id, account_id, consumer_id, meter_id, kind, amount_minor, currency, idempotency_key,
                               request_hash, provider)
           SELECT gen_random_uuid(), m.account_id, a.consumer_id, m.id, 'topup', 1000, 'GBP', 'bench-' || g || '-' || m.id,
                  'bench', 'sandbox'
             FROM generate_series(1, $2::int) g
             JOIN meters m ON m.serial = ($1::text[])[1 + (g - 1) % array_length($1::text[], 1)]
             JOIN accounts a ON a.id = m.account_id
           RETURNING id`,
          [serials, opts.topups],
        );
        const sentAt = new Map<string, number>();
        const gap = 1000 / opts.ratePerS;
        const t0 = nowMs();
        const inflight: Promise<void>[] = [];
        for (let i = 0; i < topups.length; i++) {
          const wait = t0 + i * gap - nowMs();
          if (wait > 0) await sleep(wait);
          const id = topups[i]!.id;
          const payload = JSON.stringify({
            id: `evt_bench_${randomUUID()}`,
            object: 'event',
            created: Math.floor(Date.now() / 1000),
            type: 'checkout.session.completed',
            data: {
              object: {
                object: 'checkout.session',
                client_reference_id: id,
                payment_status: 'paid',
                payment_intent: `pi_bench_${i}`,
                amount_total: 1000,
              },
            },
          });
          const header = Stripe.webhooks.generateTestHeaderString({ payload, secret: webhookSecret });
          sentAt.set(id, Date.now());
          inflight.push(
            fetch(`${base}/api/payments/webhook`, {
              method: 'POST',
              headers: { 'content-type': 'application/json', 'stripe-signature': header },
              body: payload,
            }).then(async (r) => {
              if (!r.ok) throw new Error(`webhook answered ${r.status}: ${await r.text()}`);
            }),
          );
        }
        await Promise.all(inflight);
        const ids = topups.map((t) => t.id);
        const replied = async () =>
          (
            await pool.query<{ id: string; replied_ms: string }>(
              `SELECT t.id, (extract(epoch FROM c.replied_at) * 1000)::bigint AS replied_ms
                 FROM topups t JOIN commands c ON c.type = 'credit.add' AND c.cmd->>'topupId' = t.id::text
                WHERE t.id = ANY($1::uuid[]) AND c.status = 'ok'`,
              [ids],
            )
          ).rows;
        let done = await replied();
        const until = Date.now() + 60_000;
        while (done.length < ids.length && Date.now() < until) {
          await sleep(500);
          done = await replied();
        }
        const lat = done.map((r) => Number(r.replied_ms) - sentAt.get(r.id)!).sort((a, b) => a - b);
        const { rows: cmds } = await pool.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM commands WHERE type = 'credit.add' AND cmd->>'topupId' = ANY($1::text[])`,
          [ids],
        );
        return {
          meters: opts.meters,
          topups: ids.length,
          ratePerS: opts.ratePerS,
          p50: percentile(lat, 50),
          p95: percentile(lat, 95),
          p99: percentile(lat, 99),
          max: lat[lat.length - 1] ?? NaN,
          missing: ids.length - done.length,
          commandsPerTopup: cmds[0]!.n / ids.length,
        };
      } finally {
        await fleet.stop();
      }
    } finally {
      await kw.stop();
    }
  } finally {
    await broker.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
