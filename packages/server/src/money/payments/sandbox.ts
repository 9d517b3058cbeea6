import { randomBytes } from 'node:crypto';
import Stripe from 'stripe';
import type { SandboxSession } from '@kilowire/contract';
import { tx, type Pool, type PoolClient, type Q } from '../../db/pool.ts';
import { AppError } from '../../errors.ts';
import { emitEvent } from '../../events/emit.ts';
import type { DomainEvent, Subscriber } from '../../events/types.ts';
import type { Logger } from '../../log.ts';
import {
  verifyStripeSignature,
  type Checkout,
  type CheckoutRequest,
  type PaymentProvider,
  type RefundRequest,
  type VerifiedEvent,
} from './provider.ts';

/**
 * The built-in payment provider, for a newcomer's first run and for tests: a card page served
 * by Kilowire (the portal's /pay/sandbox/<checkout>), clearly marked SANDBOX, where
 * 4242 4242 4242 4242 pays and 4000 0000 0000 0002 is declined. It confirms the way Stripe
 * does: a webhook signed exactly as Stripe signs (Stripe-Signature: t=..,v1=HMAC-SHA256 of
 * "t.body"), POSTed over HTTP to /api/payments/webhook by the jobs service, later and with
 * retries. The pay step only writes a `sandbox.webhook` domain event in its transaction, so a
 * confirmation is never lost to a crash and never only in one process's memory.
 */
export const SANDBOX_CARDS = {
  succeeds: '4242424242424242',
  declined: '4000000000000002',
} as const;

const CHECKOUT_PREFIX = 'cs_sandbox_';
/** A sandbox checkout nobody paid is abandoned after this long (s), like a Stripe session with expires_at. */
export const SANDBOX_CHECKOUT_TTL_S = 3600;
const rand = () => randomBytes(18).toString('base64url');

/** The webhook signing secret: configured, or generated once and kept in the database. */
export class SandboxSecret {
  private value: string | undefined;
  constructor(
    private readonly q: Q,
    configured: string | undefined,
  ) {
    this.value = configured;
  }

  async get(): Promise<string> {
    if (this.value) return this.value;
    await this.q.query(
      'INSERT INTO payment_sandbox_secret (secret) VALUES ($1) ON CONFLICT (singleton) DO NOTHING',
      [`whsec_${randomBytes(24).toString('base64url')}`],
    );
    const { rows } = await this.q.query<{ secret: string }>('SELECT secret FROM payment_sandbox_secret');
    this.value = rows[0]!.secret;
    return this.value;
  }
}

export class SandboxProvider implements PaymentProvider {
  readonly name = 'sandbox' as const;

  constructor(
    private readonly secret: SandboxSecret,
    private readonly toleranceS: number,
    /** Absolute base of the portal, or '' for links relative to it. */
    private readonly baseUrl: string,
  ) {}

  createCheckout(_r: CheckoutRequest): Promise<Checkout> {
    // Unguessable: the card page needs no session, like Stripe's own checkout page.
    const id = `${CHECKOUT_PREFIX}${rand()}`;
    return Promise.resolve({ id, url: `${this.baseUrl}/pay/sandbox/${id}` });
  }

  async verifyWebhook(rawBody: string, header: string | undefined): Promise<VerifiedEvent> {
    return verifyStripeSignature(rawBody, header, await this.secret.get(), this.toleranceS);
  }

  async refund(r: RefundRequest, c: PoolClient): Promise<void> {
    const { rows } = await c.query<{ amount_minor: number; currency: string; refunded_minor: number }>(
      'SELECT amount_minor, currency, refunded_minor FROM topups WHERE id = $1',
      [r.topupId],
    );
    const t = rows[0];
    if (!t) throw new AppError('NOT_FOUND', 'top-up not found');
    await queueWebhook(c, 'charge.refunded', {
      id: `ch_sandbox_${r.paymentRef.slice('pi_sandbox_'.length)}`,
      object: 'charge',
      amount: t.amount_minor,
      amount_refunded: Math.min(t.amount_minor, t.refunded_minor + r.amountMinor),
      currency: t.currency.toLowerCase(),
      payment_intent: r.paymentRef,
      metadata: { topupId: r.topupId },
      refunded: t.refunded_minor + r.amountMinor >= t.amount_minor,
    });
  }
}

