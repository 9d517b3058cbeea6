import { z } from 'zod';
import {
  bodyErrorResponses,
  errorResponses,
  passwordBody,
  profileBody,
  profileResponse,
} from '@kilowire/contract';
import { getAlertProfile, saveAlertProfile } from '../../accounts/contact.ts';
import { checkCurrentPassword, setPassword } from '../../auth/password-change.ts';
import { hashPassword } from '../../auth/passwords.ts';
import { SESSION_COOKIE } from '../../auth/sessions.ts';
import { recordFailure, recordSuccess, throttled, accountKey } from '../../auth/throttle.ts';
import { withTx } from '../../db/pool.ts';
import { AppError } from '../../errors.ts';
import { requireCapability } from '../../policies.ts';
import { actorOf, whoOf, type Routes } from '../http.ts';

export const profileRoutes: Routes = async (app, deps) => {
  const { pool } = deps;

  app.get(
    '/api/me/profile',
    {
      schema: {
        tags: ['consumer'],
        summary: "The consumer's contact details, quiet hours and alert channels",
        response: { 200: profileResponse, ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'profile.manage');
      if (actor.consumerId === undefined) throw new AppError('NOT_FOUND', 'no consumer profile');
      return getAlertProfile(pool, actor.consumerId);
    },
  );

  app.put(
    '/api/me/profile',
    {
      schema: {
        tags: ['consumer'],
        summary: "Replace the consumer's contact details, quiet hours and alert channels",
        body: profileBody,
        response: { 200: profileResponse, ...errorResponses, ...bodyErrorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'profile.manage');
      const consumerId = actor.consumerId;
      if (consumerId === undefined) throw new AppError('NOT_FOUND', 'no consumer profile');
      return withTx(pool, whoOf(req), async (t) => {
        await saveAlertProfile(t.c, consumerId, actor.userId, req.body);
        await t.audit('profile.update', String(actor.userId));
        return getAlertProfile(t.c, consumerId);
      });
    },
  );

  app.post(
    '/api/me/password',
    {
      schema: {
        tags: ['session'],
        summary: "Change the signed-in user's password; signs out their other sessions",
        body: passwordBody,
        response: { 204: z.null().describe('Changed'), ...errorResponses, ...bodyErrorResponses },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      // The same backoff as sign-in: a stolen session must not become a password oracle.
      const account = `pw:${actor.userId}`;
      const wait = await throttled(pool, [accountKey(account, req.ip)]);
      if (wait > 0) {
        void reply.header('retry-after', String(wait));
        throw new AppError('RATE_LIMITED', 'too many attempts; try again later');
      }
      if (!(await checkCurrentPassword(pool, actor.userId, req.body.currentPassword))) {
        await recordFailure(pool, account, req.ip);
        await withTx(pool, whoOf(req), (t) => t.audit('user.password_change_failed', String(actor.userId)));
        throw new AppError('WRONG_PASSWORD', 'the current password is not correct', [
          { path: 'body.currentPassword', message: 'not correct' },
        ]);
      }
      await recordSuccess(pool, account, req.ip);
      const hash = await hashPassword(req.body.newPassword);
      await withTx(pool, whoOf(req), async (t) => {
        await setPassword(t.c, actor.userId, hash, req.cookies[SESSION_COOKIE]);
        await t.audit('user.password_changed', String(actor.userId));
      });
      return reply.code(204).send(null);
    },
  );
};
