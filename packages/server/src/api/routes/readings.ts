import { z } from 'zod';
import { authorisedMeter } from '../../meters/queries.ts';
import { dailyRollups, dayProfile, monthlyRollups } from '../../readings/queries.ts';
import {
  actorOf,
  daysBetween,
  errorResponses,
  isoDate,
  isoInZone,
  isoMonth,
  serialParams,
  type ApiApp,
  type ApiDeps,
} from '../http.ts';

/** Longest span of a daily query, days (a year and a bit, for year-on-year charts). */
const MAX_DAYS = 400;
/** Longest span of a monthly query, months. */
const MAX_MONTHS = 120;

const intervalsQuery = z.strictObject({
  date: isoDate.describe("Local calendar day in the meter's time zone, YYYY-MM-DD"),
});

const dailyQuery = z
  .strictObject({
    from: isoDate.describe('First local day, inclusive'),
    to: isoDate.describe('Last local day, inclusive'),
  })
  .refine((q) => q.from <= q.to, { message: 'to must not be before from', path: ['to'] })
  .refine((q) => daysBetween(q.from, q.to) < MAX_DAYS, { message: `at most ${MAX_DAYS} days`, path: ['to'] });

const monthlyQuery = z
  .strictObject({
    from: isoMonth.describe('First month, inclusive'),
    to: isoMonth.describe('Last month, inclusive'),
  })
  .refine((q) => q.from <= q.to, { message: 'to must not be before from', path: ['to'] })
  .refine((q) => monthsBetween(q.from, q.to) < MAX_MONTHS, {
    message: `at most ${MAX_MONTHS} months`,
    path: ['to'],
  });

function monthsBetween(a: string, b: string): number {
  return (Number(b.slice(0, 4)) - Number(a.slice(0, 4))) * 12 + Number(b.slice(5, 7)) - Number(a.slice(5, 7));
}

const intervalSchema = z.object({
  start: z.string().describe("Interval start, ISO 8601 with the meter's UTC offset"),
  startUtc: z.string().describe('Interval start, ISO 8601 UTC'),
  wh: z.number().int().nullable().describe('Energy imported in the interval, Wh; null = not received'),
  estimated: z.boolean().describe('Estimated by validation (VEE), not measured'),
});

const intervalsResponse = z.object({
  serial: z.string(),
  tz: z.string(),
  date: z.string(),
  intervalS: z.number().int(),
  start: z.string().describe('Local midnight, ISO 8601 with offset'),
  end: z.string().describe('Next local midnight, ISO 8601 with offset (exclusive)'),
  expectedIntervals: z
    .number()
    .int()
    .describe('Intervals in this local day: 46/48/50 half-hours on DST days'),
  receivedIntervals: z.number().int(),
  estimatedIntervals: z.number().int(),
  wh: z.number().int().describe('Day total of the received intervals, Wh'),
  intervals: z.array(intervalSchema),
});

const rollupSchema = z.object({
  wh: z.number().int().describe('Energy imported, Wh'),
  intervals: z.number().int().describe('Intervals received'),
  estimated: z.number().int().describe('Of which estimated'),
});

const dailyResponse = z.object({
  serial: z.string(),
  tz: z.string(),
  from: z.string(),
  to: z.string(),
  wh: z.number().int().describe('Total over the days returned, Wh'),
  days: z.array(rollupSchema.extend({ day: z.string().describe('Local day YYYY-MM-DD') })),
});

const monthlyResponse = z.object({
  serial: z.string(),
  tz: z.string(),
  from: z.string(),
  to: z.string(),
  wh: z.number().int().describe('Total over the months returned, Wh'),
  months: z.array(rollupSchema.extend({ month: z.string().describe('Local month YYYY-MM') })),
});

export function readingRoutes(app: ApiApp, deps: ApiDeps): void {
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
      const actor = actorOf(req);
      const m = await authorisedMeter(pool, actor, req.params.serial, 'meter.read');
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
      const actor = actorOf(req);
      const m = await authorisedMeter(pool, actor, req.params.serial, 'meter.read');
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
}
