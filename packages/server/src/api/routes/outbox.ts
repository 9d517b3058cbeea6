import { z } from 'zod';
import { listOutbox } from '../../alerts/queries.ts';
import { requireCapability } from '../../policies.ts';
import { actorOf, errorResponses, type ApiApp, type ApiDeps } from '../http.ts';
import { cursorParam, decodeCursor, encodeCursor } from './alerts.ts';

const outboxQuery = z.strictObject({
  channel: z.enum(['email', 'sms']).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: cursorParam.optional(),
});

const outboxResponse = z.object({
  items: z.array(
    z.object({
      id: z.number().int(),
      channel: z.enum(['email', 'sms']),
      recipient: z.string(),
      subject: z.string().nullable().describe('Email only'),
      body: z.string(),
      createdAt: z.string().describe('ISO 8601 UTC'),
      alertId: z.number().int().nullable(),
    }),
  ),
  nextCursor: z.string().nullable(),
});

export function outboxRoutes(app: ApiApp, deps: ApiDeps): void {
  app.get(
    '/api/outbox',
    {
      schema: {
        tags: ['alerts'],
        summary:
          'Messages the built-in outbox holds instead of sending (no SMTP/SMPP configured), newest first: supplier staff and admins',
        querystring: outboxQuery,
        response: { 200: outboxResponse, ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'outbox.read');
      const page = await listOutbox(deps.pool, actor, {
        channel: req.query.channel,
        limit: req.query.limit,
        beforeId: decodeCursor(req.query.cursor),
      });
      return {
        items: page.items.map((o) => ({
          id: o.id,
          channel: o.channel,
          recipient: o.recipient,
          subject: o.subject,
          body: o.body,
          createdAt: o.created_at.toISOString(),
          alertId: o.alert_id,
        })),
        nextCursor: page.nextBefore === null ? null : encodeCursor(page.nextBefore),
      };
    },
  );
}
