import {
  errorResponses,
  eventsQuery,
  meterEventsResponse,
  meterListQuery,
  meterListResponse,
  meterSchema,
  serialParams,
  type Meter,
} from '@kilowire/contract';
import { authorisedMeter, listVisibleMeters, meterEvents, type MeterRow } from '../../meters/queries.ts';
import { ROLES_FOR, requireRole } from '../../policies.ts';
import { actorOf, decodeSerialCursor, encodeSerialCursor, iso, type Routes } from '../http.ts';

/** Presenter: a meter row as the API shows it. */
export function presentMeter(m: MeterRow): Meter {
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

export const meterRoutes: Routes = async (app, deps) => {
  const { pool } = deps;

  app.get(
    '/api/meters',
    {
      schema: {
        tags: ['meters'],
        summary: 'Meters the signed-in user may see, in serial order, paged',
        querystring: meterListQuery,
        response: { 200: meterListResponse, ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireRole(actor, ...ROLES_FOR['meter.read']);
      const after = decodeSerialCursor(req.query.cursor);
      const page = await listVisibleMeters(pool, actor, { limit: req.query.limit, afterSerial: after });
      return {
        items: page.items.map(presentMeter),
        nextCursor: page.nextAfter === null ? null : encodeSerialCursor(page.nextAfter),
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
    async (req) => presentMeter(await authorisedMeter(pool, actorOf(req), req.params.serial, 'meter.read')),
  );

  app.get(
    '/api/meters/:serial/events',
    {
      schema: {
        tags: ['meters'],
        summary: 'Meter events (tamper, power fail/restore, relay, ...), newest first',
        params: serialParams,
        querystring: eventsQuery,
        response: { 200: meterEventsResponse, ...errorResponses },
      },
    },
    async (req) => {
      const m = await authorisedMeter(pool, actorOf(req), req.params.serial, 'meter.read');
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
};
