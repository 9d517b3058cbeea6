import { z } from 'zod';
import {
  ACTION_REQUEST_STATUSES,
  APPROVAL_NEEDS,
  COMMAND_STATUSES,
  RELAY_STATES,
  SUPPLY_ACTIONS,
  SUPPLY_REASONS,
} from './enums.ts';
import { errorBody, isoDate, serial } from './common.ts';

/**
 * Remote supply control (GB "S3"): disconnect and reconnect with a reason, the safeguards
 * that make an action wait for a second supplier admin (a vulnerable household or protected
 * hours for a non-payment disconnection; more meters than the supplier's threshold in one
 * action), the approvals themselves, and the supplier's protection settings.
 */

/** Responses of supply routes beyond the common ones. */
export const supplyErrorResponses = {
  409: errorBody.describe(
    'Conflicts with the meter or request state (CONFLICT): already disconnected, already armed, already decided',
  ),
  429: errorBody.describe('The hourly disconnection quota of this user is used up (QUOTA_EXCEEDED)'),
} as const;

const reasonFields = {
  reason: z.enum(SUPPLY_REASONS),
  reasonText: z
    .string()
    .trim()
    .max(500)
    .optional()
    .describe('Required for reason "other"; kept in the audit log and shown to the approver'),
};
const needsText = <T extends { reason: string; reasonText?: string | undefined }>(b: T) =>
  b.reason !== 'other' || (b.reasonText !== undefined && b.reasonText.length > 0);
const needsTextIssue = { message: 'reasonText is required when reason is "other"', path: ['reasonText'] };

export const supplyBody = z
  .strictObject({ action: z.enum(SUPPLY_ACTIONS), ...reasonFields })
  .refine(needsText, needsTextIssue);
export type SupplyBody = z.infer<typeof supplyBody>;

export const supplyBulkBody = z
  .strictObject({
    serials: z
      .array(serial)
      .min(1)
      .max(1000)
      .refine((s) => new Set(s).size === s.length, 'serials must not repeat'),
    action: z.enum(SUPPLY_ACTIONS),
    ...reasonFields,
  })
  .refine(needsText, needsTextIssue);
export type SupplyBulkBody = z.infer<typeof supplyBulkBody>;

export const supplyCommandSchema = z.object({
  serial,
  commandId: z.string(),
  status: z.enum(COMMAND_STATUSES),
});

export const supplyResult = z.object({
  action: z.enum(SUPPLY_ACTIONS),
  reason: z.enum(SUPPLY_REASONS),
  /** sent: queued for the meter(s) now; awaiting_approval: nothing reaches a meter until a second admin approves. */
  outcome: z.enum(['sent', 'awaiting_approval']),
  needs: z.array(z.enum(APPROVAL_NEEDS)).describe('Why it waits for approval (empty when sent)'),
  requestId: z.number().int().nullable(),
  expiresAt: z.string().nullable().describe('When the approval request lapses'),
  commands: z.array(supplyCommandSchema),
});
export type SupplyResult = z.infer<typeof supplyResult>;

export const approvalIdParams = z.object({ id: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER) });

export const approvalListQuery = z.object({
  status: z.enum(ACTION_REQUEST_STATUSES).optional().describe('Default: all, newest first'),
  serial: serial
    .optional()
    .describe("Only requests that include this meter (the meter page's pending approvals)"),
  limit: z.coerce.number().int().min(1).max(200).default(50),
});
export type ApprovalListQuery = z.infer<typeof approvalListQuery>;

const person = z.object({ id: z.number().int(), name: z.string() });

export const approvalSchema = z.object({
  id: z.number().int(),
  kind: z.string().describe('What would happen, e.g. supply.disconnect (firmware campaigns later)'),
  reason: z.string(),
  reasonText: z.string().nullable(),
  needs: z.array(z.enum(APPROVAL_NEEDS)),
  status: z.enum(ACTION_REQUEST_STATUSES),
  requestedBy: person,
  createdAt: z.string(),
  expiresAt: z.string(),
  decidedBy: person.nullable(),
  decidedAt: z.string().nullable(),
  decisionReason: z.string().nullable(),
  meterCount: z.number().int(),
  /** The signed-in user asked for it: they may not approve it. */
  mine: z.boolean(),
});
export type Approval = z.infer<typeof approvalSchema>;

export const approvalList = z.object({ items: z.array(approvalSchema) });
export type ApprovalList = z.infer<typeof approvalList>;

export const approvalDetail = approvalSchema.extend({
  meters: z.array(
    z.object({
      serial,
      relay: z.enum(RELAY_STATES).nullable(),
      vulnerable: z.boolean(),
      commandId: z.string(),
      commandStatus: z.enum(COMMAND_STATUSES),
    }),
  ),
});
export type ApprovalDetail = z.infer<typeof approvalDetail>;

export const approvalDecisionBody = z.strictObject({
  reason: z.string().trim().min(3).max(500).describe('Why (kept in the audit log)'),
});
export type ApprovalDecisionBody = z.infer<typeof approvalDecisionBody>;

const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'expected HH:MM (00:00..23:59)');

export const supplySettingsBody = z.strictObject({
  tz: z
    .string()
    .min(1)
    .max(64)
    .refine((tz) => {
      try {
        new Intl.DateTimeFormat('en-GB', { timeZone: tz });
        return true;
      } catch {
        return false;
      }
    }, 'an IANA time zone, e.g. Europe/London'),
  nights: z
    .strictObject({ enabled: z.boolean(), from: hhmm, to: hhmm })
    .refine((n) => n.from !== n.to, { message: 'from and to must differ', path: ['to'] })
    .describe('Protected local hours; from > to spans midnight (20:00-08:00)'),
  weekends: z.boolean().describe('Saturdays and Sundays are protected all day'),
  holidays: z
    .array(isoDate)
    .max(100)
    .refine((d) => new Set(d).size === d.length, 'holidays must not repeat'),
  bulkThreshold: z
    .number()
    .int()
    .min(1)
    .max(100_000)
    .describe('More meters than this in one action need approval'),
  hourlyDisconnectQuota: z
    .number()
    .int()
    .min(1)
    .max(100_000)
    .describe('Disconnections one user may ask for per hour'),
  approvalTtlHours: z.number().int().min(1).max(168).describe('Approval requests lapse after this long'),
});
export type SupplySettingsBody = z.infer<typeof supplySettingsBody>;

export const supplySettings = supplySettingsBody.extend({
  updatedAt: z.string().nullable().describe('Null: the defaults, never changed'),
});
export type SupplySettings = z.infer<typeof supplySettings>;
