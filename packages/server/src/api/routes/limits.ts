import { z } from 'zod';
import { getLimits, setLimits } from '../../alerts/queries.ts';
import { evaluateLimits } from '../../alerts/rules.ts';
import { audit } from '../../audit.ts';
import { authorisedMeter } from '../../meters/queries.ts';
import { actorOf, errorResponses, serialParams, type ApiApp, type ApiDeps } from '../http.ts';

const limitWh = z.number().int().min(1).max(1_000_000).nullable().describe('Wh, 1..1000000; null = no limit');

const limitsBody = z.strictObject({ dailyLimitWh: limitWh, hourlyLimitWh: limitWh });
const limitsResponse = z.object({
  dailyLimitWh: z.number().int().nullable(),
  hourlyLimitWh: z.number().int().nullable(),
});

export function limitRoutes(app: ApiApp, deps: ApiDeps): void {
  const { pool, log } = deps;

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
      const actor = actorOf(req);
      const m = await authorisedMeter(pool, actor, req.params.serial, 'meter.limits');
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
        response: { 200: limitsResponse, ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      const m = await authorisedMeter(pool, actor, req.params.serial, 'meter.limits');
      const saved = await setLimits(pool, m.id, req.body, actor.userId);
      await audit(pool, {
        actorId: actor.userId,
        action: 'meter.limits',
        target: m.serial,
        detail: { ...saved },
        ip: req.ip,
      });
      try {
        await evaluateLimits(pool, [m.id], { lookbackDays: 0 });
      } catch (err) {
        // The limits are saved; the next ingest evaluates again.
        log.error({ err, meter: m.serial }, 'limit evaluation after save failed');
      }
      return saved;
    },
  );
}
