import {
  bodyErrorResponses,
  conflictResponses,
  errorResponses,
  networkAssignBody,
  networkIdParams,
  networkInvoicesQuery,
  networkInvoicesResponse,
  networkIssueBody,
  networkIssueResponse,
  networkPaymentBody,
  networkPaymentResponse,
  networkTariff,
  networkTariffCreateBody,
  networkTariffsResponse,
  networkVersionBody,
  type NetworkInvoice,
  type NetworkTariff,
} from '@kilowire/contract';
import { z } from 'zod';
import { localDate } from '@kilowire/protocol';
import { withTx, type Q } from '../../db/pool.ts';
import { AppError } from '../../errors.ts';
import { invoiceCsv, renderInvoicePdf } from '../../netbilling/documents.ts';
import { issueMonth } from '../../netbilling/invoices.ts';
import { networkBalances, recordNetworkPayment } from '../../netbilling/ledger.ts';
import { invoiceInScope, invoiceLines, listInvoices, type InvoiceRow } from '../../netbilling/queries.ts';
import {
  addNetworkVersion,
  assignNetworkTariff,
  createNetworkTariff,
  listNetworkTariffs,
  type NetworkTariffItem,
} from '../../netbilling/tariffs.ts';
import { requireCapability, type Actor } from '../../policies.ts';
import { actorOf, whoOf, type Routes } from '../http.ts';

/**
 * #9 Network-use charges. Operator admins keep the network tariffs, issue a month's invoices
 * and record suppliers' payments; operator staff read their own; a supplier's staff read the
 * invoices it owes and its balance; admins read all. Every read goes through the
 * `network_invoices` / `network_tariffs` scopes: another organisation's invoice is a 404.
 */
function operatorOf(actor: Actor): number {
  if (actor.role !== 'operator' || actor.orgId === null) throw new AppError('FORBIDDEN', 'not permitted');
  return actor.orgId;
}

function tariffView(t: NetworkTariffItem): NetworkTariff {
  return {
    id: t.id,
    operatorId: t.operatorId,
    code: t.code,
    name: t.name,
    currency: t.currency,
    versions: t.versions.map((v) => ({
      version: v.version,
      effectiveFrom: v.effectiveFrom,
      bands: v.bands.map((b) => ({ ...b, weekdaysOnly: b.weekdaysOnly ?? false })),
      fixedMilliPerDay: v.fixedMilliPerDay,
      vatBp: v.vatBp,
    })),
    areas: t.areas.map((a) => ({ areaId: a.areaId, fromDay: a.fromDay })),
  };
}

function invoiceView(i: InvoiceRow): NetworkInvoice {
  return { ...i, issuedAt: i.issuedAt.toISOString() };
}

async function areasOf(q: Q, operatorId: number | null) {
  const { rows } = await q.query<{ id: string; name: string; tz: string; meters: number }>(
    `SELECT a.id, a.name, a.tz, (SELECT count(*)::int FROM meters m WHERE m.area_id = a.id) AS meters
       FROM network_areas a WHERE $1::int IS NULL OR a.operator_id = $1 ORDER BY a.id`,
    [operatorId],
  );
  const { rows: asg } = await q.query<{ area_id: string; from_day: string; tariff_id: number; code: string }>(
    `SELECT x.area_id, to_char(x.from_day, 'YYYY-MM-DD') AS from_day, x.tariff_id, t.code
       FROM network_tariff_areas x JOIN network_tariffs t ON t.id = x.tariff_id
      WHERE x.area_id = ANY($1::text[]) ORDER BY x.area_id, x.from_day`,
    [rows.map((r) => r.id)],
  );
  const now = Math.floor(Date.now() / 1000);
  return rows.map((a) => {
    const today = localDate(now, a.tz);
    const cur = asg.filter((x) => x.area_id === a.id && x.from_day <= today).at(-1);
    return {
      id: a.id,
      name: a.name,
      tz: a.tz,
      meters: a.meters,
      tariffId: cur?.tariff_id ?? null,
      tariffCode: cur?.code ?? null,
    };
  });
}

