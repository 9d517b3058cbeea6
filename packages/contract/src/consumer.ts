import { z } from 'zod';
import {
  CHANNELS,
  HOUSEHOLD_ALERT_TYPES,
  METER_MODES,
  RELAY_STATES,
  type HouseholdAlertType,
} from './enums.ts';
import { serial } from './common.ts';

export const homeQuery = z.strictObject({
  serial: serial.optional().describe("One of the consumer's meters; default: their first"),
});
export type HomeQuery = z.infer<typeof homeQuery>;

export const homeResponse = z.object({
  meter: z.object({
    serial: z.string(),
    tz: z.string(),
    mode: z.enum(METER_MODES),
    relay: z.enum(RELAY_STATES).nullable().describe('Last reported; null = not yet'),
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
export type Home = z.infer<typeof homeResponse>;

const limitWh = z.number().int().min(1).max(1_000_000).nullable().describe('Wh, 1..1000000; null = no limit');
export const limitsBody = z.strictObject({ dailyLimitWh: limitWh, hourlyLimitWh: limitWh });
export type LimitsBody = z.infer<typeof limitsBody>;
export const limitsResponse = z.object({
  dailyLimitWh: z.number().int().nullable(),
  hourlyLimitWh: z.number().int().nullable(),
});
export type Limits = z.infer<typeof limitsResponse>;

const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'expected HH:MM (00:00..23:59)');
const channelPrefs = z.strictObject(
  Object.fromEntries(CHANNELS.map((c) => [c, z.boolean()])) as Record<
    (typeof CHANNELS)[number],
    z.ZodBoolean
  >,
);
const channels = z
  .strictObject(
    Object.fromEntries(HOUSEHOLD_ALERT_TYPES.map((t) => [t, channelPrefs])) as Record<
      HouseholdAlertType,
      typeof channelPrefs
    >,
  )
  .describe('Per alert type, the channels it is sent on');

export const profileBody = z.strictObject({
  name: z.string().trim().min(1).max(100),
  email: z.email().max(254).nullable(),
  mobile: z
    .string()
    .regex(/^\+[1-9]\d{6,14}$/, 'expected an E.164 number, e.g. +447700900123')
    .nullable(),
  quietHours: z
    .strictObject({ from: hhmm, to: hhmm })
    .refine((q) => q.from !== q.to, { message: 'from and to must differ', path: ['to'] })
    .nullable()
    .describe("Local time of the consumer's first meter; non-critical alerts wait until it ends"),
  channels,
});
export type ProfileUpdate = z.infer<typeof profileBody>;

export const profileResponse = z.object({
  name: z.string(),
  email: z.string().nullable(),
  mobile: z.string().nullable(),
  quietHours: z.object({ from: z.string(), to: z.string() }).nullable(),
  channels: z.object(
    Object.fromEntries(
      HOUSEHOLD_ALERT_TYPES.map((t) => [
        t,
        z.object({ email: z.boolean(), sms: z.boolean(), web: z.boolean() }),
      ]),
    ) as Record<
      HouseholdAlertType,
      z.ZodObject<{ email: z.ZodBoolean; sms: z.ZodBoolean; web: z.ZodBoolean }>
    >,
  ),
});
export type Profile = z.infer<typeof profileResponse>;
