import { z } from 'zod';
import type { Command } from '@kilowire/protocol';
import { audit } from '../../audit.ts';
import { issueCommand } from '../../commands/service.ts';
import { listCommands } from '../../commands/queries.ts';
import { authorisedMeter } from '../../meters/queries.ts';
import { actorOf, errorResponses, iso, serialParams, timestamp, type ApiApp, type ApiDeps } from '../http.ts';

/** The commands staff may issue by hand; tariffs, credit and firmware have their own flows. */
const commandBody = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('supply.off'),
    reason: z.string().max(64).optional().describe('Why, shown in the audit log'),
  }),
  z.strictObject({ type: z.literal('supply.on') }),
  z.strictObject({ type: z.literal('supply.arm') }),
]);

const commandSchema = z.object({
  id: z.string(),
  counter: z.number().int(),
  type: z.string(),
  status: z.enum(['pending', 'sent', 'ok', 'rejected', 'failed', 'expired']),
  attempts: z.number().int(),
  createdBy: z.number().nullable(),
  createdAt: timestamp,
  sentAt: timestamp.nullable(),
  repliedAt: timestamp.nullable(),
  resultCode: z.string().nullable(),
  resultDetail: z.string().nullable(),
});

export function commandRoutes(app: ApiApp, deps: ApiDeps): void {
  const { pool, commandKey } = deps;

  app.post(
    '/api/meters/:serial/commands',
    {
      schema: {
        tags: ['commands'],
        summary: "Remote supply off / on / arm (supplier staff of the meter's supplier only)",
        params: serialParams,
        body: commandBody,
        response: {
          202: z.object({ id: z.string(), counter: z.number().int(), status: z.literal('pending') }),
          ...errorResponses,
        },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      const m = await authorisedMeter(pool, actor, req.params.serial, 'meter.command');
      const cmd: Command = req.body;
      const issued = await issueCommand(pool, commandKey, { id: m.id, serial: m.serial }, cmd, actor.userId);
      await audit(pool, {
        actorId: actor.userId,
        action: 'meter.command',
        target: m.serial,
        detail: {
          commandId: issued.id,
          type: cmd.type,
          counter: issued.counter,
          ...(req.body.type === 'supply.off' && req.body.reason ? { reason: req.body.reason } : {}),
        },
        ip: req.ip,
      });
      return reply.code(202).send({ id: issued.id, counter: issued.counter, status: 'pending' as const });
    },
  );

  app.get(
    '/api/meters/:serial/commands',
    {
      schema: {
        tags: ['commands'],
        summary: 'Commands sent to a meter, newest first, with their status and result (staff)',
        params: serialParams,
        querystring: z.strictObject({ limit: z.coerce.number().int().min(1).max(200).default(50) }),
        response: { 200: z.object({ serial: z.string(), items: z.array(commandSchema) }), ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      const m = await authorisedMeter(pool, actor, req.params.serial, 'meter.commands.read');
      const rows = await listCommands(pool, m.id, req.query.limit);
      return {
        serial: m.serial,
        items: rows.map((c) => ({
          id: c.id,
          counter: c.counter,
          type: c.type,
          status: c.status,
          attempts: c.attempts,
          createdBy: c.created_by,
          createdAt: c.created_at.toISOString(),
          sentAt: iso(c.sent_at),
          repliedAt: iso(c.replied_at),
          resultCode: c.result_code,
          resultDetail: c.result_detail,
        })),
      };
    },
  );
}