export const netbillingRoutes: Routes = async (app, deps) => {
  const { pool } = deps;

  app.get(
    '/api/network-tariffs',
    {
      schema: {
        tags: ['network'],
        summary: "The operator's network tariffs with their versions and areas (admins: every operator's)",
        response: { 200: networkTariffsResponse, ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'network.read');
      const op = actor.role === 'admin' ? null : operatorOf(actor);
      const items = await listNetworkTariffs(pool, op);
      return { items: items.map(tariffView), areas: await areasOf(pool, op) };
    },
  );

  const oneTariff = async (operatorId: number, id: number) =>
    tariffView((await listNetworkTariffs(pool, operatorId)).find((t) => t.id === id)!);

  app.post(
    '/api/network-tariffs',
    {
      schema: {
        tags: ['network'],
        summary: 'Create a network tariff with its first prices',
        body: networkTariffCreateBody,
        response: { 201: networkTariff, ...errorResponses, ...conflictResponses, ...bodyErrorResponses },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      requireCapability(actor, 'network_tariffs.manage');
      const op = operatorOf(actor);
      const id = await withTx(pool, whoOf(req), async (t) => {
        const id = await createNetworkTariff(t.c, op, req.body, actor.userId);
        await t.audit('network_tariff.create', req.body.code, { tariffId: id, ...req.body });
        return id;
      });
      reply.code(201);
      return oneTariff(op, id);
    },
  );

  app.post(
    '/api/network-tariffs/:id/versions',
    {
      schema: {
        tags: ['network'],
        summary: 'New prices from a local day (after the latest version and every invoiced month)',
        params: networkIdParams,
        body: networkVersionBody,
        response: { 201: networkTariff, ...errorResponses, ...conflictResponses, ...bodyErrorResponses },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      requireCapability(actor, 'network_tariffs.manage');
      const op = operatorOf(actor);
      await withTx(pool, whoOf(req), async (t) => {
        const version = await addNetworkVersion(t.c, op, req.params.id, req.body, actor.userId);
        await t.audit('network_tariff.version', String(req.params.id), { version, ...req.body });
      });
      reply.code(201);
      return oneTariff(op, req.params.id);
    },
  );

  app.post(
    '/api/network-tariffs/:id/areas',
    {
      schema: {
        tags: ['network'],
        summary: 'The tariff prices one of the operator’s areas from a local day on',
        params: networkIdParams,
        body: networkAssignBody,
        response: { 201: networkTariff, ...errorResponses, ...conflictResponses, ...bodyErrorResponses },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      requireCapability(actor, 'network_tariffs.manage');
      const op = operatorOf(actor);
      await withTx(pool, whoOf(req), async (t) => {
        await assignNetworkTariff(t.c, op, req.params.id, req.body.areaId, req.body.fromDay, actor.userId);
        await t.audit('network_tariff.assign', String(req.params.id), { ...req.body });
      });
      reply.code(201);
      return oneTariff(op, req.params.id);
    },
  );

  app.get(
    '/api/network-invoices',
    {
      schema: {
        tags: ['network'],
        summary:
          'Network-use invoices and notes, newest month first, with balances from the network ledger: an operator its own, a supplier those it owes',
        querystring: networkInvoicesQuery,
        response: { 200: networkInvoicesResponse, ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'network_invoices.read');
      const items = await listInvoices(pool, actor, req.query);
      const op = actor.role === 'operator' ? actor.orgId : null;
      const sup = actor.role === 'supplier' ? actor.orgId : null;
      const balances = await networkBalances(pool, op, sup);
      const suppliers =
        actor.role === 'operator'
          ? (
              await pool.query<{ id: number; name: string }>(
                `SELECT DISTINCT o.id, o.name FROM organisations o JOIN meters m ON m.supplier_id = o.id
                   JOIN network_areas a ON a.id = m.area_id WHERE a.operator_id = $1
                 UNION SELECT o.id, o.name FROM organisations o JOIN network_invoices i ON i.supplier_id = o.id
                  WHERE i.operator_id = $1 ORDER BY name`,
                [op],
              )
            ).rows
          : [];
      return { items: items.map(invoiceView), balances, suppliers };
    },
  );

  app.post(
    '/api/network-invoices/issue',
    {
      schema: {
        tags: ['network'],
        summary:
          "Invoice a collected month: one invoice per supplier on the operator's wires; again later, a note per changed supplier (409 naming the days not collected yet)",
        body: networkIssueBody,
        response: {
          200: networkIssueResponse,
          ...errorResponses,
          ...conflictResponses,
          ...bodyErrorResponses,
        },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'network_tariffs.manage');
      const op = operatorOf(actor);
      return issueMonth(pool, op, req.body.month, { who: whoOf(req), trigger: 'staff' });
    },
  );

  const scoped = async (actor: Actor, id: number) => {
    requireCapability(actor, 'network_invoices.read');
    const inv = await invoiceInScope(pool, actor, id);
    if (!inv) throw new AppError('NOT_FOUND', 'invoice not found');
    return { inv, lines: await invoiceLines(pool, inv.id) };
  };

  app.get(
    '/api/network-invoices/:id/pdf',
    {
      schema: {
        tags: ['network'],
        summary: 'The invoice or note as a PDF (rendered from its rows, which never change)',
        params: networkIdParams,
        produces: ['application/pdf'],
        response: { 200: z.any().describe('application/pdf'), ...errorResponses },
      },
    },
    async (req, reply) => {
      const { inv, lines } = await scoped(actorOf(req), req.params.id);
      const pdf = await renderInvoicePdf(inv, lines);
      return reply
        .header('content-type', 'application/pdf')
        .header('content-disposition', `inline; filename="network-invoice-${inv.id}-${inv.month}.pdf"`)
        .header('cache-control', 'private, no-store')
        .send(pdf);
    },
  );

  app.get(
    '/api/network-invoices/:id/lines.csv',
    {
      schema: {
        tags: ['network'],
        summary: "The invoice's lines as CSV (fields a spreadsheet would run as formulas are defused)",
        params: networkIdParams,
        produces: ['text/csv'],
        response: { 200: z.any().describe('text/csv'), ...errorResponses },
      },
    },
    async (req, reply) => {
      const { inv, lines } = await scoped(actorOf(req), req.params.id);
      return reply
        .header('content-type', 'text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="network-invoice-${inv.id}-${inv.month}.csv"`)
        .header('cache-control', 'private, no-store')
        .send(invoiceCsv(inv, lines));
    },
  );

  app.post(
    '/api/network-invoices/payments',
    {
      schema: {
        tags: ['network'],
        summary:
          "Record a supplier's payment (network ledger: cash in, the supplier's debt down); the same reference again changes nothing",
        body: networkPaymentBody,
        response: {
          201: networkPaymentResponse,
          200: networkPaymentResponse,
          ...errorResponses,
          ...conflictResponses,
          ...bodyErrorResponses,
        },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      requireCapability(actor, 'network_tariffs.manage');
      const op = operatorOf(actor);
      const r = await withTx(pool, whoOf(req), async (t) => {
        const r = await recordNetworkPayment(t.c, op, req.body, actor.userId);
        if (r.created)
          await t.audit('network_payment.record', req.body.reference, { ...req.body, txnId: r.txnId });
        return r;
      });
      const balance = (await networkBalances(pool, op, req.body.supplierId))[0] ?? null;
      reply.code(r.created ? 201 : 200);
      return { ...r, balance };
    },
  );
};
