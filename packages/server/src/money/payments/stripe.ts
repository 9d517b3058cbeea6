import Stripe from 'stripe';
import type { Checkout, CheckoutRequest, PaymentProvider, RefundRequest, VerifiedEvent } from './provider.ts';
import { verifyStripeSignature } from './provider.ts';

export interface StripeOptions {
  secretKey: string;
  webhookSecret: string;
  toleranceS: number;
  /** Another address for api.stripe.com (a proxy or a test stand-in). */
  apiUrl?: string;
}

/**
 * Stripe through the official library: a Checkout Session per top-up, created with the
 * top-up id as idempotency key (a retried or concurrent create returns the same session);
 * webhooks verified by the library; refunds with their own idempotency key.
 */
export class StripeProvider implements PaymentProvider {
  readonly name = 'stripe' as const;
  private readonly stripe: Stripe;

  constructor(private readonly o: StripeOptions) {
    const api = o.apiUrl ? new URL(o.apiUrl) : undefined;
    this.stripe = new Stripe(o.secretKey, {
      maxNetworkRetries: 2,
      timeout: 20_000,
      telemetry: false,
      ...(api
        ? {
            host: api.hostname,
            port: api.port || (api.protocol === 'https:' ? 443 : 80),
            protocol: api.protocol === 'https:' ? 'https' : 'http',
          }
        : {}),
    });
  }

  async createCheckout(r: CheckoutRequest): Promise<Checkout> {
    const metadata = { topupId: r.topupId };
    const s = await this.stripe.checkout.sessions.create(
      {
        mode: 'payment',
        client_reference_id: r.topupId,
        metadata,
        // On the PaymentIntent too, so its charges (and refund events) name the top-up.
        payment_intent_data: { metadata },
        line_items: [
          {
            quantity: 1,
            price_data: {
              currency: r.currency.toLowerCase(),
              unit_amount: r.amountMinor,
              product_data: { name: r.description },
            },
          },
        ],
        success_url: r.successUrl,
        cancel_url: r.cancelUrl,
        // Abandoned after an hour (Stripe then sends checkout.session.expired): an open top-up
        // counts toward the day's limit only that long.
        expires_at: Math.floor(Date.now() / 1000) + 3600,
      },
      { idempotencyKey: `kw-topup-${r.topupId}` },
    );
    if (!s.url) throw new Error('Stripe returned a Checkout Session without a URL');
    return { id: s.id, url: s.url };
  }

  verifyWebhook(rawBody: string, header: string | undefined): Promise<VerifiedEvent> {
    return Promise.resolve(verifyStripeSignature(rawBody, header, this.o.webhookSecret, this.o.toleranceS));
  }

  async refund(r: RefundRequest): Promise<void> {
    await this.stripe.refunds.create(
      { payment_intent: r.paymentRef, amount: r.amountMinor, metadata: { topupId: r.topupId } },
      { idempotencyKey: r.idempotencyKey },
    );
  }
}
