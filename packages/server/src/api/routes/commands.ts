import type { Command } from '@kilowire/protocol';
import {
  bodyErrorResponses,
  commandAccepted,
  commandBody,
  commandListQuery,
  commandListResponse,
  errorResponses,
  serialParams,
  supplyErrorResponses,
} from '@kilowire/contract';
import { listCommands, requestCommand } from '../../commands/lifecycle.ts';
import { withTx } from '../../db/pool.ts';
import { guardDirectSupplyOff } from '../../supply/actions.ts';
import { authorisedMeter } from '../../meters/queries.ts';
import { actorOf, iso, whoOf, type Routes } from '../http.ts';

export const commandRoutes: Routes = async (app, deps) => {
  const { pool, commandKey, config } = deps;

  app.post(
    '/api/meters/:serial/commands',
    {
      schema: {
        tags: ['commands'],
        summary: "Remote supply off / on / arm (supplier staff of the meter's supplier only)",
        params: serialParams,
        body: commandBody,
        response: { 202: commandAccepted, ...errorResponses, ...bodyErrorResponses, ...supplyErrorResponses },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      const m = await authorisedMeter(pool, actor, req.params.serial, 'meter.command');
      const cmd: Command = req.body;
      const reason = req.body.type === 'supply.off' ? (req.body.reason ?? null) : null;
      const issued = await withTx(pool, whoOf(req), async (t) => {
        // The supply safeguards (#8) apply here too: quota, and no non-payment bypass.
        if (cmd.type === 'supply.off') await guardDirectSupplyOff(t, actor, m.id, reason);
        const r = await requestCommand(t.c, commandKey, { id: m.id, serial: m.serial }, cmd, {
          actorId: actor.userId,
          reason,
          timing: config.commands,
        });
        await t.audit('meter.command', m.serial, {
          commandId: r.id,
          type: cmd.type,
          counter: r.counter,
          status: r.status,
          ...(reason ? { reason } : {}),
        });
        return r;
      });
      return reply.code(202).send(issued);
    },
  );

  app.get(
    '/api/meters/:serial/commands',
    {
      schema: {
        tags: ['commands'],
        summary: 'Commands sent to a meter, newest first, with their lifecycle status and result (staff)',
        params: serialParams,
        querystring: commandListQuery,
        response: { 200: commandListResponse, ...errorResponses },
      },
    },
    async (req) => {
      const m = await authorisedMeter(pool, actorOf(req), req.params.serial, 'meter.commands.read');
      const rows = await listCommands(pool, m.id, req.query.limit);
      return {
        serial: m.serial,
        items: rows.map((c) => ({
          id: c.id,
          counter: c.counter,
          type: c.type,
          status: c.status,
          attempts: c.attempts,
          reason: c.reason,
          createdBy: c.created_by,
          approvedBy: c.approved_by,
          createdAt: c.created_at.toISOString(),
          queuedAt: iso(c.queued_at),
          sentAt: iso(c.sent_at),
          repliedAt: iso(c.replied_at),
          expiresAt: iso(c.expires_at),
          resultCode: c.result_code,
          resultDetail: c.result_detail,
        })),
      };
    },
  );
};
