import { Readable } from 'node:stream';
import { z } from 'zod';
import {
  errorResponses,
  fleetFilterQuery,
  fleetQuery,
  fleetResponse,
  meterOverview,
  serialParams,
  type FleetItem,
} from '@kilowire/contract';
import { csvField } from '../../csv.ts';
import { meterOverview as loadOverview } from '../../fleet/overview.ts';
import {
  FleetCountCache,
  decodeFleetCursor,
  fleetCounts,
  fleetPage,
  fleetTotal,
  hasFilters,
  scopeKey,
  searchHits,
  searchSupplier,
  type FleetFilter,
} from '../../fleet/queries.ts';
import { authorisedMeter } from '../../meters/queries.ts';
import { requireCapability } from '../../policies.ts';
import { actorOf, type Routes } from '../http.ts';

/** Rows fetched per round trip while streaming the export: memory stays at one batch. */
const EXPORT_BATCH = 1000;

const CSV_COLUMNS: [string, (i: FleetItem) => string | number | boolean | null][] = [
  ['serial', (i) => i.serial],
  ['consumer_id', (i) => i.consumer?.consumerId ?? null],
  ['name', (i) => i.consumer?.name ?? null],
  ['postcode', (i) => i.postcode],
  ['mode', (i) => i.mode],
  ['relay', (i) => i.relay],
  ['tariff', (i) => i.tariff?.name ?? null],
  ['firmware', (i) => i.firmwareVersion],
  ['last_seen_at', (i) => i.lastSeenAt],
  ['credit_minor', (i) => i.creditMinor],
  ['vulnerable', (i) => i.vulnerable],
  ['open_case', (i) => i.openCase],
  ['review_findings', (i) => i.reviewFindings],
];

export function csvLine(i: FleetItem): string {
  return `${CSV_COLUMNS.map(([, get]) => csvField(get(i))).join(',')}\r\n`;
}

export const fleetRoutes: Routes = async (app, deps) => {
  const { pool } = deps;
  // Per API process, and safely so with several behind a balancer: a count carries its asOf,
  // is at most a minute old, and nothing is decided on it (docs/ARCHITECTURE.md).
  const counts = new FleetCountCache();
  // Search hits: reused while fresh only (10 s), never served stale: who matches a name changes
  // with the households, and a list is what every later page of the search is cut from.
  const hits = new FleetCountCache(10_000, 10_000, 200);

  app.get(
    '/api/fleet',
    {
      schema: {
        tags: ['fleet'],
        summary:
          "The supplier's meters (admins: all) searched, filtered, sorted and paged by cursor, with counts per filter value",
        querystring: fleetQuery,
        response: { 200: fleetResponse, ...errorResponses },
      },
    },
    async (req) => {
      const actor = actorOf(req);
      requireCapability(actor, 'fleet.read');
      const { limit, cursor, ...f } = req.query;
      const now = Date.now();
      const filter: FleetFilter = {
        ...f,
        hits: f.q
          ? await hits.get(scopeKey(actor, 'hits', f.q), now, () =>
              searchHits(pool, f.q!, searchSupplier(actor)),
            )
          : null,
      };
      const after = decodeFleetCursor(cursor, filter.sort, filter.dir);
      // The page, its counts (scope + search) and its total (+ filters) in parallel; the two
      // counts are shared for a few seconds between everyone asking the same thing.
      const { sort: _s, dir: _d, hits: _h, ...filtersOnly } = filter;
      const [page, c, total] = await Promise.all([
        fleetPage(pool, actor, filter, { limit, cursor: after }, now),
        counts.get(scopeKey(actor, 'counts', filter.q ?? ''), now, () =>
          fleetCounts(pool, actor, filter, now),
        ),
        // No filter: the total is the counts' "all", no second pass.
        hasFilters(filter)
          ? counts.get(scopeKey(actor, 'total', filtersOnly), now, () => fleetTotal(pool, actor, filter, now))
          : null,
      ]);
      return { items: page.items, total: total ?? c.all, counts: c, nextCursor: page.nextCursor };
    },
  );

  app.get(
    '/api/fleet/export.csv',
    {
      schema: {
        tags: ['fleet'],
        summary: 'The fleet selection (same search, filters and sort) as CSV, streamed, every row',
        querystring: fleetFilterQuery,
        produces: ['text/csv'],
        response: { 200: z.any().describe('text/csv'), ...errorResponses },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      requireCapability(actor, 'fleet.read');
      const filter: FleetFilter = req.query;
      const now = Date.now();
      // Fetch the first batch before answering, so a failure is an error status, not a cut file.
      let page = await fleetPage(pool, actor, filter, { limit: EXPORT_BATCH, cursor: null }, now);
      async function* rows(): AsyncGenerator<string> {
        yield `${CSV_COLUMNS.map(([h]) => h).join(',')}\r\n`;
        for (;;) {
          yield page.items.map(csvLine).join('');
          if (!page.nextCursor) return;
          const cursor = decodeFleetCursor(page.nextCursor, filter.sort, filter.dir);
          page = await fleetPage(pool, actor, filter, { limit: EXPORT_BATCH, cursor }, now);
        }
      }
      const stamp = new Date(now).toISOString().slice(0, 10);
      return reply
        .header('content-type', 'text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="fleet-${stamp}.csv"`)
        .header('cache-control', 'private, no-store')
        .send(Readable.from(rows()));
    },
  );

  app.get(
    '/api/meters/:serial/overview',
    {
      schema: {
        tags: ['fleet'],
        summary:
          'The staff meter page in one answer: household, account, tariff, usage, events, commands, alerts, VEE, firmware',
        params: serialParams,
        response: { 200: meterOverview, ...errorResponses },
      },
    },
    async (req) => {
      const m = await authorisedMeter(pool, actorOf(req), req.params.serial, 'meter.overview');
      return loadOverview(pool, m);
    },
  );
};
