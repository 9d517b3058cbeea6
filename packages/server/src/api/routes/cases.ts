import { Readable } from 'node:stream';
import {
  bodyErrorResponses,
  errorResponses,
  extractBody,
  extractItem,
  extractsQuery,
  extractsResponse,
  greenButtonQuery,
  idParams,
  meterTamperCasesResponse,
  serialParams,
  tamperActionBody,
  tamperCaseDetail,
  tamperCasesQuery,
  tamperCasesResponse,
  tamperNoteBody,
  tamperStatusBody,
} from '@kilowire/contract';
import { z } from 'zod';
import { addNote, caseDetail, casesOfMeter, listCases, moveStatus, recordAction } from '../../cases/cases.ts';
import { withTx } from '../../db/pool.ts';
import { AppError } from '../../errors.ts';
import {
  createExtract,
  extractCsv,
  extractInScope,
  listExtracts,
  presentExtract,
} from '../../extracts/extracts.ts';
import { greenButtonFeed } from '../../extracts/green-button.ts';
import { authorisedMeter } from '../../meters/queries.ts';
import { requireCapability, scopeSql, type Actor } from '../../policies.ts';
import { actorOf, decodeIdCursor, encodeIdCursor, whoOf, type Routes } from '../http.ts';

/** The supplier an extract is made for: the actor's own (a supplier staff user). */
function extractSupplier(actor: Actor): number {
  const s = scopeSql(actor, 'extracts', 'x');
  if (s.sql === 'TRUE' || s.sql === 'FALSE') throw new AppError('FORBIDDEN', 'not permitted');
  return s.params[0] as number;
}

