import {
  bodyErrorResponses,
  errorBody,
  errorResponses,
  refundBody,
  sandboxPayBody,
  sandboxPayResponse,
  sandboxSession,
  sandboxSessionParams,
  topupBody,
  topupHeaders,
  topupIdParams,
  topupItem,
  topupsQuery,
  topupsResponse,
  webhookResponse,
  type Topup,
} from '@kilowire/contract';
import { privateKeyFromB64 } from '@kilowire/protocol';
import { AppError } from '../../errors.ts';
import { findVisibleMeter } from '../../meters/queries.ts';
import { createProvider, WebhookError } from '../../money/payments/index.ts';
import { sandboxPay, sandboxSession as loadSandboxSession } from '../../money/payments/sandbox.ts';
import {
  applyProviderEvent,
  createTopup,
  listTopups,
  requestRefund,
  visibleTopup,
  type TopupDeps,
  type TopupRow,
} from '../../money/topups.ts';
import { requireCapability } from '../../policies.ts';
import { actorOf, iso, whoOf, type ApiDeps, type Routes } from '../http.ts';

/** The payment routes' shared state: one provider per API instance. */
function topupDeps(deps: ApiDeps): TopupDeps {
  const { provider } = createProvider(deps.config.payments, deps.pool);
  const p = deps.config.payments;
  return {
    provider,
    commandKey: privateKeyFromB64(deps.config.commandSigningKey),
    commandTtlS: deps.config.commands.ttlS,
    limits: { minMinor: p.minMinor, maxMinor: p.maxMinor, dailyMaxMinor: p.dailyMaxMinor },
    publicUrl: p.publicUrl ?? '',
  };
}

// Per process and safely so: built from configuration only (the sandbox secret it reaches is
// one database row, written once).
const cache = new WeakMap<ApiDeps, TopupDeps>();
function depsOf(deps: ApiDeps): TopupDeps {
  let d = cache.get(deps);
  if (!d) {
    d = topupDeps(deps);
    cache.set(deps, d);
  }
  return d;
}

export function presentTopup(t: TopupRow): Topup {
  return {
    id: t.id,
    kind: t.kind,
    meterSerial: t.serial,
    amountMinor: t.amount_minor,
    currency: t.currency,
    status: t.status,
    waitingForMeter: t.waiting_for_meter,
    failureReason: t.failure_reason,
    refundedMinor: t.refunded_minor,
    provider: t.provider,
    paymentUrl: t.status === 'pending' || t.status === 'declined' ? t.checkout_url : null,
    createdAt: t.created_at.toISOString(),
    paidAt: iso(t.paid_at),
    appliedAt: iso(t.applied_at),
    refundedAt: iso(t.refunded_at),
  };
}

function encodeCursor(t: TopupRow): string {
  return Buffer.from(`${t.created_at.toISOString()}|${t.id}`).toString('base64url');
}

function decodeCursor(c: string | undefined): { at: Date; id: string } | null {
  if (c === undefined) return null;
  const [at, id] = Buffer.from(c, 'base64url').toString('utf8').split('|');
  const d = new Date(at ?? '');
  if (!id || Number.isNaN(d.getTime()) || !/^[0-9a-f-]{36}$/.test(id))
    throw new AppError('VALIDATION', 'query.cursor: not a cursor from this API', [
      { path: 'query.cursor', message: 'not a cursor from this API' },
    ]);
  return { at: d, id };
}

