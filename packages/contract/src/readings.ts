import { z } from 'zod';
import { daysBetween, monthsBetween } from '@kilowire/protocol/calendar';
import { isoDate, isoMonth } from './common.ts';

/** Longest span of a daily query, days (a year and a bit, for year-on-year charts). */
export const MAX_DAYS = 400;
/** Longest span of a monthly query, months. */
export const MAX_MONTHS = 120;

export const intervalsQuery = z.strictObject({
  date: isoDate.describe("Local calendar day in the meter's time zone, YYYY-MM-DD"),
});
export type IntervalsQuery = z.infer<typeof intervalsQuery>;

export const dailyQuery = z
  .strictObject({
    from: isoDate.describe('First local day, inclusive'),
    to: isoDate.describe('Last local day, inclusive'),
  })
  .refine((q) => q.from <= q.to, { message: 'to must not be before from', path: ['to'] })
  .refine((q) => daysBetween(q.from, q.to) < MAX_DAYS, { message: `at most ${MAX_DAYS} days`, path: ['to'] });
export type DailyQuery = z.infer<typeof dailyQuery>;

export const monthlyQuery = z
  .strictObject({
    from: isoMonth.describe('First month, inclusive'),
    to: isoMonth.describe('Last month, inclusive'),
  })
  .refine((q) => q.from <= q.to, { message: 'to must not be before from', path: ['to'] })
  .refine((q) => monthsBetween(q.from, q.to) < MAX_MONTHS, {
    message: `at most ${MAX_MONTHS} months`,
    path: ['to'],
  });
export type MonthlyQuery = z.infer<typeof monthlyQuery>;

export const intervalSchema = z.object({
  start: z.string().describe("Interval start, ISO 8601 with the meter's UTC offset"),
  startUtc: z.string().describe('Interval start, ISO 8601 UTC'),
  wh: z.number().int().nullable().describe('Energy imported in the interval, Wh; null = not received'),
  estimated: z.boolean().describe('Estimated by validation (VEE), not measured'),
});
export type Interval = z.infer<typeof intervalSchema>;

/** Money of a period: net (energy + standing charge, rounded once), VAT on it, total; minor units. */
export const moneySchema = z.object({
  energyMinor: z.number().int(),
  standingMinor: z.number().int(),
  netMinor: z.number().int(),
  vatMinor: z.number().int(),
  totalMinor: z.number().int(),
});
export type MoneyFigures = z.infer<typeof moneySchema>;

/** Cost of one local day's intervals; null for roles that do not see prices or days without a tariff. */
export const dayCostSchema = moneySchema
  .extend({
    currency: z.string(),
    tariffName: z.string(),
    vatBp: z.number().int().describe('VAT in basis points (500 = 5%)'),
    intervalsMicro: z
      .array(z.number().int().nullable())
      .describe('Per interval (same order), millionths of a minor unit, before VAT; null = no reading'),
  })
  .nullable();

export const intervalsResponse = z.object({
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
  cost: dayCostSchema,
});
export type DayIntervals = z.infer<typeof intervalsResponse>;

export const rollupSchema = z.object({
  wh: z.number().int().describe('Energy imported, Wh'),
  intervals: z.number().int().describe('Intervals received'),
  estimated: z.number().int().describe('Of which estimated'),
});
export type Rollup = z.infer<typeof rollupSchema>;

export const dailyResponse = z.object({
  serial: z.string(),
  tz: z.string(),
  from: z.string(),
  to: z.string(),
  wh: z.number().int().describe('Total over the days returned, Wh'),
  days: z.array(rollupSchema.extend({ day: z.string().describe('Local day YYYY-MM-DD') })),
  cost: moneySchema
    .extend({
      currency: z.string(),
      days: z
        .array(moneySchema.extend({ day: z.string() }))
        .describe('Days with a tariff, each rounded on its own'),
    })
    .nullable()
    .describe('Prices then in force, standing charge per local day, VAT; null = no prices to show'),
});
export type Daily = z.infer<typeof dailyResponse>;

export const monthlyResponse = z.object({
  serial: z.string(),
  tz: z.string(),
  from: z.string(),
  to: z.string(),
  wh: z.number().int().describe('Total over the months returned, Wh'),
  months: z.array(rollupSchema.extend({ month: z.string().describe('Local month YYYY-MM') })),
  cost: moneySchema
    .extend({
      currency: z.string(),
      months: z
        .array(moneySchema.extend({ month: z.string() }))
        .describe('Months with a tariff, each rounded on its own'),
    })
    .nullable(),
});
export type Monthly = z.infer<typeof monthlyResponse>;
