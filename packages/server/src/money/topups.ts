import { createHash, randomUUID, type KeyObject } from 'node:crypto';
import type { TopupKind, TopupStatus } from '@kilowire/contract/enums';
import { cancelCommand, requestCommand } from '../commands/lifecycle.ts';
import { tx, withTx, type Pool, type PoolClient, type Q, type Who } from '../db/pool.ts';
import { AppError } from '../errors.ts';
import { emitEvent } from '../events/emit.ts';
import type { DomainEvent, Subscriber } from '../events/types.ts';
import { money } from '../alerts/format.ts';
import { raiseAlerts, type NewAlert } from '../alerts/raise.ts';
import type { Logger } from '../log.ts';
import { scopeSql, type Actor } from '../policies.ts';
import { postTransaction } from './ledger.ts';
import type { PaymentProvider, VerifiedEvent } from './payments/provider.ts';

/**
 * Top-ups and payments, end to end and idempotent at every step:
 *
 *   household --POST /api/top-ups (Idempotency-Key)--> one top-up row per (household, key)
 *     -> the provider's page -> the provider's signed webhook (deduplicated by event id)
 *     -> ONE transaction: top-up paid, ledger 'topup:<id>' (cash +, customer -), signed
 *        credit.add carrying the top-up id (the meter applies each id once)
 *     -> the meter's reply (command.replied event) -> applied, "on your meter"
 *
 * A paid top-up is never lost: when its credit command expires before the meter was
 * reachable (command.expired event), a new credit.add with the same top-up id is requested,
 * and the top-up shows "waiting for your meter" meanwhile. Credit accounts use the same flow
 * to pay toward their balance, without a meter command.
 */

export interface TopupLimitsConfig {
  minMinor: number;
  maxMinor: number;
  dailyMaxMinor: number;
}

export interface TopupDeps {
  provider: PaymentProvider;
  commandKey: KeyObject;
  /** Lifetime of a credit command (s), as for every command. */
  commandTtlS: number;
  limits: TopupLimitsConfig;
  /** Absolute base for return links ('' = relative to the portal). */
  publicUrl: string;
}

/** A paid top-up counts as waiting for its meter once the meter has not confirmed it for this long. */
export const WAITING_FOR_METER_S = 60;
/** An unpaid top-up still counts toward the day's total this long (then it is abandoned). */
const PENDING_COUNTS_S = 3600;

export interface TopupRow {
  id: string;
  kind: TopupKind;
  meter_id: number;
  serial: string;
  account_id: number;
  consumer_id: number;
  amount_minor: number;
  currency: string;
  status: TopupStatus;
  waiting_for_meter: boolean;
  failure_reason: string | null;
  refunded_minor: number;
  provider: 'sandbox' | 'stripe';
  checkout_url: string | null;
  payment_ref: string | null;
  request_hash: string;
  created_at: Date;
  paid_at: Date | null;
  applied_at: Date | null;
  refunded_at: Date | null;
}

const SELECT_TOPUP = `
SELECT t.id, t.kind, t.meter_id, m.serial, t.account_id, t.consumer_id, t.amount_minor, t.currency, t.status,
       (t.status = 'paid' AND t.kind = 'topup'
         AND (t.credit_requests > 1 OR t.paid_at < now() - make_interval(secs => ${WAITING_FOR_METER_S}))) AS waiting_for_meter,
       t.failure_reason, t.refunded_minor, t.provider, t.checkout_url, t.payment_ref, t.request_hash,
       t.created_at, t.paid_at, t.applied_at, t.refunded_at
  FROM topups t JOIN meters m ON m.id = t.meter_id`;

async function transition(
  c: PoolClient,
  id: string,
  from: TopupStatus | null,
  to: TopupStatus,
  detail: string | null = null,
): Promise<void> {
  await c.query(
    'INSERT INTO topup_transitions (topup_id, from_status, to_status, detail) VALUES ($1, $2, $3, $4)',
    [id, from, to, detail],
  );
}

/** Status changes the household hears about (an alert, raised by the payments subscriber). */
async function changed(c: PoolClient, id: string, meterId: number, status: TopupStatus): Promise<void> {
  await emitEvent(c, { type: 'topup.changed', meterId, payload: { topupId: id, status } });
}

// ------------------------------------------------------------------------------ create

export interface NewTopup {
  actor: Actor;
  meter: { id: number; serial: string; account_id: number | null; consumer_id: number | null; tz: string };
  amountMinor: number;
  idempotencyKey: string;
}

