import { z } from 'zod';
import { listAlerts, markAllRead, markRead } from '../../alerts/queries.ts';
import { ALERT_TYPES } from '../../alerts/types.ts';
import { AppError } from '../../errors.ts';
import { requireCapability } from '../../policies.ts';
import { actorOf, daysBetween, errorResponses, isoDate, type ApiApp, type ApiDeps } from '../http.ts';

/** Page cursors are opaque: base64url of the last id returned. */
export function encodeCursor(id: number): string {
  return Buffer.from(String(id)).toString('base64url');
}

export function decodeCursor(cursor: string | undefined): number | null {
  if (cursor === undefined) return null;
  const s = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!/^[1-9]\d{0,15}$/.test(s)) {
    throw new AppError('VALIDATION', 'query.cursor: not a cursor from this API', [
      { path: 'query.cursor', message: 'not a cursor from this API' },
    ]);
  }
  return Number(s);
}

export const cursorParam = z.string().min(1).max(64).describe('nextCursor of the previous page');

const alertsQuery = z
  .strictObject({
    type: z.enum(ALERT_TYPES).optional(),
    from: isoDate.optional().describe("First local day (meter's time zone), inclusive"),
    to: isoDate.optional().describe('Last local day, inclusive'),
    status: z.enum(['read', 'unread']).optional(),
    limit: z.coerce.number().int().min(1).max(200).default(50),
    cursor: cursorParam.optional(),
  })
  .refine((q) => !q.from || !q.to || daysBetween(q.from, q.to) >= 0, {
    message: 'to must not be before from',
    path: ['to'],
  });

const alertItem = z.object({
  id: z.number().int(),
  type: z.enum(ALERT_TYPES),
  severity: z.enum(['info', 'warning', 'critical']),
  title: z.string(),
  message: z.string().describe('The reason and the figures, in words'),
  meterSerial: z.string(),
  createdAt: z.string().describe('ISO 8601 UTC'),
  readAt: z.string().nullable(),
});

const alertsResponse = z.object({
  items: z.array(alertItem),
  nextCursor: z.string().nullable(),
  unread: z.number().int().describe('Unread alerts in the whole scope (not just this page)'),
});

const idParams = z.object({ id: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER) });

export function alertRoutes(app: ApiApp, deps: ApiDeps): void {
  const { pool } = deps;

  app.get(
    '/api/alerts',
    {
      schema: {
        tags: ['alerts'],
        summary:
          "Alert history, newest first (consumers: their own; supplier staff: their supplier's meters)",
        querystring: alertsQuery,
        response: { 200: alertsResponse, ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'alerts.list');
      const q = req.query;
      const page = await listAlerts(pool, actor, {
        type: q.type,
        from: q.from,
        to: q.to,
        status: q.status,
        limit: q.limit,
        beforeId: decodeCursor(q.cursor),
      });
      return {
        items: page.items.map((a) => ({
          id: a.id,
          type: a.type,
          severity: a.severity,
          title: a.title,
          message: a.message,
          meterSerial: a.serial,
          createdAt: a.created_at.toISOString(),
          readAt: a.read_at ? a.read_at.toISOString() : null,
        })),
        nextCursor: page.nextBefore === null ? null : encodeCursor(page.nextBefore),
        unread: page.unread,
      };
    },
  );

  app.post(
    '/api/alerts/read-all',
    {
      schema: {
        tags: ['alerts'],
        summary: "Mark all of the consumer's alerts read",
        response: { 204: z.null().describe('Done'), ...errorResponses },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      requireCapability(actor, 'alerts.mark');
      if (actor.consumerId !== undefined) await markAllRead(pool, actor.consumerId);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/api/alerts/:id/read',
    {
      schema: {
        tags: ['alerts'],
        summary: 'Mark one alert read (idempotent)',
        params: idParams,
        response: { 204: z.null().describe('Done'), ...errorResponses },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      requireCapability(actor, 'alerts.mark');
      if (actor.consumerId === undefined || !(await markRead(pool, actor.consumerId, req.params.id))) {
        throw new AppError('NOT_FOUND', 'alert not found');
      }
      return reply.code(204).send(null);
    },
  );
}
