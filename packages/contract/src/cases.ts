import { z } from 'zod';
import { METER_MODES, TAMPER_CASE_STATUSES } from './enums.ts';
import { cursor, isoDate, isoMonth, limit, serial, timestamp } from './common.ts';

// ------------------------------------------------------------------ tamper cases

// Statuses (enums.ts): open -> investigating -> resolved; resolved is final (a new tamper
// event opens a new case).

/** What staff record having done about a case. */
export const TAMPER_CASE_ACTIONS = [
  'site_visit_booked',
  'site_visit_done',
  'disconnect',
  'reconnect',
  'meter_exchanged',
  'other',
] as const;
export type TamperCaseAction = (typeof TAMPER_CASE_ACTIONS)[number];

const text = (max: number) => z.string().trim().min(1).max(max);

export const tamperCasesQuery = z.strictObject({
  status: z.enum(TAMPER_CASE_STATUSES).optional(),
  limit: limit(200, 50),
  cursor: cursor.optional(),
});
export type TamperCasesQuery = z.infer<typeof tamperCasesQuery>;

export const tamperCaseSummary = z
  .object({
    id: z.number().int(),
    status: z.enum(TAMPER_CASE_STATUSES),
    serial: z.string(),
    household: z.string().nullable().describe("The household's name; null for a meter on no account"),
    openedAt: timestamp,
    updatedAt: timestamp,
    resolvedAt: timestamp.nullable(),
    resolution: z.string().nullable(),
    events: z.number().int().describe('Tamper events linked to the case'),
    lastEventAt: timestamp.nullable(),
  })
  .describe('TamperCase');
export type TamperCaseSummary = z.infer<typeof tamperCaseSummary>;

export const tamperCasesResponse = z.object({
  items: z.array(tamperCaseSummary).describe('Newest first'),
  nextCursor: z.string().nullable(),
  counts: z.object({ open: z.number().int(), investigating: z.number().int(), resolved: z.number().int() }),
});
export type TamperCasePage = z.infer<typeof tamperCasesResponse>;

export const tamperCaseEntry = z.object({
  id: z.number().int(),
  at: timestamp,
  actor: z.string().nullable().describe('Who; null = the system'),
  kind: z.enum(['note', 'status', 'action']),
  action: z.enum(TAMPER_CASE_ACTIONS).nullable(),
  text: z.string().nullable(),
  data: z.record(z.string(), z.unknown()).nullable().describe('visitDate, commandId, from/to status'),
});
export type TamperCaseEntry = z.infer<typeof tamperCaseEntry>;

export const tamperCaseDetail = tamperCaseSummary.extend({
  meter: z.object({ serial: z.string(), tz: z.string(), relay: z.string().nullable() }),
  consumerId: z.string().nullable().describe("The household's sign-in ID"),
  timeline: z.object({
    events: z.array(
      z.object({
        seq: z.number().int(),
        idx: z.number().int(),
        code: z.string(),
        text: z.string(),
        at: timestamp,
      }),
    ),
    entries: z.array(tamperCaseEntry).describe('Oldest first'),
  }),
});
export type TamperCaseDetail = z.infer<typeof tamperCaseDetail>;

export const tamperNoteBody = z.strictObject({ text: text(2000) });
export type TamperNoteBody = z.infer<typeof tamperNoteBody>;

export const tamperStatusBody = z.strictObject({
  status: z.enum(['investigating', 'resolved']),
  text: text(2000).optional().describe('Required when resolving: the resolution'),
});
export type TamperStatusBody = z.infer<typeof tamperStatusBody>;

export const tamperActionBody = z.strictObject({
  action: z.enum(TAMPER_CASE_ACTIONS),
  text: text(2000).optional(),
  visitDate: isoDate.optional().describe('Required for site_visit_booked'),
  commandId: z.uuid().optional().describe("A command of the case's meter (disconnect, reconnect)"),
});
export type TamperActionBody = z.infer<typeof tamperActionBody>;

export const meterTamperCasesResponse = z.object({ serial: z.string(), items: z.array(tamperCaseSummary) });
export type MeterTamperCases = z.infer<typeof meterTamperCasesResponse>;

// ------------------------------------------------------------------ monthly extracts

export const EXTRACT_STATUSES = ['queued', 'running', 'done', 'failed'] as const;
export type ExtractStatus = (typeof EXTRACT_STATUSES)[number];

export const extractSelection = z.strictObject({
  mode: z.enum(METER_MODES).optional().describe('Only credit or only prepayment meters'),
  tariffId: z.number().int().min(1).optional().describe("Only meters on this tariff (the month's first day)"),
  serials: z.array(serial).min(1).max(10_000).optional().describe('Only these meters'),
});
export type ExtractSelection = z.infer<typeof extractSelection>;

export const extractBody = z.strictObject({
  month: isoMonth.describe('YYYY-MM: the local calendar month of each meter'),
  selection: extractSelection.optional(),
});
export type ExtractBody = z.infer<typeof extractBody>;

export const extractItem = z
  .object({
    id: z.number().int(),
    month: z.string().describe('YYYY-MM'),
    selection: extractSelection,
    status: z.enum(EXTRACT_STATUSES),
    metersTotal: z.number().int().nullable().describe('null until the job has started'),
    metersDone: z.number().int(),
    rows: z.number().int().describe('CSV data rows written (daily and monthly)'),
    bytes: z.number().int().describe('Size of the CSV, uncompressed'),
    error: z.string().nullable(),
    requestedBy: z.string().nullable(),
    createdAt: timestamp,
    startedAt: timestamp.nullable(),
    finishedAt: timestamp.nullable(),
  })
  .describe('Extract');
export type Extract = z.infer<typeof extractItem>;

export const extractsQuery = z.strictObject({ limit: limit(100, 20), cursor: cursor.optional() });
export type ExtractsQuery = z.infer<typeof extractsQuery>;
export const extractsResponse = z.object({ items: z.array(extractItem), nextCursor: z.string().nullable() });
export type ExtractPage = z.infer<typeof extractsResponse>;

// ------------------------------------------------------------------ Green Button

/** At most 13 months in one file: a year with its comparison month, and a bounded stream. */
export const GREEN_BUTTON_MAX_DAYS = 397;

export const greenButtonQuery = z
  .strictObject({ from: isoDate, to: isoDate.describe('Last local day, inclusive') })
  .refine((q) => q.from <= q.to, { message: 'to must not be before from', path: ['to'] })
  .refine(
    (q) =>
      (Date.parse(`${q.to}T00:00:00Z`) - Date.parse(`${q.from}T00:00:00Z`)) / 86_400_000 <
      GREEN_BUTTON_MAX_DAYS,
    { message: `at most ${GREEN_BUTTON_MAX_DAYS} days`, path: ['to'] },
  );
export type GreenButtonQuery = z.infer<typeof greenButtonQuery>;
