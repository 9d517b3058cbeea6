import { z } from 'zod';
import { errorBody, cursor, isoInstant, isoMonth, limit, timestamp } from './common.ts';
import { INCIDENT_KINDS, INCIDENT_STATUSES, OUTAGE_SOURCES, SLA_STATES } from './enums.ts';
import { normaliseMobile } from './phone.ts';

// #9 outages: the network operator's console. Operators read and work incidents; they never
// change a meter. Households appear as a count and postcodes only: an operator sees no
// household identity.

/** Responses of incident transitions that the incident's state refuses (CONFLICT). */
export const incidentConflictResponses = {
  409: errorBody.describe(
    "Not possible in the incident's current status (CONFLICT), e.g. closing an open incident",
  ),
} as const;

export const feederStatus = z
  .object({
    id: z.string(),
    name: z.string(),
    areaId: z.string(),
    areaName: z.string(),
    meters: z.number().int().describe('Meters that count for outages: active, not remotely disconnected'),
    metersOff: z.number().int().describe('Meters whose power is off (last gasp or silent)'),
    incidentId: z.number().int().nullable().describe('The open feeder incident, if any'),
    slaState: z.enum(SLA_STATES).nullable(),
  })
  .describe('FeederStatus');
export type FeederStatus = z.infer<typeof feederStatus>;

export const feedersQuery = z.strictObject({
  area: z.string().min(1).max(64).optional(),
});
export type FeedersQuery = z.infer<typeof feedersQuery>;

export const feedersResponse = z.object({
  items: z.array(feederStatus).describe('Feeders with an outage first, then by area and name'),
  counters: z.object({
    feeders: z.number().int(),
    feedersOut: z.number().int().describe('Feeders with an open incident'),
    metersOff: z.number().int(),
    openIncidents: z.number().int(),
    atRisk: z.number().int(),
    breached: z.number().int(),
  }),
});
export type FeedersResponse = z.infer<typeof feedersResponse>;

export const incidentsQuery = z.strictObject({
  state: z
    .enum(['open', 'closed', 'all'])
    .default('open')
    .describe('open: detected/acknowledged/dispatched; closed: restored/closed'),
  kind: z.enum(INCIDENT_KINDS).optional(),
  area: z.string().min(1).max(64).optional(),
  sla: z.enum(SLA_STATES).optional(),
  limit: limit(200, 50),
  cursor: cursor.optional(),
});
export type IncidentsQuery = z.infer<typeof incidentsQuery>;

export const incidentSummary = z
  .object({
    id: z.number().int(),
    kind: z.enum(INCIDENT_KINDS),
    status: z.enum(INCIDENT_STATUSES),
    areaId: z.string(),
    feederId: z.string().nullable(),
    serial: z.string().nullable().describe("A single incident's meter"),
    firstFailureAt: timestamp.describe('First last gasp, or when the first meter went silent'),
    detectedAt: timestamp,
    restoredAt: timestamp.nullable(),
    closedAt: timestamp.nullable(),
    etr: timestamp.nullable().describe('Estimated time of restoration'),
    slaTargetAt: timestamp,
    slaState: z.enum(SLA_STATES),
    meters: z.number().int(),
    metersOff: z.number().int(),
  })
  .describe('Incident');
export type IncidentSummary = z.infer<typeof incidentSummary>;

export const incidentsResponse = z.object({
  items: z.array(incidentSummary).describe('Newest first'),
  nextCursor: z.string().nullable(),
});
export type IncidentsResponse = z.infer<typeof incidentsResponse>;

export const INCIDENT_EVENT_KINDS = [
  'detected',
  'meter_joined',
  'acknowledged',
  'dispatched',
  'etr_set',
  'restored',
  'stragglers',
  'closed',
  'note',
  'sla_at_risk',
  'sla_breached',
] as const;
export type IncidentEventKind = (typeof INCIDENT_EVENT_KINDS)[number];

export const incidentDetail = incidentSummary.extend({
  acknowledgedAt: timestamp.nullable(),
  dispatchedAt: timestamp.nullable(),
  etrVersion: z.number().int(),
  atRiskAt: timestamp.nullable(),
  breachedAt: timestamp.nullable(),
  followsId: z
    .number()
    .int()
    .nullable()
    .describe('The feeder incident this single one follows up (a straggler)'),
  followUps: z.array(z.number().int()).describe("Single incidents following up this one's stragglers"),
  households: z.object({
    count: z.number().int(),
    postcodes: z.array(z.string()).describe('Distinct postcodes, sorted; no names'),
  }),
  meterList: z.array(
    z.object({
      serial: z.string(),
      feederId: z.string().nullable(),
      source: z.enum(OUTAGE_SOURCES),
      failedAt: timestamp,
      restoredAt: timestamp.nullable(),
      straggler: z.boolean(),
    }),
  ),
  timeline: z.array(
    z.object({
      id: z.number().int(),
      at: timestamp,
      kind: z.enum(INCIDENT_EVENT_KINDS),
      actor: z.string().nullable().describe('Who; null = the system'),
      text: z.string().nullable(),
      data: z.record(z.string(), z.unknown()).nullable(),
    }),
  ),
});
export type IncidentDetail = z.infer<typeof incidentDetail>;

