import { z } from 'zod';
import { PAYMENT_PROVIDERS, TOPUP_KINDS, TOPUP_STATUSES } from './enums.ts';
import { cursor, limit, serial } from './common.ts';

/** POST /api/top-ups. The Idempotency-Key header is required (see topupHeaders). */
export const topupBody = z.strictObject({
  meterSerial: serial,
  amountMinor: z
    .number()
    .int()
    .min(1)
    .max(100_000_000)
    .describe('Amount in minor units (pence); within the limits of GET /api/top-ups'),
});
export type TopupBody = z.infer<typeof topupBody>;

export const topupHeaders = z.object({
  'idempotency-key': z
    .string()
    .min(8)
    .max(255)
    .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces')
    .describe(
      'Chosen by the client per top-up (e.g. a UUID): the same key returns the same top-up however often it is sent; the same key with another body is refused (IDEMPOTENCY_KEY_REUSED)',
    ),
});

export const topupIdParams = z.object({ id: z.uuid() });

export const topupItem = z.object({
  id: z.uuid().describe('Also the top-up id the meter receives'),
  kind: z.enum(TOPUP_KINDS),
  meterSerial: z.string(),
  amountMinor: z.number().int(),
  currency: z.string(),
  status: z.enum(TOPUP_STATUSES),
  /**
   * Paid, but the meter has not confirmed the credit for a while (it is offline, or the first
   * credit command expired and was sent again): the credit waits until the meter is reachable.
   */
  waitingForMeter: z.boolean(),
  failureReason: z.string().nullable().describe('Why it was declined, in plain words'),
  refundedMinor: z.number().int(),
  provider: z.enum(PAYMENT_PROVIDERS),
  paymentUrl: z.string().nullable().describe('Where the household pays (while pending)'),
  createdAt: z.string(),
  paidAt: z.string().nullable(),
  appliedAt: z.string().nullable(),
  refundedAt: z.string().nullable(),
});
export type Topup = z.infer<typeof topupItem>;

export const topupLimits = z.object({
  minMinor: z.number().int(),
  maxMinor: z.number().int(),
  dailyMaxMinor: z.number().int().describe('Per account and local day, counting paid and open top-ups'),
});
export type TopupLimits = z.infer<typeof topupLimits>;

export const topupsQuery = z.strictObject({ limit: limit(100, 20), cursor: cursor.optional() });
export type TopupsQuery = z.infer<typeof topupsQuery>;

export const topupsResponse = z.object({
  items: z.array(topupItem),
  nextCursor: z.string().nullable(),
  limits: topupLimits,
  provider: z.enum(PAYMENT_PROVIDERS),
});
export type TopupPage = z.infer<typeof topupsResponse>;

export const refundBody = z.strictObject({
  amountMinor: z.number().int().min(1).max(100_000_000).optional().describe('Default: what is left'),
});

/** The provider answered the webhook: 200 with whether this delivery changed anything. */
export const webhookResponse = z.object({ received: z.literal(true), duplicate: z.boolean() });

// ------------------------------------------------------------------ the sandbox payment page

export const sandboxSessionParams = z.object({
  session: z
    .string()
    .min(10)
    .max(100)
    .regex(/^cs_sandbox_[A-Za-z0-9_-]+$/),
});

export const sandboxSession = z.object({
  amountMinor: z.number().int(),
  currency: z.string(),
  description: z.string(),
  status: z.enum(['open', 'processing', 'complete', 'declined', 'expired']),
  returnUrl: z.string().describe('Where to go after paying (the top-up page)'),
  cancelUrl: z.string(),
});
export type SandboxSession = z.infer<typeof sandboxSession>;

export const sandboxPayBody = z.strictObject({
  cardNumber: z
    .string()
    .max(30)
    .regex(/^[0-9 ]+$/, 'digits and spaces only'),
  expiry: z
    .string()
    .regex(/^(0[1-9]|1[0-2]) ?\/ ?\d{2}$/, 'MM/YY')
    .optional(),
  cvc: z
    .string()
    .regex(/^\d{3,4}$/, '3 or 4 digits')
    .optional(),
});
export type SandboxPayBody = z.infer<typeof sandboxPayBody>;

export const sandboxPayResponse = z.object({
  outcome: z.enum(['succeeded', 'declined']),
  message: z.string(),
  returnUrl: z.string(),
});
export type SandboxPayResponse = z.infer<typeof sandboxPayResponse>;
