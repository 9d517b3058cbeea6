import { z } from 'zod';
import { NETWORK_INVOICE_STATUSES } from './enums.ts';
import { isoDate, isoMonth, limit, timestamp } from './common.ts';

/**
 * #9 Network-use charges: the network operator's tariffs (per-kWh rates by time band over
 * local clock time, a fixed charge per meter per day), the monthly invoices it issues to
 * each supplier from the daily collection, their documents, payments and balances. Prices
 * are exact integers in thousandths of a minor unit (4.2p/kWh = 4200), VAT in basis points,
 * money in minor units, energy in Wh.
 */
const halfHour = z
  .string()
  .regex(/^([01]\d|2[0-3]):(00|30)$/, 'expected HH:MM on the half-hour (00:00, 00:30 .. 23:30)');
const window = z
  .strictObject({ from: halfHour, to: halfHour })
  .refine((w) => w.from !== w.to, { message: 'from and to must differ', path: ['to'] });
const milli = z.number().int().min(0).max(100_000_000);

export const networkBand = z.strictObject({
  code: z.string().regex(/^[a-z0-9_-]{1,16}$/, 'code: 1-16 lower-case letters, digits, _ -'),
  name: z.string().trim().min(1).max(40),
  rateMilli: milli.describe('Thousandths of a minor unit per kWh'),
  windows: z
    .array(window)
    .max(4)
    .describe('Local clock windows; [] for the one band that takes every other half-hour'),
  weekdaysOnly: z.boolean().default(false).describe('The windows apply Monday to Friday only'),
});
export type NetworkBandBody = z.infer<typeof networkBand>;

export const networkVersionBody = z
  .strictObject({
    effectiveFrom: isoDate.describe('Local day the prices apply from (after every month already invoiced)'),
    bands: z
      .array(networkBand)
      .min(1)
      .max(6)
      .describe('A half-hour takes the first band whose windows hold it; exactly one band has no windows'),
    fixedMilliPerDay: z
      .number()
      .int()
      .min(0)
      .max(1_000_000_000)
      .describe('Fixed charge per meter per local day, thousandths of a minor unit'),
    vatBp: z.number().int().min(0).max(10_000).describe('VAT in basis points (2000 = 20%)'),
  })
  .refine((v) => v.bands.filter((b) => b.windows.length === 0).length === 1, {
    message: 'exactly one band must have no windows',
    path: ['bands'],
  })
  .refine((v) => new Set(v.bands.map((b) => b.code)).size === v.bands.length, {
    message: 'band codes must be unique',
    path: ['bands'],
  });
export type NetworkVersionBody = z.infer<typeof networkVersionBody>;

export const networkTariffCreateBody = z.strictObject({
  code: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'code: 1-64 letters, digits, . _ -'),
  name: z.string().trim().min(1).max(80),
  currency: z
    .string()
    .regex(/^[A-Z]{3}$/)
    .default('GBP'),
  version: networkVersionBody,
});
export type NetworkTariffCreateBody = z.infer<typeof networkTariffCreateBody>;

export const networkAssignBody = z.strictObject({
  areaId: z.string().min(1).max(64),
  fromDay: isoDate.describe('Local day the tariff prices the area from'),
});
export type NetworkAssignBody = z.infer<typeof networkAssignBody>;

export const networkIdParams = z.object({ id: z.coerce.number().int().min(1).max(9_007_199_254_740_991) });

export const networkTariffVersion = z.object({
  version: z.number().int(),
  effectiveFrom: z.string(),
  bands: z.array(
    z.object({
      code: z.string(),
      name: z.string(),
      rateMilli: z.number().int(),
      windows: z.array(z.object({ from: z.string(), to: z.string() })),
      weekdaysOnly: z.boolean(),
    }),
  ),
  fixedMilliPerDay: z.number().int(),
  vatBp: z.number().int(),
});
export type NetworkTariffVersionView = z.infer<typeof networkTariffVersion>;

