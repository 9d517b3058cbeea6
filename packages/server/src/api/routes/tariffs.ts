import {
  assignBody,
  bodyErrorResponses,
  bulkAssignBody,
  bulkAssignResponse,
  conflictResponses,
  errorResponses,
  meterTariffSchema,
  serialParams,
  tariffCreateBody,
  tariffDecisionBody,
  tariffIdParams,
  tariffRequestBody,
  tariffRequestIdParams,
  tariffRequestSchema,
  tariffRequestsResponse,
  tariffSchema,
  tariffsQuery,
  tariffsResponse,
  tariffVersionBody,
  type Tariff,
  type TariffVersionView,
} from '@kilowire/contract';
import { z } from 'zod';
import { localDate } from '@kilowire/protocol';
import { withTx, type Q } from '../../db/pool.ts';
import { AppError } from '../../errors.ts';
import { authorisedMeter, type MeterRow } from '../../meters/queries.ts';
import { compareVersions } from '../../money/cost.ts';
import type { TariffVersion } from '../../money/prices.ts';
import {
  addVersion,
  assignTariff,
  createRequest,
  createTariff,
  decideRequest,
  listRequests,
  listTariffs,
  meterTariffState,
  metersOnTariffNow,
  requestById,
  supplierMeters,
  tariffOf,
  versionOn,
  type RequestRow,
  type TariffListItem,
} from '../../money/tariffs.ts';
import { requireCapability, type Actor } from '../../policies.ts';
import { actorOf, whoOf, type Routes } from '../http.ts';

const nowS = () => Math.floor(Date.now() / 1000);

function versionView(v: TariffVersion): TariffVersionView {
  return {
    version: v.version,
    effectiveFrom: v.effectiveFrom,
    dayRate: v.dayRate,
    nightRate: v.nightRate,
    peakRate: v.peakRate,
    nightWindows: v.nightWindows,
    peakWindows: v.peakWindows,
    exportRate: v.exportRate,
    standingMilliPerDay: v.standingMilliPerDay,
    vatBp: v.vatBp,
  };
}

function tariffView(t: TariffListItem, today: string, extra: Pick<Tariff, 'meters' | 'comparison'>): Tariff {
  const cur = versionOn(t.versions, today);
  return {
    id: t.id,
    code: t.code,
    name: t.name,
    currency: t.currency,
    structure: t.structure,
    open: t.open,
    versions: t.versions.map(versionView),
    current: cur ? versionView(cur) : null,
    ...extra,
  };
}

function requestView(r: RequestRow) {
  return {
    id: r.id,
    serial: r.serial,
    household: r.household,
    fromTariff: r.from_tariff,
    toTariffId: r.to_tariff_id,
    toTariff: r.to_tariff,
    status: r.status,
    reason: r.reason,
    effectiveFrom: r.effective_from,
    createdAt: r.created_at.toISOString(),
    decidedAt: r.decided_at ? r.decided_at.toISOString() : null,
  };
}

/** Staff of a supplier: their organisation (policies let only supplier staff this far). */
function supplierOf(actor: Actor): number {
  if (actor.orgId === null) throw new AppError('FORBIDDEN', 'not permitted');
  return actor.orgId;
}

/** A household's meter: the one named, or its first. */
async function householdMeter(q: Q, actor: Actor, serial: string | undefined): Promise<MeterRow> {
  let s = serial;
  if (s === undefined) {
    const { rows } = await q.query<{ serial: string }>(
      `SELECT m.serial FROM meters m JOIN accounts a ON a.id = m.account_id WHERE a.consumer_id = $1 ORDER BY m.id LIMIT 1`,
      [actor.consumerId ?? -1],
    );
    if (!rows[0]) throw new AppError('NOT_FOUND', 'meter not found');
    s = rows[0].serial;
  }
  return authorisedMeter(q, actor, s, 'meter.tariff.read');
}

