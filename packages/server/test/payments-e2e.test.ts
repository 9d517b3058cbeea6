import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Stripe from 'stripe';
import { MemoryStore, Meter, MeterClient } from '@kilowire/meter';
import { generateSigningKeyPair, privateKeyFromB64 } from '@kilowire/protocol';
import type { CreatedHousehold } from '../src/accounts/repo.ts';
import { hashPassword } from '../src/auth/passwords.ts';
import { requestCommand } from '../src/commands/lifecycle.ts';
import { tx } from '../src/db/pool.ts';
import { SandboxSecret } from '../src/money/payments/sandbox.ts';
import { freePort } from '../src/net.ts';
import { PASSWORD } from './support/api.ts';
import { HEADEND, startTestBroker, type TestBroker } from './support/brokers.ts';
import { createTestDb, type TestDb } from './support/db.ts';
import { KilowireProcess } from './support/process.ts';
import { seedMeters, waitFor } from './support/world.ts';

/**
 * Top-ups end to end with every real part: Kilowire as its own OS process (api, gateway,
 * jobs), PostgreSQL, the broker, and real meters (packages/meter) connected over MQTT.
 *   1. Twelve concurrent top-ups with one Idempotency-Key, paid on the sandbox page: one
 *      payment, one ledger credit, one credit.add, applied once by a meter that was cut off for
 *      lack of credit; it arms itself and the household is told to press the button.
 *   2. kill -9 right after the payment is confirmed, while the meter is unreachable and its
 *      credit command then expires: after the restart a new credit.add with the same top-up
 *      id reaches the meter, which applies the credit exactly once; a resend is refused.
 */
const keys = generateSigningKeyPair();
const TZ = 'Europe/London';
let db: TestDb;
let broker: TestBroker;
let hh: CreatedHousehold[];
let kw: KilowireProcess | undefined;
let base = '';
const clients: MeterClient[] = [];

beforeAll(async () => {
  db = await createTestDb();
  hh = await seedMeters(db.pool, 4); // 1 and 3 are prepayment
  await db.pool.query('UPDATE users SET password_hash = $1 WHERE role = $2', [
    await hashPassword(PASSWORD),
    'consumer',
  ]);
  broker = await startTestBroker(
    db.pool,
    hh.map((h) => ({ id: h.meterSerial, password: h.meterCredential })),
  );
});

afterAll(async () => {
  for (const c of clients) await c.stop();
  await kw?.stop();
  await broker?.close();
  await db?.drop();
});

async function startProcess(): Promise<KilowireProcess> {
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const p = new KilowireProcess('api,gateway,jobs', {
    DATABASE_URL: db.url,
    MQTT_URL: broker.url,
    MQTT_USERNAME: HEADEND.username,
    MQTT_PASSWORD: HEADEND.password,
    GATEWAY_CLIENT_ID: `kw-pay-${process.pid}`,
    PORT: String(port),
    COMMAND_SIGNING_KEY: keys.privateKey,
    COMMAND_RETRY_S: '1',
    COMMAND_MAX_RETRY_S: '2',
    NOTIFY_POLL_S: '0.5',
    EVENTS_SWEEP_MS: '300',
    JOB_TIMEOUT_S: '5',
    JOBS_MAINTENANCE_S: '2',
  });
  p.start();
  await waitFor(
    async () => {
      try {
        return (await fetch(`${base}/readyz`)).ok;
      } catch {
        return false;
      }
    },
    60_000,
    `kilowire ready:\n${p.output}`,
  );
  return p;
}

/** A real meter in prepayment mode; `cutOff`: its credit ran out and the relay opened for it. */
function meterFor(h: CreatedHousehold, cutOff: boolean): MeterClient {
  const store = new MemoryStore();
  const opts = {
    id: h.meterSerial,
    tz: TZ,
    serverPublicKey: keys.publicKey,
    store,
    mode: 'prepayment' as const,
    initialCreditMinor: 200,
    startS: Math.floor(Date.now() / 1000) - 600,
  };
  if (cutOff) {
    // The state a meter is in after running dry outside friendly hours, in its own format.
    const s = new Meter(opts).snapshot();
    s.relay = { state: 'disconnected', reason: 'credit' };
    s.prepayment.creditMinor = -500;
    s.prepayment.emergencyInUse = true;
    s.prepayment.exhaustedNotified = true;
    s.prepayment.lowNotified = true;
    s.prepayment.friendlyHours = null;
    store.save(s);
  }
  const c = new MeterClient({
    meter: new Meter(opts),
    brokerUrl: broker.url,
    password: h.meterCredential,
    reconnectPeriodMs: 200,
  });
  clients.push(c);
  c.start();
  return c;
}

