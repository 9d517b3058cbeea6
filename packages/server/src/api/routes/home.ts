import { errorResponses, homeQuery, homeResponse } from '@kilowire/contract';
import { homeMoney, homeSummary } from '../../accounts/home.ts';
import { AppError } from '../../errors.ts';
import { requireCapability } from '../../policies.ts';
import { actorOf, type Routes } from '../http.ts';

export const homeRoutes: Routes = async (app, deps) => {
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
      const money = await homeMoney(deps.pool, h, Math.floor(Date.now() / 1000));
      return {
        ...money,
        meter: {
          serial: h.serial,
          tz: h.tz,
          mode: h.mode,
          relay: h.relay,
          creditMinor: h.credit_minor,
          currency: h.currency,
          intervalS: h.interval_s,
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
        // #9 outages
        outage: h.outage_since
          ? { since: h.outage_since.toISOString(), etr: h.outage_etr ? h.outage_etr.toISOString() : null }
          : null,
      };
    },
  );
};
