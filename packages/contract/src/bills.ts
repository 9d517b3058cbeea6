import { z } from 'zod';
import { BILL_NOTE_KINDS, BILL_RUN_STATUSES, BILL_RUN_TRIGGERS, LEDGER_KINDS, METER_MODES } from './enums.ts';
import { cursor, isoDate, limit, timestamp } from './common.ts';

const minor = z.number().int();

// ------------------------------------------------------------------ accounts and the ledger

export const accountsQuery = z.strictObject({
  q: z
    .string()
    .trim()
    .min(1)
    .max(80)
    .optional()
    .describe('Search: part of the customer name, the consumer ID or the meter serial'),
  mode: z.enum(METER_MODES).optional(),
  limit: limit(200, 50),
  cursor: cursor.optional(),
});
export type AccountsQuery = z.infer<typeof accountsQuery>;

export const accountItem = z
  .object({
    id: z.number().int(),
    customer: z.string(),
    consumerId: z.string().describe("The household's sign-in ID"),
    supplier: z.object({ id: z.number().int(), name: z.string() }),
    mode: z.enum(METER_MODES),
    billingCycleDay: z.number().int(),
    currency: z.string(),
    meterSerial: z.string().nullable(),
    balanceMinor: minor.describe('Sum of the ledger entries: positive = owes, negative = in credit'),
  })
  .describe('Account');
export type Account = z.infer<typeof accountItem>;
export const accountsResponse = z.object({ items: z.array(accountItem), nextCursor: z.string().nullable() });
export type AccountPage = z.infer<typeof accountsResponse>;

export const ledgerQuery = z.strictObject({ limit: limit(500, 100), cursor: cursor.optional() });
export type LedgerQuery = z.infer<typeof ledgerQuery>;
export const ledgerItem = z.object({
  txnId: z.number().int(),
  kind: z.enum(LEDGER_KINDS),
  ref: z.string(),
  memo: z.string(),
  at: timestamp,
  amountMinor: minor.describe("This entry's effect on the balance (positive = owes more)"),
  balanceMinor: minor.describe('Balance after this entry'),
});
export type LedgerItem = z.infer<typeof ledgerItem>;
export const ledgerResponse = z.object({
  account: accountItem,
  items: z.array(ledgerItem).describe('Newest first'),
  nextCursor: z.string().nullable(),
});
export type LedgerPage = z.infer<typeof ledgerResponse>;

// ------------------------------------------------------------------ bills

export const billsQuery = z
  .strictObject({
    accountId: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
    from: isoDate.optional().describe('Periods starting on or after this local day'),
    to: isoDate.optional().describe('Periods starting on or before this local day'),
    limit: limit(200, 50),
    cursor: cursor.optional(),
  })
  .refine((q) => !q.from || !q.to || q.from <= q.to, { message: 'to must not be before from', path: ['to'] });
export type BillsQuery = z.infer<typeof billsQuery>;

export const billNote = z.object({
  id: z.number().int(),
  kind: z.enum(BILL_NOTE_KINDS),
  reason: z.string(),
  totalMinor: minor.describe('Negative for a credit note'),
  issuedAt: timestamp,
});
export const billItem = z
  .object({
    id: z.number().int(),
    accountId: z.number().int(),
    customer: z.string(),
    meterSerial: z.string(),
    periodStart: isoDate.describe('First local day'),
    periodEnd: isoDate.describe('Day after the last local day'),
    currency: z.string(),
    energyMinor: minor,
    standingMinor: minor,
    vatMinor: minor,
    totalMinor: minor.describe('Charges for the period, VAT included'),
    previousBalanceMinor: minor,
    paymentsMinor: minor.describe(
      'Payments, refunds and top-ups since the previous bill (negative = paid in)',
    ),
    otherMinor: minor.describe('Notes and adjustments since the previous bill'),
    amountDueMinor: minor,
    dueDate: isoDate,
    issuedAt: timestamp,
    estimated: z.boolean().describe('At least one boundary read was estimated'),
    notes: z.array(billNote).describe('Credit and debit notes correcting this bill'),
  })
  .describe('Bill');
export type Bill = z.infer<typeof billItem>;
export const billsResponse = z.object({ items: z.array(billItem), nextCursor: z.string().nullable() });
export type BillPage = z.infer<typeof billsResponse>;

// ------------------------------------------------------------------ bill runs

export const billRunBody = z.strictObject({
  periodStart: isoDate
    .refine((d) => Number(d.slice(8, 10)) <= 28, 'a billing period starts on day 1 to 28 (the cycle day)')
    .describe('First local day of the period; its day of the month is the cycle day billed'),
});
export type BillRunBody = z.infer<typeof billRunBody>;

export const billRunFailure = z.object({
  accountId: z.number().int(),
  customer: z.string(),
  reason: z.string(),
});
export const billRun = z
  .object({
    id: z.number().int(),
    cycleDay: z.number().int(),
    periodStart: isoDate,
    periodEnd: isoDate.describe('Day after the last local day'),
    trigger: z.enum(BILL_RUN_TRIGGERS),
    status: z.enum(BILL_RUN_STATUSES),
    total: z.number().int(),
    processed: z.number().int(),
    issued: z.number().int(),
    alreadyBilled: z.number().int().describe('Accounts billed for the period before this run'),
    failed: z.number().int(),
    createdAt: timestamp,
    startedAt: timestamp.nullable(),
    finishedAt: timestamp.nullable(),
  })
  .describe('Bill run');
export type BillRun = z.infer<typeof billRun>;
export const billRunDetail = billRun.extend({
  failures: z.array(billRunFailure).describe('Accounts not billed, with the reason (first 200)'),
});
export type BillRunDetail = z.infer<typeof billRunDetail>;
export const billRunsQuery = z.strictObject({ limit: limit(100, 20), cursor: cursor.optional() });
export const billRunsResponse = z.object({ items: z.array(billRun), nextCursor: z.string().nullable() });
export type BillRunPage = z.infer<typeof billRunsResponse>;
