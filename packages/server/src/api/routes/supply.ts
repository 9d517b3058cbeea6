import {
  approvalDecisionBody,
  approvalDetail,
  approvalIdParams,
  approvalList,
  approvalListQuery,
  bodyErrorResponses,
  errorResponses,
  serialParams,
  supplyBody,
  supplyBulkBody,
  supplyErrorResponses,
  supplyResult,
  supplySettings,
  supplySettingsBody,
} from '@kilowire/contract';
import { withTx } from '../../db/pool.ts';
import { AppError } from '../../errors.ts';
import { authorisedMeter } from '../../meters/queries.ts';
import { requireCapability } from '../../policies.ts';
import {
  approveRequest,
  getApproval,
  listApprovals,
  rejectRequest,
  requestSupply,
} from '../../supply/actions.ts';
import { getSettings, putSettings } from '../../supply/settings.ts';
import { actorOf, whoOf, type Routes } from '../http.ts';

/**
 * Remote supply control (disconnect / reconnect with a reason), the approvals its safeguards
 * wait for, and the supplier's protection settings. The domain is src/supply/; every route
 * asks policies.ts first, and every change commits with its audit rows.
 */
export const supplyRoutes: Routes = async (app, deps) => {
  const { pool, commandKey, config } = deps;
  const timing = { timing: config.commands };

  app.post(
    '/api/meters/:serial/supply',
    {
      schema: {
        tags: ['supply'],
        summary:
          "Disconnect or reconnect one meter with a reason (supplier staff of the meter's supplier); may wait for approval",
        params: serialParams,
        body: supplyBody,
        response: { 202: supplyResult, ...errorResponses, ...bodyErrorResponses, ...supplyErrorResponses },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      const m = await authorisedMeter(pool, actor, req.params.serial, 'meter.command');
      const r = await withTx(pool, whoOf(req), (t) =>
        requestSupply(t, commandKey, actor, { ...req.body, serials: [m.serial] }, timing),
      );
      return reply.code(202).send(r);
    },
  );

  app.post(
    '/api/supply/actions',
    {
      schema: {
        tags: ['supply'],
        summary:
          "Disconnect or reconnect many meters in one action (supplier admins); over the supplier's threshold it waits for a second admin",
        body: supplyBulkBody,
        response: { 202: supplyResult, ...errorResponses, ...bodyErrorResponses, ...supplyErrorResponses },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      requireCapability(actor, 'supply.bulk');
      const r = await withTx(pool, whoOf(req), (t) => requestSupply(t, commandKey, actor, req.body, timing));
      return reply.code(202).send(r);
    },
  );

  app.get(
    '/api/approvals',
    {
      schema: {
        tags: ['supply'],
        summary: "Actions of the user's supplier that wait (or waited) for a second person, newest first",
        querystring: approvalListQuery,
        response: { 200: approvalList, ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'approvals.read');
      return { items: await listApprovals(pool, actor, req.query) };
    },
  );

  app.get(
    '/api/approvals/:id',
    {
      schema: {
        tags: ['supply'],
        summary: 'One approval request with its meters and their commands',
        params: approvalIdParams,
        response: { 200: approvalDetail, ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'approvals.read');
      return getApproval(pool, actor, req.params.id);
    },
  );

  app.post(
    '/api/approvals/:id/approve',
    {
      schema: {
        tags: ['supply'],
        summary:
          'Approve with a reason (a supplier admin other than the requester: 403 SELF_APPROVAL otherwise); the commands go to the meters',
        params: approvalIdParams,
        body: approvalDecisionBody,
        response: { 200: approvalDetail, ...errorResponses, ...bodyErrorResponses, ...supplyErrorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'approvals.decide');
      return withTx(pool, whoOf(req), (t) =>
        approveRequest(t, commandKey, actor, req.params.id, req.body.reason, timing),
      );
    },
  );

  app.post(
    '/api/approvals/:id/reject',
    {
      schema: {
        tags: ['supply'],
        summary:
          'Reject with a reason (or, by the requester, withdraw); the commands are cancelled and never reach a meter',
        params: approvalIdParams,
        body: approvalDecisionBody,
        response: { 200: approvalDetail, ...errorResponses, ...bodyErrorResponses, ...supplyErrorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'approvals.decide');
      return withTx(pool, whoOf(req), (t) => rejectRequest(t, actor, req.params.id, req.body.reason));
    },
  );

  app.get(
    '/api/supplier/settings',
    {
      schema: {
        tags: ['supply'],
        summary:
          "The supplier's protection settings (protected hours, bulk threshold, quota, approval lifetime)",
        response: { 200: supplySettings, ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'supplier.settings.read');
      return getSettings(pool, supplierOf(actor.orgId));
    },
  );

  app.put(
    '/api/supplier/settings',
    {
      schema: {
        tags: ['supply'],
        summary: "Replace the supplier's protection settings (supplier admins)",
        body: supplySettingsBody,
        response: { 200: supplySettings, ...errorResponses, ...bodyErrorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'supplier.settings');
      const supplierId = supplierOf(actor.orgId);
      return withTx(pool, whoOf(req), async (t) => {
        const before = await getSettings(t.c, supplierId);
        const after = await putSettings(t.c, supplierId, req.body, actor.userId);
        await t.audit('supplier.settings', `supplier:${supplierId}`, { before, after });
        return after;
      });
    },
  );
};

/** Supplier staff always belong to a supplier; the capability checks above guarantee the role. */
function supplierOf(orgId: number | null): number {
  if (orgId === null) throw new AppError('FORBIDDEN', 'not permitted for this role');
  return orgId;
}
