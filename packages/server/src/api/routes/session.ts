import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { audit } from '../../audit.ts';
import {
  checkCredentials,
  revokeSession,
  SESSION_COOKIE,
  startSession,
  type Credentials,
} from '../../auth/sessions.ts';
import { AppError } from '../../errors.ts';
import { actorOf, errorResponses, timestamp, type ApiApp, type ApiDeps } from '../http.ts';

/** Login attempts per client IP per minute (a household or an office behind one NAT). */
const LOGIN_PER_IP = 30;
/** Login attempts per consumer ID / email per minute, from anywhere: slows guessing one account. */
const LOGIN_PER_IDENTIFIER = 10;
const WINDOW_MS = 60_000;

export const loginBody = z
  .strictObject({
    consumerId: z
      .string()
      .min(1)
      .max(64)
      .optional()
      .describe('Consumers: the consumer ID printed on the bill'),
    email: z.string().min(3).max(254).optional().describe('Staff: work email'),
    password: z.string().min(1).max(1024),
  })
  .refine((b) => (b.consumerId === undefined) !== (b.email === undefined), {
    message: 'give exactly one of consumerId (consumers) or email (staff)',
    path: ['consumerId'],
  });
type LoginBody = z.infer<typeof loginBody>;

const loginResponse = z.object({
  user: z.object({
    id: z.number(),
    role: z.enum(['consumer', 'supplier', 'operator', 'admin']),
    displayName: z.string(),
  }),
  expiresAt: timestamp,
});

function credentials(b: LoginBody): Credentials {
  return b.consumerId !== undefined
    ? { kind: 'consumer', consumerId: b.consumerId, password: b.password }
    : { kind: 'staff', email: b.email ?? '', password: b.password };
}

function identifierKey(req: FastifyRequest): string {
  const b = req.body as Partial<LoginBody> | undefined;
  return b?.consumerId !== undefined ? `c:${b.consumerId}` : `e:${(b?.email ?? '').toLowerCase()}`;
}

export function sessionRoutes(app: ApiApp, deps: ApiDeps): void {
  const { pool, config } = deps;
  const perIp = app.createRateLimit({ max: LOGIN_PER_IP, timeWindow: WINDOW_MS });
  const perIdentifier = app.createRateLimit({
    max: LOGIN_PER_IDENTIFIER,
    timeWindow: WINDOW_MS,
    keyGenerator: identifierKey,
  });

  const cookieOpts = {
    path: '/',
    httpOnly: true,
    sameSite: 'lax' as const,
    secure: config.cookieSecure,
  };

  async function limit(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    for (const check of [perIp, perIdentifier]) {
      const r = await check(req);
      if (!r.isAllowed && r.isExceeded) {
        void reply.header('retry-after', String(r.ttlInSeconds));
        throw new AppError('RATE_LIMITED', 'too many login attempts; try again later');
      }
    }
  }

  app.post(
    '/api/session',
    {
      config: { public: true },
      schema: {
        tags: ['session'],
        summary: 'Sign in (consumers with consumer ID, staff with email); sets the kw_session cookie',
        body: loginBody,
        response: { 200: loginResponse, ...errorResponses },
      },
    },
    async (req, reply) => {
      await limit(req, reply);
      const cred = credentials(req.body);
      const result = await checkCredentials(pool, cred);
      const target = cred.kind === 'consumer' ? cred.consumerId : cred.email.toLowerCase();
      if (!result.ok) {
        await audit(pool, {
          actorId: result.userId,
          action: 'session.login_failed',
          target,
          detail: { kind: cred.kind, reason: result.reason },
          ip: req.ip,
        });
        // One answer for unknown user, wrong password and disabled user.
        throw new AppError('INVALID_CREDENTIALS', 'consumer ID, email or password is not correct');
      }
      const previous = req.cookies[SESSION_COOKIE];
      const session = await startSession(pool, result.userId, config.sessionTtlHours, previous, req.ip);
      void reply.setCookie(SESSION_COOKIE, session.token, {
        ...cookieOpts,
        maxAge: config.sessionTtlHours * 3600,
      });
      return {
        user: { id: result.userId, role: result.role, displayName: result.displayName },
        expiresAt: session.expiresAt.toISOString(),
      };
    },
  );

  app.delete(
    '/api/session',
    {
      schema: {
        tags: ['session'],
        summary: 'Sign out: revokes the session and clears the cookie',
        response: { 204: z.null().describe('Signed out'), ...errorResponses },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      const token = req.cookies[SESSION_COOKIE];
      if (token) await revokeSession(pool, token);
      await audit(pool, {
        actorId: actor.userId,
        action: 'session.logout',
        target: String(actor.userId),
        ip: req.ip,
      });
      void reply.clearCookie(SESSION_COOKIE, cookieOpts);
      return reply.code(204).send(null);
    },
  );
}
