import { Readable } from 'node:stream';
import { z } from 'zod';
import {
  bodyErrorResponses,
  collectResponse,
  collectionAreasQuery,
  collectionAreasResponse,
  collectionDayParams,
  collectionDayResponse,
  collectionFileParams,
  collectionMissingQuery,
  collectionMissingResponse,
  collectionVersionQuery,
  errorResponses,
  type CollectionFileLine,
} from '@kilowire/contract';
import { collectDayIn } from '../../collection/collect.ts';
import {
  decodeMissingCursor,
  dayView,
  encodeMissingCursor,
  fileLines,
  isDue,
  listAreas,
  missingMeters,
  runOf,
  supplierInRun,
  visibleArea,
  type AreaRow,
} from '../../collection/queries.ts';
import { withTx, type Pool } from '../../db/pool.ts';
import { AppError } from '../../errors.ts';
import { requireCapability, type Actor } from '../../policies.ts';
import { actorOf, whoOf, type Routes } from '../http.ts';
import { csvField } from '../../csv.ts';

type FileLine = CollectionFileLine & { meterId: number };

/** Meters per round trip while streaming a supplier's file: memory stays at one batch. */
const FILE_BATCH = 2000;

/** Slot column names of the files: the local start of each half-hour, 00:00 .. 23:30. */
const SLOT_NAMES = Array.from(
  { length: 48 },
  (_, i) => `${String(Math.floor(i / 2)).padStart(2, '0')}:${i % 2 ? '30' : '00'}`,
);

async function areaOr404(pool: Pool, actor: Actor, areaId: string): Promise<AreaRow> {
  const a = await visibleArea(pool, actor, areaId);
  // Another operator's area is answered exactly like an area that does not exist.
  if (!a) throw new AppError('NOT_FOUND', 'area not found');
  return a;
}