export const networkTariff = z.object({
  id: z.number().int(),
  operatorId: z.number().int(),
  code: z.string(),
  name: z.string(),
  currency: z.string(),
  versions: z.array(networkTariffVersion),
  areas: z.array(z.object({ areaId: z.string(), fromDay: z.string() })),
});
export type NetworkTariff = z.infer<typeof networkTariff>;

export const networkArea = z.object({
  id: z.string(),
  name: z.string(),
  tz: z.string(),
  /** The tariff pricing the area today (in its zone), if any. */
  tariffId: z.number().int().nullable(),
  tariffCode: z.string().nullable(),
  meters: z.number().int(),
});
export type NetworkAreaView = z.infer<typeof networkArea>;

export const networkTariffsResponse = z.object({
  items: z.array(networkTariff),
  areas: z.array(networkArea).describe("The operator's areas (what a tariff can be assigned to)"),
});
export type NetworkTariffsResponse = z.infer<typeof networkTariffsResponse>;

const minor = z.number().int();

export const networkInvoice = z.object({
  id: z.number().int(),
  operatorId: z.number().int(),
  operator: z.string(),
  supplierId: z.number().int(),
  supplier: z.string(),
  month: z.string().describe('YYYY-MM'),
  kind: z.enum(['invoice', 'credit_note', 'debit_note']),
  correctsId: z.number().int().nullable(),
  currency: z.string(),
  meterDays: z.number().int(),
  wh: z.number().int(),
  netMinor: minor,
  vatMinor: minor,
  grossMinor: minor,
  outstandingMinor: minor.nullable().describe('Invoices: with their notes, less payments against them'),
  status: z.enum(NETWORK_INVOICE_STATUSES),
  trigger: z.enum(['schedule', 'staff']),
  issuedAt: timestamp,
});
export type NetworkInvoice = z.infer<typeof networkInvoice>;

export const networkBalance = z.object({
  operatorId: z.number().int(),
  operator: z.string(),
  supplierId: z.number().int(),
  supplier: z.string(),
  owedMinor: minor.describe('What the supplier owes the operator (network ledger)'),
  invoicedMinor: minor,
  paidMinor: minor,
});
export type NetworkBalance = z.infer<typeof networkBalance>;

export const networkInvoicesQuery = z.strictObject({
  month: isoMonth.optional(),
  supplierId: z.coerce.number().int().min(1).max(2_147_483_647).optional(),
  limit: limit(500, 100),
  before: z.coerce.number().int().min(1).optional().describe('Items with a smaller id (the next page)'),
});
export type NetworkInvoicesQuery = z.infer<typeof networkInvoicesQuery>;

export const networkInvoicesResponse = z.object({
  items: z.array(networkInvoice),
  balances: z.array(networkBalance),
  /** Suppliers the operator may record a payment from (operators only; [] otherwise). */
  suppliers: z.array(z.object({ id: z.number().int(), name: z.string() })),
});
export type NetworkInvoicesResponse = z.infer<typeof networkInvoicesResponse>;

export const networkIssueBody = z.strictObject({ month: isoMonth });
export type NetworkIssueBody = z.infer<typeof networkIssueBody>;

export const networkIssueResponse = z.object({
  month: z.string(),
  issued: z.array(z.number().int()),
  notes: z.array(z.number().int()),
  unchanged: z.number().int(),
});
export type NetworkIssueResponse = z.infer<typeof networkIssueResponse>;

export const networkPaymentBody = z.strictObject({
  supplierId: z.number().int().min(1).max(2_147_483_647),
  amountMinor: z.number().int().min(1).max(100_000_000_000),
  reference: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9 ./_-]{1,64}$/, 'reference: 1-64 letters, digits, spaces, . _ / -')
    .describe("The bank's reference: recording the same reference again changes nothing"),
  invoiceId: z.number().int().min(1).nullable().default(null),
});
export type NetworkPaymentBody = z.infer<typeof networkPaymentBody>;

export const networkPaymentResponse = z.object({
  txnId: z.number().int(),
  created: z.boolean(),
  balance: networkBalance.nullable(),
});
export type NetworkPaymentResponse = z.infer<typeof networkPaymentResponse>;