/** A Stripe-shaped event for the jobs service to sign and deliver. */
async function queueWebhook(c: PoolClient, type: string, object: Record<string, unknown>): Promise<void> {
  const event = {
    id: `evt_sandbox_${rand()}`,
    object: 'event',
    api_version: '2025-01-01',
    created: Math.floor(Date.now() / 1000),
    livemode: false,
    type,
    data: { object },
  };
  await emitEvent(c, { type: 'sandbox.webhook', meterId: null, payload: { event } });
}

interface SessionRow {
  id: string;
  amount_minor: number;
  currency: string;
  status: string;
  kind: string;
  serial: string;
  paid_attempt: boolean;
  /** Past SANDBOX_CHECKOUT_TTL_S: no longer payable, whether or not its webhook has landed yet. */
  expired: boolean;
}

async function loadSession(q: Q, checkoutId: string, lock: boolean): Promise<SessionRow> {
  const { rows } = await q.query<SessionRow>(
    `SELECT t.id, t.amount_minor, t.currency, t.status, t.kind, m.serial,
            EXISTS (SELECT 1 FROM payment_sandbox_attempts a WHERE a.checkout_id = t.checkout_id AND a.outcome = 'succeeded') AS paid_attempt,
            t.created_at < now() - make_interval(secs => ${SANDBOX_CHECKOUT_TTL_S}) AS expired
       FROM topups t JOIN meters m ON m.id = t.meter_id
      WHERE t.checkout_id = $1 AND t.provider = 'sandbox' ${lock ? 'FOR UPDATE OF t' : ''}`,
    [checkoutId],
  );
  const s = rows[0];
  if (!s) throw new AppError('NOT_FOUND', 'no such sandbox checkout');
  return s;
}

function sessionStatus(s: SessionRow): SandboxSession['status'] {
  if (['paid', 'applied', 'refunded'].includes(s.status)) return 'complete';
  if (s.paid_attempt) return 'processing';
  if (s.status === 'expired' || s.expired) return 'expired';
  if (s.status === 'declined') return 'declined';
  return 'open';
}

const returnUrls = (topupId: string) => ({
  returnUrl: `/top-ups/${topupId}`,
  cancelUrl: `/top-up?cancelled=${topupId}`,
});

/** What the sandbox's card page shows. */
export async function sandboxSession(q: Q, checkoutId: string): Promise<SandboxSession> {
  const s = await loadSession(q, checkoutId, false);
  return {
    amountMinor: s.amount_minor,
    currency: s.currency,
    description:
      s.kind === 'topup' ? `Top-up for meter ${s.serial}` : `Payment toward your balance (meter ${s.serial})`,
    status: sessionStatus(s),
    ...returnUrls(s.id),
  };
}

/**
 * The "Pay" button: judge the card, record the attempt and queue the webhook that tells
 * Kilowire, all in one transaction. Paying a paid checkout again changes nothing.
 */