async function loginAs(h: CreatedHousehold): Promise<string> {
  const consumerId = (
    await db.pool.query<{ login_id: string }>('SELECT login_id FROM users WHERE id = $1', [h.userId])
  ).rows[0]!.login_id;
  const res = await fetch(`${base}/api/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ consumerId, password: PASSWORD }),
  });
  expect(res.status).toBe(200);
  return res.headers.getSetCookie()[0]!.split(';')[0]!;
}

async function state(topupId: string) {
  const { rows } = await db.pool.query<{
    status: string;
    ledger: number;
    commands: number;
    ok: number;
    applied_events: number;
  }>(
    `SELECT t.status,
            (SELECT count(*) FROM ledger_transactions WHERE ref = 'topup:' || t.id)::int AS ledger,
            (SELECT count(*) FROM commands WHERE type = 'credit.add' AND cmd->>'topupId' = t.id::text)::int AS commands,
            (SELECT count(*) FROM commands WHERE type = 'credit.add' AND cmd->>'topupId' = t.id::text AND status = 'ok')::int AS ok,
            (SELECT count(*) FROM meter_events WHERE code = 'credit.topup_applied' AND data->>'topupId' = t.id::text)::int AS applied_events
       FROM topups t WHERE t.id = $1`,
    [topupId],
  );
  return rows[0]!;
}

describe('top-ups with real meters', () => {
  it('concurrent top-ups with one key: one payment, one ledger credit, one credit.add applied; the meter arms', async () => {
    kw = await startProcess();
    const h = hh[1]!;
    const meter = meterFor(h, true);
    await waitFor(() => meter.connected, 10_000, 'meter connected');
    expect(meter.meter.relay.state).toBe('disconnected');
    const cookie = await loginAs(h);
    const key = randomUUID();
    const res = await Promise.all(
      Array.from({ length: 12 }, () =>
        fetch(`${base}/api/top-ups`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': key, cookie },
          body: JSON.stringify({ meterSerial: h.meterSerial, amountMinor: 1000 }),
        }).then(async (r) => ({
          status: r.status,
          body: (await r.json()) as { id: string; paymentUrl: string },
        })),
      ),
    );
    expect(res.filter((r) => r.status === 201)).toHaveLength(1);
    expect(new Set(res.map((r) => r.body.id)).size).toBe(1);
    const topup = res[0]!.body;

    // Pay on the sandbox page (as its form does), twice for good measure.
    const session = topup.paymentUrl.split('/').pop()!;
    for (let i = 0; i < 2; i++) {
      const pay = await fetch(`${base}/api/payments/sandbox/${session}/pay`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ cardNumber: '4242 4242 4242 4242' }),
      });
      expect(pay.status).toBe(200);
    }
    await waitFor(
      async () => (await state(topup.id)).status === 'applied',
      30_000,
      'top-up applied on the meter',
    );
    expect(await state(topup.id)).toEqual({
      status: 'applied',
      ledger: 1,
      commands: 1,
      ok: 1,
      applied_events: 1,
    });
    expect(meter.meter.snapshot().prepayment.appliedTopups.filter((id) => id === topup.id)).toHaveLength(1);
    expect(meter.meter.relay.state).toBe('armed');
    const bal = await db.pool.query<{ b: string }>(
      'SELECT coalesce(sum(amount_minor), 0) AS b FROM ledger_entries WHERE account_id = $1',
      [h.accountId],
    );
    expect(Number(bal.rows[0]!.b)).toBe(-1000);

    // The household hears: paid, on the meter, and press the button.
    await waitFor(
      async () =>
        (
          await db.pool.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM alerts WHERE meter_id = $1 AND type IN ('payment', 'supply_armed')`,
            [h.meterId],
          )
        ).rows[0]!.n === 3,
      30_000,
      'payment and supply_armed alerts',
    );
    const alerts = await db.pool.query<{ type: string; title: string }>(
      'SELECT type, title FROM alerts WHERE meter_id = $1 ORDER BY id',
      [h.meterId],
    );
    expect(alerts.rows).toEqual(
      expect.arrayContaining([
        { type: 'payment', title: 'Payment received' },
        { type: 'payment', title: 'Credit on your meter' },
        { type: 'supply_armed', title: 'Press the button to switch on' },
      ]),
    );
    const view = await fetch(`${base}/api/top-ups/${topup.id}`, { headers: { cookie } });
    expect(await view.json()).toMatchObject({ status: 'applied', waitingForMeter: false });
  });

  it('kill -9 after the payment is confirmed, credit command expired meanwhile: the credit reaches the meter exactly once', async () => {
    kw ??= await startProcess();
    const h = hh[3]!;
    const cookie = await loginAs(h);
    const created = await fetch(`${base}/api/top-ups`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': randomUUID(), cookie },
      body: JSON.stringify({ meterSerial: h.meterSerial, amountMinor: 2500 }),
    });
    const topup = (await created.json()) as { id: string };

    // The provider's webhook (signed with the sandbox secret the process keeps in the database).
    const secret = await new SandboxSecret(db.pool, undefined).get();
    const payload = JSON.stringify({
      id: `evt_${randomUUID()}`,
      object: 'event',
      created: Math.floor(Date.now() / 1000),
      type: 'checkout.session.completed',
      data: {
        object: {
          object: 'checkout.session',
          client_reference_id: topup.id,
          payment_status: 'paid',
          payment_intent: 'pi_kill9',
          amount_total: 2500,
        },
      },
    });
    const send = () =>
      fetch(`${base}/api/payments/webhook`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'stripe-signature': Stripe.webhooks.generateTestHeaderString({ payload, secret }),
        },
        body: payload,
      });
    expect((await send()).status).toBe(200);
    await kw.kill9();
    kw = undefined;
    expect(await state(topup.id)).toMatchObject({ status: 'paid', ledger: 1, commands: 1, ok: 0 });

    // While everything is down the credit command runs out of time (its TTL passes).
    await db.pool.query(
      `UPDATE commands SET expires_at = now() - interval '5 minutes' WHERE type = 'credit.add' AND cmd->>'topupId' = $1`,
      [topup.id],
    );
    const meter = meterFor(h, false);
    await waitFor(() => meter.connected, 10_000, 'meter connected');

    kw = await startProcess();
    // The head-end gives the expired command up and requests the same top-up again.
    await waitFor(async () => (await state(topup.id)).commands === 2, 30_000, 'credit requested again');
    const view = await fetch(`${base}/api/top-ups/${topup.id}`, { headers: { cookie } });
    const v = (await view.json()) as { status: string; waitingForMeter: boolean };
    expect(v.status === 'applied' || v.waitingForMeter).toBe(true);
    await waitFor(async () => (await state(topup.id)).status === 'applied', 30_000, 'applied after restart');
    // A replay of the webhook after the restart changes nothing.
    expect(await (await send()).json()).toEqual({ received: true, duplicate: true });

    // A resend with the same top-up id (a lost reply, a staff retry) is refused by the meter.
    const again = await tx(db.pool, (c) =>
      requestCommand(
        c,
        privateKeyFromB64(keys.privateKey),
        { id: h.meterId, serial: h.meterSerial },
        { type: 'credit.add', topupId: topup.id, amountMinor: 2500 },
        { actorId: null },
      ),
    );
    await waitFor(
      async () =>
        (await db.pool.query<{ status: string }>('SELECT status FROM commands WHERE id = $1', [again.id]))
          .rows[0]?.status === 'rejected',
      30_000,
      'duplicate refused',
    );
    const s = await state(topup.id);
    expect(s).toMatchObject({ status: 'applied', ledger: 1, ok: 1, applied_events: 1 });
    expect(meter.meter.snapshot().prepayment.appliedTopups.filter((id) => id === topup.id)).toHaveLength(1);
    const code = await db.pool.query<{ result_code: string }>(
      'SELECT result_code FROM commands WHERE id = $1',
      [again.id],
    );
    expect(code.rows[0]!.result_code).toBe('DUPLICATE_TOPUP');
  });
});