export const tariffRoutes: Routes = async (app, deps) => {
  const { pool, commandKey } = deps;

  app.get(
    '/api/tariffs',
    {
      schema: {
        tags: ['tariffs'],
        summary:
          "Households: their tariff and their supplier's open tariffs, each priced over their own last 30 and 365 days. Suppliers: their tariffs",
        querystring: tariffsQuery,
        response: { 200: tariffsResponse, ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'tariffs.read');
      const now = nowS();
      if (actor.role === 'supplier') {
        const today = localDate(now, 'Europe/London');
        const items = await listTariffs(pool, supplierOf(actor), false);
        return {
          items: items.map((t) => tariffView(t, today, { meters: t.meters, comparison: null })),
          meter: null,
        };
      }
      const m = await householdMeter(pool, actor, req.query.serial);
      const today = localDate(now, m.tz);
      const state = await meterTariffState(pool, m.id, m.tz, now);
      const all = await listTariffs(pool, m.supplier_id, false);
      // Its own tariff (open or not) and the open ones; never a closed tariff of someone else.
      const shown = all.filter((t) => t.open || t.id === state.tariffId || t.id === state.next?.tariffId);
      const current = new Map(
        shown.flatMap((t) => {
          const v = versionOn(t.versions, today);
          return v ? [[t.id, v] as const] : [];
        }),
      );
      const figures = await compareVersions(pool, m, today, [...current.values()]);
      return {
        items: shown.map((t) => {
          const v = current.get(t.id);
          return tariffView(t, today, { meters: null, comparison: v ? (figures.get(v) ?? null) : null });
        }),
        meter: { serial: m.serial, tz: m.tz, ...state },
      };
    },
  );

  app.post(
    '/api/tariffs',
    {
      schema: {
        tags: ['tariffs'],
        summary: 'Create a tariff with its first prices (from a future local midnight)',
        body: tariffCreateBody,
        response: { 201: tariffSchema, ...errorResponses, ...conflictResponses, ...bodyErrorResponses },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      requireCapability(actor, 'tariffs.manage');
      const supplierId = supplierOf(actor);
      const id = await withTx(pool, whoOf(req), async (t) => {
        const id = await createTariff(t.c, supplierId, req.body, actor.userId);
        await t.audit('tariff.create', req.body.code, { tariffId: id, ...req.body });
        return id;
      });
      const item = (await listTariffs(pool, supplierId, false)).find((t) => t.id === id)!;
      reply.code(201);
      return tariffView(item, localDate(nowS(), 'Europe/London'), { meters: item.meters, comparison: null });
    },
  );

  app.post(
    '/api/tariffs/:id/versions',
    {
      schema: {
        tags: ['tariffs'],
        summary:
          'New prices from a future local midnight: tariff.set goes to every meter on the tariff then, and each household is told',
        params: tariffIdParams,
        body: tariffVersionBody,
        response: {
          201: bulkAssignResponse.extend({ version: z.number().int() }),
          ...errorResponses,
          ...conflictResponses,
          ...bodyErrorResponses,
        },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      requireCapability(actor, 'tariffs.manage');
      const supplierId = supplierOf(actor);
      const r = await withTx(pool, whoOf(req), async (t) => {
        const r = await addVersion(t.c, commandKey, supplierId, req.params.id, req.body, actor.userId);
        await t.audit('tariff.version', String(req.params.id), {
          version: r.version,
          meters: r.pushed.length,
          ...req.body,
        });
        return r;
      });
      reply.code(201);
      return { version: r.version, assigned: r.pushed };
    },
  );

  app.post(
    '/api/tariffs/:id/assign',
    {
      schema: {
        tags: ['tariffs'],
        summary:
          'Put several meters on this tariff in one request: listed serials, or every meter now on another tariff',
        params: tariffIdParams,
        body: bulkAssignBody,
        response: { 200: bulkAssignResponse, ...errorResponses, ...conflictResponses, ...bodyErrorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'tariffs.manage');
      const supplierId = supplierOf(actor);
      const assigned = await withTx(pool, whoOf(req), async (t) => {
        await tariffOf(t.c, supplierId, req.params.id);
        const meters = req.body.serials
          ? await supplierMeters(t.c, supplierId, req.body.serials)
          : await metersOnTariffNow(
              t.c,
              supplierId,
              (await tariffOf(t.c, supplierId, req.body.fromTariffId!)).id,
            );
        const out = [];
        for (const m of meters)
          out.push(await assignTariff(t.c, commandKey, m, req.params.id, req.body.from, actor.userId));
        await t.audit('tariff.assign', String(req.params.id), {
          meters: out.map((a) => a.serial),
          from: req.body.from ?? null,
        });
        return out;
      });
      return { assigned };
    },
  );

  app.get(
    '/api/meters/:serial/tariff',
    {
      schema: {
        tags: ['tariffs'],
        summary: "The meter's tariff today, the next one decided, and the state of its latest tariff.set",
        params: serialParams,
        response: { 200: meterTariffSchema, ...errorResponses },
      },
    },
    async (req) => {
      const m = await authorisedMeter(pool, actorOf(req), req.params.serial, 'meter.tariff.read');
      return { serial: m.serial, tz: m.tz, ...(await meterTariffState(pool, m.id, m.tz, nowS())) };
    },
  );

  app.put(
    '/api/meters/:serial/tariff',
    {
      schema: {
        tags: ['tariffs'],
        summary:
          'Put the meter on a tariff from a local day (default: its next local midnight); sends a signed tariff.set',
        params: serialParams,
        body: assignBody,
        response: { 200: meterTariffSchema, ...errorResponses, ...conflictResponses, ...bodyErrorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      const m = await authorisedMeter(pool, actor, req.params.serial, 'meter.tariff.assign');
      await withTx(pool, whoOf(req), async (t) => {
        const a = await assignTariff(t.c, commandKey, m, req.body.tariffId, req.body.from, actor.userId);
        await t.audit('meter.tariff', m.serial, {
          tariffId: req.body.tariffId,
          from: a.from,
          commandId: a.commandId,
        });
      });
      return { serial: m.serial, tz: m.tz, ...(await meterTariffState(pool, m.id, m.tz, nowS())) };
    },
  );

  app.get(
    '/api/tariff-change-requests',
    {
      schema: {
        tags: ['tariffs'],
        summary: "Tariff-change requests: a household's own, or those on a supplier's meters (open first)",
        response: { 200: tariffRequestsResponse, ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'tariff_requests.list');
      const rows =
        actor.role === 'consumer'
          ? await listRequests(pool, { consumerId: actor.consumerId ?? -1 })
          : await listRequests(pool, { supplierId: supplierOf(actor) });
      return { items: rows.map(requestView) };
    },
  );

  app.post(
    '/api/tariff-change-requests',
    {
      schema: {
        tags: ['tariffs'],
        summary:
          "A household asks to move its meter to another of its supplier's open tariffs (one open request per meter)",
        body: tariffRequestBody,
        response: {
          201: tariffRequestSchema,
          ...errorResponses,
          ...conflictResponses,
          ...bodyErrorResponses,
        },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      requireCapability(actor, 'tariff_requests.create');
      const m = await authorisedMeter(pool, actor, req.body.serial, 'meter.tariff.read');
      const id = await withTx(pool, whoOf(req), async (t) => {
        const id = await createRequest(t.c, actor.consumerId!, m, req.body.toTariffId, actor.userId, nowS());
        await t.audit('tariff.request', m.serial, { requestId: id, toTariffId: req.body.toTariffId });
        return id;
      });
      reply.code(201);
      return requestView((await requestById(pool, id))!);
    },
  );

  app.post(
    '/api/tariff-change-requests/:id/decision',
    {
      schema: {
        tags: ['tariffs'],
        summary:
          'The supplier approves (from a local day; the change then happens as an assignment) or declines with a reason',
        params: tariffRequestIdParams,
        body: tariffDecisionBody,
        response: {
          200: tariffRequestSchema,
          ...errorResponses,
          ...conflictResponses,
          ...bodyErrorResponses,
        },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'tariff_requests.decide');
      const supplierId = supplierOf(actor);
      await withTx(pool, whoOf(req), async (t) => {
        await decideRequest(t.c, commandKey, supplierId, req.params.id, req.body, actor.userId, nowS());
        await t.audit('tariff.request.decide', String(req.params.id), { ...req.body });
      });
      return requestView((await requestById(pool, req.params.id))!);
    },
  );
};
