import { z } from 'zod';
import { COMMAND_STATUSES, METER_MODES, RELAY_STATES } from './enums.ts';
import { isoInstant, limit, timestamp } from './common.ts';

/** Columns the fleet table sorts by on the server (every one has an index behind it). */
export const FLEET_SORTS = ['serial', 'name', 'lastSeen', 'credit', 'postcode'] as const;
export type FleetSort = (typeof FLEET_SORTS)[number];

/** The "last seen older than" presets the filter offers and counts, in hours. */
export const FLEET_STALE_HOURS = [1, 24, 168] as const;

/** A yes/no filter: absent = either, 'true' = only those with it, 'false' = only those without. */
const flag = z.enum(['true', 'false']).optional();

/** The fleet's search and filters: shared by the table, its counts and the CSV export. */
export const fleetFilterQuery = z.object({
  q: z
    .string()
    .trim()
    .max(80)
    .optional()
    .describe(
      'Search: serial prefix, consumer ID prefix, household name prefix (any case), postcode prefix, or address/name words (prefixes)',
    ),
  mode: z.enum(METER_MODES).optional(),
  relay: z.enum(RELAY_STATES).optional(),
  tariffId: z.coerce.number().int().min(1).max(2_147_483_647).optional().describe("The meter's tariff today"),
  firmware: z
    .string()
    .max(32)
    .regex(/^[A-Za-z0-9._+-]+$/, 'firmware: letters, digits, . _ + -')
    .optional()
    .describe('Running firmware version, exactly'),
  lastSeenBefore: isoInstant.optional().describe('Last heard from before this instant (or never)'),
  staleHours: z.coerce
    .number()
    .int()
    .min(1)
    .max(8760)
    .optional()
    .describe('Preset: last heard from more than this many hours ago (or never)'),
  openCase: flag.describe('Has a tamper case that is not resolved'),
  veeFindings: flag.describe('Has validation (VEE) findings waiting for review'),
  vulnerable: flag.describe('The household is flagged vulnerable'),
  sort: z.enum(FLEET_SORTS).default('serial'),
  dir: z.enum(['asc', 'desc']).default('asc'),
});
export type FleetFilterQuery = z.infer<typeof fleetFilterQuery>;

export const fleetQuery = fleetFilterQuery.extend({
  limit: limit(200, 50),
  cursor: z.string().min(1).max(600).optional().describe('nextCursor of the previous page (same sort)'),
});
export type FleetQuery = z.infer<typeof fleetQuery>;

export const fleetItem = z
  .object({
    serial: z.string(),
    consumer: z.object({ name: z.string(), consumerId: z.string().nullable() }).nullable(),
    postcode: z.string().nullable(),
    mode: z.enum(METER_MODES).nullable(),
    relay: z.enum(RELAY_STATES).nullable(),
    tariff: z.object({ id: z.number().int(), name: z.string() }).nullable(),
    firmwareVersion: z.string().nullable(),
    lastSeenAt: timestamp.nullable(),
    creditMinor: z.number().int().nullable().describe('Prepayment credit on the meter, minor units'),
    vulnerable: z.boolean(),
    openCase: z.boolean(),
    reviewFindings: z.number().int().describe('VEE findings waiting for review'),
  })
  .describe('FleetItem');
export type FleetItem = z.infer<typeof fleetItem>;

export const fleetCounts = z
  .object({
    all: z.number().int().describe('Meters matching the search, before filters'),
    mode: z.object({ credit: z.number().int(), prepayment: z.number().int() }),
    relay: z.object({ connected: z.number().int(), disconnected: z.number().int(), armed: z.number().int() }),
    tariffs: z.array(z.object({ id: z.number().int(), name: z.string(), count: z.number().int() })),
    firmware: z.array(z.object({ version: z.string(), count: z.number().int() })),
    stale: z.array(z.object({ hours: z.number().int(), count: z.number().int() })),
    openCase: z.number().int(),
    veeFindings: z.number().int(),
    vulnerable: z.number().int(),
    asOf: timestamp.describe('When these counts were taken (they may be reused for a few seconds)'),
  })
  .describe('How many meters match each filter value within the current search');
export type FleetCounts = z.infer<typeof fleetCounts>;

export const fleetResponse = z.object({
  items: z.array(fleetItem),
  total: z
    .number()
    .int()
    .describe(
      'Meters matching the search and every filter (exact when taken; like the counts, reused for a few seconds)',
    ),
  counts: fleetCounts,
  nextCursor: z.string().nullable(),
});
export type FleetResponse = z.infer<typeof fleetResponse>;

/** Everything staff see on one meter's page, each section bounded. */
export const meterOverview = z
  .object({
    serial: z.string(),
    status: z.enum(['active', 'decommissioned']),
    tz: z.string(),
    area: z.object({ id: z.string(), name: z.string() }),
    household: z
      .object({
        name: z.string(),
        consumerId: z.string().nullable(),
        address: z.string().nullable(),
        postcode: z.string().nullable(),
        vulnerable: z.boolean(),
        vulnerableNote: z.string().nullable(),
        email: z.string().nullable(),
        mobile: z.string().nullable(),
      })
      .nullable(),
    account: z
      .object({
        id: z.number().int(),
        mode: z.enum(METER_MODES),
        currency: z.string(),
        balanceMinor: z.number().int().describe('Ledger balance: positive = the household owes'),
      })
      .nullable(),
    tariff: z
      .object({
        id: z.number().int().nullable(),
        name: z.string().nullable(),
        next: z.object({ id: z.number().int(), name: z.string(), from: z.string() }).nullable(),
      })
      .describe("Today's tariff and the next one already decided"),
    mode: z.enum(METER_MODES).nullable(),
    relay: z.enum(RELAY_STATES).nullable(),
    creditMinor: z.number().int().nullable(),
    lastSeenAt: timestamp.nullable(),
    openCase: z.object({ id: z.number().int(), status: z.string(), openedAt: timestamp }).nullable(),
    usage: z.array(z.object({ day: z.string(), wh: z.number().int(), estimated: z.number().int() })),
    events: z.array(
      z.object({ ts: timestamp, code: z.string(), data: z.record(z.string(), z.unknown()).nullable() }),
    ),
    commands: z.array(
      z.object({
        id: z.string(),
        type: z.string(),
        status: z.enum(COMMAND_STATUSES),
        reason: z.string().nullable(),
        requestedBy: z.string().nullable(),
        approvedBy: z.string().nullable(),
        createdAt: timestamp,
        repliedAt: timestamp.nullable(),
        resultCode: z.string().nullable(),
        transitions: z.array(
          z.object({ at: timestamp, from: z.string().nullable(), to: z.string(), by: z.string().nullable() }),
        ),
      }),
    ),
    alerts: z.array(
      z.object({
        id: z.number().int(),
        type: z.string(),
        severity: z.string(),
        title: z.string(),
        createdAt: timestamp,
      }),
    ),
    vee: z.array(
      z.object({ ts: timestamp, rule: z.string(), needsReview: z.boolean(), detail: z.unknown().nullable() }),
    ),
    firmware: z.object({
      version: z.string().nullable(),
      runningSlot: z.enum(['A', 'B']).nullable(),
      hardwareClass: z.string(),
    }),
  })
  .describe('MeterOverview');
export type MeterOverview = z.infer<typeof meterOverview>;