/** Tamper cases, monthly extracts and Green Button downloads (issue #8). */
export const caseRoutes: Routes = async (app, deps) => {
  const { pool } = deps;

  // ---------------------------------------------------------------- tamper cases

  app.get(
    '/api/tamper-cases',
    {
      schema: {
        tags: ['cases'],
        summary: 'Tamper cases of the supplier, newest first, with counts per status (supplier staff)',
        querystring: tamperCasesQuery,
        response: { 200: tamperCasesResponse, ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'tamper.manage');
      const page = await listCases(pool, actor, {
        ...(req.query.status ? { status: req.query.status } : {}),
        limit: req.query.limit,
        beforeId: decodeIdCursor(req.query.cursor),
      });
      return {
        items: page.items,
        counts: page.counts,
        nextCursor: page.nextBefore === null ? null : encodeIdCursor(page.nextBefore),
      };
    },
  );

  app.get(
    '/api/tamper-cases/:id',
    {
      schema: {
        tags: ['cases'],
        summary: 'One tamper case: the meter, the household, the events behind it and its timeline',
        params: idParams,
        response: { 200: tamperCaseDetail, ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'tamper.manage');
      const d = await caseDetail(pool, actor, req.params.id);
      if (!d) throw new AppError('NOT_FOUND', 'tamper case not found');
      return d;
    },
  );

  const detailAfter = async (actor: Actor, id: number) => (await caseDetail(pool, actor, id))!;

  app.post(
    '/api/tamper-cases/:id/notes',
    {
      schema: {
        tags: ['cases'],
        summary: 'Add a note to a tamper case',
        params: idParams,
        body: tamperNoteBody,
        response: { 201: tamperCaseDetail, ...errorResponses, ...bodyErrorResponses },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      requireCapability(actor, 'tamper.manage');
      await withTx(pool, whoOf(req), (t) => addNote(t, actor, req.params.id, req.body.text));
      return reply.code(201).send(await detailAfter(actor, req.params.id));
    },
  );

  app.post(
    '/api/tamper-cases/:id/status',
    {
      schema: {
        tags: ['cases'],
        summary:
          'Move a case on: open -> investigating -> resolved (with the resolution in `text`); resolved is final (409 otherwise)',
        params: idParams,
        body: tamperStatusBody,
        response: {
          200: tamperCaseDetail,
          409: errorResponses[400],
          ...errorResponses,
          ...bodyErrorResponses,
        },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'tamper.manage');
      await withTx(pool, whoOf(req), (t) =>
        moveStatus(t, actor, req.params.id, req.body.status, req.body.text),
      );
      return detailAfter(actor, req.params.id);
    },
  );

  app.post(
    '/api/tamper-cases/:id/actions',
    {
      schema: {
        tags: ['cases'],
        summary:
          'Record an action on an unresolved case: a site visit booked (visitDate), a disconnection or reconnection (commandId)...',
        params: idParams,
        body: tamperActionBody,
        response: {
          201: tamperCaseDetail,
          409: errorResponses[400],
          ...errorResponses,
          ...bodyErrorResponses,
        },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      requireCapability(actor, 'tamper.manage');
      await withTx(pool, whoOf(req), (t) => recordAction(t, actor, req.params.id, req.body));
      return reply.code(201).send(await detailAfter(actor, req.params.id));
    },
  );

  app.get(
    '/api/meters/:serial/tamper-cases',
    {
      schema: {
        tags: ['cases'],
        summary: "The meter's tamper cases, newest first (supplier staff of its supplier; admins)",
        params: serialParams,
        response: { 200: meterTamperCasesResponse, ...errorResponses },
      },
    },
    async (req) => {
      const m = await authorisedMeter(pool, actorOf(req), req.params.serial, 'meter.cases.read');
      return { serial: m.serial, items: await casesOfMeter(pool, m.id) };
    },
  );

  // ---------------------------------------------------------------- monthly extracts

  app.post(
    '/api/extracts',
    {
      schema: {
        tags: ['extracts'],
        summary:
          "Start a monthly extract: daily and monthly consumption of the supplier's meters (or a selection), as CSV",
        body: extractBody,
        response: { 202: extractItem, ...errorResponses, ...bodyErrorResponses },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      requireCapability(actor, 'extracts.manage');
      const supplierId = extractSupplier(actor);
      const selection = req.body.selection ?? {};
      const id = await withTx(pool, whoOf(req), async (t) => {
        const id = await createExtract(t.c, {
          supplierId,
          requestedBy: actor.userId,
          month: req.body.month,
          selection,
        });
        await t.audit('extract.start', String(id), { month: req.body.month, selection });
        return id;
      });
      return reply.code(202).send(presentExtract((await extractInScope(pool, actor, id))!));
    },
  );

  app.get(
    '/api/extracts',
    {
      schema: {
        tags: ['extracts'],
        summary: "The supplier's extracts, newest first, with their progress",
        querystring: extractsQuery,
        response: { 200: extractsResponse, ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'extracts.manage');
      const page = await listExtracts(pool, actor, {
        limit: req.query.limit,
        beforeId: decodeIdCursor(req.query.cursor),
      });
      return {
        items: page.items.map(presentExtract),
        nextCursor: page.nextBefore === null ? null : encodeIdCursor(page.nextBefore),
      };
    },
  );

  app.get(
    '/api/extracts/:id',
    {
      schema: {
        tags: ['extracts'],
        summary: 'One extract and its progress (meters done of total)',
        params: idParams,
        response: { 200: extractItem, ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'extracts.manage');
      const x = await extractInScope(pool, actor, req.params.id);
      if (!x) throw new AppError('NOT_FOUND', 'extract not found');
      return presentExtract(x);
    },
  );

  app.get(
    '/api/extracts/:id/download',
    {
      schema: {
        tags: ['extracts'],
        summary:
          'The finished extract as CSV (kind,serial,period,wh,intervals,estimated), streamed; 409 while it is not done',
        params: idParams,
        produces: ['text/csv'],
        response: { 200: z.any().describe('text/csv'), 409: errorResponses[400], ...errorResponses },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      requireCapability(actor, 'extracts.manage');
      const x = await extractInScope(pool, actor, req.params.id);
      if (!x) throw new AppError('NOT_FOUND', 'extract not found');
      if (x.status !== 'done') throw new AppError('CONFLICT', `the extract is ${x.status}`);
      return reply
        .header('content-type', 'text/csv; charset=utf-8')
        .header(
          'content-disposition',
          `attachment; filename="kilowire-extract-${x.month.slice(0, 7)}-${Number(x.id)}.csv"`,
        )
        .header('cache-control', 'private, no-store')
        .send(Readable.from(extractCsv(pool, Number(x.id))));
    },
  );

  // ---------------------------------------------------------------- Green Button

  app.get(
    '/api/meters/:serial/green-button',
    {
      schema: {
        tags: ['extracts'],
        summary:
          "The meter's interval readings as Green Button (ESPI Atom XML), local days from..to (at most 13 months)",
        params: serialParams,
        querystring: greenButtonQuery,
        produces: ['application/atom+xml'],
        response: { 200: z.any().describe('application/atom+xml'), ...errorResponses },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      // A household needs "download my data"; staff of the meter's supplier the meter scope alone.
      if (actor.role === 'consumer') requireCapability(actor, 'mydata.download');
      const m = await authorisedMeter(pool, actor, req.params.serial, 'meter.green_button');
      const household = m.consumer_id
        ? ((await pool.query<{ name: string }>('SELECT name FROM consumers WHERE id = $1', [m.consumer_id]))
            .rows[0]?.name ?? null)
        : null;
      const feed = greenButtonFeed(
        pool,
        { id: m.id, serial: m.serial, tz: m.tz, intervalS: m.interval_s, household },
        req.query.from,
        req.query.to,
      );
      return reply
        .header('content-type', 'application/atom+xml; charset=utf-8')
        .header(
          'content-disposition',
          `attachment; filename="green-button-${m.serial}-${req.query.from}-${req.query.to}.xml"`,
        )
        .header('cache-control', 'private, no-store')
        .send(Readable.from(feed));
    },
  );
};
