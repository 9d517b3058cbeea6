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
import { authorisedMeter } from '../../meters/queries.ts';
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
      const m = await authorisedMeter(pool, actorOf(req), req.params.serial, 'meter.read');
      const day = await dayProfile(pool, m.id, m.tz, req.query.date, m.interval_s);
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
      const m = await authorisedMeter(pool, actorOf(req), req.params.serial, 'meter.read');
      const rows = await dailyRollups(pool, m.id, req.query.from, req.query.to);
      return {
        serial: m.serial,
        tz: m.tz,
        from: req.query.from,
        to: req.query.to,
        wh: rows.reduce((s, r) => s + r.wh, 0),
        days: rows.map((r) => ({ day: r.period, wh: r.wh, intervals: r.intervals, estimated: r.estimated })),
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
      const m = await authorisedMeter(pool, actorOf(req), req.params.serial, 'meter.read');
      const rows = await monthlyRollups(pool, m.id, req.query.from, req.query.to);
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
      };
    },
  );
};
