import { z } from 'zod';
import { METER_STATUSES, ORG_KINDS, STAFF_ROLES } from './enums.ts';
import { cursor, isoInstant, limit, serial, timestamp } from './common.ts';
import { newPassword } from './session.ts';

/**
 * The administrator's platform (organisations, staff users, invitations, meter provisioning,
 * the audit log, system health) and supplier admins' management of their own staff.
 */

/** Organisations an administrator creates: platform is the operator of Kilowire itself, not created here. */
export const MANAGED_ORG_KINDS = ['supplier', 'network_operator'] as const;
export type ManagedOrgKind = (typeof MANAGED_ORG_KINDS)[number];

const slug = z
  .string()
  .min(2)
  .max(40)
  .regex(/^[a-z0-9][a-z0-9-]*$/, 'lower-case letters, digits and -');
const orgName = z.string().trim().min(2).max(120);
const areaId = z
  .string()
  .min(1)
  .max(40)
  .regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, . _ -');

export const organisationSchema = z.object({
  id: z.number(),
  kind: z.enum(ORG_KINDS),
  slug: z.string(),
  name: z.string(),
  createdAt: timestamp,
  staffCount: z.number().int(),
  meterCount: z.number().int().describe('Meters supplied (suppliers) or in its areas (network operators)'),
  areas: z
    .array(
      z.object({
        id: z.string(),
        name: z.string(),
        feeders: z.array(z.object({ id: z.string(), name: z.string() })),
      }),
    )
    .describe('Network operators: their areas and feeders'),
});
export type Organisation = z.infer<typeof organisationSchema>;
export const organisationList = z.object({ items: z.array(organisationSchema) });
export type OrganisationList = z.infer<typeof organisationList>;
export const organisationCreate = z.strictObject({ kind: z.enum(MANAGED_ORG_KINDS), slug, name: orgName });
export type OrganisationCreate = z.infer<typeof organisationCreate>;
export const organisationPatch = z.strictObject({ name: orgName });
export type OrganisationPatch = z.infer<typeof organisationPatch>;
export const areaCreate = z.strictObject({
  id: areaId,
  name: orgName,
  feeders: z
    .array(z.strictObject({ id: areaId, name: orgName }))
    .max(200)
    .refine((f) => new Set(f.map((x) => x.id)).size === f.length, 'feeder ids must differ'),
});
export type AreaCreate = z.infer<typeof areaCreate>;

export const staffUserSchema = z.object({
  id: z.number(),
  email: z.string(),
  name: z.string(),
  role: z.enum(['supplier', 'operator', 'admin']),
  staffRole: z.enum(STAFF_ROLES).nullable(),
  organisation: z.object({ id: z.number(), name: z.string(), kind: z.enum(ORG_KINDS) }).nullable(),
  disabled: z.boolean(),
  mustChangePassword: z.boolean(),
  /** pending: invited, not accepted yet; active; disabled. */
  status: z.enum(['invited', 'active', 'disabled']),
  inviteExpiresAt: timestamp.nullable(),
  createdAt: timestamp,
});
export type StaffUser = z.infer<typeof staffUserSchema>;
export const staffUserQuery = z.strictObject({
  q: z.string().trim().max(100).optional().describe('Part of the name or email'),
  orgId: z.coerce.number().int().min(1).optional(),
  limit: limit(200, 50),
  cursor: cursor.optional(),
});
export type StaffUserQuery = z.infer<typeof staffUserQuery>;
export const staffUserList = z.object({ items: z.array(staffUserSchema), nextCursor: z.string().nullable() });
export type StaffUserList = z.infer<typeof staffUserList>;

