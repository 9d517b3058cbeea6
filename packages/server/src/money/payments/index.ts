import type { PaymentsConfig } from '../../config.ts';
import type { Q } from '../../db/pool.ts';
import type { PaymentProvider } from './provider.ts';
import { SandboxProvider, SandboxSecret } from './sandbox.ts';
import { StripeProvider } from './stripe.ts';

export * from './provider.ts';
export { SandboxProvider, SandboxSecret, SANDBOX_CARDS } from './sandbox.ts';
export { StripeProvider } from './stripe.ts';

/** Stripe when both of its secrets are configured, otherwise the built-in sandbox. */
export function createProvider(
  cfg: PaymentsConfig,
  q: Q,
): { provider: PaymentProvider; sandboxSecret: SandboxSecret } {
  const sandboxSecret = new SandboxSecret(q, cfg.sandboxWebhookSecret);
  if (cfg.stripeSecretKey && cfg.stripeWebhookSecret) {
    return {
      provider: new StripeProvider({
        secretKey: cfg.stripeSecretKey,
        webhookSecret: cfg.stripeWebhookSecret,
        toleranceS: cfg.toleranceS,
        ...(cfg.stripeApiUrl ? { apiUrl: cfg.stripeApiUrl } : {}),
      }),
      sandboxSecret,
    };
  }
  return { provider: new SandboxProvider(sandboxSecret, cfg.toleranceS, cfg.publicUrl ?? ''), sandboxSecret };
}
