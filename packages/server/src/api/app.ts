import type { KeyObject } from 'node:crypto';
import Fastify, {
  LogController,
  type FastifyError,
  type FastifyInstance,
  type FastifyRequest,
} from 'fastify';
import fastifyCookie from '@fastify/cookie';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import {
  hasZodFastifySchemaValidationErrors,
  jsonSchemaTransform,
  ResponseSerializationError,
  serializerCompiler,
  validatorCompiler,
} from 'fastify-type-provider-zod';
import type { ApiErrorCode } from '@kilowire/contract/enums';
import type { Config } from '../config.ts';
import { isConnectionError, type Pool } from '../db/pool.ts';
import type { Logger } from '../log.ts';
import { AppError } from '../errors.ts';
import { metrics } from '../metrics.ts';
import { SESSION_COOKIE, sessionActor } from '../auth/sessions.ts';
import type { ApiDeps } from './http.ts';
import { accountRoutes } from './routes/accounts.ts';
import { adminRoutes } from './routes/admin.ts';
import { alertRoutes } from './routes/alerts.ts';
import { billRoutes } from './routes/bills.ts';
// #9 collection
import { collectionRoutes } from './routes/collection.ts';
// #9 collection end
import { fleetRoutes } from './routes/fleet.ts';
import { commandRoutes } from './routes/commands.ts';
import { healthRoutes } from './routes/health.ts';
import { homeRoutes } from './routes/home.ts';
import { limitRoutes } from './routes/limits.ts';
import { outboxRoutes } from './routes/outbox.ts';
import { paymentWebhookRoutes, sandboxPayRoutes, topupRoutes } from './routes/payments.ts';
import { profileRoutes } from './routes/profile.ts';
import { meRoutes } from './routes/me.ts';
import { meterRoutes } from './routes/meters.ts';
import { readingRoutes } from './routes/readings.ts';
import { sessionRoutes } from './routes/session.ts';
import { tariffRoutes } from './routes/tariffs.ts';
// #10 B firmware images
import { firmwareImageRoutes } from './routes/firmware-images.ts';
import { supplyRoutes } from './routes/supply.ts';
import { MAX_PARAM_LENGTH, webRoutes } from './web.ts';
import { caseRoutes } from './routes/cases.ts';
import { netbillingRoutes } from './routes/netbilling.ts';
// #9 outages
import { outageRoutes } from './routes/outages.ts';
import { firmwareCampaignRoutes } from './routes/firmware-campaigns.ts'; // #10 C

export type { ApiDeps } from './http.ts';

/** Request bodies are small JSON documents (login, commands); anything bigger is refused (413). */
const BODY_LIMIT = 64 * 1024;

export interface RouteEntry {
  method: string;
  /** The route pattern, e.g. /api/meters/:serial/daily. */
  url: string;
}

const routeLists = new WeakMap<FastifyInstance, RouteEntry[]>();

/**
 * Every route registered on an app built by `buildApi` (collected by an onRoute hook), so a
 * test can walk them all: a newly added route is covered (or fails the test) automatically.
 */
export function registeredRoutes(app: FastifyInstance): readonly RouteEntry[] {
  return routeLists.get(app) ?? [];
}

type ErrorBody = { error: { code: string; message: string; issues?: { path: string; message: string }[] } };

function errorBody(
  code: ApiErrorCode,
  message: string,
  issues?: { path: string; message: string }[],
): ErrorBody {
  return { error: issues ? { code, message, issues } : { code, message } };
}

const CLIENT_ERROR_CODES: Record<number, ApiErrorCode> = {
  400: 'VALIDATION',
  404: 'NOT_FOUND',
  413: 'PAYLOAD_TOO_LARGE',
  414: 'URI_TOO_LONG',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  429: 'RATE_LIMITED',
};

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** What a user who must change their initial password may still call: who am I, sign out, change it. */
const PASSWORD_CHANGE_ROUTES = new Set([
  'GET /api/session',
  'DELETE /api/session',
  'GET /api/me',
  'POST /api/me/password',
]);

const API_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
};
const DOCS_HEADERS = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'same-origin',
};

/** The first string under `v` that holds a NUL character, as a dotted path; PostgreSQL cannot store one. */
function findNul(v: unknown, path: string, depth = 0): string | null {
  if (typeof v === 'string') return v.includes('\u0000') ? path : null;
  if (depth > 8 || v === null || typeof v !== 'object') return null;
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (k.includes('\u0000')) return `${path}.${k.split('\u0000').join('\\0')}`;
    const p = findNul(x, `${path}.${k}`, depth + 1);
    if (p) return p;
  }
  return null;
}

/** The origin this request was addressed to (behind a trusted proxy: the proxy's scheme and host). */
function ownOrigin(req: FastifyRequest): string {
  return `${req.protocol}://${req.host}`;
}

