import {
  MAX_DAYS,
  MAX_MONTHS,
  dailyQuery,
  dailyResponse,
  errorResponses,
  intervalsQuery,
  intervalsResponse,
  monthlyQuery,
  monthlyResponse,
  serialParams,
} from '@kilowire/contract';
import { addDays, addMonths, localDate } from '@kilowire/protocol';
import { authorisedMeter } from '../../meters/queries.ts';
import { intervalCosts, meterDailyCost, moneyOfDays, type DayCost } from '../../money/cost.ts';
import { can } from '../../policies.ts';
import { dailyRollups, dayProfile, monthlyRollups } from '../../readings/queries.ts';
import { actorOf, isoInZone, type Routes } from '../http.ts';

export const readingRoutes: Routes = async (app, deps) => {
  const { pool } = deps;

  app.get(
    '/api/meters/:serial/intervals',
    {
      schema: {
        tags: ['readings'],
        summary: "Every interval of one local day in the meter's time zone",
        params: serialParams,
        querystring: intervalsQuery,
        response: { 200: intervalsResponse, ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      const m = await authorisedMeter(pool, actor, req.params.serial, 'meter.read');
      const day = await dayProfile(pool, m.id, m.tz, req.query.date, m.interval_s);
      let cost = null;
      if (can(actor, 'meter.tariff.read')) {
        const ic = await intervalCosts(pool, m, req.query.date, day.slots);
        const [dc] = await meterDailyCost(pool, m, req.query.date, addDays(req.query.date, 1));
        if (ic.version && dc?.version)
          cost = {
            currency: ic.version.currency,
            tariffName: ic.version.name,
            vatBp: ic.version.vatBp,
            intervalsMicro: ic.micro,
            ...moneyOfDays([dc]),
          };
      }
      return {
        serial: m.serial,
        tz: m.tz,
        date: req.query.date,
        intervalS: m.interval_s,
        start: isoInZone(day.start, m.tz),
        end: isoInZone(day.end, m.tz),
        expectedIntervals: day.slots.length,
        receivedIntervals: day.received,
        estimatedIntervals: day.estimated,
        wh: day.totalWh,
        intervals: day.slots.map((s) => ({
          start: isoInZone(s.t, m.tz),
          startUtc: new Date(s.t * 1000).toISOString(),
          wh: s.wh,
          estimated: s.estimated,
        })),
        cost,
      };
    },
  );

  app.get(
    '/api/meters/:serial/daily',
    {
      schema: {
        tags: ['readings'],
        summary: `Daily consumption (local days), at most ${MAX_DAYS} days`,
        params: serialParams,
        querystring: dailyQuery,
        response: { 200: dailyResponse, ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      const m = await authorisedMeter(pool, actor, req.params.serial, 'meter.read');
      const rows = await dailyRollups(pool, m.id, req.query.from, req.query.to);
      let cost = null;
      if (can(actor, 'meter.tariff.read')) {
        const days = pricedUpToToday(
          await meterDailyCost(pool, m, req.query.from, addDays(req.query.to, 1)),
          m.tz,
        );
        if (days.length)
          cost = {
            currency: days[0]!.version!.currency,
            ...moneyOfDays(days),
            days: days.map((d) => ({ day: d.day, ...moneyOfDays([d]) })),
          };
      }
      return {
        serial: m.serial,
        tz: m.tz,
        from: req.query.from,
        to: req.query.to,
        wh: rows.reduce((s, r) => s + r.wh, 0),
        days: rows.map((r) => ({ day: r.period, wh: r.wh, intervals: r.intervals, estimated: r.estimated })),
        cost,
      };
    },
  );

  app.get(
    '/api/meters/:serial/monthly',
    {
      schema: {
        tags: ['readings'],
        summary: `Monthly consumption (local months), at most ${MAX_MONTHS} months`,
        params: serialParams,
        querystring: monthlyQuery,
        response: { 200: monthlyResponse, ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      const m = await authorisedMeter(pool, actor, req.params.serial, 'meter.read');
      const rows = await monthlyRollups(pool, m.id, req.query.from, req.query.to);
      let cost = null;
      if (can(actor, 'meter.tariff.read')) {
        const first = `${req.query.from}-01`;
        const afterLast = addMonths(`${req.query.to}-01`, 1);
        const days = pricedUpToToday(await meterDailyCost(pool, m, first, afterLast), m.tz);
        if (days.length) {
          const byMonth = new Map<string, DayCost[]>();
          for (const d of days) {
            const k = d.day.slice(0, 7);
            byMonth.set(k, [...(byMonth.get(k) ?? []), d]);
          }
          cost = {
            currency: days[0]!.version!.currency,
            ...moneyOfDays(days),
            months: [...byMonth].map(([month, ds]) => ({ month, ...moneyOfDays(ds) })),
          };
        }
      }
      return {
        serial: m.serial,
        tz: m.tz,
        from: req.query.from,
        to: req.query.to,
        wh: rows.reduce((s, r) => s + r.wh, 0),
        months: rows.map((r) => ({
          month: r.period.slice(0, 7),
          wh: r.wh,
          intervals: r.intervals,
          estimated: r.estimated,
        })),
        cost,
      };
    },
  );
};

/** Days with a tariff that have begun in the meter's zone (a future day has no cost yet). */
function pricedUpToToday(days: DayCost[], tz: string): DayCost[] {
  const today = localDate(Math.floor(Date.now() / 1000), tz);
  return days.filter((d) => d.version !== null && d.day <= today);
}
