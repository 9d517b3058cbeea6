import {
  bodyErrorResponses,
  errorResponses,
  feedersQuery,
  feedersResponse,
  incidentConflictResponses,
  incidentDetail,
  incidentEtrBody,
  incidentIdParams,
  incidentNoteBody,
  incidentsQuery,
  incidentsResponse,
  incidentStatusBody,
  outageSettings,
  outageSettingsBody,
  slaQuery,
  slaResponse,
} from '@kilowire/contract';
import { withTx } from '../../db/pool.ts';
import { AppError } from '../../errors.ts';
import {
  addIncidentNote,
  getOutageSettings,
  incidentDetail as readIncident,
  listFeeders,
  listIncidents,
  moveIncident,
  putOutageSettings,
  setEtr,
  slaMonths,
} from '../../outages/incidents.ts';
import { requireCapability, requireRole, type Actor } from '../../policies.ts';
import { actorOf, decodeIdCursor, encodeIdCursor, whoOf, type Routes } from '../http.ts';

/** The operator whose settings these are: an operator's staff user's own organisation. */
function operatorOf(actor: Actor): number {
  requireRole(actor, 'operator');
  if (actor.orgId === null) throw new AppError('FORBIDDEN', 'not permitted');
  return actor.orgId;
}

/**
 * #9 outages: the operator's console (feeders, incidents, SLA dashboard, outage settings).
 * Reading needs network.read (operator staff their own areas, admins all); working an
 * incident needs incidents.manage; the settings need network.settings. No route here sends
 * a command or changes a meter.
 */
export const outageRoutes: Routes = async (app, deps) => {
  const { pool } = deps;

  app.get(
    '/api/network/feeders',
    {
      schema: {
        tags: ['outages'],
        summary: 'Feeders of the operator with their status (meters, meters off, open incident) and counters',
        querystring: feedersQuery,
        response: { 200: feedersResponse, ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'network.read');
      return listFeeders(pool, actor, req.query.area ? { area: req.query.area } : {});
    },
  );

  app.get(
    '/api/incidents',
    {
      schema: {
        tags: ['outages'],
        summary: 'Outage incidents, newest first (filters: open/closed, kind, area, SLA state)',
        querystring: incidentsQuery,
        response: { 200: incidentsResponse, ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'network.read');
      const q = req.query;
      const page = await listIncidents(pool, actor, {
        state: q.state,
        ...(q.kind ? { kind: q.kind } : {}),
        ...(q.area ? { area: q.area } : {}),
        ...(q.sla ? { sla: q.sla } : {}),
        limit: q.limit,
        beforeId: decodeIdCursor(q.cursor),
      });
      return {
        items: page.items,
        nextCursor: page.nextBefore === null ? null : encodeIdCursor(page.nextBefore),
      };
    },
  );

  app.get(
    '/api/incidents/:id',
    {
      schema: {
        tags: ['outages'],
        summary: 'One incident: timeline, affected meters, stragglers, households as a count and postcodes',
        params: incidentIdParams,
        response: { 200: incidentDetail, ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'network.read');
      const d = await readIncident(pool, actor, req.params.id);
      if (!d) throw new AppError('NOT_FOUND', 'incident not found');
      return d;
    },
  );

  const after = async (actor: Actor, id: number) => (await readIncident(pool, actor, id))!;

  app.post(
    '/api/incidents/:id/status',
    {
      schema: {
        tags: ['outages'],
        summary:
          'Acknowledge, dispatch a crew, mark restored or close (from restored) an incident; 409 when its status does not allow it',
        params: incidentIdParams,
        body: incidentStatusBody,
        response: {
          200: incidentDetail,
          ...incidentConflictResponses,
          ...errorResponses,
          ...bodyErrorResponses,
        },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'incidents.manage');
      await withTx(pool, whoOf(req), (t) =>
        moveIncident(t, actor, req.params.id, req.body.to, req.body.note),
      );
      return after(actor, req.params.id);
    },
  );

  app.put(
    '/api/incidents/:id/etr',
    {
      schema: {
        tags: ['outages'],
        summary:
          'Set or withdraw the estimated time of restoration of an open incident; households still off are told once per change',
        params: incidentIdParams,
        body: incidentEtrBody,
        response: {
          200: incidentDetail,
          ...incidentConflictResponses,
          ...errorResponses,
          ...bodyErrorResponses,
        },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'incidents.manage');
      const etr = req.body.etr === null ? null : new Date(req.body.etr);
      await withTx(pool, whoOf(req), (t) => setEtr(t, actor, req.params.id, etr));
      return after(actor, req.params.id);
    },
  );

  app.post(
    '/api/incidents/:id/notes',
    {
      schema: {
        tags: ['outages'],
        summary: "Add a note to an incident's timeline",
        params: incidentIdParams,
        body: incidentNoteBody,
        response: { 201: incidentDetail, ...errorResponses, ...bodyErrorResponses },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      requireCapability(actor, 'incidents.manage');
      await withTx(pool, whoOf(req), (t) => addIncidentNote(t, actor, req.params.id, req.body.text));
      return reply.code(201).send(await after(actor, req.params.id));
    },
  );

  app.get(
    '/api/network/sla',
    {
      schema: {
        tags: ['outages'],
        summary: 'SLA dashboard per month: incidents, breaches, time to detect and to restore (p50/p95)',
        querystring: slaQuery,
        response: { 200: slaResponse, ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'network.read');
      const month = req.query.month ?? new Date().toISOString().slice(0, 7);
      return { months: await slaMonths(pool, actor, { month, months: req.query.months }) };
    },
  );

  app.get(
    '/api/network/outage-settings',
    {
      schema: {
        tags: ['outages'],
        summary: "The operator's outage rules, SLA targets and on-call contacts (operator staff)",
        response: { 200: outageSettings, ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'network.read');
      return getOutageSettings(pool, operatorOf(actor));
    },
  );

  app.put(
    '/api/network/outage-settings',
    {
      schema: {
        tags: ['outages'],
        summary: 'Replace the outage rules, SLA targets and on-call contacts (operator admins)',
        body: outageSettingsBody,
        response: { 200: outageSettings, ...errorResponses, ...bodyErrorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'network.settings');
      const op = operatorOf(actor);
      return withTx(pool, whoOf(req), (t) => putOutageSettings(t, actor, op, req.body));
    },
  );
};