/** How a new (or reset) user gets in: a one-time link, or a password they must change at first sign-in. */
export const credentialMethod = z.discriminatedUnion('method', [
  z.strictObject({ method: z.literal('invite') }),
  z.strictObject({ method: z.literal('password'), password: newPassword }),
]);
export const staffUserCreate = z.strictObject({
  email: z.email().max(254),
  name: z.string().trim().min(1).max(120),
  /** The organisation; omitted by supplier admins (their own) and for platform administrators. */
  orgId: z.number().int().min(1).nullable().optional(),
  /** Staff of an organisation: agent or admin. Ignored (null) for platform administrators. */
  staffRole: z.enum(STAFF_ROLES).default('agent'),
  /** A platform administrator (administrators only; no organisation). */
  platformAdmin: z.boolean().default(false),
  access: credentialMethod,
});
export type StaffUserCreate = z.input<typeof staffUserCreate>;
export const staffUserPatch = z.strictObject({ staffRole: z.enum(STAFF_ROLES) });
export type StaffUserPatch = z.infer<typeof staffUserPatch>;
export const staffUserReset = credentialMethod;
export type StaffUserReset = z.infer<typeof staffUserReset>;
/** A created or reset user, with the invite link's path shown once (null for an initial password). */
export const staffUserIssued = z.object({
  user: staffUserSchema,
  invitePath: z.string().nullable().describe('/invite/<token>: shown once, never stored in clear'),
  inviteExpiresAt: timestamp.nullable(),
});
export type StaffUserIssued = z.infer<typeof staffUserIssued>;

export const inviteParams = z.strictObject({
  token: z
    .string()
    .min(20)
    .max(100)
    .regex(/^[A-Za-z0-9_-]+$/, 'not an invite token'),
});
export const inviteInfo = z.object({
  email: z.string(),
  name: z.string(),
  organisation: z.string().nullable(),
  expiresAt: timestamp,
});
export type InviteInfo = z.infer<typeof inviteInfo>;
export const inviteAccept = z.strictObject({ password: newPassword });
export type InviteAccept = z.infer<typeof inviteAccept>;

// Meter provisioning.
/** A new meter's serial is its MQTT username and client id: what the broker accepts (protocol METER_ID_RE). */
export const wireSerial = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,32}$/, 'serial: 1 to 32 letters, digits, _ or -');
export const hardwareClass = z
  .string()
  .min(1)
  .max(40)
  .regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, . _ -');
export const ianaZone = z
  .string()
  .min(1)
  .max(64)
  .refine((tz) => {
    try {
      new Intl.DateTimeFormat('en', { timeZone: tz });
      return true;
    } catch {
      return false;
    }
  }, 'not an IANA time zone');
export const meterProvision = z.strictObject({
  serial: wireSerial,
  hardwareClass: hardwareClass.default('KW-1P-100A'),
  tz: ianaZone.default('Europe/London'),
  intervalS: z.union([z.literal(900), z.literal(1800)]).default(1800),
  areaId,
  feederId: areaId.nullable().optional(),
  supplierId: z.number().int().min(1),
  /** An existing account of that supplier to put the meter on; none = not on an account yet. */
  accountId: z.number().int().min(1).nullable().optional(),
});
export type MeterProvision = z.input<typeof meterProvision>;
export const meterExchange = z.strictObject({
  newSerial: wireSerial,
  hardwareClass: hardwareClass.optional(),
  feederId: areaId.nullable().optional(),
});
export type MeterExchange = z.infer<typeof meterExchange>;
export const adminMeterParams = z.strictObject({ meter: serial });

