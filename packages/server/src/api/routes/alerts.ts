import { z } from 'zod';
import { alertsQuery, alertsResponse, errorResponses, idParams } from '@kilowire/contract';
import { listAlerts, markAllRead, markRead } from '../../alerts/queries.ts';
import { AppError } from '../../errors.ts';
import { requireCapability } from '../../policies.ts';
import { actorOf, decodeIdCursor, encodeIdCursor, type Routes } from '../http.ts';

export const alertRoutes: Routes = async (app, deps) => {
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
        beforeId: decodeIdCursor(q.cursor),
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
        nextCursor: page.nextBefore === null ? null : encodeIdCursor(page.nextBefore),
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
};
