import {
  bodyErrorResponses,
  errorResponses,
  limitsBody,
  limitsResponse,
  serialParams,
} from '@kilowire/contract';
import { getLimits, setLimits } from '../../alerts/limits.ts';
import { requestCommand } from '../../commands/lifecycle.ts';
import { evaluateLimits } from '../../alerts/rules.ts';
import { withTx } from '../../db/pool.ts';
import { authorisedMeter } from '../../meters/queries.ts';
import { actorOf, whoOf, type Routes } from '../http.ts';

export const limitRoutes: Routes = async (app, deps) => {
  const { pool, log, commandKey } = deps;

  app.get(
    '/api/meters/:serial/limits',
    {
      schema: {
        tags: ['consumer'],
        summary: "The consumer's daily and hourly consumption limits for their meter",
        params: serialParams,
        response: { 200: limitsResponse, ...errorResponses },
      },
    },
    async (req) => {
      const m = await authorisedMeter(pool, actorOf(req), req.params.serial, 'meter.limits');
      return getLimits(pool, m.id);
    },
  );

  app.put(
    '/api/meters/:serial/limits',
    {
      schema: {
        tags: ['consumer'],
        summary: 'Set the limits; takes effect at once (a limit already passed today raises its alert now)',
        params: serialParams,
        body: limitsBody,
        response: { 200: limitsResponse, ...errorResponses, ...bodyErrorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      const m = await authorisedMeter(pool, actor, req.params.serial, 'meter.limits');
      await withTx(pool, whoOf(req), async (t) => {
        const s = await setLimits(t.c, m.id, req.body, actor.userId);
        let commandId: string | null = null;
        if (s.lowCreditChanged) {
          // The meter raises the low-credit alert itself, so it must hold the household's
          // level: sent in the same transaction, tracked to ok by the command lifecycle.
          // Cleared (null) = no warning of one's own: the meter warns at zero.
          const cmd = await requestCommand(
            t.c,
            commandKey,
            m,
            { type: 'thresholds.set', lowCreditMinor: s.lowCreditMinor ?? 0 },
            { actorId: actor.userId, reason: 'household low-credit level' },
          );
          commandId = cmd.id;
        }
        await t.audit('meter.limits', m.serial, {
          dailyLimitWh: s.dailyLimitWh,
          hourlyLimitWh: s.hourlyLimitWh,
          lowCreditMinor: s.lowCreditMinor ?? null,
          commandId,
        });
      });
      const saved = await getLimits(pool, m.id);
      try {
        // At once, for the household watching; the limits.changed event committed with the
        // limits has the jobs service judge them too, should this process die right here.
        await evaluateLimits(pool, [m.id], { lookbackDays: 0 });
      } catch (err) {
        log.error({ err, meter: m.serial }, 'limit evaluation after save failed (the event will retry it)');
      }
      return saved;
    },
  );
};
