import { z } from 'zod';
import { COLLECTION_REASONS } from './enums.ts';
import { cursor, isoDate, limit, timestamp } from './common.ts';

// ------------------------------------------------------------------ #9 daily collection (N1)
// Each local day of an operator's area, collected from the raw intervals as numbered versions
// (1 at the cut-off; more when late data, or a person, changed the day). Energy in Wh.

const areaId = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9._-]+$/, 'area id: letters, digits, . _ -');

export const collectionAreasQuery = z.strictObject({
  days: limit(62, 14).describe('How many local days back from yesterday (default 14)'),
});

export const collectionAreaParams = z.object({ areaId });
export const collectionDayParams = z.object({ areaId, day: isoDate });
export const collectionFileParams = z.object({
  areaId,
  day: isoDate,
  supplierId: z.coerce.number().int().min(1).max(2_147_483_647),
});
export const collectionVersionQuery = z.strictObject({
  version: z.coerce.number().int().min(1).max(100_000).optional().describe('Default: the latest'),
});
export const collectionMissingQuery = z.strictObject({
  version: z.coerce.number().int().min(1).max(100_000).optional().describe('Default: the latest'),
  limit: limit(500, 100),
  cursor: cursor.optional(),
});

const counts = {
  meters: z.number().int(),
  completeMeters: z.number().int().describe('Meters with every expected interval (actual or estimated)'),
  completePct: z
    .number()
    .nullable()
    .describe('completeMeters / meters, per cent (1 decimal); null with no meters'),
  wh: z.number().int(),
  actual: z.number().int().describe('Intervals received'),
  estimated: z.number().int().describe('Intervals estimated by VEE'),
  expected: z.number().int().describe('Intervals the day should have (46/48/50 half-hours per meter)'),
};

export const collectionRun = z
  .object({
    version: z.number().int(),
    reason: z.enum(COLLECTION_REASONS),
    collectedAt: timestamp,
    ...counts,
  })
  .describe('CollectionRun');
export type CollectionRun = z.infer<typeof collectionRun>;

export const collectionDaySummary = z
  .object({ day: isoDate, versions: z.number().int(), latest: collectionRun.nullable() })
  .describe('CollectionDaySummary');
export type CollectionDaySummary = z.infer<typeof collectionDaySummary>;

export const collectionArea = z
  .object({
    areaId: z.string(),
    name: z.string(),
    tz: z.string(),
    cutoff: z.string().describe("HH:MM local: day D is collected at D+1 this time (the operator's setting)"),
    completenessAlertPct: z.number(),
    days: z.array(collectionDaySummary).describe('Newest first; days not collected yet have latest = null'),
  })
  .describe('CollectionArea');
export type CollectionArea = z.infer<typeof collectionArea>;

export const collectionAreasResponse = z.object({ areas: z.array(collectionArea) });
export type CollectionAreasResponse = z.infer<typeof collectionAreasResponse>;

export const collectionTotal = z.object({ id: z.string(), name: z.string(), ...counts });
export type CollectionTotal = z.infer<typeof collectionTotal>;

export const collectionVersion = collectionRun
  .extend({
    changedMeters: z.number().int().nullable().describe('Meters whose day differs from the previous version'),
    whDelta: z.number().int().nullable().describe('wh minus the previous version'),
  })
  .describe('CollectionVersion');
export type CollectionVersion = z.infer<typeof collectionVersion>;

export const collectionDayResponse = z.object({
  areaId: z.string(),
  areaName: z.string(),
  tz: z.string(),
  day: isoDate,
  completenessAlertPct: z.number().describe("The operator's threshold: below it the day is flagged"),
  versions: z.array(collectionVersion).describe('Oldest first'),
  version: collectionRun.describe('The version shown (latest unless asked)'),
  suppliers: z.array(collectionTotal),
  feeders: z.array(collectionTotal).describe('"—" for meters on no feeder'),
});
export type CollectionDayResponse = z.infer<typeof collectionDayResponse>;

export const collectionMissingMeter = z.object({
  serial: z.string(),
  feeder: z.string().nullable(),
  supplier: z.string(),
  actual: z.number().int(),
  estimated: z.number().int(),
  expected: z.number().int(),
  wh: z.number().int(),
  lastDataAt: timestamp.nullable().describe('Missing since: the end of the newest interval held'),
});
export type CollectionMissingMeter = z.infer<typeof collectionMissingMeter>;

export const collectionMissingResponse = z.object({
  version: z.number().int(),
  total: z.number().int().describe('Meters missing or incomplete in this version'),
  items: z.array(collectionMissingMeter).describe('Longest missing first'),
  nextCursor: z.string().nullable(),
});
export type CollectionMissingResponse = z.infer<typeof collectionMissingResponse>;

export const collectResponse = z.object({
  created: z.boolean().describe('false: nothing had changed, the latest version is returned'),
  run: collectionRun,
});
export type CollectResponse = z.infer<typeof collectResponse>;

/** One line of a supplier's daily file (CSV and JSON carry the same fields). */
export const collectionFileLine = z.object({
  serial: z.string(),
  feeder: z.string().nullable(),
  wh: z.number().int(),
  kwh: z.number(),
  actual: z.number().int(),
  estimated: z.number().int(),
  expected: z.number().int(),
  complete: z.boolean(),
  slotWh: z.array(z.number().int()).length(48).describe('48 local half-hours, 00:00-00:30 first'),
});
export type CollectionFileLine = z.infer<typeof collectionFileLine>;
