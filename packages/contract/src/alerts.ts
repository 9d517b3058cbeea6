import { z } from 'zod';
import { ALERT_TYPES, MESSAGE_CHANNELS, SEVERITIES } from './enums.ts';
import { cursor, isoDate, limit } from './common.ts';

export const alertsQuery = z
  .strictObject({
    type: z.enum(ALERT_TYPES).optional(),
    from: isoDate.optional().describe("First local day (meter's time zone), inclusive"),
    to: isoDate.optional().describe('Last local day, inclusive'),
    status: z.enum(['read', 'unread']).optional(),
    limit: limit(200, 50),
    cursor: cursor.optional(),
  })
  .refine((q) => !q.from || !q.to || q.from <= q.to, { message: 'to must not be before from', path: ['to'] });
export type AlertsQuery = z.infer<typeof alertsQuery>;

export const alertItem = z.object({
  id: z.number().int(),
  type: z.enum(ALERT_TYPES),
  severity: z.enum(SEVERITIES),
  title: z.string(),
  message: z.string().describe('The reason and the figures, in words'),
  meterSerial: z.string().nullable().describe("null for a network operator's alert about no single meter"),
  createdAt: z.string().describe('ISO 8601 UTC'),
  readAt: z.string().nullable(),
});
export type Alert = z.infer<typeof alertItem>;

export const alertsResponse = z.object({
  items: z.array(alertItem),
  nextCursor: z.string().nullable(),
  unread: z.number().int().describe('Unread alerts in the whole scope (not just this page)'),
});
export type AlertPage = z.infer<typeof alertsResponse>;

export const idParams = z.object({ id: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER) });

export const outboxQuery = z.strictObject({
  channel: z.enum(MESSAGE_CHANNELS).optional(),
  limit: limit(200, 50),
  cursor: cursor.optional(),
});
export type OutboxQuery = z.infer<typeof outboxQuery>;

export const outboxItem = z.object({
  id: z.number().int(),
  channel: z.enum(MESSAGE_CHANNELS),
  recipient: z.string(),
  subject: z.string().nullable().describe('Email only'),
  body: z.string(),
  createdAt: z.string().describe('ISO 8601 UTC'),
  alertId: z.number().int().nullable(),
});
export type OutboxMessage = z.infer<typeof outboxItem>;
export const outboxResponse = z.object({ items: z.array(outboxItem), nextCursor: z.string().nullable() });
export type OutboxPage = z.infer<typeof outboxResponse>;
