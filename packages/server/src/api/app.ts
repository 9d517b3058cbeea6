import { webRoutes } from './web.ts';
import type { KeyObject } from 'node:crypto';
import Fastify, { LogController, type FastifyError, type FastifyInstance } from 'fastify';
import fastifyCookie from '@fastify/cookie';
import fastifyRateLimit from '@fastify/rate-limit';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import {
  hasZodFastifySchemaValidationErrors,
  jsonSchemaTransform,
  ResponseSerializationError,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import type { Config } from '../config.ts';
import type { Pool } from '../db/pool.ts';
import type { Logger } from '../log.ts';
import { AppError, type AppErrorCode } from '../errors.ts';
import { metrics } from '../metrics.ts';
import { SESSION_COOKIE, sessionActor } from '../auth/sessions.ts';
import type { ApiApp, ApiDeps } from './http.ts';
import { alertRoutes } from './routes/alerts.ts';
import { commandRoutes } from './routes/commands.ts';
import { healthRoutes } from './routes/health.ts';
import { homeRoutes } from './routes/home.ts';
import { limitRoutes } from './routes/limits.ts';
import { outboxRoutes } from './routes/outbox.ts';
import { profileRoutes } from './routes/profile.ts';
import { meRoutes } from './routes/me.ts';
import { meterRoutes } from './routes/meters.ts';
import { readingRoutes } from './routes/readings.ts';
import { sessionRoutes } from './routes/session.ts';

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
  code: AppErrorCode,
  message: string,
  issues?: { path: string; message: string }[],
): ErrorBody {
  return { error: issues ? { code, message, issues } : { code, message } };
}

const CLIENT_ERROR_CODES: Record<number, AppErrorCode> = {
  400: 'VALIDATION',
  404: 'NOT_FOUND',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  429: 'RATE_LIMITED',
};

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Build the HTTP API (not listening): the host process calls `listen`, tests call `inject`. */
export async function buildApi(deps: {
  pool: Pool;
  config: Config;
  log: Logger;
  commandKey: KeyObject;
  ready?: () => { mqtt: boolean };
}): Promise<FastifyInstance> {
  const { pool, log } = deps;
  const base = Fastify({
    loggerInstance: log,
    // Two log lines per request cost more than a home call's queries; request timing goes to
    // the kilowire_http_request_duration_seconds histogram instead, errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT,
    // HEAD routes would double the surface the authorisation test must walk, for no client.
    exposeHeadRoutes: false,
    // Behind a load balancer set trustProxy so req.ip (rate limits, audit) is the client's.
    trustProxy: false,
  });
  const app = base.withTypeProvider<ZodTypeProvider>() as unknown as ApiApp;

  const routes: RouteEntry[] = [];
  routeLists.set(base as unknown as FastifyInstance, routes);
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
  await app.register(fastifyRateLimit, { global: false });
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Kilowire API',
        version: '1.0.0',
        description:
          'Smart metering head-end API. Sign in with POST /api/session; the kw_session cookie carries the session. ' +
          'State-changing requests must be sent as application/json. Energy is integer Wh.',
      },
      components: { securitySchemes: { session: { type: 'apiKey', in: 'cookie', name: SESSION_COOKIE } } },
      security: [{ session: [] }],
    },
    transform: jsonSchemaTransform,
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });

  // CSRF. The session cookie is SameSite=Lax, and on top of that every state-changing request
  // must declare content-type: application/json. A cross-site HTML form can only send
  // urlencoded, multipart or text/plain bodies, and a cross-site fetch with a JSON content type
  // needs a CORS preflight, which this API never grants; so no other site can make a signed-in
  // browser change anything here.
  app.addHook('onRequest', (req, _reply, done) => {
    const ct = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (SAFE_METHODS.has(req.method) || ct === 'application/json') {
      done();
      return;
    }
    done(
      new AppError(
        'UNSUPPORTED_MEDIA_TYPE',
        'state-changing requests must have content-type: application/json',
      ),
    );
  });

  // Authentication: every /api route needs a live session unless it is marked public.
  // (Authorisation is per route, through src/policies.ts.)
  app.decorateRequest('actor', null);
  app.addHook('onRequest', async (req, reply) => {
    // Decided on the matched route pattern, not the raw URL, so no spelling of a path slips past.
    const route = req.routeOptions.url;
    if (route === undefined || !route.startsWith('/api/') || req.routeOptions.config.public === true) return;
    const token = req.cookies[SESSION_COOKIE];
    const actor = token ? await sessionActor(pool, token) : null;
    if (!actor) {
      if (token) void reply.clearCookie(SESSION_COOKIE, { path: '/' });
      throw new AppError('UNAUTHENTICATED', 'not signed in, or the session has expired');
    }
    req.actor = actor;
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
      if (err.status >= 500) req.log.error({ err }, 'request failed');
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
  healthRoutes(app, routeDeps);
  sessionRoutes(app, routeDeps);
  meRoutes(app, routeDeps);
  meterRoutes(app, routeDeps);
  readingRoutes(app, routeDeps);
  commandRoutes(app, routeDeps);
  homeRoutes(app, routeDeps);
  limitRoutes(app, routeDeps);
  profileRoutes(app, routeDeps);
  alertRoutes(app, routeDeps);
  outboxRoutes(app, routeDeps);
  await webRoutes(base as unknown as FastifyInstance);

  return base as unknown as FastifyInstance;
}
