import { z } from 'zod';
import {
  CHANNELS,
  COMMAND_STATUSES,
  HOUSEHOLD_ALERT_TYPES,
  METER_MODES,
  RELAY_STATES,
  type HouseholdAlertType,
} from './enums.ts';
import { serial } from './common.ts';
import { E164, normaliseMobile } from './phone.ts';

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
    intervalS: z
      .number()
      .int()
      .describe('Profile interval, seconds: readings older than ~2 of them = catching up'),
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
  /** #9 outages: the meter is in a power cut the network operator is working on (null = none). */
  outage: z
    .object({
      since: z.string().describe('When the power went off, ISO 8601 UTC'),
      etr: z.string().nullable().describe("The network operator's estimated restoration; null = none yet"),
    })
    .nullable(),
  /** Money, when the meter has a tariff (null otherwise). */
  cost: z
    .object({
      currency: z.string(),
      tariffName: z.string(),
      todayMinor: z.number().int().describe('Today so far incl. its standing charge and VAT'),
      periodMinor: z.number().int().describe('Billing period so far, incl. standing charges and VAT'),
      /** Average cost of a day over the last 7 complete local days with readings (null = none yet). */
      recentDailyMinor: z.number().int().nullable(),
      recentDays: z.number().int().describe('Days the average covers (up to 7)'),
      /** Credit accounts: period so far + recent daily average × days left in the period. */
      projection: z
        .object({
          totalMinor: z.number().int(),
          periodEnd: z.string().describe('Last local day of the billing period'),
          daysLeft: z.number().int().describe('Whole local days after today until the period ends'),
        })
        .nullable(),
    })
    .nullable(),
  /** Prepayment meters: what is on the meter and how long it lasts (null for credit meters). */
  prepayment: z
    .object({
      creditMinor: z.number().int().nullable().describe('Last reported; below zero = emergency credit owed'),
      emergencyInUse: z.boolean(),
      emergencyAvailableMinor: z.number().int().nullable(),
      debtMinor: z.number().int().describe('Emergency credit to repay from the next top-up'),
      daysLeft: z.number().nullable().describe('Credit / recent daily cost, one decimal; null = unknown'),
      friendlyHours: z.object({ from: z.string(), to: z.string() }).nullable(),
      lowCreditMinor: z.number().int().nullable().describe("The household's own low-credit warning level"),
    })
    .nullable(),
});
export type Home = z.infer<typeof homeResponse>;

const limitWh = z.number().int().min(1).max(1_000_000).nullable().describe('Wh, 1..1000000; null = no limit');
export const limitsBody = z.strictObject({
  dailyLimitWh: limitWh,
  hourlyLimitWh: limitWh,
  lowCreditMinor: z
    .number()
    .int()
    .min(0)
    .max(1_000_000)
    .nullable()
    .optional()
    .describe(
      'Prepayment: warn when credit falls below this, minor units; null = no level of your own (warned at zero); omitted = unchanged',
    ),
});
export type LimitsBody = z.infer<typeof limitsBody>;
export const limitsResponse = z.object({
  dailyLimitWh: z.number().int().nullable(),
  hourlyLimitWh: z.number().int().nullable(),
  lowCreditMinor: z.number().int().nullable(),
  /** The last thresholds.set sent to the meter for it, and where it is in the command lifecycle. */
  lowCreditCommand: z.object({ id: z.string(), status: z.enum(COMMAND_STATUSES) }).nullable(),
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
  // A UK national number ("07700 900123") is accepted and stored as E.164 (+447700900123).
  mobile: z
    .string()
    .max(40)
    .transform((s) => normaliseMobile(s) ?? s)
    .pipe(z.string().regex(E164, 'expected a mobile number, e.g. 07700 900123 or +447700900123'))
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
