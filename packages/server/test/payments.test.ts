import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import Stripe from 'stripe';
import { defaultPaymentsConfig } from '../src/config.ts';
import { applyReplies, expireCommands } from '../src/commands/lifecycle.ts';
import { tx } from '../src/db/pool.ts';
import { reissueExpiredCredit, type TopupDeps } from '../src/money/topups.ts';
import { generateSigningKeyPair, privateKeyFromB64 } from '@kilowire/protocol';
import { accountBalance } from '../src/money/ledger.ts';
import { expireSandboxCheckouts, SandboxSecret } from '../src/money/payments/sandbox.ts';
import type { RunningJobs } from '../src/jobs/service.ts';
import { as, buildWorld, login, testApi, type World } from './support/api.ts';
import { createTestDb, type TestDb } from './support/db.ts';
import { settleEvents, startTestJobs } from './support/jobs.ts';
import { waitFor } from './support/world.ts';

/**
 * Top-ups through the API and the sandbox provider against a real PostgreSQL: idempotency
 * keys under concurrency, limits, webhooks (forged, stale, repeated, out of order), the ledger
 * and the credit command, and the sandbox's own signed, asynchronous webhook delivery.
 */
let db: TestDb;
let app: FastifyInstance;
let w: World;
let secret: string;
const cookies: Partial<Record<keyof World['login'], string>> = {};

beforeAll(async () => {
  db = await createTestDb();
  w = await buildWorld(db.pool);
  app = await testApi(db.pool);
  for (const k of ['h1A', 'h1B', 'h2B', 'sup1', 'sup2', 'opB', 'admin'] as const)
    cookies[k] = await login(app, w.login[k]);
  secret = await new SandboxSecret(db.pool, undefined).get();
});
afterAll(async () => {
  await app?.close();
  await db?.drop();
});

function topup(cookie: string | undefined, body: Record<string, unknown>, key: string | null) {
  return app.inject(
    as(cookie, {
      method: 'POST',
      url: '/api/top-ups',
      headers: { 'content-type': 'application/json', ...(key ? { 'idempotency-key': key } : {}) },
      payload: body,
    }),
  );
}

type TopupJson = { id: string; status: string; paymentUrl: string | null; waitingForMeter: boolean };

function signed(event: Record<string, unknown>, opts: { secret?: string; timestamp?: number } = {}) {
  const payload = JSON.stringify(event);
  const header = Stripe.webhooks.generateTestHeaderString({
    payload,
    secret: opts.secret ?? secret,
    ...(opts.timestamp !== undefined ? { timestamp: opts.timestamp } : {}),
  });
  return app.inject({
    method: 'POST',
    url: '/api/payments/webhook',
    headers: { 'content-type': 'application/json; charset=utf-8', 'stripe-signature': header },
    payload,
  });
}

const completed = (topupId: string, amount: number, eventId = `evt_${randomUUID()}`) => ({
  id: eventId,
  object: 'event',
  created: Math.floor(Date.now() / 1000),
  type: 'checkout.session.completed',
  data: {
    object: {
      id: `cs_test_${topupId}`,
      object: 'checkout.session',
      client_reference_id: topupId,
      metadata: { topupId },
      payment_status: 'paid',
      payment_intent: `pi_${topupId.slice(0, 8)}`,
      amount_total: amount,
    },
  },
});
const refunded = (topupId: string, amount: number, refundedMinor: number) => ({
  id: `evt_${randomUUID()}`,
  object: 'event',
  created: Math.floor(Date.now() / 1000),
  type: 'charge.refunded',
  data: {
    object: {
      id: `ch_${topupId.slice(0, 8)}`,
      object: 'charge',
      amount,
      amount_refunded: refundedMinor,
      payment_intent: `pi_${topupId.slice(0, 8)}`,
      metadata: { topupId },
    },
  },
});

