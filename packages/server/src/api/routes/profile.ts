import { z } from 'zod';
import { getAlertProfile, saveAlertProfile } from '../../alerts/queries.ts';
import { ALERT_TYPES, type AlertType } from '../../alerts/types.ts';
import { audit } from '../../audit.ts';
import { hashPassword, verifyPassword } from '../../auth/passwords.ts';
import { SESSION_COOKIE, tokenHash } from '../../auth/sessions.ts';
import { tx } from '../../db/pool.ts';
import { AppError } from '../../errors.ts';
import { requireCapability } from '../../policies.ts';
import { actorOf, errorResponses, type ApiApp, type ApiDeps } from '../http.ts';

const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'expected HH:MM (00:00..23:59)');

const channelPrefs = z.strictObject({ email: z.boolean(), sms: z.boolean(), web: z.boolean() });
const channels = z
  .strictObject(
    Object.fromEntries(ALERT_TYPES.map((t) => [t, channelPrefs])) as Record<AlertType, typeof channelPrefs>,
  )
  .describe('Per alert type, the channels it is sent on');

const profileBody = z.strictObject({
  name: z.string().trim().min(1).max(100),
  email: z.email().max(254).nullable(),
  mobile: z
    .string()
    .regex(/^\+[1-9]\d{6,14}$/, 'expected an E.164 number, e.g. +447700900123')
    .nullable(),
  quietHours: z
    .strictObject({ from: hhmm, to: hhmm })
    .refine((q) => q.from !== q.to, { message: 'from and to must differ', path: ['to'] })
    .nullable()
    .describe("Local time of the consumer's first meter; non-critical alerts wait until it ends"),
  channels,
});

const profileResponse = z.object({
  name: z.string(),
  email: z.string().nullable(),
  mobile: z.string().nullable(),
  quietHours: z.object({ from: z.string(), to: z.string() }).nullable(),
  channels: z.object(
    Object.fromEntries(
      ALERT_TYPES.map((t) => [t, z.object({ email: z.boolean(), sms: z.boolean(), web: z.boolean() })]),
    ) as Record<AlertType, z.ZodObject<{ email: z.ZodBoolean; sms: z.ZodBoolean; web: z.ZodBoolean }>>,
  ),
});

const passwordBody = z.strictObject({
  currentPassword: z.string().min(1).max(1024),
  newPassword: z.string().min(10, 'at least 10 characters').max(1024),
});

/** Password change attempts per user per minute. */
const PASSWORD_PER_USER = 10;

export function profileRoutes(app: ApiApp, deps: ApiDeps): void {
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
        response: { 200: profileResponse, ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'profile.manage');
      if (actor.consumerId === undefined) throw new AppError('NOT_FOUND', 'no consumer profile');
      await saveAlertProfile(pool, actor.consumerId, actor.userId, req.body);
      await audit(pool, {
        actorId: actor.userId,
        action: 'profile.update',
        target: String(actor.userId),
        ip: req.ip,
      });
      return getAlertProfile(pool, actor.consumerId);
    },
  );

  const perUser = app.createRateLimit({
    max: PASSWORD_PER_USER,
    timeWindow: 60_000,
    keyGenerator: (req) => `pw:${req.actor?.userId ?? req.ip}`,
  });

  app.post(
    '/api/me/password',
    {
      schema: {
        tags: ['session'],
        summary: "Change the signed-in user's password; signs out their other sessions",
        body: passwordBody,
        response: { 204: z.null().describe('Changed'), ...errorResponses },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      const limit = await perUser(req);
      if (!limit.isAllowed && limit.isExceeded) {
        void reply.header('retry-after', String(limit.ttlInSeconds));
        throw new AppError('RATE_LIMITED', 'too many attempts; try again later');
      }
      const row = (
        await pool.query<{ password_hash: string }>('SELECT password_hash FROM users WHERE id = $1', [
          actor.userId,
        ])
      ).rows[0];
      if (!row || !(await verifyPassword(row.password_hash, req.body.currentPassword))) {
        await audit(pool, {
          actorId: actor.userId,
          action: 'user.password_change_failed',
          target: String(actor.userId),
          ip: req.ip,
        });
        throw new AppError('WRONG_PASSWORD', 'the current password is not correct', [
          { path: 'body.currentPassword', message: 'not correct' },
        ]);
      }
      const hash = await hashPassword(req.body.newPassword);
      const current = req.cookies[SESSION_COOKIE];
      await tx(pool, async (c) => {
        await c.query('UPDATE users SET password_hash = $2 WHERE id = $1', [actor.userId, hash]);
        await c.query(
          `UPDATE sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL AND id <> $2`,
          [actor.userId, current ? tokenHash(current) : ''],
        );
        await audit(c, {
          actorId: actor.userId,
          action: 'user.password_changed',
          target: String(actor.userId),
          ip: req.ip,
        });
      });
      return reply.code(204).send(null);
    },
  );
}