function requestHash(meterSerial: string, amountMinor: number): string {
  return createHash('sha256').update(JSON.stringify({ meterSerial, amountMinor })).digest('hex');
}

/**
 * Start a top-up, or return the one this household already started with this key. Under the
 * account's row lock, so concurrent requests with one key find each other, and concurrent
 * requests with different keys cannot both slip under the daily limit. The provider's page is
 * made after COMMIT (an HTTP call has no place inside a transaction) and is itself idempotent
 * per top-up, so a repeat that finds no page yet makes (or gets) the same one.
 */
export async function createTopup(
  pool: Pool,
  deps: TopupDeps,
  n: NewTopup,
  who: Who,
): Promise<{ topup: TopupRow; created: boolean }> {
  const hash = requestHash(n.meter.serial, n.amountMinor);
  const consumerId = n.actor.consumerId;
  if (consumerId === undefined || n.meter.account_id === null || n.meter.consumer_id !== consumerId) {
    throw new AppError('NOT_FOUND', 'meter not found');
  }
  const accountId = n.meter.account_id;
  const { id, created } = await withTx(pool, who, async (t) => {
    const c = t.c;
    const acc = await c.query<{ mode: 'credit' | 'prepayment'; currency: string }>(
      'SELECT mode, currency FROM accounts WHERE id = $1 FOR UPDATE',
      [accountId],
    );
    const a = acc.rows[0]!;
    const prior = await c.query<{ id: string; request_hash: string }>(
      'SELECT id, request_hash FROM topups WHERE consumer_id = $1 AND idempotency_key = $2',
      [consumerId, n.idempotencyKey],
    );
    if (prior.rows[0]) {
      if (prior.rows[0].request_hash !== hash) {
        throw new AppError(
          'IDEMPOTENCY_KEY_REUSED',
          'this Idempotency-Key was already used for a different top-up; use a new key for a new top-up',
        );
      }
      return { id: prior.rows[0].id, created: false };
    }
    const l = deps.limits;
    const cur = a.currency;
    if (n.amountMinor < l.minMinor)
      throw limitError(`The smallest top-up is ${money(l.minMinor, cur)}.`, 'below the minimum');
    if (n.amountMinor > l.maxMinor)
      throw limitError(`The largest single top-up is ${money(l.maxMinor, cur)}.`, 'above the maximum');
    const day = await c.query<{ used: string }>(
      `SELECT coalesce(sum(amount_minor), 0)::bigint AS used FROM topups
        WHERE account_id = $1
          AND (created_at AT TIME ZONE $2)::date = (now() AT TIME ZONE $2)::date
          AND (status IN ('paid', 'applied') OR (status = 'pending' AND created_at > now() - make_interval(secs => $3)))`,
      [accountId, n.meter.tz, PENDING_COUNTS_S],
    );
    const used = Number(day.rows[0]!.used);
    if (used + n.amountMinor > l.dailyMaxMinor) {
      const left = Math.max(0, l.dailyMaxMinor - used);
      throw limitError(
        `You can top up at most ${money(l.dailyMaxMinor, cur)} a day; ${left > 0 ? `${money(left, cur)} is left today` : 'nothing is left today'}.`,
        'over the daily total',
      );
    }
    const topupId = randomUUID();
    await c.query(
      `INSERT INTO topups (id, account_id, consumer_id, meter_id, kind, amount_minor, currency, idempotency_key,
                           request_hash, provider, created_by)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
      [
        topupId,
        accountId,
        consumerId,
        n.meter.id,
        a.mode === 'prepayment' ? 'topup' : 'payment',
        n.amountMinor,
        cur,
        n.idempotencyKey,
        hash,
        deps.provider.name,
        n.actor.userId,
      ],
    );
    await transition(c, topupId, null, 'pending');
    await t.audit('topup.create', n.meter.serial, { topupId, amountMinor: n.amountMinor });
    return { id: topupId, created: true };
  });

  let t = (await findTopup(pool, id))!;
  if (t.checkout_url === null && t.status === 'pending') {
    let checkout;
    try {
      checkout = await deps.provider.createCheckout({
        topupId: t.id,
        amountMinor: t.amount_minor,
        currency: t.currency,
        description: t.kind === 'topup' ? `Kilowire top-up, meter ${t.serial}` : 'Kilowire payment',
        successUrl: `${deps.publicUrl}/top-ups/${t.id}`,
        cancelUrl: `${deps.publicUrl}/top-up?cancelled=${t.id}`,
      });
    } catch (err) {
      throw new AppError(
        'PROVIDER_ERROR',
        'The payment provider did not answer; try again in a moment (the same Idempotency-Key is safe to reuse)',
        { cause: (err as Error).message },
      );
    }
    // The first page made wins; a concurrent repeat that made another one keeps the first.
    await pool.query(
      'UPDATE topups SET checkout_id = $2, checkout_url = $3 WHERE id = $1 AND checkout_id IS NULL',
      [t.id, checkout.id, checkout.url],
    );
    t = (await findTopup(pool, id))!;
  }
  return { topup: t, created };
}

function limitError(message: string, issue: string): AppError {
  return new AppError('TOPUP_LIMIT', message, [{ path: 'body.amountMinor', message: issue }]);
}

// ------------------------------------------------------------------------------ read

export async function findTopup(q: Q, id: string): Promise<TopupRow | null> {
  const { rows } = await q.query<TopupRow>(`${SELECT_TOPUP} WHERE t.id = $1`, [id]);
  return rows[0] ?? null;
}

/** One top-up the actor may see (404 otherwise, exactly as if it did not exist). */
export async function visibleTopup(q: Q, actor: Actor, id: string): Promise<TopupRow> {
  const scope = scopeSql(actor, 'topups', 't', 2);
  const { rows } = await q.query<TopupRow>(`${SELECT_TOPUP} WHERE t.id = $1 AND (${scope.sql})`, [
    id,
    ...scope.params,
  ]);
  if (!rows[0]) throw new AppError('NOT_FOUND', 'top-up not found');
  return rows[0];
}

/** Top-ups the actor may see, newest first; `before` is the created_at/id cursor of the last page. */
export async function listTopups(
  q: Q,
  actor: Actor,
  limit: number,
  before: { at: Date; id: string } | null,
): Promise<TopupRow[]> {
  const scope = scopeSql(actor, 'topups', 't', 4);
  const { rows } = await q.query<TopupRow>(
    `${SELECT_TOPUP}
      WHERE (${scope.sql}) AND ($2::timestamptz IS NULL OR (t.created_at, t.id) < ($2, $3::uuid))
      ORDER BY t.created_at DESC, t.id DESC LIMIT $1`,
    [limit, before?.at ?? null, before?.id ?? null, ...scope.params],
  );
  return rows;
}

// ------------------------------------------------------------------------------ provider events

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Apply one verified provider event, in one transaction. Each event counts once (payment_events
 * keyed by its id); facts are applied so that any order ends in the same state: a refund seen
 * before the success is remembered, and the success then books both and sends no credit.
 */
export async function applyProviderEvent(
  pool: Pool,
  deps: TopupDeps,
  ev: VerifiedEvent,
): Promise<{ duplicate: boolean }> {
  return tx(pool, async (c) => {
    const fact = ev.fact;
    let topupId: string | null = fact.topupId && UUID.test(fact.topupId) ? fact.topupId : null;
    if (topupId) {
      const r = await c.query('SELECT 1 FROM topups WHERE id = $1', [topupId]);
      if (!r.rows.length) topupId = null;
    }
    const ins = await c.query(
      `INSERT INTO payment_events (provider, event_id, type, topup_id, created_at, payload)
       VALUES ($1, $2, $3, $4, to_timestamp($5), $6) ON CONFLICT DO NOTHING RETURNING 1`,
      [deps.provider.name, ev.id, ev.type, topupId, ev.created, JSON.stringify(ev.payload)],
    );
    if (!ins.rows.length) return { duplicate: true };
    if (!topupId || fact.kind === 'ignored') return { duplicate: false };

    const t = (
      await c.query<TopupRow & { command_id: string | null }>(
        `${SELECT_TOPUP.replace('t.request_hash,', 't.request_hash, t.command_id,')} WHERE t.id = $1 FOR UPDATE OF t`,
        [topupId],
      )
    ).rows[0]!;
    const open = t.status === 'pending' || t.status === 'declined' || t.status === 'expired';
    switch (fact.kind) {
      case 'succeeded':
        if (!open) break;
        if (fact.amountMinor !== null && fact.amountMinor !== t.amount_minor) {
          // Never credit a different amount than the household asked for and was shown.
          await transition(
            c,
            t.id,
            t.status,
            t.status,
            `event ${ev.id}: paid ${fact.amountMinor}, expected ${t.amount_minor}`,
          );
          break;
        }
        await confirmPaid(c, deps, t, fact.paymentRef, ev.id);
        break;
      case 'failed':
        if (t.status !== 'pending' && t.status !== 'declined') break;
        await c.query(
          `UPDATE topups SET status = 'declined', failure_reason = $2, failed_at = now() WHERE id = $1`,
          [t.id, fact.reason.slice(0, 300)],
        );
        await transition(c, t.id, t.status, 'declined', `event ${ev.id}`);
        await changed(c, t.id, t.meter_id, 'declined');
        break;
      case 'expired':
        if (t.status !== 'pending') break;
        await c.query(`UPDATE topups SET status = 'expired' WHERE id = $1`, [t.id]);
        await transition(c, t.id, t.status, 'expired', `event ${ev.id}`);
        break;
      case 'refunded':
        await recordRefund(c, t, fact.refundedMinor, fact.paymentRef, ev.id);
        break;
    }
    return { duplicate: false };
  });
}

async function confirmPaid(
  c: PoolClient,
  deps: TopupDeps,
  t: TopupRow,
  paymentRef: string | null,
  eventId: string,
): Promise<void> {
  await postTransaction(c, {
    accountId: t.account_id,
    kind: t.kind === 'topup' ? 'topup' : 'payment',
    ref: `topup:${t.id}`,
    memo:
      t.kind === 'topup'
        ? `Top-up ${money(t.amount_minor, t.currency)} by card, meter ${t.serial}`
        : `Payment ${money(t.amount_minor, t.currency)} by card`,
    lines: [
      { book: 'cash', amountMinor: t.amount_minor },
      { book: 'customer', amountMinor: -t.amount_minor },
    ],
  });
  await c.query(
    `UPDATE topups SET status = 'paid', paid_at = now(), payment_ref = coalesce($2, payment_ref), failure_reason = NULL
      WHERE id = $1`,
    [t.id, paymentRef],
  );
  await transition(c, t.id, t.status, 'paid', `event ${eventId}`);
  if (t.refunded_minor > 0) {
    // The refund arrived first: book it now, and send no credit for money already given back.
    await postRefund(c, t, 0, t.refunded_minor);
    await c.query(`UPDATE topups SET status = 'refunded', refunded_at = now() WHERE id = $1`, [t.id]);
    await transition(c, t.id, 'paid', 'refunded', 'refund seen before the payment');
    await changed(c, t.id, t.meter_id, 'refunded');
    return;
  }
  if (t.kind === 'topup') await requestCredit(c, deps, t, null);
  await changed(c, t.id, t.meter_id, 'paid');
}

/** A signed credit.add carrying the top-up id: the meter applies each id once, however often sent. */
async function requestCredit(c: PoolClient, deps: TopupDeps, t: TopupRow, why: string | null): Promise<void> {
  const cmd = await requestCommand(
    c,
    deps.commandKey,
    { id: t.meter_id, serial: t.serial },
    { type: 'credit.add', topupId: t.id, amountMinor: t.amount_minor },
    { actorId: null, reason: why ?? `top-up ${t.id}`, timing: { ttlS: deps.commandTtlS } },
  );
  await c.query('UPDATE topups SET command_id = $2, credit_requests = credit_requests + 1 WHERE id = $1', [
    t.id,
    cmd.id,
  ]);
}

async function postRefund(c: PoolClient, t: TopupRow, before: number, total: number): Promise<void> {
  if (total <= before) return;
  await postTransaction(c, {
    accountId: t.account_id,
    kind: 'refund',
    // The provider's running total makes each step of a partial refund its own transaction.
    ref: `refund:${t.id}:${total}`,
    memo: `Refund ${money(total - before, t.currency)} to card (top-up of ${money(t.amount_minor, t.currency)})`,
    lines: [
      { book: 'cash', amountMinor: -(total - before) },
      { book: 'customer', amountMinor: total - before },
    ],
  });
}

async function recordRefund(
  c: PoolClient,
  t: TopupRow & { command_id: string | null },
  refundedTotal: number,
  paymentRef: string | null,
  eventId: string,
): Promise<void> {
  const total = Math.min(refundedTotal, t.amount_minor);
  if (total <= t.refunded_minor) return; // an older figure, or one already booked
  await c.query(
    'UPDATE topups SET refunded_minor = $2, payment_ref = coalesce(payment_ref, $3) WHERE id = $1',
    [t.id, total, paymentRef],
  );
  const booked = t.status === 'paid' || t.status === 'applied' || t.status === 'refunded';
  if (!booked) {
    // Out of order: remembered, booked when the success arrives.
    await transition(c, t.id, t.status, t.status, `event ${eventId}: refund of ${total} before the payment`);
    return;
  }
  await postRefund(c, t, t.refunded_minor, total);
  if (t.status === 'paid' && t.command_id) {
    // Money given back before the meter got it: hold the credit back if it has not left yet.
    const cmd = await c.query<{ status: string }>('SELECT status FROM commands WHERE id = $1', [
      t.command_id,
    ]);
    if (['requested', 'queued'].includes(cmd.rows[0]?.status ?? ''))
      await cancelCommand(c, t.command_id, null, 'top-up refunded');
  }
  await c.query(`UPDATE topups SET status = 'refunded', refunded_at = now() WHERE id = $1`, [t.id]);
  await transition(c, t.id, t.status, 'refunded', `event ${eventId}`);
  await changed(c, t.id, t.meter_id, 'refunded');
}

/** Ask the provider for a refund (supplier staff); the webhook that follows books it. */
export async function requestRefund(
  pool: Pool,
  deps: TopupDeps,
  t: TopupRow,
  amountMinor: number | undefined,
  who: Who,
): Promise<void> {
  if (!['paid', 'applied', 'refunded'].includes(t.status) || !t.payment_ref)
    throw new AppError('CONFLICT', `a ${t.status} top-up has no payment to refund`);
  const left = t.amount_minor - t.refunded_minor;
  const amount = amountMinor ?? left;
  if (amount <= 0 || amount > left)
    throw new AppError('VALIDATION', `at most ${money(left, t.currency)} is left to refund`, [
      { path: 'body.amountMinor', message: 'more than is left to refund' },
    ]);
  await withTx(pool, who, async (tr) => {
    const c = tr.c;
    await tr.audit('topup.refund', t.serial, { topupId: t.id, amountMinor: amount });
    try {
      await deps.provider.refund(
        {
          topupId: t.id,
          paymentRef: t.payment_ref!,
          amountMinor: amount,
          idempotencyKey: `kw-refund-${t.id}-${t.refunded_minor + amount}`,
        },
        c,
      );
    } catch (err) {
      if (err instanceof AppError) throw err;
      throw new AppError('PROVIDER_ERROR', 'the payment provider refused or did not answer; try again', {
        cause: (err as Error).message,
      });
    }
  });
}

// ------------------------------------------------------------------------------ after payment

/**
 * The meter answered a credit.add: ok, or "duplicate" (it had applied this top-up id before,
 * e.g. from a copy that expired here first) both mean the credit is on the meter.
 */
export async function creditReplies(pool: Pool, commandIds: string[]): Promise<string[]> {
  if (!commandIds.length) return [];
  return tx(pool, async (c) => {
    const { rows } = await c.query<{ id: string; meter_id: number }>(
      `UPDATE topups t SET status = 'applied', applied_at = now()
         FROM commands c
        WHERE c.id = ANY($1::uuid[]) AND c.type = 'credit.add' AND t.id::text = c.cmd->>'topupId'
          AND t.status = 'paid'
          AND (c.status = 'ok' OR (c.status = 'rejected' AND c.result_code = 'DUPLICATE_TOPUP'))
      RETURNING t.id, t.meter_id`,
      [commandIds],
    );
    for (const r of rows) {
      await transition(c, r.id, 'paid', 'applied', 'the meter added the credit');
      await changed(c, r.id, r.meter_id, 'applied');
    }
    return rows.map((r) => r.id);
  });
}

/**
 * Refusals after which the meter certainly did not apply the credit (it says so: the command
 * was past its expiry by the meter's clock, or its counter was behind and the id unknown), so
 * the same top-up may be requested again with a fresh counter and expiry.
 */
const NOT_APPLIED_CODES = ['EXPIRED', 'STALE_COUNTER'];
/** Requests after a refusal stop here (a meter whose clock is far off would refuse forever); staff see the rest. */
const MAX_CREDIT_REQUESTS_AFTER_REFUSAL = 5;

/**
 * Credit commands that expired before reaching the meter (`refused` false), or that the meter
 * refused without applying them (`refused` true): request the same top-up again.
 */
export async function reissueExpiredCredit(
  pool: Pool,
  deps: TopupDeps,
  commandIds: string[],
  refused = false,
): Promise<number> {
  let n = 0;
  for (const commandId of commandIds) {
    await tx(pool, async (c) => {
      const t = (
        await c.query<TopupRow & { credit_requests: number }>(
          `${SELECT_TOPUP.replace('t.request_hash,', 't.request_hash, t.credit_requests,')}
            WHERE t.command_id = $1 AND t.status = 'paid' FOR UPDATE OF t`,
          [commandId],
        )
      ).rows[0];
      if (!t) return; // applied meanwhile, refunded, or already requested again
      if (refused && t.credit_requests >= MAX_CREDIT_REQUESTS_AFTER_REFUSAL) return;
      const why = refused
        ? 'the meter refused the previous credit command without applying it'
        : 'the previous credit command expired before the meter was reachable';
      await requestCredit(c, deps, t, `top-up ${t.id}: ${why}`);
      await transition(c, t.id, 'paid', 'paid', `${why}; sent again`);
      n++;
    });
  }
  return n;
}

const ALERT_TEXT: Partial<Record<TopupStatus, (t: TopupRow) => { title: string; message: string }>> = {
  paid: (t) =>
    t.kind === 'topup'
      ? {
          title: 'Payment received',
          message: `We received ${money(t.amount_minor, t.currency)} for meter ${t.serial}. The credit is on its way to your meter.`,
        }
      : {
          title: 'Payment received',
          message: `We received your payment of ${money(t.amount_minor, t.currency)}. Thank you.`,
        },
  applied: (t) => ({
    title: 'Credit on your meter',
    message: `${money(t.amount_minor, t.currency)} is now on meter ${t.serial}.`,
  }),
  declined: (t) => ({
    title: 'Payment declined',
    message: `Your payment of ${money(t.amount_minor, t.currency)} for meter ${t.serial} was declined${t.failure_reason ? `: ${t.failure_reason.replace(/\.$/, '')}` : ''}. No money was taken. You can try again, or use another card.`,
  }),
  refunded: (t) => ({
    title: 'Payment refunded',
    message: `${money(t.refunded_minor, t.currency)} of your payment of ${money(t.amount_minor, t.currency)} was refunded to your card.`,
  }),
};

/** Tell the household (alert type 'payment'), once per top-up and status. */
export async function topupAlerts(
  pool: Pool,
  changes: { topupId: string; status: string }[],
): Promise<number[]> {
  const alerts: NewAlert[] = [];
  for (const ch of changes) {
    const text = ALERT_TEXT[ch.status as TopupStatus];
    if (!text) continue;
    const t = await findTopup(pool, ch.topupId);
    if (!t) continue;
    alerts.push({
      meterId: t.meter_id,
      type: 'payment',
      dedupeKey: `topup:${t.id}:${ch.status}`,
      ...text(t),
      figures: { topupId: t.id, status: ch.status, amountMinor: t.amount_minor, currency: t.currency },
    });
  }
  return raiseAlerts(pool, alerts);
}

/**
 * The payments subscriber of domain events: credit replies mark top-ups applied, expired
 * credit commands (and ones the meter refused without applying) are requested again, status changes become alerts. Every step is idempotent
 * (status guards, alert dedupe keys), so a job run twice after a crash does nothing twice.
 */
export function paymentsSubscriber(pool: Pool, deps: TopupDeps, log: Logger): Subscriber {
  return {
    name: 'payments',
    types: ['command.replied', 'command.expired', 'topup.changed'],
    async handle(events: DomainEvent[]): Promise<void> {
      const replied: string[] = [];
      const expired: string[] = [];
      const refused: string[] = [];
      const changes: { topupId: string; status: string }[] = [];
      for (const e of events) {
        if (e.type === 'command.replied') {
          const p = (e as DomainEvent<'command.replied'>).payload;
          if (p.type !== 'credit.add') continue;
          replied.push(p.commandId);
          if (p.result !== 'ok' && p.code !== null && NOT_APPLIED_CODES.includes(p.code))
            refused.push(p.commandId);
        } else if (e.type === 'command.expired') {
          const p = (e as DomainEvent<'command.expired'>).payload;
          if (p.type === 'credit.add') expired.push(p.commandId);
        } else if (e.type === 'topup.changed') {
          changes.push((e as DomainEvent<'topup.changed'>).payload);
        }
      }
      await creditReplies(pool, replied);
      const again =
        (await reissueExpiredCredit(pool, deps, expired)) +
        (await reissueExpiredCredit(pool, deps, refused, true));
      if (again) log.info({ topups: again }, 'credit commands expired or refused unapplied; requested again');
      await topupAlerts(pool, changes);
    },
  };
}
