import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import {
  bodyErrorResponses,
  errorResponses,
  loginBody,
  loginResponse,
  sessionState,
  type LoginBody,
} from '@kilowire/contract';
import {
  checkCredentials,
  revokeSession,
  sessionInfo,
  SESSION_COOKIE,
  startSession,
  type Credentials,
} from '../../auth/sessions.ts';
import { recordFailure, recordSuccess, throttled, accountKey, sourceKey } from '../../auth/throttle.ts';
import { withTx } from '../../db/pool.ts';
import { AppError } from '../../errors.ts';
import { actorOf, whoOf, type Routes } from '../http.ts';

function credentials(b: LoginBody): Credentials {
  return b.consumerId !== undefined
    ? { kind: 'consumer', consumerId: b.consumerId, password: b.password }
    : { kind: 'staff', email: b.email ?? '', password: b.password };
}

export const sessionRoutes: Routes = async (app, deps) => {
  const { pool, config } = deps;

  /** Secure whenever the request came over HTTPS (directly, or through a trusted proxy), or when configured. */
  const cookieOpts = (req: FastifyRequest) => ({
    path: '/',
    httpOnly: true,
    sameSite: 'lax' as const,
    secure: config.cookieSecure || req.protocol === 'https',
  });

  async function refuseIfThrottled(account: string, req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const wait = await throttled(pool, [accountKey(account, req.ip), sourceKey(req.ip)]);
    if (wait > 0) {
      void reply.header('retry-after', String(wait));
      throw new AppError('RATE_LIMITED', 'too many failed sign-ins from here; try again later');
    }
  }

  app.get(
    '/api/session',
    {
      config: { public: true },
      schema: {
        tags: ['session'],
        summary: 'Whether this browser is signed in (never 401: the portal asks before anyone has signed in)',
        security: [],
        response: { 200: sessionState, ...errorResponses },
      },
    },
    async (req) => {
      const token = req.cookies[SESSION_COOKIE];
      const s = token ? await sessionInfo(pool, token) : null;
      if (!s) return { signedIn: false as const };
      return {
        signedIn: true as const,
        user: {
          id: s.userId,
          role: s.role,
          displayName: s.displayName,
          mustChangePassword: s.mustChangePassword,
        },
        expiresAt: s.expiresAt.toISOString(),
      };
    },
  );

  app.post(
    '/api/session',
    {
      config: { public: true },
      schema: {
        tags: ['session'],
        summary: 'Sign in (consumers with consumer ID, staff with email); sets the kw_session cookie',
        security: [],
        body: loginBody,
        response: { 200: loginResponse, ...errorResponses, ...bodyErrorResponses },
      },
    },
    async (req, reply) => {
      const cred = credentials(req.body);
      const account = cred.kind === 'consumer' ? `c:${cred.consumerId}` : `e:${cred.email.toLowerCase()}`;
      await refuseIfThrottled(account, req, reply);
      const result = await checkCredentials(pool, cred);
      const target = cred.kind === 'consumer' ? cred.consumerId : cred.email.toLowerCase();
      if (!result.ok) {
        await recordFailure(pool, account, req.ip);
        await withTx(pool, { actorId: result.userId, ip: req.ip }, (t) =>
          t.audit('session.login_failed', target, { kind: cred.kind, reason: result.reason }),
        );
        // One answer for unknown user, wrong password and disabled user.
        throw new AppError('INVALID_CREDENTIALS', 'consumer ID, email or password is not correct');
      }
      await recordSuccess(pool, account, req.ip);
      const previous = req.cookies[SESSION_COOKIE];
      const session = await withTx(pool, { actorId: result.userId, ip: req.ip }, async (t) => {
        const s = await startSession(t.c, result.userId, config.sessionTtlHours, previous);
        await t.audit('session.login', String(result.userId));
        return s;
      });
      void reply.setCookie(SESSION_COOKIE, session.token, {
        ...cookieOpts(req),
        maxAge: config.sessionTtlHours * 3600,
      });
      return {
        user: {
          id: result.userId,
          role: result.role,
          displayName: result.displayName,
          mustChangePassword: result.mustChangePassword,
        },
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
      await withTx(pool, whoOf(req), async (t) => {
        if (token) await revokeSession(t.c, token);
        await t.audit('session.logout', String(actor.userId));
      });
      void reply.clearCookie(SESSION_COOKIE, cookieOpts(req));
      return reply.code(204).send(null);
    },
  );
};