export async function sandboxPay(
  pool: Pool,
  checkoutId: string,
  cardNumber: string,
): Promise<{ outcome: 'succeeded' | 'declined'; message: string; returnUrl: string }> {
  const card = cardNumber.replace(/\s+/g, '');
  if (card !== SANDBOX_CARDS.succeeds && card !== SANDBOX_CARDS.declined) {
    throw new AppError(
      'CARD_UNKNOWN',
      'This is a sandbox: use the test card 4242 4242 4242 4242 to pay, or 4000 0000 0000 0002 to see a decline',
      [{ path: 'body.cardNumber', message: 'not a sandbox test card' }],
    );
  }
  return tx(pool, async (c) => {
    const s = await loadSession(c, checkoutId, true);
    const { returnUrl } = returnUrls(s.id);
    const st = sessionStatus(s);
    if (st === 'complete' || st === 'processing')
      return { outcome: 'succeeded' as const, message: 'Already paid.', returnUrl };
    if (st === 'expired' || s.expired)
      throw new AppError('CONFLICT', 'this checkout has expired; start a new top-up');
    const paymentRef = `pi_sandbox_${rand()}`;
    const outcome = card === SANDBOX_CARDS.succeeds ? ('succeeded' as const) : ('declined' as const);
    await c.query(
      `INSERT INTO payment_sandbox_attempts (checkout_id, outcome, card_last4, payment_ref) VALUES ($1, $2, $3, $4)`,
      [checkoutId, outcome, card.slice(-4), paymentRef],
    );
    const metadata = { topupId: s.id };
    if (outcome === 'succeeded') {
      await queueWebhook(c, 'checkout.session.completed', {
        id: checkoutId,
        object: 'checkout.session',
        client_reference_id: s.id,
        metadata,
        mode: 'payment',
        payment_status: 'paid',
        status: 'complete',
        payment_intent: paymentRef,
        amount_total: s.amount_minor,
        currency: s.currency.toLowerCase(),
      });
      return { outcome, message: 'Payment accepted.', returnUrl };
    }
    await queueWebhook(c, 'payment_intent.payment_failed', {
      id: paymentRef,
      object: 'payment_intent',
      amount: s.amount_minor,
      currency: s.currency.toLowerCase(),
      metadata,
      status: 'requires_payment_method',
      last_payment_error: {
        type: 'card_error',
        code: 'card_declined',
        decline_code: 'generic_decline',
        message: 'Your card was declined.',
      },
    });
    return { outcome, message: 'Your card was declined.', returnUrl };
  });
}

/**
 * Checkouts nobody paid within SANDBOX_CHECKOUT_TTL_S: the sandbox says so the way Stripe does,
 * with a `checkout.session.expired` webhook, so the top-up leaves "waiting for payment" through
 * the same path as every other provider fact. Run on a schedule by the jobs service; a repeat
 * before the first webhook lands is harmless (the second finds the top-up no longer pending).
 */
export async function expireSandboxCheckouts(pool: Pool, ttlS = SANDBOX_CHECKOUT_TTL_S): Promise<number> {
  return tx(pool, async (c) => {
    const { rows } = await c.query<{ id: string; checkout_id: string }>(
      `SELECT t.id, t.checkout_id FROM topups t
        WHERE t.provider = 'sandbox' AND t.status IN ('pending', 'declined') AND t.checkout_id IS NOT NULL
          AND t.created_at < now() - make_interval(secs => $1)
          AND NOT EXISTS (SELECT 1 FROM payment_sandbox_attempts a
                           WHERE a.checkout_id = t.checkout_id AND a.outcome = 'succeeded')
        ORDER BY t.created_at LIMIT 500 FOR UPDATE OF t SKIP LOCKED`,
      [ttlS],
    );
    for (const r of rows) {
      await queueWebhook(c, 'checkout.session.expired', {
        id: r.checkout_id,
        object: 'checkout.session',
        client_reference_id: r.id,
        metadata: { topupId: r.id },
        status: 'expired',
        payment_status: 'unpaid',
      });
    }
    return rows.length;
  });
}

/**
 * The sandbox's webhook sender, as a domain-event subscriber of its own (its own pg-boss
 * queue, so a webhook endpoint that is down holds up nothing else): sign each event now (a
 * retry gets a fresh timestamp, as Stripe's do) and POST it; anything but 2xx throws, and the
 * job is retried with backoff.
 */
export function sandboxWebhookSubscriber(
  secret: SandboxSecret,
  url: string,
  log: Logger,
  timeoutMs = 10_000,
): Subscriber {
  return {
    name: 'sandbox-webhooks',
    types: ['sandbox.webhook'],
    async handle(events: DomainEvent[]): Promise<void> {
      const s = await secret.get();
      for (const e of events as DomainEvent<'sandbox.webhook'>[]) {
        const payload = JSON.stringify(e.payload.event);
        const header = Stripe.webhooks.generateTestHeaderString({ payload, secret: s });
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json; charset=utf-8', 'stripe-signature': header },
          body: payload,
          signal: AbortSignal.timeout(timeoutMs),
        });
        if (!res.ok) {
          const text = (await res.text()).slice(0, 200);
          log.warn({ status: res.status, body: text, event: e.payload.event.id }, 'sandbox webhook refused');
          throw new Error(`webhook endpoint answered ${res.status}`);
        }
      }
    },
  };
}