async function newTopup(amountMinor: number, cookie = cookies.h1B, serial = w.h1B.meterSerial) {
  const res = await topup(cookie, { meterSerial: serial, amountMinor }, randomUUID());
  expect(res.statusCode, res.body).toBe(201);
  return JSON.parse(res.body) as TopupJson;
}

async function counts(topupId: string) {
  const { rows } = await db.pool.query<{ ledger: number; commands: number; events: number; status: string }>(
    `SELECT (SELECT count(*) FROM ledger_transactions WHERE ref LIKE 'topup:' || $1 || '%' OR ref LIKE 'refund:' || $1 || '%')::int AS ledger,
            (SELECT count(*) FROM commands WHERE type = 'credit.add' AND cmd->>'topupId' = $1)::int AS commands,
            (SELECT count(*) FROM payment_events WHERE topup_id = $1::uuid)::int AS events,
            (SELECT status FROM topups WHERE id = $1::uuid) AS status`,
    [topupId],
  );
  return rows[0]!;
}

/** Clear the household's day so that the daily limit does not couple tests. */
async function freshDay(): Promise<void> {
  await db.pool.query(
    `UPDATE topups SET created_at = created_at - interval '2 days' WHERE status = 'pending'`,
  );
}

describe('POST /api/top-ups', () => {
  it('needs an Idempotency-Key', async () => {
    const res = await topup(cookies.h1B, { meterSerial: w.h1B.meterSerial, amountMinor: 1000 }, null);
    expect(res.statusCode).toBe(400);
    expect((JSON.parse(res.body) as { error: { code: string } }).error.code).toBe('VALIDATION');
  });

  it('the same key sent 12 times at once gives one top-up; another body with it is refused', async () => {
    const key = randomUUID();
    const body = { meterSerial: w.h1B.meterSerial, amountMinor: 1500 };
    const res = await Promise.all(Array.from({ length: 12 }, () => topup(cookies.h1B, body, key)));
    const ids = new Set(res.map((r) => (JSON.parse(r.body) as TopupJson).id));
    expect(ids.size).toBe(1);
    expect(res.filter((r) => r.statusCode === 201)).toHaveLength(1);
    expect(res.filter((r) => r.statusCode === 200)).toHaveLength(11);
    const urls = new Set(res.map((r) => (JSON.parse(r.body) as TopupJson).paymentUrl));
    expect(urls.size).toBe(1);
    expect([...urls][0]).toMatch(/^\/pay\/sandbox\/cs_sandbox_/);
    const n = await db.pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM topups WHERE idempotency_key = $1',
      [key],
    );
    expect(n.rows[0]!.n).toBe(1);

    const other = await topup(cookies.h1B, { ...body, amountMinor: 1600 }, key);
    expect(other.statusCode).toBe(422);
    expect((JSON.parse(other.body) as { error: { code: string } }).error.code).toBe('IDEMPOTENCY_KEY_REUSED');
    // Keys belong to a household: another household's identical key is its own top-up.
    const theirs = await topup(cookies.h2B, { meterSerial: w.h2B.meterSerial, amountMinor: 1500 }, key);
    expect(theirs.statusCode).toBe(201);
    expect((JSON.parse(theirs.body) as TopupJson).id).not.toBe([...ids][0]);
    await freshDay();
  });

  it('enforces the minimum, the maximum and the daily total with clear errors', async () => {
    const lim = defaultPaymentsConfig();
    const err = async (amountMinor: number) => {
      const res = await topup(cookies.h1B, { meterSerial: w.h1B.meterSerial, amountMinor }, randomUUID());
      expect(res.statusCode).toBe(422);
      return (JSON.parse(res.body) as { error: { code: string; message: string } }).error;
    };
    expect(await err(lim.minMinor - 1)).toMatchObject({
      code: 'TOPUP_LIMIT',
      message: 'The smallest top-up is £5.00.',
    });
    expect(await err(lim.maxMinor + 1)).toMatchObject({
      code: 'TOPUP_LIMIT',
      message: 'The largest single top-up is £250.00.',
    });
    await newTopup(lim.maxMinor);
    await newTopup(lim.maxMinor - 1000);
    expect(await err(1001)).toMatchObject({
      code: 'TOPUP_LIMIT',
      message: 'You can top up at most £500.00 a day; £10.00 is left today.',
    });
    await newTopup(1000);
    await freshDay();
  });

  it("only for the household's own meter; staff and operators may not start one", async () => {
    const res = await topup(cookies.h1B, { meterSerial: w.h2B.meterSerial, amountMinor: 1000 }, randomUUID());
    expect(res.statusCode).toBe(404);
    for (const who of [cookies.sup1, cookies.opB, cookies.admin]) {
      const r = await topup(who, { meterSerial: w.h1B.meterSerial, amountMinor: 1000 }, randomUUID());
      expect(r.statusCode).toBe(403);
    }
    const n = await db.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM topups WHERE meter_id = $1`,
      [w.h2B.meterId],
    );
    expect(n.rows[0]!.n).toBe(1); // only the one h2B made itself above
  });
});

describe('POST /api/payments/webhook', () => {
  it('a forged signature or a stale timestamp gets 400 and changes nothing', async () => {
    const t = await newTopup(2000);
    const forged = await signed(completed(t.id, 2000), { secret: 'whsec_not_the_real_secret_at_all' });
    expect(forged.statusCode).toBe(400);
    expect((JSON.parse(forged.body) as { error: { code: string } }).error.code).toBe('BAD_SIGNATURE');
    const stale = await signed(completed(t.id, 2000), { timestamp: Math.floor(Date.now() / 1000) - 301 });
    expect(stale.statusCode).toBe(400);
    const unsigned = await app.inject({
      method: 'POST',
      url: '/api/payments/webhook',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify(completed(t.id, 2000)),
    });
    expect(unsigned.statusCode).toBe(400);
    // A valid signature over other bytes: the body was altered after signing.
    const ev = completed(t.id, 2000);
    const header = Stripe.webhooks.generateTestHeaderString({ payload: JSON.stringify(ev), secret });
    const altered = await app.inject({
      method: 'POST',
      url: '/api/payments/webhook',
      headers: { 'content-type': 'application/json', 'stripe-signature': header },
      payload: JSON.stringify({ ...ev, type: 'charge.refunded' }),
    });
    expect(altered.statusCode).toBe(400);
    expect(await counts(t.id)).toEqual({ ledger: 0, commands: 0, events: 0, status: 'pending' });
    expect(await accountBalance(db.pool, w.h1B.accountId)).toBe(0);
  });

  it('the same event delivered many times (also at once) counts once: one ledger credit, one credit.add', async () => {
    const t = await newTopup(2500);
    const ev = completed(t.id, 2500);
    const res = await Promise.all(Array.from({ length: 8 }, () => signed(ev)));
    expect(res.map((r) => r.statusCode)).toEqual(Array(8).fill(200));
    expect(res.filter((r) => (JSON.parse(r.body) as { duplicate: boolean }).duplicate)).toHaveLength(7);
    expect(await counts(t.id)).toEqual({ ledger: 1, commands: 1, events: 1, status: 'paid' });
    // Another event id for the same payment (Stripe may send async_payment_succeeded too): still once.
    await signed(completed(t.id, 2500));
    expect(await counts(t.id)).toMatchObject({ ledger: 1, commands: 1, events: 2, status: 'paid' });
    const cmd = await db.pool.query<{ cmd: { topupId: string; amountMinor: number }; status: string }>(
      `SELECT cmd, status FROM commands WHERE type = 'credit.add' AND cmd->>'topupId' = $1`,
      [t.id],
    );
    expect(cmd.rows[0]).toMatchObject({ cmd: { topupId: t.id, amountMinor: 2500 }, status: 'queued' });
    const entries = await db.pool.query<{ book: string; amount_minor: string }>(
      `SELECT e.book, e.amount_minor FROM ledger_entries e JOIN ledger_transactions x ON x.id = e.txn_id
        WHERE x.ref = $1 ORDER BY e.book`,
      [`topup:${t.id}`],
    );
    expect(entries.rows.map((r) => [r.book, Number(r.amount_minor)])).toEqual([
      ['cash', 2500],
      ['customer', -2500],
    ]);
    const get = await app.inject(as(cookies.h1B, { method: 'GET', url: `/api/top-ups/${t.id}` }));
    expect(JSON.parse(get.body)).toMatchObject({ status: 'paid', waitingForMeter: false, paymentUrl: null });
  });

  it('a refund before the success ends refunded, with both booked and no credit sent', async () => {
    const before = await accountBalance(db.pool, w.h1B.accountId);
    const t = await newTopup(3000);
    expect((await signed(refunded(t.id, 3000, 3000))).statusCode).toBe(200);
    expect(await counts(t.id)).toMatchObject({ status: 'pending', ledger: 0 });
    expect((await signed(completed(t.id, 3000))).statusCode).toBe(200);
    expect(await counts(t.id)).toEqual({ ledger: 2, commands: 0, events: 2, status: 'refunded' });
    expect(await accountBalance(db.pool, w.h1B.accountId)).toBe(before);
  });

  it('a refund after the success books a refund, holds back an unsent credit and ends refunded', async () => {
    const before = await accountBalance(db.pool, w.h1B.accountId);
    const t = await newTopup(4000);
    await signed(completed(t.id, 4000));
    expect(await accountBalance(db.pool, w.h1B.accountId)).toBe(before - 4000);
    await signed(refunded(t.id, 4000, 1000)); // partial
    await signed(refunded(t.id, 4000, 1000)); // the same figure again (another event id): nothing more
    await signed(refunded(t.id, 4000, 4000)); // the rest
    expect(await accountBalance(db.pool, w.h1B.accountId)).toBe(before);
    expect(await counts(t.id)).toMatchObject({ ledger: 3, status: 'refunded' });
    const cmd = await db.pool.query<{ status: string }>(
      `SELECT status FROM commands WHERE type = 'credit.add' AND cmd->>'topupId' = $1`,
      [t.id],
    );
    expect(cmd.rows[0]!.status).toBe('cancelled');
    const get = await app.inject(as(cookies.h1B, { method: 'GET', url: `/api/top-ups/${t.id}` }));
    expect(JSON.parse(get.body)).toMatchObject({ status: 'refunded', refundedMinor: 4000 });
  });

  it('a declined card is shown plainly; a later success on the same checkout still pays', async () => {
    const t = await newTopup(1200);
    await signed({
      id: `evt_${randomUUID()}`,
      object: 'event',
      created: Math.floor(Date.now() / 1000),
      type: 'payment_intent.payment_failed',
      data: {
        object: {
          id: 'pi_x',
          object: 'payment_intent',
          metadata: { topupId: t.id },
          last_payment_error: { code: 'card_declined', decline_code: 'insufficient_funds' },
        },
      },
    });
    const get = await app.inject(as(cookies.h1B, { method: 'GET', url: `/api/top-ups/${t.id}` }));
    expect(JSON.parse(get.body)).toMatchObject({
      status: 'declined',
      failureReason: 'The card has insufficient funds.',
    });
    expect((JSON.parse(get.body) as TopupJson).paymentUrl).toMatch(/^\/pay\/sandbox\//);
    await signed(completed(t.id, 1200));
    expect(await counts(t.id)).toMatchObject({ status: 'paid', commands: 1 });
  });

  it('an amount other than the top-up is never credited; unknown top-ups are acknowledged and ignored', async () => {
    const t = await newTopup(1300);
    expect((await signed(completed(t.id, 99_999))).statusCode).toBe(200);
    expect(await counts(t.id)).toMatchObject({ status: 'pending', ledger: 0 });
    expect((await signed(completed(randomUUID(), 500))).statusCode).toBe(200);
    expect((await signed(completed('not-a-uuid', 500))).statusCode).toBe(200);
  });

  it('a credit account pays toward its balance: ledger payment, no meter command', async () => {
    const t = await newTopup(2000, cookies.h1A, w.h1A.meterSerial);
    await signed(completed(t.id, 2000));
    const r = await db.pool.query<{ kind: string }>(`SELECT kind FROM ledger_transactions WHERE ref = $1`, [
      `topup:${t.id}`,
    ]);
    expect(r.rows[0]!.kind).toBe('payment');
    expect(await counts(t.id)).toMatchObject({ status: 'paid', commands: 0 });
    expect(await accountBalance(db.pool, w.h1A.accountId)).toBe(-2000);
  });
});

describe('reading top-ups', () => {
  it('the owner and the meter supplier see it; others get 404 or 403', async () => {
    const t = await newTopup(1100);
    const get = (c: string | undefined) => app.inject(as(c, { method: 'GET', url: `/api/top-ups/${t.id}` }));
    expect((await get(cookies.h1B)).statusCode).toBe(200);
    expect((await get(cookies.sup1)).statusCode).toBe(200);
    expect((await get(cookies.h2B)).statusCode).toBe(404);
    expect((await get(cookies.sup2)).statusCode).toBe(404);
    expect((await get(cookies.opB)).statusCode).toBe(403);
    const list = await app.inject(as(cookies.h2B, { method: 'GET', url: '/api/top-ups' }));
    expect((JSON.parse(list.body) as { items: TopupJson[] }).items.map((i) => i.id)).not.toContain(t.id);
    const mine = await app.inject(as(cookies.h1B, { method: 'GET', url: '/api/top-ups?limit=2' }));
    const page = JSON.parse(mine.body) as { items: TopupJson[]; nextCursor: string; limits: unknown };
    expect(page.items[0]!.id).toBe(t.id);
    expect(page.limits).toEqual({ minMinor: 500, maxMinor: 25_000, dailyMaxMinor: 50_000 });
    const next = await app.inject(
      as(cookies.h1B, { method: 'GET', url: `/api/top-ups?limit=2&cursor=${page.nextCursor}` }),
    );
    const p2 = JSON.parse(next.body) as { items: TopupJson[] };
    expect(p2.items).toHaveLength(2);
    expect(p2.items.map((i) => i.id)).not.toContain(t.id);
  });
});

describe('the sandbox provider', () => {
  let jobs: RunningJobs;
  let url: string;
  beforeAll(async () => {
    await app.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/api/payments/webhook`;
    jobs = await startTestJobs(db.pool, {
      config: { payments: defaultPaymentsConfig({ sandboxWebhookUrl: url }) },
    });
  });
  afterAll(async () => {
    await jobs?.stop();
  });

  const pay = (session: string, cardNumber: string) =>
    app.inject({
      method: 'POST',
      url: `/api/payments/sandbox/${session}/pay`,
      headers: { 'content-type': 'application/json' },
      payload: { cardNumber },
    });

  it('pays with 4242 4242 4242 4242 through a signed webhook sent by the jobs service', async () => {
    const t = await newTopup(1700);
    const session = t.paymentUrl!.split('/').pop()!;
    const page = await app.inject({ method: 'GET', url: `/api/payments/sandbox/${session}` });
    expect(JSON.parse(page.body)).toMatchObject({ amountMinor: 1700, currency: 'GBP', status: 'open' });
    const unknown = await pay(session, '4111 1111 1111 1111');
    expect(unknown.statusCode).toBe(422);
    expect((JSON.parse(unknown.body) as { error: { code: string } }).error.code).toBe('CARD_UNKNOWN');
    const ok = await pay(session, '4242 4242 4242 4242');
    expect(JSON.parse(ok.body)).toMatchObject({ outcome: 'succeeded', returnUrl: `/top-ups/${t.id}` });
    // Pressing Pay again changes nothing.
    await pay(session, '4242 4242 4242 4242');
    await waitFor(async () => (await counts(t.id)).status === 'paid', 15_000, 'paid by sandbox webhook');
    await settleEvents(db.pool, jobs);
    expect(await counts(t.id)).toEqual({ ledger: 1, commands: 1, events: 1, status: 'paid' });
    const alert = await db.pool.query<{ title: string }>(
      `SELECT title FROM alerts WHERE type = 'payment' AND dedupe_key = $1`,
      [`topup:${t.id}:paid`],
    );
    expect(alert.rows[0]?.title).toBe('Payment received');
  });

  it('4000 0000 0000 0002 is declined, and the household is told', async () => {
    const t = await newTopup(1800);
    const session = t.paymentUrl!.split('/').pop()!;
    const res = await pay(session, '4000000000000002');
    expect(JSON.parse(res.body)).toMatchObject({ outcome: 'declined' });
    await waitFor(
      async () => (await counts(t.id)).status === 'declined',
      15_000,
      'declined by sandbox webhook',
    );
    await settleEvents(db.pool, jobs);
    const alert = await db.pool.query<{ message: string }>(
      `SELECT message FROM alerts WHERE type = 'payment' AND dedupe_key = $1`,
      [`topup:${t.id}:declined`],
    );
    expect(alert.rows[0]?.message).toContain('was declined: Your card was declined. No money was taken.');
  });

  it('a credit command that expires before the meter is reachable is requested again; the top-up waits for the meter', async () => {
    const t = await newTopup(2100);
    await signed(completed(t.id, 2100));
    const first = await db.pool.query<{ id: string }>(
      `SELECT id FROM commands WHERE type = 'credit.add' AND cmd->>'topupId' = $1`,
      [t.id],
    );
    const get = async () =>
      JSON.parse(
        (await app.inject(as(cookies.h1B, { method: 'GET', url: `/api/top-ups/${t.id}` }))).body,
      ) as TopupJson;
    expect((await get()).waitingForMeter).toBe(false);
    // The meter stays away past the command's lifetime: the gateway's sweep gives it up.
    await db.pool.query(`UPDATE commands SET expires_at = now() - interval '10 minutes' WHERE id = $1`, [
      first.rows[0]!.id,
    ]);
    expect(await tx(db.pool, (c) => expireCommands(c))).toBeGreaterThanOrEqual(1);
    await settleEvents(db.pool, jobs);
    const cmds = await db.pool.query<{
      id: string;
      status: string;
      cmd: { topupId: string; amountMinor: number };
    }>(
      `SELECT id, status, cmd FROM commands WHERE type = 'credit.add' AND cmd->>'topupId' = $1 ORDER BY counter`,
      [t.id],
    );
    expect(cmds.rows.map((r) => r.status)).toEqual(['expired', 'queued']);
    expect(cmds.rows[1]!.cmd).toEqual({ type: 'credit.add', topupId: t.id, amountMinor: 2100 });
    expect(await get()).toMatchObject({ status: 'paid', waitingForMeter: true });
    // Handling the same expiry again (a job retried after a crash) requests nothing more.
    const key = privateKeyFromB64(generateSigningKeyPair().privateKey);
    const deps = { ...({} as TopupDeps), commandKey: key, commandTtlS: 60 };
    expect(await reissueExpiredCredit(db.pool, deps, [first.rows[0]!.id])).toBe(0);
    expect(await counts(t.id)).toMatchObject({ commands: 2, ledger: 1 });
  });

  it("a checkout nobody pays expires after an hour, by the sandbox's own checkout.session.expired webhook", async () => {
    const t = await newTopup(2200);
    const session = t.paymentUrl!.split('/').pop()!;
    // Older open checkouts (earlier tests) expire; this one, minutes old, does not.
    await expireSandboxCheckouts(db.pool);
    await settleEvents(db.pool, jobs);
    expect((await counts(t.id)).status).toBe('pending');
    await db.pool.query(`UPDATE topups SET created_at = now() - interval '61 minutes' WHERE id = $1`, [t.id]);
    // Past its hour it can no longer be paid, even before the webhook lands.
    const late = await pay(session, '4242 4242 4242 4242');
    expect(late.statusCode).toBe(409);
    expect(await expireSandboxCheckouts(db.pool)).toBeGreaterThanOrEqual(1);
    await waitFor(async () => (await counts(t.id)).status === 'expired', 15_000, 'expired by webhook');
    const page = await app.inject({ method: 'GET', url: `/api/payments/sandbox/${session}` });
    expect(JSON.parse(page.body)).toMatchObject({ status: 'expired' });
    expect(await counts(t.id)).toMatchObject({ ledger: 0, commands: 0 });
  });

  it('a credit the meter refused unapplied (EXPIRED) is sent again; a DUPLICATE_TOPUP answer means it is on the meter', async () => {
    const t = await newTopup(2300);
    await signed(completed(t.id, 2300));
    const credit = async () =>
      (
        await db.pool.query<{ id: string; counter: number; status: string }>(
          `SELECT id, counter, status FROM commands WHERE type = 'credit.add' AND cmd->>'topupId' = $1 ORDER BY counter`,
          [t.id],
        )
      ).rows;
    const reply = async (id: string, counter: number, code: string) => {
      await db.pool.query(`UPDATE commands SET status = 'sent' WHERE id = $1`, [id]);
      await tx(db.pool, (c) =>
        applyReplies(c, [
          {
            meterId: w.h1B.meterId,
            reply: { v: 1, id, counter, t: Math.floor(Date.now() / 1000), result: 'rejected', code },
          },
        ]),
      );
      await settleEvents(db.pool, jobs);
    };
    const [first] = await credit();
    await reply(first!.id, first!.counter, 'EXPIRED');
    const after = await credit();
    expect(after.map((c) => c.status)).toEqual(['rejected', 'queued']);
    expect((await counts(t.id)).status).toBe('paid');
    // The meter had applied it after all (from another copy): it refuses the duplicate id.
    await reply(after[1]!.id, after[1]!.counter, 'DUPLICATE_TOPUP');
    expect(await counts(t.id)).toMatchObject({ status: 'applied', commands: 2, ledger: 1 });
  });

  it('supplier staff refund through the sandbox; the refund webhook books it', async () => {
    const t = await newTopup(1900);
    const session = t.paymentUrl!.split('/').pop()!;
    await pay(session, '4242424242424242');
    await waitFor(async () => (await counts(t.id)).status === 'paid', 15_000, 'paid');
    const refuse = await app.inject(
      as(cookies.h1B, {
        method: 'POST',
        url: `/api/top-ups/${t.id}/refund`,
        headers: { 'content-type': 'application/json' },
        payload: {},
      }),
    );
    expect(refuse.statusCode).toBe(403);
    const other = await app.inject(
      as(cookies.sup2, {
        method: 'POST',
        url: `/api/top-ups/${t.id}/refund`,
        headers: { 'content-type': 'application/json' },
        payload: {},
      }),
    );
    expect(other.statusCode).toBe(404);
    const res = await app.inject(
      as(cookies.sup1, {
        method: 'POST',
        url: `/api/top-ups/${t.id}/refund`,
        headers: { 'content-type': 'application/json' },
        payload: {},
      }),
    );
    expect(res.statusCode, res.body).toBe(202);
    await waitFor(async () => (await counts(t.id)).status === 'refunded', 15_000, 'refunded');
    expect(await counts(t.id)).toMatchObject({ ledger: 2 });
  });
});
