import { z } from 'zod';
import { COMMAND_STATUSES, TARIFF_REQUEST_STATUSES, TARIFF_STRUCTURES } from './enums.ts';
import { errorBody, isoDate, serial } from './common.ts';

/**
 * Tariffs, their versions, assignments and households' change requests. Prices are exact
 * integers: unit rates and the standing charge in thousandths of a minor unit (24.5p/kWh =
 * 24500, 53.35p/day = 53350), VAT in basis points (500 = 5%), money in minor units.
 */
/** Responses of routes that can collide with the current state (CONFLICT). */
export const conflictResponses = {
  409: errorBody.describe('Conflicts with the current state (CONFLICT), e.g. a request already open'),
} as const;

const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'expected HH:MM (00:00..23:59)');
export const timeWindow = z
  .strictObject({ from: hhmm, to: hhmm })
  .refine((w) => w.from !== w.to, { message: 'from and to must differ', path: ['to'] });
const rate = z.number().int().min(0).max(100_000_000).describe('Thousandths of a minor unit per kWh');

export const tariffVersionBody = z
  .strictObject({
    effectiveFrom: isoDate.describe(
      "Local day (midnight in each meter's zone) the prices apply from; not past",
    ),
    dayRate: rate.describe('Band 1 (day, or the only rate of a flat tariff)'),
    nightRate: rate.nullable().default(null).describe('Band 2 (night): two_rate and three_band only'),
    peakRate: rate.nullable().default(null).describe('Band 3 (peak): three_band only'),
    nightWindows: z.array(timeWindow).max(4).default([]).describe('Local times of band 2'),
    peakWindows: z.array(timeWindow).max(4).default([]).describe('Local times of band 3 (wins over night)'),
    exportRate: rate.nullable().default(null),
    standingMilliPerDay: z
      .number()
      .int()
      .min(0)
      .max(1_000_000_000)
      .describe('Standing charge per local day, thousandths of a minor unit'),
    vatBp: z.number().int().min(0).max(10_000).describe('VAT in basis points (500 = 5%)'),
  })
  .describe('Prices of one tariff version');
export type TariffVersionBody = z.infer<typeof tariffVersionBody>;

export const tariffCreateBody = z.strictObject({
  code: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,64}$/, 'code: 1-64 letters, digits, . _ -')
    .describe('Stable id the meters receive'),
  name: z.string().trim().min(1).max(80),
  currency: z
    .string()
    .regex(/^[A-Z]{3}$/)
    .default('GBP'),
  structure: z.enum(TARIFF_STRUCTURES),
  open: z.boolean().default(true).describe('Households may see it and ask to move to it'),
  version: tariffVersionBody,
});
export type TariffCreateBody = z.infer<typeof tariffCreateBody>;

export const tariffIdParams = z.object({ id: z.coerce.number().int().min(1).max(2_147_483_647) });

export const tariffVersionSchema = z.object({
  version: z.number().int(),
  effectiveFrom: z.string(),
  dayRate: z.number().int(),
  nightRate: z.number().int().nullable(),
  peakRate: z.number().int().nullable(),
  nightWindows: z.array(z.object({ from: z.string(), to: z.string() })),
  peakWindows: z.array(z.object({ from: z.string(), to: z.string() })),
  exportRate: z.number().int().nullable(),
  standingMilliPerDay: z.number().int(),
  vatBp: z.number().int(),
});
export type TariffVersionView = z.infer<typeof tariffVersionSchema>;

/** What a household would have paid on a tariff at its current prices, over its own recent days. */
export const comparisonSchema = z.object({
  windowDays: z.number().int().describe('30 or 365'),
  daysUsed: z.number().int().describe('Local days in the window with readings (what the figure covers)'),
  wh: z.number().int(),
  totalMinor: z.number().int().describe('Energy + standing charge + VAT, minor units'),
});
export type Comparison = z.infer<typeof comparisonSchema>;

