import {
  billRunBody,
  billRunDetail,
  billRunsQuery,
  billRunsResponse,
  billsQuery,
  billsResponse,
  bodyErrorResponses,
  errorResponses,
  idParams,
} from '@kilowire/contract';
import { z } from 'zod';
import { withTx } from '../../db/pool.ts';
import { AppError } from '../../errors.ts';
import {
  billRunFailures,
  billRunProgress,
  createBillRun,
  listBillRuns,
  type RunProgress,
} from '../../money/billrun.ts';
import { renderBillPdf } from '../../money/pdf.ts';
import { billInScope, listBills } from '../../money/queries.ts';
import { requireCapability, scopeSql, type Actor } from '../../policies.ts';
import { actorOf, decodeIdCursor, encodeIdCursor, whoOf, type Routes } from '../http.ts';

/** The supplier whose runs the actor sees: its own (staff) or any (null, admins). */
function runScope(actor: Actor): number | null {
  const s = scopeSql(actor, 'bill_runs', 'r');
  if (s.sql === 'TRUE') return null;
  if (s.sql === 'FALSE') throw new AppError('FORBIDDEN', 'not permitted');
  return s.params[0] as number;
}

const present = ({ supplierId: _s, ...r }: RunProgress) => r;

export const billRoutes: Routes = async (app, deps) => {
  const { pool } = deps;

  app.get(
    '/api/bills',
    {
      schema: {
        tags: ['money'],
        summary:
          "Issued bills, newest first (households: their own; supplier staff: their supplier's; admins: all)",
        querystring: billsQuery,
        response: { 200: billsResponse, ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'bills.read');
      const page = await listBills(pool, actor, {
        accountId: req.query.accountId,
        from: req.query.from,
        to: req.query.to,
        limit: req.query.limit,
        beforeId: decodeIdCursor(req.query.cursor),
      });
      return {
        items: page.items,
        nextCursor: page.nextBefore === null ? null : encodeIdCursor(page.nextBefore),
      };
    },
  );

  app.get(
    '/api/bills/:id/pdf',
    {
      schema: {
        tags: ['money'],
        summary: 'The bill as a PDF (rendered on request from the issued bill, which never changes)',
        params: idParams,
        produces: ['application/pdf'],
        response: { 200: z.any().describe('application/pdf'), ...errorResponses },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      requireCapability(actor, 'bills.read');
      const bill = await billInScope(pool, actor, req.params.id);
      if (!bill) throw new AppError('NOT_FOUND', 'bill not found');
      const pdf = await renderBillPdf(pool, bill.id);
      if (!pdf) throw new AppError('NOT_FOUND', 'bill not found');
      return reply
        .header('content-type', 'application/pdf')
        .header('content-disposition', `inline; filename="bill-${bill.id}-${bill.periodStart}.pdf"`)
        .header('cache-control', 'private, no-store')
        .send(pdf);
    },
  );

  app.post(
    '/api/bill-runs',
    {
      schema: {
        tags: ['money'],
        summary:
          "Start a bill run for the supplier's credit accounts on one cycle day (the period's first day) — supplier staff",
        body: billRunBody,
        response: { 202: billRunDetail, ...errorResponses, ...bodyErrorResponses },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      requireCapability(actor, 'billruns.start');
      const supplierId = runScope(actor);
      if (supplierId === null) throw new AppError('FORBIDDEN', 'not permitted');
      const { runId } = await withTx(pool, whoOf(req), async (t) => {
        const r = await createBillRun(t.c, {
          supplierId,
          periodStart: req.body.periodStart,
          trigger: 'staff',
          createdBy: actor.userId,
        });
        await t.audit('bill_run.start', String(r.runId), { periodStart: req.body.periodStart });
        return r;
      });
      const p = (await billRunProgress(pool, runId))!;
      return reply.code(202).send({ ...present(p), failures: [] });
    },
  );

  app.get(
    '/api/bill-runs',
    {
      schema: {
        tags: ['money'],
        summary: "Bill runs, newest first, with progress (supplier staff: their supplier's; admins: all)",
        querystring: billRunsQuery,
        response: { 200: billRunsResponse, ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'billruns.read');
      const runs = await listBillRuns(
        pool,
        runScope(actor),
        req.query.limit + 1,
        decodeIdCursor(req.query.cursor),
      );
      const items = runs.slice(0, req.query.limit);
      return {
        items: items.map(present),
        nextCursor: runs.length > req.query.limit ? encodeIdCursor(items[items.length - 1]!.id) : null,
      };
    },
  );

  app.get(
    '/api/bill-runs/:id',
    {
      schema: {
        tags: ['money'],
        summary:
          'A bill run: progress (processed / total / failed) and the accounts it could not bill, with the reason',
        params: idParams,
        response: { 200: billRunDetail, ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'billruns.read');
      const p = await billRunProgress(pool, req.params.id, runScope(actor));
      if (!p) throw new AppError('NOT_FOUND', 'bill run not found');
      return { ...present(p), failures: await billRunFailures(pool, p.id) };
    },
  );
};
