import { z } from 'zod';
import { homeSummary } from '../../alerts/queries.ts';
import { AppError } from '../../errors.ts';
import { requireCapability } from '../../policies.ts';
import { actorOf, errorResponses, serialParams, type ApiApp, type ApiDeps } from '../http.ts';

const homeQuery = z.strictObject({
  serial: serialParams.shape.serial.optional().describe("One of the consumer's meters; default: their first"),
});

const homeResponse = z.object({
  meter: z.object({
    serial: z.string(),
    tz: z.string(),
    mode: z.enum(['credit', 'prepayment']),
    relay: z
      .enum(['connected', 'disconnected', 'armed'])
      .nullable()
      .describe('Last reported; null = not yet'),
    creditMinor: z
      .number()
      .int()
      .nullable()
      .describe('Prepayment credit on the meter, minor units; null = unknown'),
    currency: z.string().describe('ISO 4217, e.g. GBP'),
  }),
  lastReadingAt: z.string().nullable().describe('End of the latest interval received, ISO 8601 UTC'),
  today: z.object({
    date: z.string().describe("The meter's current local day, YYYY-MM-DD"),
    wh: z.number().int().describe('Energy so far today, Wh'),
    dailyLimitWh: z.number().int().nullable(),
    hourlyLimitWh: z.number().int().nullable(),
  }),
  billingPeriod: z.object({
    start: z.string().describe("First local day of the current billing period (the account's billing day)"),
    wh: z.number().int().describe('Energy since the start of the billing period, Wh'),
  }),
  unreadAlerts: z.number().int(),
});

export function homeRoutes(app: ApiApp, deps: ApiDeps): void {
  app.get(
    '/api/home',
    {
      schema: {
        tags: ['consumer'],
        summary: "The consumer portal's home: meter state, today, billing period so far, unread alerts",
        querystring: homeQuery,
        response: { 200: homeResponse, ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'home.read');
      if (actor.consumerId === undefined) throw new AppError('NOT_FOUND', 'meter not found');
      const h = await homeSummary(deps.pool, actor.consumerId, req.query.serial ?? null);
      if (!h) throw new AppError('NOT_FOUND', 'meter not found');
      return {
        meter: {
          serial: h.serial,
          tz: h.tz,
          mode: h.mode,
          relay: h.relay,
          creditMinor: h.credit_minor,
          currency: h.currency,
        },
        lastReadingAt: h.last_reading_at ? h.last_reading_at.toISOString() : null,
        today: {
          date: h.today,
          wh: h.today_wh,
          dailyLimitWh: h.daily_limit_wh,
          hourlyLimitWh: h.hourly_limit_wh,
        },
        billingPeriod: { start: h.period_start, wh: h.period_wh },
        unreadAlerts: h.unread,
      };
    },
  );
}
