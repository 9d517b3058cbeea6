import { z } from 'zod';
import { COMMAND_STATUSES, METER_MODES, RELAY_STATES } from './enums.ts';
import { cursor, isoInstant, limit, timestamp } from './common.ts';

export const meterSchema = z
  .object({
    serial: z.string(),
    mode: z.enum(METER_MODES).nullable(),
    relay: z.enum(RELAY_STATES).nullable(),
    tz: z.string().describe('IANA time zone of the meter; days and months are local to it'),
    intervalS: z.number().int().describe('Profile interval, seconds (900 or 1800)'),
    area: z.object({ id: z.string(), name: z.string() }),
    supplier: z.object({ id: z.number(), name: z.string() }),
    lastSeenAt: timestamp.nullable(),
    creditMinor: z.number().int().nullable().describe('Prepayment credit on the meter, minor currency units'),
    firmwareVersion: z.string().nullable(),
  })
  .describe('Meter');
export type Meter = z.infer<typeof meterSchema>;

export const meterListQuery = z.strictObject({ limit: limit(200, 50), cursor: cursor.optional() });
export type MeterListQuery = z.infer<typeof meterListQuery>;
export const meterListResponse = z.object({ items: z.array(meterSchema), nextCursor: z.string().nullable() });
export type MeterList = z.infer<typeof meterListResponse>;

export const eventsQuery = z
  .strictObject({
    from: isoInstant.optional().describe('Inclusive, ISO 8601 instant'),
    to: isoInstant.optional().describe('Exclusive, ISO 8601 instant'),
    limit: limit(500, 100),
  })
  .refine((q) => !q.from || !q.to || Date.parse(q.from) < Date.parse(q.to), {
    message: 'from must be before to',
    path: ['to'],
  });

export const meterEventSchema = z.object({
  ts: timestamp,
  code: z.string().describe('Event code, e.g. tamper.cover, power.fail'),
  data: z.unknown().nullable(),
  seq: z.number().int(),
  idx: z.number().int(),
  receivedAt: timestamp,
});
export const meterEventsResponse = z.object({ serial: z.string(), items: z.array(meterEventSchema) });
export type MeterEvents = z.infer<typeof meterEventsResponse>;

/** The commands staff may issue by hand; tariffs, credit and firmware have their own flows. */
export const commandBody = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('supply.off'),
    reason: z.string().max(64).optional().describe('Why, shown in the audit log'),
  }),
  z.strictObject({ type: z.literal('supply.on') }),
  z.strictObject({ type: z.literal('supply.arm') }),
]);
export type CommandRequest = z.infer<typeof commandBody>;

export const commandAccepted = z.object({
  id: z.string(),
  status: z.enum(COMMAND_STATUSES),
  counter: z.number().int().nullable().describe('Null until the command is queued (e.g. awaiting approval)'),
});

export const commandSchema = z.object({
  id: z.string(),
  counter: z.number().int().nullable(),
  type: z.string(),
  status: z.enum(COMMAND_STATUSES),
  attempts: z.number().int().describe('Copies sent to the meter'),
  reason: z.string().nullable(),
  createdBy: z.number().nullable(),
  approvedBy: z.number().nullable(),
  createdAt: timestamp,
  queuedAt: timestamp.nullable(),
  sentAt: timestamp.nullable(),
  repliedAt: timestamp.nullable(),
  expiresAt: timestamp.nullable().describe('After this the meter refuses the command'),
  resultCode: z.string().nullable(),
  resultDetail: z.string().nullable(),
});
export const commandListQuery = z.strictObject({ limit: limit(200, 50) });
export const commandListResponse = z.object({ serial: z.string(), items: z.array(commandSchema) });
export type CommandList = z.infer<typeof commandListResponse>;
