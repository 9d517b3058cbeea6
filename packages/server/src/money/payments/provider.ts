import Stripe from 'stripe';
import type { PaymentProviderName } from '@kilowire/contract/enums';
import type { PoolClient } from '../../db/pool.ts';

/**
 * A payment provider: where a household pays, and how the provider tells us it has. Two
 * implementations: Stripe (stripe.ts) and the built-in sandbox (sandbox.ts), which speaks
 * Stripe's webhook dialect exactly, so one verifier and one interpretation serve both.
 */
export interface CheckoutRequest {
  topupId: string;
  amountMinor: number;
  /** ISO 4217, upper case. */
  currency: string;
  /** What the household sees on the payment page. */
  description: string;
  /** Back to the top-up after paying, and after giving up. */
  successUrl: string;
  cancelUrl: string;
}

export interface Checkout {
  /** The provider's id for this checkout (Stripe: cs_...). */
  id: string;
  /** The page where the household pays. */
  url: string;
}

export interface RefundRequest {
  topupId: string;
  /** The provider's payment (Stripe: the PaymentIntent id). */
  paymentRef: string;
  amountMinor: number;
  /** The same refund asked twice is made once. */
  idempotencyKey: string;
}

export interface PaymentProvider {
  readonly name: PaymentProviderName;
  /** Create the page where the household pays. Calling it again for a top-up returns the same checkout. */
  createCheckout(r: CheckoutRequest): Promise<Checkout>;
  /**
   * Check a webhook's signature and timestamp and parse it; throws WebhookError when either is
   * wrong (the caller answers 400 and changes nothing).
   */
  verifyWebhook(rawBody: string, signatureHeader: string | undefined): Promise<VerifiedEvent>;
  /**
   * Ask the provider to give money back. The refund itself is recorded when the provider's
   * `charge.refunded` webhook arrives (the sandbox's is queued in `c`, the caller's transaction).
   */
  refund(r: RefundRequest, c: PoolClient): Promise<void>;
}

export class WebhookError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WebhookError';
  }
}

/** What a provider event means for a top-up, whatever the provider called it. */
export type PaymentFact =
  | { kind: 'succeeded'; topupId: string; paymentRef: string | null; amountMinor: number | null }
  | { kind: 'failed'; topupId: string; reason: string }
  | { kind: 'expired'; topupId: string }
  /** `refundedMinor` is the provider's running total for the payment. */
  | { kind: 'refunded'; topupId: string; paymentRef: string | null; refundedMinor: number }
  | { kind: 'ignored'; topupId: string | null };

export interface VerifiedEvent {
  id: string;
  type: string;
  /** Provider's event time, epoch s. */
  created: number;
  fact: PaymentFact;
  /** The parsed body, kept with the event. */
  payload: unknown;
}

type Obj = Record<string, unknown>;
const str = (v: unknown): string | null => (typeof v === 'string' && v.length > 0 ? v : null);
const int = (v: unknown): number | null => (typeof v === 'number' && Number.isSafeInteger(v) ? v : null);
const metaTopup = (o: Obj): string | null => str((o.metadata as Obj | null | undefined)?.topupId);

/** Plain words for the household from a card decline (Stripe's codes, sandbox included). */
export function declineWords(o: Obj | null | undefined): string {
  const code = str(o?.decline_code) ?? str(o?.code);
  if (code === 'insufficient_funds') return 'The card has insufficient funds.';
  if (code === 'expired_card') return 'The card has expired.';
  if (code === 'incorrect_cvc') return 'The security code (CVC) is wrong.';
  return str(o?.message) ?? 'The card was declined by its bank.';
}

/**
 * Stripe's events (the sandbox sends the same) as facts about a top-up. The top-up id travels
 * in `client_reference_id` and `metadata.topupId` of the Checkout Session and in the
 * PaymentIntent's metadata (and so on its charges).
 */
export function interpretStripeEvent(ev: { type: string; data?: { object?: unknown } }): PaymentFact {
  const o = (ev.data?.object ?? {}) as Obj;
  switch (ev.type) {
    case 'checkout.session.completed':
    case 'checkout.session.async_payment_succeeded': {
      const topupId = str(o.client_reference_id) ?? metaTopup(o);
      if (!topupId) return { kind: 'ignored', topupId: null };
      // A completed session with a delayed payment method is not paid yet: wait for async_payment_succeeded.
      if (o.payment_status !== 'paid') return { kind: 'ignored', topupId };
      return {
        kind: 'succeeded',
        topupId,
        paymentRef: str(o.payment_intent),
        amountMinor: int(o.amount_total),
      };
    }
    case 'checkout.session.async_payment_failed': {
      const topupId = str(o.client_reference_id) ?? metaTopup(o);
      return topupId
        ? { kind: 'failed', topupId, reason: 'The payment did not go through.' }
        : { kind: 'ignored', topupId: null };
    }
    case 'checkout.session.expired': {
      const topupId = str(o.client_reference_id) ?? metaTopup(o);
      return topupId ? { kind: 'expired', topupId } : { kind: 'ignored', topupId: null };
    }
    case 'payment_intent.payment_failed': {
      const topupId = metaTopup(o);
      return topupId
        ? { kind: 'failed', topupId, reason: declineWords(o.last_payment_error as Obj | null) }
        : { kind: 'ignored', topupId: null };
    }
    case 'charge.refunded': {
      const topupId = metaTopup(o);
      const refunded = int(o.amount_refunded);
      return topupId && refunded !== null
        ? { kind: 'refunded', topupId, paymentRef: str(o.payment_intent), refundedMinor: refunded }
        : { kind: 'ignored', topupId };
    }
    default:
      return { kind: 'ignored', topupId: metaTopup(o) };
  }
}

/**
 * Verify a Stripe-Signature header (t=<epoch>,v1=<HMAC-SHA256 of "t.body">) with the
 * library's own check: the signature, and the timestamp within `toleranceS` of now.
 */
export function verifyStripeSignature(
  rawBody: string,
  header: string | undefined,
  secret: string,
  toleranceS: number,
): VerifiedEvent {
  if (!header) throw new WebhookError('missing Stripe-Signature header');
  let ev: Stripe.Event;
  try {
    ev = Stripe.webhooks.constructEvent(rawBody, header, secret, toleranceS);
  } catch (err) {
    throw new WebhookError((err as Error).message);
  }
  if (typeof ev.id !== 'string' || typeof ev.type !== 'string')
    throw new WebhookError('not an event (id and type required)');
  return { id: ev.id, type: ev.type, created: ev.created, fact: interpretStripeEvent(ev), payload: ev };
}