export const tariffSchema = z.object({
  id: z.number().int(),
  code: z.string(),
  name: z.string(),
  currency: z.string(),
  structure: z.enum(TARIFF_STRUCTURES),
  open: z.boolean(),
  /** Every version, oldest first. */
  versions: z.array(tariffVersionSchema),
  /** The version in force today (null = none yet). */
  current: tariffVersionSchema.nullable(),
  /** Meters on it today (supplier view; null for households). */
  meters: z.number().int().nullable(),
  /** Households only: this tariff priced over their own last 30 and 365 days. */
  comparison: z.array(comparisonSchema).nullable(),
});
export type Tariff = z.infer<typeof tariffSchema>;

export const meterTariffSchema = z.object({
  serial: z.string(),
  tz: z.string(),
  /** Tariff in force today, null = none. */
  tariffId: z.number().int().nullable(),
  tariffName: z.string().nullable(),
  /** A later assignment already decided (from a future local day). */
  next: z.object({ tariffId: z.number().int(), tariffName: z.string(), from: z.string() }).nullable(),
  /** The latest tariff.set sent to the meter and where it is in the command lifecycle. */
  command: z
    .object({ id: z.string(), status: z.enum(COMMAND_STATUSES), version: z.number().int().nullable() })
    .nullable(),
});
export type MeterTariff = z.infer<typeof meterTariffSchema>;

export const tariffsQuery = z.strictObject({
  serial: serial.optional().describe('Households: one of their meters; default: their first'),
});
export type TariffsQuery = z.infer<typeof tariffsQuery>;
export const tariffsResponse = z.object({
  items: z.array(tariffSchema),
  /** Households: their meter and its tariff (null for staff). */
  meter: meterTariffSchema.nullable(),
});
export type Tariffs = z.infer<typeof tariffsResponse>;

export const assignBody = z.strictObject({
  tariffId: z.number().int().min(1),
  from: isoDate
    .optional()
    .describe("First local day on the tariff; default: the meter's next local midnight"),
});
export type AssignBody = z.infer<typeof assignBody>;

export const bulkAssignBody = z
  .strictObject({
    serials: z.array(serial).min(1).max(10_000).optional().describe('These meters'),
    fromTariffId: z.number().int().min(1).optional().describe('Or: every meter now on this tariff'),
    from: isoDate.optional().describe("First local day; default: each meter's next local midnight"),
  })
  .refine((b) => (b.serials === undefined) !== (b.fromTariffId === undefined), {
    message: 'give either serials or fromTariffId',
    path: ['serials'],
  });
export type BulkAssignBody = z.infer<typeof bulkAssignBody>;
export const bulkAssignResponse = z.object({
  assigned: z.array(
    z.object({
      serial: z.string(),
      from: z.string(),
      commandId: z
        .string()
        .nullable()
        .describe('The tariff.set sent now; null = sent once an earlier change on that meter has begun'),
    }),
  ),
});
export type BulkAssign = z.infer<typeof bulkAssignResponse>;

export const tariffRequestBody = z.strictObject({
  serial,
  toTariffId: z.number().int().min(1),
});
export type TariffRequestBody = z.infer<typeof tariffRequestBody>;

export const tariffDecisionBody = z.discriminatedUnion('decision', [
  z.strictObject({
    decision: z.literal('approve'),
    effectiveFrom: isoDate.optional().describe("Default: the meter's next local midnight"),
  }),
  z.strictObject({ decision: z.literal('decline'), reason: z.string().trim().min(1).max(500) }),
]);
export type TariffDecisionBody = z.infer<typeof tariffDecisionBody>;

export const tariffRequestSchema = z.object({
  id: z.number().int(),
  serial: z.string(),
  household: z.string(),
  fromTariff: z.string().nullable(),
  toTariffId: z.number().int(),
  toTariff: z.string(),
  status: z.enum(TARIFF_REQUEST_STATUSES),
  reason: z.string().nullable(),
  effectiveFrom: z.string().nullable(),
  createdAt: z.string(),
  decidedAt: z.string().nullable(),
});
export type TariffRequest = z.infer<typeof tariffRequestSchema>;
export const tariffRequestsResponse = z.object({ items: z.array(tariffRequestSchema) });
export type TariffRequests = z.infer<typeof tariffRequestsResponse>;
export const tariffRequestIdParams = z.object({
  id: z.coerce
    .number()
    .int()
    .min(1)
    .max(2 ** 53 - 1),
});