/** Build the HTTP API (not listening): the host process calls `listen`, tests call `inject`. */
export async function buildApi(deps: {
  pool: Pool;
  config: Config;
  log: Logger;
  commandKey: KeyObject;
  ready?: ApiDeps['ready'];
}): Promise<FastifyInstance> {
  const { pool, log, config } = deps;
  const tp = config.trustProxy;
  const app = Fastify({
    loggerInstance: log,
    // Two log lines per request cost more than a home call's queries; request timing goes to
    // the kilowire_http_request_duration_seconds histogram instead, errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // HEAD routes would double the surface the authorisation test must walk, for no client.
    exposeHeadRoutes: false,
    // Behind a load balancer set TRUST_PROXY so req.ip (throttling, audit) and req.protocol
    // (the Secure cookie, the CSRF origin check) are the client's.
    trustProxy: typeof tp === 'number' ? (_addr: string, hop: number) => hop < tp : tp,
  }) as unknown as FastifyInstance; // pino's Logger type vs Fastify's base logger type

  const routes: RouteEntry[] = [];
  routeLists.set(app, routes);
  app.addHook('onRoute', (r) => {
    for (const method of Array.isArray(r.method) ? r.method : [r.method]) routes.push({ method, url: r.url });
  });

  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  // DELETE /api/session carries content-type: application/json (see the CSRF rule below) but
  // usually no body; the default parser would call that an error.
  const defaultJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser(
    'application/json',
    { parseAs: 'string', bodyLimit: BODY_LIMIT },
    (req, body, done) => {
      if (body === '') {
        done(null, undefined);
        return;
      }
      void defaultJson(req, body as string, done);
    },
  );

  await app.register(fastifyCookie);
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Kilowire API',
        version: '1.0.0',
        description:
          'Smart metering head-end API. Sign in with POST /api/session; the kw_session cookie carries the session. ' +
          'State-changing requests must be sent as application/json and, from a browser, from this origin. ' +
          'Energy is integer Wh, money integer minor units, times ISO 8601. Errors: { error: { code, message, issues? } } with a stable code.',
      },
      components: { securitySchemes: { session: { type: 'apiKey', in: 'cookie', name: SESSION_COOKIE } } },
      security: [{ session: [] }],
    },
    transform: jsonSchemaTransform,
  });
  await app.register(fastifySwaggerUi, {
    routePrefix: '/docs',
    // Swagger UI with a CSP that allows only its own files (hashes for its inline parts).
    staticCSP: true,
    transformStaticCSP: (h) => `${h}; frame-ancestors 'none'`,
  });

  // One gate per request (one hook, not four: this runs on every call, and each hook costs).
  // In order:
  // - headers: API answers depend on who asks, so they are never cached or sniffed; /docs is
  //   never framed. Set first, so error answers carry them too.
  // - starting: while the process waits for its database or starts its services, the API says so.
  // - CSRF, two walls. (1) Every state-changing request must declare content-type:
  //   application/json: a cross-site HTML form can only send urlencoded, multipart or
  //   text/plain, and a cross-site fetch with JSON needs a CORS preflight this API never
  //   grants. (2) A browser says where a request comes from (Origin, Sec-Fetch-Site): anything
  //   but this origin (or a configured one) is refused. Clients that send neither (curl,
  //   scripts) carry no one else's cookies and pass.
  // - authentication: every /api route needs a live session unless it is marked public,
  //   decided on the matched route pattern (no spelling of a path slips past). Authorisation
  //   is per route, through src/policies.ts.
  const allowed = new Set(config.allowedOrigins);
  app.decorateRequest('actor', null);
  app.addHook('onRequest', async (req, reply) => {
    const route = req.routeOptions.url;
    const isApi = route !== undefined && route.startsWith('/api/');
    if (isApi || req.url.startsWith('/api/')) void reply.headers(API_HEADERS);
    else if (req.url.startsWith('/docs')) void reply.headers(DOCS_HEADERS);

    if (isApi && deps.ready?.().started === false) {
      throw new AppError('UNAVAILABLE', 'Kilowire is starting; try again in a moment');
    }

    // A provider's webhook (POST /api/payments/webhook) is no browser request: its signature
    // over the raw body is its authentication, checked by the route.
    if (!SAFE_METHODS.has(req.method) && req.routeOptions.config.signedWebhook !== true) {
      const ct = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      // #10 B an image upload sends raw bytes: as safe against forms and preflight-free fetches as JSON.
      const raw = req.routeOptions.config.rawUpload === true && ct === 'application/octet-stream';
      if (ct !== 'application/json' && !raw) {
        throw new AppError(
          'UNSUPPORTED_MEDIA_TYPE',
          'state-changing requests must have content-type: application/json',
        );
      }
      const origin = req.headers.origin;
      const site = req.headers['sec-fetch-site'];
      const fromHere = origin === undefined ? undefined : origin === ownOrigin(req) || allowed.has(origin);
      if (fromHere === false || (fromHere === undefined && (site === 'cross-site' || site === 'same-site'))) {
        throw new AppError('FOREIGN_ORIGIN', 'requests that change something must come from this site');
      }
    }

    if (!isApi || req.routeOptions.config.public === true) return;
    const token = req.cookies[SESSION_COOKIE];
    const actor = token ? await sessionActor(pool, token) : null;
    if (!actor) {
      if (token) void reply.clearCookie(SESSION_COOKIE, { path: '/' });
      throw new AppError('UNAUTHENTICATED', 'not signed in, or the session has expired');
    }
    req.actor = actor;
    // An initial password someone else chose opens nothing but choosing one's own. Decided on
    // the actor the session query already loaded: no second query per request.
    if (actor.mustChangePassword && !PASSWORD_CHANGE_ROUTES.has(`${req.method} ${route}`)) {
      throw new AppError('PASSWORD_CHANGE_REQUIRED', 'choose a new password first (POST /api/me/password)');
    }
  });

  // Input PostgreSQL cannot hold (NUL characters) is refused up front, whatever the field.
  app.addHook('preValidation', (req, _reply, done) => {
    // Only URLs with an escape (%00) or a body can carry a NUL: most GETs skip the walk.
    const at =
      (req.url.includes('%') ? (findNul(req.params, 'params') ?? findNul(req.query, 'query')) : null) ??
      (req.body === undefined ? null : findNul(req.body, 'body'));
    if (at)
      done(
        new AppError('VALIDATION', `${at}: must not contain NUL characters`, [
          { path: at, message: 'NUL character' },
        ]),
      );
    else done();
  });

  app.addHook('onResponse', async (req, reply) => {
    metrics.httpSeconds.observe(
      { method: req.method, route: req.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });

  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err instanceof AppError) {
      const issues = Array.isArray(err.details)
        ? (err.details as { path: string; message: string }[])
        : undefined;
      if (err.status >= 500 && err.code !== 'UNAVAILABLE') req.log.error({ err }, 'request failed');
      if (err.code === 'UNAVAILABLE') void reply.header('retry-after', '2');
      return reply.code(err.status).send(errorBody(err.code, err.message, issues));
    }
    if (hasZodFastifySchemaValidationErrors(err)) {
      const where = err.validationContext === 'querystring' ? 'query' : (err.validationContext ?? 'request');
      const validation = err.validation as { instancePath: string; message?: string }[];
      const issues = validation.map((v) => {
        const path = [where, ...v.instancePath.split('/').filter(Boolean)].join('.');
        return { path, message: v.message ?? 'invalid' };
      });
      const message = issues.map((i) => `${i.path}: ${i.message}`).join('; ');
      return reply.code(400).send(errorBody('VALIDATION', message, issues));
    }
    if (err instanceof ResponseSerializationError) {
      req.log.error({ err, issues: err.cause.issues }, 'response does not match its schema');
      return reply.code(500).send(errorBody('INTERNAL', 'internal error'));
    }
    if (isConnectionError(err)) {
      // The database is restarting or unreachable: a moment's unavailability, not a bug.
      void reply.header('retry-after', '2');
      return reply
        .code(503)
        .send(errorBody('UNAVAILABLE', 'the service is briefly unavailable; try again in a moment'));
    }
    const status = typeof err.statusCode === 'number' ? err.statusCode : 500;
    const code = CLIENT_ERROR_CODES[status];
    if (status >= 400 && status < 500) {
      // Fastify's own client errors (bad JSON, body too large): their messages are generic.
      return reply.code(status).send(errorBody(code ?? 'VALIDATION', err.message));
    }
    req.log.error({ err }, 'request failed');
    return reply.code(500).send(errorBody('INTERNAL', 'internal error'));
  });

  app.setNotFoundHandler((_req, reply) => reply.code(404).send(errorBody('NOT_FOUND', 'no such route')));

  const routeDeps: ApiDeps = deps;
  for (const plugin of [
    healthRoutes,
    sessionRoutes,
    meRoutes,
    meterRoutes,
    readingRoutes,
    commandRoutes,
    homeRoutes,
    limitRoutes,
    profileRoutes,
    alertRoutes,
    outboxRoutes,
    topupRoutes,
    paymentWebhookRoutes,
    sandboxPayRoutes,
    accountRoutes,
    billRoutes,
    tariffRoutes,
    adminRoutes,
    // #10 B firmware images
    firmwareImageRoutes,
    supplyRoutes,
    caseRoutes,
    // #9 outages
    outageRoutes,
    fleetRoutes,
    // #9 collection
    collectionRoutes,
    // #9 collection end
    // #9 charges
    netbillingRoutes,
    firmwareCampaignRoutes, // #10 C
  ]) {
    await app.register(plugin, routeDeps);
  }
  await webRoutes(app);

  return app;
}