/** The daily collection (#9 N1): status per area and day, missing meters, supplier files, re-collection. */
export const collectionRoutes: Routes = async (app, deps) => {
  const { pool } = deps;

  app.get(
    '/api/collection/areas',
    {
      schema: {
        tags: ['collection'],
        summary: "The actor's areas with their last local days: latest version, complete %, meters, Wh",
        querystring: collectionAreasQuery,
        response: { 200: collectionAreasResponse, ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'network.read');
      return { areas: await listAreas(pool, actor, req.query.days, Math.floor(Date.now() / 1000)) };
    },
  );

  app.get(
    '/api/collection/areas/:areaId/days/:day',
    {
      schema: {
        tags: ['collection'],
        summary:
          "One local day of an area: its versions (and what changed), and a version's totals per supplier and feeder",
        params: collectionDayParams,
        querystring: collectionVersionQuery,
        response: { 200: collectionDayResponse, ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'network.read');
      const area = await areaOr404(pool, actor, req.params.areaId);
      const v = await dayView(pool, area, req.params.day, req.query.version);
      if (!v) throw new AppError('NOT_FOUND', 'no collection of this day (or no such version)');
      return v;
    },
  );

  app.get(
    '/api/collection/areas/:areaId/days/:day/missing',
    {
      schema: {
        tags: ['collection'],
        summary: 'Meters missing or incomplete in a version (latest by default), longest missing first',
        params: collectionDayParams,
        querystring: collectionMissingQuery,
        response: { 200: collectionMissingResponse, ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'network.read');
      await areaOr404(pool, actor, req.params.areaId);
      const after = decodeMissingCursor(req.query.cursor);
      if (after === 'bad') throw new AppError('VALIDATION', 'bad cursor');
      const run = await runOf(pool, req.params.areaId, req.params.day, req.query.version);
      if (!run) throw new AppError('NOT_FOUND', 'no collection of this day (or no such version)');
      const page = await missingMeters(pool, run.id, req.query.limit, after);
      return {
        version: run.version,
        total: page.total,
        items: page.items,
        nextCursor: page.next ? encodeMissingCursor(page.next) : null,
      };
    },
  );

  /** The run and supplier of a file request, or 404. */
  async function fileTarget(actor: Actor, p: z.infer<typeof collectionFileParams>, version?: number) {
    const area = await areaOr404(pool, actor, p.areaId);
    const run = await runOf(pool, p.areaId, p.day, version);
    if (!run) throw new AppError('NOT_FOUND', 'no collection of this day (or no such version)');
    const supplier = await supplierInRun(pool, run.id, p.supplierId);
    if (supplier === null) throw new AppError('NOT_FOUND', 'no meters of this supplier in the collection');
    const reason = (
      await pool.query<{ reason: string }>('SELECT reason FROM collection_runs WHERE id = $1', [run.id])
    ).rows[0]!.reason;
    return { area, run, supplier, reason };
  }

  /** The lines of a supplier's file, batch by batch (the first fetched before answering). */
  async function* batches(runId: number, supplierId: number, first: FileLine[]) {
    let batch = first;
    for (;;) {
      if (batch.length) yield batch.map(({ meterId: _id, ...line }) => line);
      if (batch.length < FILE_BATCH) return;
      batch = await fileLines(pool, runId, supplierId, batch[batch.length - 1]!.meterId, FILE_BATCH);
    }
  }

  const fileName = (p: z.infer<typeof collectionFileParams>, version: number, ext: string) =>
    `collection-${p.areaId}-${p.day}-v${version}-supplier-${p.supplierId}.${ext}`;

  app.get(
    '/api/collection/areas/:areaId/days/:day/suppliers/:supplierId/file.csv',
    {
      schema: {
        tags: ['collection'],
        summary:
          "A supplier's daily file as CSV, streamed: a header block (area, day, version, generated), then one line per meter with its 48 half-hours",
        params: collectionFileParams,
        querystring: collectionVersionQuery,
        produces: ['text/csv'],
        response: { 200: z.any().describe('text/csv'), ...errorResponses },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      requireCapability(actor, 'network.read');
      const t = await fileTarget(actor, req.params, req.query.version);
      // The first batch before answering: a failure is an error status, not a cut file.
      const first = await fileLines(pool, t.run.id, req.params.supplierId, 0, FILE_BATCH);
      const generatedAt = new Date().toISOString();
      const row = (cells: (string | number | boolean | null)[]) => `${cells.map(csvField).join(',')}\r\n`;
      const runId = t.run.id;
      const supplierId = req.params.supplierId;
      async function* text(): AsyncGenerator<string> {
        yield row([
          'area_id',
          'area',
          'day',
          'version',
          'reason',
          'supplier_id',
          'supplier',
          'time_zone',
          'generated_at',
        ]);
        yield row([
          t.area.id,
          t.area.name,
          req.params.day,
          t.run.version,
          t.reason,
          supplierId,
          t.supplier,
          t.area.tz,
          generatedAt,
        ]);
        yield '\r\n';
        yield row([
          'serial',
          'feeder',
          'kwh',
          'wh',
          'actual',
          'estimated',
          'expected',
          'complete',
          ...SLOT_NAMES,
        ]);
        for await (const b of batches(runId, supplierId, first)) {
          yield b
            .map((l) =>
              row([
                l.serial,
                l.feeder,
                l.kwh.toFixed(3),
                l.wh,
                l.actual,
                l.estimated,
                l.expected,
                l.complete,
                ...l.slotWh,
              ]),
            )
            .join('');
        }
      }
      return reply
        .header('content-type', 'text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="${fileName(req.params, t.run.version, 'csv')}"`)
        .header('cache-control', 'private, no-store')
        .send(Readable.from(text()));
    },
  );

  app.get(
    '/api/collection/areas/:areaId/days/:day/suppliers/:supplierId/file.json',
    {
      schema: {
        tags: ['collection'],
        summary:
          "A supplier's daily file as JSON, streamed: { area, day, version, generatedAt, ..., meters: [one object per meter with slotWh] }",
        params: collectionFileParams,
        querystring: collectionVersionQuery,
        produces: ['application/json'],
        response: { 200: z.any().describe('application/json'), ...errorResponses },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      requireCapability(actor, 'network.read');
      const t = await fileTarget(actor, req.params, req.query.version);
      const first = await fileLines(pool, t.run.id, req.params.supplierId, 0, FILE_BATCH);
      const head = {
        areaId: t.area.id,
        area: t.area.name,
        day: req.params.day,
        version: t.run.version,
        reason: t.reason,
        supplierId: req.params.supplierId,
        supplier: t.supplier,
        timeZone: t.area.tz,
        slots: SLOT_NAMES,
        generatedAt: new Date().toISOString(),
      };
      const runId = t.run.id;
      const supplierId = req.params.supplierId;
      async function* text(): AsyncGenerator<string> {
        yield `${JSON.stringify(head).slice(0, -1)},"meters":[`;
        let sep = '';
        for await (const b of batches(runId, supplierId, first)) {
          yield sep + b.map((l) => JSON.stringify(l)).join(',');
          sep = ',';
        }
        yield ']}';
      }
      return reply
        .header('content-type', 'application/json; charset=utf-8')
        .header(
          'content-disposition',
          `attachment; filename="${fileName(req.params, t.run.version, 'json')}"`,
        )
        .header('cache-control', 'private, no-store')
        .send(Readable.from(text()));
    },
  );

  app.post(
    '/api/collection/areas/:areaId/days/:day/collect',
    {
      schema: {
        tags: ['collection'],
        summary:
          'Collect a day again by hand (operator admins, audited): a new version if anything changed, else the latest (409 before the cut-off)',
        params: collectionDayParams,
        response: {
          200: collectResponse,
          201: collectResponse,
          409: errorResponses[400],
          ...errorResponses,
          ...bodyErrorResponses,
        },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      requireCapability(actor, 'network.settings');
      const area = await areaOr404(pool, actor, req.params.areaId);
      // Before the cut-off the day is still arriving: a version now would stop the schedule
      // from taking the settled one.
      if (!isDue(area, req.params.day, Math.floor(Date.now() / 1000)))
        throw new AppError(
          'CONFLICT',
          `the day is collected after its cut-off (${area.cutoff} the next day)`,
        );
      const r = await withTx(pool, whoOf(req), async (t) => {
        const res = await collectDayIn(t.c, area.id, req.params.day, 'manual');
        await t.audit('collection.collect', `${area.id}:${req.params.day}`, {
          version: res.version,
          created: res.created,
          meters: res.meters,
          completeMeters: res.completeMeters,
        });
        return res;
      });
      const collectedAt = (
        await pool.query<{ at: Date }>(
          'SELECT coalesce(finished_at, started_at) AS at FROM collection_runs WHERE id = $1',
          [r.runId],
        )
      ).rows[0]!.at;
      return reply.code(r.created ? 201 : 200).send({
        created: r.created,
        run: {
          version: r.version,
          reason: r.reason,
          collectedAt: collectedAt.toISOString(),
          meters: r.meters,
          completeMeters: r.completeMeters,
          completePct: r.meters > 0 ? Math.floor((r.completeMeters * 1000) / r.meters) / 10 : null,
          wh: r.wh,
          actual: r.actual,
          estimated: r.estimated,
          expected: r.expected,
        },
      });
    },
  );
};
