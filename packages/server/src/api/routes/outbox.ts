import { errorResponses, outboxQuery, outboxResponse } from '@kilowire/contract';
import { listOutbox } from '../../notify/outbox.ts';
import { requireCapability } from '../../policies.ts';
import { actorOf, decodeIdCursor, encodeIdCursor, type Routes } from '../http.ts';

export const outboxRoutes: Routes = async (app, deps) => {
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
        beforeId: decodeIdCursor(req.query.cursor),
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
        nextCursor: page.nextBefore === null ? null : encodeIdCursor(page.nextBefore),
      };
    },
  );
};