/** Top-ups and payments: start one, follow it, list them, refund one (staff). */
export const topupRoutes: Routes = async (app, deps) => {
  const { pool } = deps;

  app.post(
    '/api/top-ups',
    {
      schema: {
        tags: ['consumer'],
        summary:
          'Start a top-up (prepayment) or a payment toward the balance (credit account); pay at paymentUrl. Idempotent per Idempotency-Key.',
        headers: topupHeaders,
        body: topupBody,
        response: {
          201: topupItem.describe('A new top-up'),
          200: topupItem.describe('The top-up this Idempotency-Key started before'),
          422: errorBody.describe(
            'Amount outside the limits (TOPUP_LIMIT), or the key was used for another body (IDEMPOTENCY_KEY_REUSED)',
          ),
          502: errorBody.describe(
            'The payment provider did not answer (PROVIDER_ERROR); retry with the same key',
          ),
          ...errorResponses,
          ...bodyErrorResponses,
        },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      requireCapability(actor, 'topups.create');
      const m = await findVisibleMeter(pool, actor, req.body.meterSerial);
      const { topup, created } = await createTopup(
        pool,
        depsOf(deps),
        {
          actor,
          meter: m,
          amountMinor: req.body.amountMinor,
          idempotencyKey: req.headers['idempotency-key'],
        },
        whoOf(req),
      );
      if (!created) void reply.header('idempotent-replayed', 'true');
      return reply.code(created ? 201 : 200).send(presentTopup(topup));
    },
  );

  app.get(
    '/api/top-ups',
    {
      schema: {
        tags: ['consumer', 'supplier'],
        summary:
          "Top-ups, newest first (a household's own; supplier staff those for their meters), with the limits",
        querystring: topupsQuery,
        response: { 200: topupsResponse, ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'topups.read');
      const rows = await listTopups(pool, actor, req.query.limit + 1, decodeCursor(req.query.cursor));
      const page = rows.slice(0, req.query.limit);
      const d = depsOf(deps);
      return {
        items: page.map(presentTopup),
        nextCursor: rows.length > req.query.limit ? encodeCursor(page[page.length - 1]!) : null,
        limits: d.limits,
        provider: d.provider.name,
      };
    },
  );

  app.get(
    '/api/top-ups/:id',
    {
      schema: {
        tags: ['consumer', 'supplier'],
        summary: 'One top-up: pending -> paid -> applied (on the meter), or declined, expired, refunded',
        params: topupIdParams,
        response: { 200: topupItem, ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'topups.read');
      return presentTopup(await visibleTopup(pool, actor, req.params.id));
    },
  );

  app.post(
    '/api/top-ups/:id/refund',
    {
      schema: {
        tags: ['supplier'],
        summary:
          'Give (part of) a payment back to the card; the provider confirms by webhook, which books it',
        params: topupIdParams,
        body: refundBody,
        response: {
          202: topupItem,
          409: errorBody.describe('Nothing paid to refund (CONFLICT)'),
          502: errorBody.describe('The payment provider refused or did not answer (PROVIDER_ERROR)'),
          ...errorResponses,
          ...bodyErrorResponses,
        },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      requireCapability(actor, 'topups.refund');
      const t = await visibleTopup(pool, actor, req.params.id);
      await requestRefund(pool, depsOf(deps), t, req.body.amountMinor, whoOf(req));
      return reply.code(202).send(presentTopup(await visibleTopup(pool, actor, t.id)));
    },
  );
};

/** Webhooks are signed over their exact bytes; larger than the API's usual bodies (Stripe's can be). */
const WEBHOOK_BODY_LIMIT = 512 * 1024;

/**
 * The provider's webhook. Public (no session; the signature is the authentication) and exempt
 * from the browser CSRF walls (see app.ts: `signedWebhook`). In a plugin of its own so that
 * only here is the JSON body kept as the raw text the signature covers.
 */
export const paymentWebhookRoutes: Routes = async (app, deps) => {
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser(
    'application/json',
    { parseAs: 'string', bodyLimit: WEBHOOK_BODY_LIMIT },
    (_req, body, done) => done(null, body),
  );

  app.post(
    '/api/payments/webhook',
    {
      config: { public: true, signedWebhook: true },
      bodyLimit: WEBHOOK_BODY_LIMIT,
      schema: {
        tags: ['payments'],
        summary:
          "The payment provider's events (Stripe, or the built-in sandbox), signed with Stripe-Signature. Each event id counts once.",
        security: [],
        response: {
          200: webhookResponse,
          400: errorBody.describe('Signature or timestamp does not verify (BAD_SIGNATURE); nothing changed'),
          ...bodyErrorResponses,
          414: errorResponses[414],
          503: errorResponses[503],
        },
      },
    },
    async (req) => {
      const raw = typeof req.body === 'string' ? req.body : '';
      const sig = req.headers['stripe-signature'];
      const d = depsOf(deps);
      let ev;
      try {
        ev = await d.provider.verifyWebhook(raw, Array.isArray(sig) ? sig[0] : sig);
      } catch (err) {
        if (err instanceof WebhookError)
          throw new AppError('BAD_SIGNATURE', `webhook refused: ${err.message}`);
        throw err;
      }
      const r = await applyProviderEvent(deps.pool, d, ev);
      return { received: true as const, duplicate: r.duplicate };
    },
  );

  // The sandbox's card page (portal /pay/sandbox/<checkout>) reads and pays through these.
  // Public like Stripe's own page: the unguessable checkout id is the capability.
  app.get(
    '/api/payments/sandbox/:session',
    {
      config: { public: true },
      schema: {
        tags: ['payments'],
        summary: 'SANDBOX: the checkout the sandbox card page shows',
        security: [],
        params: sandboxSessionParams,
        response: { 200: sandboxSession, ...errorResponses },
      },
    },
    async (req) => {
      if (depsOf(deps).provider.name !== 'sandbox') throw new AppError('NOT_FOUND', 'no sandbox here');
      return loadSandboxSession(deps.pool, req.params.session);
    },
  );
};

/** The sandbox's "Pay" button: JSON like every other state-changing call of the portal. */
export const sandboxPayRoutes: Routes = async (app, deps) => {
  app.post(
    '/api/payments/sandbox/:session/pay',
    {
      config: { public: true },
      schema: {
        tags: ['payments'],
        summary:
          'SANDBOX: pay with a test card (4242 4242 4242 4242 succeeds, 4000 0000 0000 0002 is declined); the result arrives by webhook',
        security: [],
        params: sandboxSessionParams,
        body: sandboxPayBody,
        response: {
          200: sandboxPayResponse,
          409: errorBody.describe('The checkout expired (CONFLICT)'),
          422: errorBody.describe('Not a sandbox test card (CARD_UNKNOWN)'),
          ...errorResponses,
          ...bodyErrorResponses,
        },
      },
    },
    async (req) => {
      if (depsOf(deps).provider.name !== 'sandbox') throw new AppError('NOT_FOUND', 'no sandbox here');
      return sandboxPay(deps.pool, req.params.session, req.body.cardNumber);
    },
  );
};