/** Operator transitions. Restored by hand when the crew knows better than the meters. */
export const INCIDENT_TRANSITIONS = ['acknowledged', 'dispatched', 'restored', 'closed'] as const;
export type IncidentTransition = (typeof INCIDENT_TRANSITIONS)[number];

export const incidentStatusBody = z.strictObject({
  to: z.enum(INCIDENT_TRANSITIONS),
  note: z.string().trim().min(1).max(2000).optional(),
});
export type IncidentStatusBody = z.infer<typeof incidentStatusBody>;

export const incidentEtrBody = z.strictObject({
  etr: isoInstant.nullable().describe('null withdraws the estimate'),
});
export type IncidentEtrBody = z.infer<typeof incidentEtrBody>;

export const incidentNoteBody = z.strictObject({ text: z.string().trim().min(1).max(2000) });
export type IncidentNoteBody = z.infer<typeof incidentNoteBody>;

export const incidentIdParams = z.object({
  id: z.coerce
    .number()
    .int()
    .min(1)
    .max(2 ** 53 - 1),
});

export const slaQuery = z.strictObject({
  month: isoMonth.optional().describe('The last of the months shown (default: this month, UTC)'),
  months: z.coerce.number().int().min(1).max(24).default(6),
});
export type SlaQuery = z.infer<typeof slaQuery>;

export const slaMonth = z.object({
  month: z.string().describe('YYYY-MM (UTC), by first failure'),
  incidents: z.number().int(),
  feeder: z.number().int(),
  single: z.number().int(),
  breaches: z.number().int(),
  atRisk: z.number().int().describe('Flagged at risk (some went on to breach)'),
  detectP50S: z.number().nullable().describe('Time to detect: detected - first failure, seconds'),
  detectP95S: z.number().nullable(),
  restoreP50Min: z.number().nullable().describe('Time to restore: restored - first failure, minutes'),
  restoreP95Min: z.number().nullable(),
  restored: z.number().int(),
});
export type SlaMonth = z.infer<typeof slaMonth>;
export const slaResponse = z.object({ months: z.array(slaMonth).describe('Oldest first') });
export type SlaResponse = z.infer<typeof slaResponse>;

const mobile = z
  .string()
  .max(40)
  .transform((s, ctx) => {
    const m = normaliseMobile(s);
    if (!m) {
      ctx.addIssue({ code: 'custom', message: 'a mobile number, e.g. 07700 900123 or +447700900123' });
      return z.NEVER;
    }
    return m;
  });

export const outageSettingsBody = z.strictObject({
  outageMinMeters: z
    .number()
    .int()
    .min(1)
    .max(100_000)
    .describe('Meters of one feeder off within the window'),
  outageMinSharePct: z.number().min(0).max(100).describe('Or this share of the feeder (per cent)'),
  outageWindowS: z.number().int().min(10).max(3600),
  silentAfterS: z
    .number()
    .int()
    .min(300)
    .max(7 * 86_400),
  outageRestoreGraceS: z
    .number()
    .int()
    .min(5)
    .max(86_400)
    .describe('After the first meters are back, the rest are stragglers after this'),
  outageAutoCloseH: z.number().int().min(1).max(720),
  slaFeederMin: z
    .number()
    .int()
    .min(1)
    .max(30 * 1440),
  slaSingleMin: z
    .number()
    .int()
    .min(1)
    .max(30 * 1440),
  slaAtRiskPct: z.number().int().min(1).max(99),
  oncallEmails: z.array(z.email().max(254)).max(20),
  oncallMobiles: z.array(mobile).max(20),
});
export type OutageSettingsBody = z.input<typeof outageSettingsBody>;

export const outageSettings = z.object({
  outageMinMeters: z.number().int(),
  outageMinSharePct: z.number(),
  outageWindowS: z.number().int(),
  silentAfterS: z.number().int(),
  outageRestoreGraceS: z.number().int(),
  outageAutoCloseH: z.number().int(),
  slaFeederMin: z.number().int(),
  slaSingleMin: z.number().int(),
  slaAtRiskPct: z.number().int(),
  oncallEmails: z.array(z.string()),
  oncallMobiles: z.array(z.string()),
  updatedAt: timestamp,
});
export type OutageSettings = z.infer<typeof outageSettings>;