export const adminMeterSchema = z.object({
  serial: z.string(),
  status: z.enum(METER_STATUSES),
  hardwareClass: z.string(),
  tz: z.string(),
  intervalS: z.number().int(),
  supplier: z.object({ id: z.number(), name: z.string() }),
  area: z.object({ id: z.string(), name: z.string() }),
  feederId: z.string().nullable(),
  accountId: z.number().nullable(),
  consumerName: z.string().nullable(),
  lastSeenAt: timestamp.nullable(),
  createdAt: timestamp,
  decommissionedAt: timestamp.nullable(),
  replacedBy: z.string().nullable().describe('Serial of the meter that took its place'),
});
export type AdminMeter = z.infer<typeof adminMeterSchema>;
export const adminMeterQuery = z.strictObject({
  q: z.string().trim().max(64).optional().describe('Serial prefix'),
  status: z.enum(METER_STATUSES).optional(),
  supplierId: z.coerce.number().int().min(1).optional(),
  limit: limit(200, 50),
  cursor: cursor.optional(),
});
export type AdminMeterQuery = z.infer<typeof adminMeterQuery>;
export const adminMeterList = z.object({
  items: z.array(adminMeterSchema),
  nextCursor: z.string().nullable(),
});
export type AdminMeterList = z.infer<typeof adminMeterList>;
/** A meter with its broker credential, shown this once: only its hash is kept. */
export const meterIssued = z.object({
  meter: adminMeterSchema,
  credential: z.string().describe('MQTT password of the meter (username = serial); shown once'),
});
export type MeterIssued = z.infer<typeof meterIssued>;
export const meterExchanged = z.object({
  old: adminMeterSchema,
  meter: adminMeterSchema,
  credential: z.string(),
});
export type MeterExchanged = z.infer<typeof meterExchanged>;
/** Provisioning form choices: suppliers, operators' areas with feeders. */
export const provisioningOptions = z.object({
  suppliers: z.array(z.object({ id: z.number(), name: z.string() })),
  areas: z.array(
    z.object({
      id: z.string(),
      name: z.string(),
      operator: z.string(),
      feeders: z.array(z.object({ id: z.string(), name: z.string() })),
    }),
  ),
});
export type ProvisioningOptions = z.infer<typeof provisioningOptions>;

// Audit log.
export const auditQuery = z
  .strictObject({
    actor: z.string().trim().min(1).max(254).optional().describe('User id, or part of a name or email'),
    action: z.string().trim().min(1).max(80).optional().describe('Exact action, or a prefix ending in .'),
    target: z.string().trim().min(1).max(200).optional(),
    from: isoInstant.optional(),
    to: isoInstant.optional(),
    limit: limit(500, 100),
    cursor: cursor.optional(),
  })
  .refine((q) => !q.from || !q.to || Date.parse(q.from) < Date.parse(q.to), {
    message: 'from must be before to',
    path: ['to'],
  });
export type AuditQuery = z.infer<typeof auditQuery>;
export const auditExportQuery = z
  .strictObject({
    actor: z.string().trim().min(1).max(254).optional(),
    action: z.string().trim().min(1).max(80).optional(),
    target: z.string().trim().min(1).max(200).optional(),
    from: isoInstant.optional(),
    to: isoInstant.optional(),
  })
  .refine((q) => !q.from || !q.to || Date.parse(q.from) < Date.parse(q.to), {
    message: 'from must be before to',
    path: ['to'],
  });
export type AuditExportQuery = z.infer<typeof auditExportQuery>;
export const auditEntry = z.object({
  id: z.number(),
  at: timestamp,
  actor: z.object({ id: z.number(), name: z.string() }).nullable(),
  action: z.string(),
  target: z.string().nullable(),
  detail: z.unknown().nullable(),
  ip: z.string().nullable(),
});
export type AuditEntry = z.infer<typeof auditEntry>;
export const auditList = z.object({ items: z.array(auditEntry), nextCursor: z.string().nullable() });
export type AuditList = z.infer<typeof auditList>;

// System health.
export const systemHealth = z.object({
  at: timestamp,
  ingest: z.object({
    perMinute5: z.number().describe('Interval readings stored per minute, mean over the last 5 min'),
    perMinute15: z.number().describe('The same over the last 15 min'),
  }),
  queues: z.array(
    z.object({
      name: z.string(),
      queued: z.number().int(),
      active: z.number().int(),
      retrying: z.number().int(),
    }),
  ),
  events: z.object({
    undispatched: z.number().int(),
    oldestUndispatchedAgeS: z.number().nullable().describe('Age of the oldest undispatched domain event, s'),
  }),
  deliveries: z.object({
    failed: z.number().int(),
    retrying: z.number().int().describe('Pending after at least one failed attempt'),
  }),
  commands: z.object({
    awaitingApproval: z.number().int(),
    queued: z.number().int(),
    sent: z.number().int(),
  }),
  meters: z.object({
    connected: z.number().int().describe('Active meters seen within two of their intervals'),
    total: z.number().int().describe('Active meters'),
  }),
});
export type SystemHealth = z.infer<typeof systemHealth>;
