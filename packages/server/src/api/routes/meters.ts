import { z } from 'zod';
import { authorisedMeter, listVisibleMeters, meterEvents, type MeterRow } from '../../meters/queries.ts';
import { ROLES_FOR, requireRole } from '../../policies.ts';
import { AppError } from '../../errors.ts';
import { actorOf, errorResponses, iso, serialParams, timestamp, type ApiApp, type ApiDeps } from '../http.ts';

export const meterSchema = z
  .object({
    serial: z.string(),
    mode: z.enum(['credit', 'prepayment']).nullable(),
    relay: z.enum(['connected', 'disconnected', 'armed']).nullable(),
    tz: z.string().describe('IANA time zone of the meter; days and months are local to it'),
    intervalS: z.number().int().describe('Profile interval, seconds (900 or 1800)'),
    area: z.object({ id: z.string(), name: z.string() }),
    supplier: z.object({ id: z.number(), name: z.string() }),
    lastSeenAt: timestamp.nullable(),
    creditMinor: z.number().int().nullable().describe('Prepayment credit on the meter, minor currency units'),
    firmwareVersion: z.string().nullable(),
  })
  .describe('Meter');

/** Presenter: a meter row as the API shows it. */
export function presentMeter(m: MeterRow): z.infer<typeof meterSchema> {
  return {
    serial: m.serial,
    mode: m.mode,
    relay: m.relay,
    tz: m.tz,
    intervalS: m.interval_s,
    area: { id: m.area_id, name: m.area_name },
    supplier: { id: m.supplier_id, name: m.supplier_name },
    lastSeenAt: iso(m.last_seen_at),
    creditMinor: m.credit_minor,
    firmwareVersion: m.firmware_version,
  };
}

const listQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(200).optional().describe('nextCursor of the previous page'),
});

const eventsQuery = z
  .strictObject({
    from: z.iso.datetime({ offset: true }).optional().describe('Inclusive, ISO 8601 instant'),
    to: z.iso.datetime({ offset: true }).optional().describe('Exclusive, ISO 8601 instant'),
    limit: z.coerce.number().int().min(1).max(500).default(100),
  })
  .refine((q) => !q.from || !q.to || Date.parse(q.from) < Date.parse(q.to), {
    message: 'from must be before to',
    path: ['to'],
  });

const eventSchema = z.object({
  ts: timestamp,
  code: z.string().describe('Event code, e.g. tamper.cover, power.fail'),
  data: z.unknown().nullable(),
  seq: z.number().int(),
  idx: z.number().int(),
  receivedAt: timestamp,
});

/** Cursors are opaque to clients: base64url of the last serial of the page. */
function decodeCursor(c: string | undefined): string | null {
  if (c === undefined) return null;
  const s = Buffer.from(c, 'base64url').toString('utf8');
  if (!s || Buffer.from(s, 'utf8').toString('base64url') !== c) {
    throw new AppError('VALIDATION', 'query.cursor: not a cursor from this API', [
      { path: 'query.cursor', message: 'invalid cursor' },
    ]);
  }
  return s;
}

export function meterRoutes(app: ApiApp, deps: ApiDeps): void {
  const { pool } = deps;

  app.get(
    '/api/meters',
    {
      schema: {
        tags: ['meters'],
        summary: 'Meters the signed-in user may see, in serial order, paged',
        querystring: listQuery,
        response: {
          200: z.object({ items: z.array(meterSchema), nextCursor: z.string().nullable() }),
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireRole(actor, ...ROLES_FOR['meter.read']);
      const after = decodeCursor(req.query.cursor);
      const page = await listVisibleMeters(pool, actor, { limit: req.query.limit, afterSerial: after });
      return {
        items: page.items.map(presentMeter),
        nextCursor:
          page.nextAfter === null ? null : Buffer.from(page.nextAfter, 'utf8').toString('base64url'),
      };
    },
  );

  app.get(
    '/api/meters/:serial',
    {
      schema: {
        tags: ['meters'],
        summary: 'One meter',
        params: serialParams,
        response: { 200: meterSchema, ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      const m = await authorisedMeter(pool, actor, req.params.serial, 'meter.read');
      return presentMeter(m);
    },
  );

  app.get(
    '/api/meters/:serial/events',
    {
      schema: {
        tags: ['meters'],
        summary: 'Meter events (tamper, power fail/restore, relay, ...), newest first',
        params: serialParams,
        querystring: eventsQuery,
        response: { 200: z.object({ serial: z.string(), items: z.array(eventSchema) }), ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      const m = await authorisedMeter(pool, actor, req.params.serial, 'meter.read');
      const rows = await meterEvents(pool, m.id, {
        from: req.query.from ? new Date(req.query.from) : null,
        to: req.query.to ? new Date(req.query.to) : null,
        limit: req.query.limit,
      });
      return {
        serial: m.serial,
        items: rows.map((e) => ({
          ts: e.ts.toISOString(),
          code: e.code,
          data: e.data ?? null,
          seq: e.seq,
          idx: e.idx,
          receivedAt: e.received_at.toISOString(),
        })),
      };
    },
  );
}
