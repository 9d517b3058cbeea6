import {
  FLEET_STALE_HOURS,
  type FleetCounts,
  type FleetFilterQuery,
  type FleetItem,
  type FleetSort,
} from '@kilowire/contract';
import type { Q } from '../db/pool.ts';
import { AppError } from '../errors.ts';
import { scopeSql, type Actor } from '../policies.ts';

/**
 * The supplier's fleet table: search, filters, a sort and keyset pages, at 100,000 meters.
 *
 * Shape of the page query: the filtered, scoped meters walked in the sort's index order and
 * cut at `limit + 1` rows, and only those rows decorated (tariff, case, findings). The sort
 * keys are the expressions migration 009 indexed, so PostgreSQL reads ~limit rows, never the
 * whole fleet. Name and postcode live on the household, so those sorts are walked from the
 * consumers index and UNION ALL'ed with the (few) meters on no account, which sort as ''.
 *
 * "Last seen" here is meters.last_seen_at (the newest status message, which a connected meter
 * sends at least every minute): one indexed column, so it can be sorted and filtered on.
 */

/** A filter set as the query builder takes it (the contract's query without paging). */
export type FleetFilter = Omit<FleetFilterQuery, 'sort' | 'dir'> & {
  sort: FleetSort;
  dir: 'asc' | 'desc';
  /** The search's meter ids when already known (`searchHits`); else the search runs in SQL. */
  hits?: readonly number[] | null;
};

/** Placeholders appended as conditions are built. */
class Params {
  readonly values: unknown[] = [];
  add(v: unknown): string {
    this.values.push(v);
    return `$${this.values.length}`;
  }
}

/** Sort key per sort: [SQL expression, cast for the cursor value, walked from the household?]. */
const SORT_KEY: Record<FleetSort, { expr: string; cast: string; household: boolean }> = {
  serial: { expr: 'm.serial', cast: 'text', household: false },
  name: { expr: `lower(c.name) COLLATE "C"`, cast: 'text', household: true },
  postcode: { expr: `coalesce(c.postcode, '') COLLATE "C"`, cast: 'text', household: true },
  lastSeen: {
    expr: `coalesce(m.last_seen_at, '-infinity'::timestamptz)`,
    cast: 'timestamptz',
    household: false,
  },
  credit: {
    expr: `coalesce(m.credit_minor, '-9223372036854775808'::bigint)`,
    cast: 'bigint',
    household: false,
  },
};

/** The meter's tariff on its local today (meter_tariffs' primary key makes it one index probe). */
const CURRENT_TARIFF = `(SELECT mt.tariff_id FROM meter_tariffs mt
  WHERE mt.meter_id = m.id AND mt.from_day <= (now() AT TIME ZONE m.tz)::date
  ORDER BY mt.from_day DESC LIMIT 1)`;
/**
 * EXISTS, not IN: PostgreSQL then picks per query between probing the partial indexes row by
 * row (a search of a few hundred meters) and hashing the few thousand open cases once (the
 * whole fleet).
 */
const OPEN_CASE = `EXISTS (SELECT 1 FROM tamper_cases tc WHERE tc.meter_id = m.id AND tc.status <> 'resolved')`;
const REVIEW = `EXISTS (SELECT 1 FROM vee_issues v WHERE v.meter_id = m.id AND v.needs_review)`;
const LAST_SEEN = `coalesce(m.last_seen_at, '-infinity'::timestamptz)`;

/** Escape LIKE's wildcards so a typed % or _ is matched literally. */
function likePrefix(s: string): string {
  return `${s.replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`;
}

/** Words of the search as a prefix tsquery ('acac:* & smi:*'), or null when there are none. */
function wordsQuery(q: string): string | null {
  const words = q.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
  return words.length ? words.map((w) => `${w}:*`).join(' & ') : null;
}

/**
 * Meter ids matching the search (a SELECT of ids): each field through its own index, UNIONed (an OR across
 * joined tables would defeat every index).
 */
function searchUnionSql(q: string, p: Params, supplierId: number | null): string {
  const upper = p.add(likePrefix(q.toUpperCase()));
  const lower = p.add(likePrefix(q.toLowerCase()));
  // A supplier's search looks at its own households only, through indexes that lead with the
  // supplier: on a platform of several suppliers, "ho" must not first collect every other
  // supplier's Hollands (docs/performance.md, the full bench).
  const sup = supplierId === null ? null : p.add(supplierId);
  const ownC = sup === null ? '' : ` AND sc.supplier_id = ${sup}`;
  const ownM = sup === null ? '' : ` AND sm.supplier_id = ${sup}`;
  // Households matching a condition -> their meters, each hop through an array and an index
  // (consumers -> accounts_consumer -> meters_account): half the time of joins that hash the
  // whole accounts table for a few hundred households.
  const hh = (consumers: string) =>
    `SELECT sm.id FROM meters sm WHERE sm.account_id = ANY (ARRAY(
       SELECT sa.id FROM accounts sa WHERE sa.consumer_id = ANY (ARRAY(${consumers}))))`;
  const conds = [
    `SELECT sc.id FROM users su JOIN consumers sc ON sc.user_id = su.id
      WHERE su.login_id IS NOT NULL AND su.login_id COLLATE "C" LIKE ${upper}${ownC}`,
    `SELECT sc.id FROM consumers sc WHERE lower(sc.name) COLLATE "C" LIKE ${lower}${ownC}`,
    `SELECT sc.id FROM consumers sc WHERE coalesce(sc.postcode, '') COLLATE "C" LIKE ${upper}${ownC}`,
  ];
  const words = wordsQuery(q);
  if (words)
    conds.push(`SELECT sc.id FROM consumers sc
      WHERE to_tsvector('simple', sc.name || ' ' || coalesce(sc.address, '')) @@ to_tsquery('simple', ${p.add(words)})${ownC}`);
  const parts = [
    `SELECT sm.id FROM meters sm WHERE sm.serial COLLATE "C" LIKE ${upper}${ownM}`,
    hh(conds.join(' UNION ')),
  ];
  return parts.join(' UNION ');
}

/** Scope, active meters and the search: what the counts are taken over. */
function baseConditions(actor: Actor, f: FleetFilter, p: Params): string[] {
  const scope = scopeSql(actor, 'meters', 'm', p.values.length + 1);
  p.values.push(...scope.params);
  const out = [`(${scope.sql})`, `m.status = 'active'`];
  // Collected into an array first: the meters are then fetched by primary key, where an IN
  // (...) let the planner hash-join the whole fleet against a few hundred hits.
  if (f.q)
    out.push(
      f.hits
        ? `m.id = ANY (${p.add(f.hits)}::int[])`
        : `m.id = ANY (ARRAY(${searchUnionSql(f.q, p, searchSupplier(actor))}))`,
    );
  return out;
}

/** Up to this many hits, counts join each meter to its household; above, they use sets. */
const FEW_HITS = 2_000;

/** The supplier a search is narrowed to (supplier staff), or null (administrators: all). */
export function searchSupplier(actor: Actor): number | null {
  return actor.role === 'supplier' ? actor.orgId : null;
}

/** Above this many hits a search is not kept as a list of ids (it runs in SQL each time). */
export const MAX_KEPT_HITS = 20_000;

/**
 * The meter ids a search matches within `supplierId`'s households (null: every supplier's;
 * the actor's scope is applied again where they are used), or null when there are more than
 * MAX_KEPT_HITS. A search is typed once and then
 * paged, sorted, filtered and counted: the ids are found once and reused for all of that.
 */
export async function searchHits(q: Q, search: string, supplierId: number | null): Promise<number[] | null> {
  const p = new Params();
  const { rows } = await q.query<{ ids: number[] }>(
    `SELECT ARRAY(SELECT h.id FROM (${searchUnionSql(search, p, supplierId)}) h LIMIT ${MAX_KEPT_HITS + 1}) AS ids`,
    p.values,
  );
  const ids = rows[0]!.ids;
  return ids.length > MAX_KEPT_HITS ? null : ids;
}

/**
 * The accounts of vulnerable households (alias va), reached from the partial index
 * consumers_vulnerable by index probes. OFFSET 0 keeps the planner from flattening the
 * lateral step into a hash join over every account (~20 ms at 200,000 accounts; the probes
 * of 5,000 vulnerable households take a few).
 */
function vulnerableAccounts(p: Params, supplier: number | null): string {
  return `consumers vc CROSS JOIN LATERAL (SELECT va.id FROM accounts va WHERE va.consumer_id = vc.id OFFSET 0) va
          WHERE vc.vulnerable${supplier === null ? '' : ` AND vc.supplier_id = ${p.add(supplier)}`}`;
}

/**
 * The filters proper (mode, relay, tariff, ...), over m and, where `household` is set, the
 * household c joined to it. Without it the vulnerable filter does not join each meter to its
 * household (a total doing that took 64-84 ms at 100,000 meters; a meter-order page walked
 * 23,000 meters where the vulnerable households sat late, docs/performance.md): `true`
 * collects their meters and fetches them by key, `false` excludes their accounts.
 */
function filterConditions(
  f: FleetFilter,
  p: Params,
  nowMs: number,
  household = true,
  supplier: number | null = null,
): string[] {
  const out: string[] = [];
  if (f.mode) out.push(`m.mode = ${p.add(f.mode)}`);
  if (f.relay) out.push(`m.relay = ${p.add(f.relay)}`);
  if (f.tariffId !== undefined) out.push(`${CURRENT_TARIFF} = ${p.add(f.tariffId)}`);
  if (f.firmware) out.push(`m.firmware_version = ${p.add(f.firmware)}`);
  if (f.lastSeenBefore) out.push(`${LAST_SEEN} < ${p.add(f.lastSeenBefore)}::timestamptz`);
  if (f.staleHours !== undefined)
    out.push(
      `${LAST_SEEN} < ${p.add(new Date(nowMs - f.staleHours * 3_600_000).toISOString())}::timestamptz`,
    );
  if (f.openCase) out.push(f.openCase === 'true' ? OPEN_CASE : `NOT (${OPEN_CASE})`);
  if (f.veeFindings) out.push(f.veeFindings === 'true' ? REVIEW : `NOT (${REVIEW})`);
  if (f.vulnerable) {
    if (household) out.push(`coalesce(c.vulnerable, false) = ${p.add(f.vulnerable === 'true')}`);
    else
      out.push(
        f.vulnerable === 'true'
          ? // The vulnerable households' meters collected first (a few per cent of a fleet), then
            // fetched by primary key, as a search's hits are: no walk, wherever they sit in the order.
            `m.id = ANY (ARRAY(SELECT vm.id FROM (SELECT va.id FROM ${vulnerableAccounts(p, supplier)}) va
                                CROSS JOIN LATERAL (SELECT vm.id FROM meters vm WHERE vm.account_id = va.id OFFSET 0) vm))`
          : `(m.account_id IS NULL OR m.account_id NOT IN (SELECT va.id FROM ${vulnerableAccounts(p, supplier)}))`,
      );
  }
  return out;
}

const LEFT_HOUSEHOLD = `LEFT JOIN accounts a ON a.id = m.account_id
  LEFT JOIN consumers c ON c.id = a.consumer_id`;

interface Cursor {
  sort: FleetSort;
  dir: 'asc' | 'desc';
  key: string;
  serial: string;
}

export function encodeFleetCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify([c.sort, c.dir, c.key, c.serial]), 'utf8').toString('base64url');
}

export function decodeFleetCursor(
  s: string | undefined,
  sort: FleetSort,
  dir: 'asc' | 'desc',
): Cursor | null {
  if (s === undefined) return null;
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
  } catch {
    v = null;
  }
  // A cursor is only valid for the sort it was made for: the key means nothing under another.
  if (
    !Array.isArray(v) ||
    v.length !== 4 ||
    v[0] !== sort ||
    v[1] !== dir ||
    typeof v[2] !== 'string' ||
    typeof v[3] !== 'string' ||
    v[2].length > 300 ||
    v[3].length > 64
  )
    throw new AppError('VALIDATION', 'query.cursor: not a cursor from this API for this sort', [
      { path: 'query.cursor', message: 'not a cursor from this API for this sort' },
    ]);
  return { sort, dir, key: v[2], serial: v[3] };
}

interface PageRow {
  id: number;
  sort_key: string;
  serial: string;
  name: string | null;
  login_id: string | null;
  postcode: string | null;
  mode: FleetItem['mode'];
  relay: FleetItem['relay'];
  tariff_id: number | null;
  tariff_name: string | null;
  firmware_version: string | null;
  last_seen_at: Date | null;
  credit_minor: string | null;
  vulnerable: boolean | null;
  open_case: boolean;
  review_findings: number;
}

export interface FleetPage {
  items: FleetItem[];
  nextCursor: string | null;
}

/** One page of the fleet in the chosen order, after `cursor`. */
export async function fleetPage(
  q: Q,
  actor: Actor,
  f: FleetFilter,
  page: { limit: number; cursor: Cursor | null },
  nowMs = Date.now(),
): Promise<FleetPage> {
  const p = new Params();
  const key = SORT_KEY[f.sort];
  // A household order walks the households, so it tests c.vulnerable where it is; a meter
  // order (serial, last seen, credit) uses the household-free form (see filterConditions).
  const conds = [...baseConditions(actor, f, p), ...filterConditions(f, p, nowMs, key.household, searchSupplier(actor))];
  const desc = f.dir === 'desc';
  const ord = desc ? 'DESC' : 'ASC';
  const cmp = desc ? '<' : '>';
  const n = p.add(page.limit + 1);

  // After the cursor: (key, serial) beyond the last row's. Written as key >= v AND (...) so
  // the key's index bounds the walk.
  const after = (expr: string): string => {
    if (!page.cursor) return 'TRUE';
    const v = `${p.add(page.cursor.key)}::${key.cast}`;
    const s = p.add(page.cursor.serial);
    return `${expr} ${cmp}= ${v} AND (${expr} ${cmp} ${v} OR m.serial ${cmp} ${s})`;
  };

  let inner: string;
  if (key.household) {
    // Meters of households, walked from the consumers index (the supplier's own households
    // first: the index leads with the supplier); plus meters on no account ('' key).
    const where = conds.join(' AND ');
    const sup = searchSupplier(actor);
    const ownHouseholds = sup === null ? '' : ` AND c.supplier_id = ${p.add(sup)}`;
    inner = `(SELECT m.id, (${key.expr})::text AS sort_key, m.serial FROM consumers c
               JOIN accounts a ON a.consumer_id = c.id JOIN meters m ON m.account_id = a.id
              WHERE ${where}${ownHouseholds} AND ${after(key.expr)}
              ORDER BY ${key.expr} ${ord}, m.serial ${ord} LIMIT ${n})
             UNION ALL
             (SELECT m.id, ''::text AS sort_key, m.serial FROM meters m
               LEFT JOIN accounts a ON FALSE LEFT JOIN consumers c ON FALSE
              WHERE m.account_id IS NULL AND ${where} AND ${after(`''::text COLLATE "C"`)}
              ORDER BY m.serial ${ord} LIMIT ${n})`;
  } else {
    inner = `SELECT m.id, (${key.expr})::text AS sort_key, m.serial FROM meters m ${LEFT_HOUSEHOLD}
              WHERE ${conds.join(' AND ')} AND ${after(key.expr)}
              ORDER BY ${key.expr} ${ord}, m.serial ${ord} LIMIT ${n}`;
  }
  const outerKey = key.household ? 'pg.sort_key COLLATE "C"' : `pg.sort_key::${key.cast}`;
  const { rows } = await q.query<PageRow>(
    `SELECT pg.id, pg.sort_key, pg.serial, c.name, u.login_id, c.postcode, m.mode, m.relay,
            t.id AS tariff_id, t.name AS tariff_name, m.firmware_version, m.last_seen_at,
            m.credit_minor::text AS credit_minor, c.vulnerable,
            EXISTS (SELECT 1 FROM tamper_cases tc WHERE tc.meter_id = m.id AND tc.status <> 'resolved') AS open_case,
            (SELECT count(*)::int FROM vee_issues v WHERE v.meter_id = m.id AND v.needs_review) AS review_findings
       FROM (${inner}) pg
       JOIN meters m ON m.id = pg.id
       ${LEFT_HOUSEHOLD}
       LEFT JOIN users u ON u.id = c.user_id
       LEFT JOIN tariffs t ON t.id = ${CURRENT_TARIFF}
      ORDER BY ${outerKey} ${ord}, pg.serial ${ord}
      LIMIT ${n}`,
    p.values,
  );
  const more = rows.length > page.limit;
  const items = more ? rows.slice(0, page.limit) : rows;
  const last = items[items.length - 1];
  return {
    items: items.map(presentRow),
    nextCursor:
      more && last
        ? encodeFleetCursor({ sort: f.sort, dir: f.dir, key: last.sort_key, serial: last.serial })
        : null,
  };
}

function presentRow(r: PageRow): FleetItem {
  return {
    serial: r.serial,
    consumer: r.name === null ? null : { name: r.name, consumerId: r.login_id },
    postcode: r.postcode,
    mode: r.mode,
    relay: r.relay,
    tariff: r.tariff_id === null ? null : { id: r.tariff_id, name: r.tariff_name ?? '' },
    firmwareVersion: r.firmware_version,
    lastSeenAt: r.last_seen_at ? r.last_seen_at.toISOString() : null,
    creditMinor: r.credit_minor === null ? null : Number(r.credit_minor),
    vulnerable: r.vulnerable ?? false,
    openCase: r.open_case,
    reviewFindings: r.review_findings,
  };
}

/**
 * How many meters match each filter value within the search (scope + search, no filters),
 * in one pass over the matching meters.
 */
export async function fleetCounts(
  q: Q,
  actor: Actor,
  f: FleetFilter,
  nowMs = Date.now(),
): Promise<FleetCounts> {
  const p = new Params();
  const conds = baseConditions(actor, f, p);
  const stale = FLEET_STALE_HOURS.map(
    (h) =>
      `count(*) FILTER (WHERE last_seen < ${p.add(new Date(nowMs - h * 3_600_000).toISOString())}::timestamptz)::int`,
  );
  // Vulnerable is the one count that needs the household. Over a few meters, join them to
  // their households; over many (a common name, no search), look the vulnerable accounts up
  // once as a hashed set instead: joining 10,000 meters to accounts and consumers was half
  // the time of their counts (docs/performance.md).
  const few = f.hits != null && f.hits.length <= FEW_HITS;
  const vulnerable = few
    ? 'coalesce(c.vulnerable, false)'
    : `m.account_id IN (SELECT va.id FROM ${vulnerableAccounts(p, searchSupplier(actor))})`;
  const { rows } = await q.query<{ k: string; v: string | null; name: string | null; n: number[] }>(
    `WITH base AS MATERIALIZED (
       SELECT m.mode, m.relay, m.firmware_version, ${LAST_SEEN} AS last_seen, ${vulnerable} AS vulnerable,
              ${OPEN_CASE} AS open_case, ${REVIEW} AS review, ${CURRENT_TARIFF} AS tariff_id
         FROM meters m ${few ? LEFT_HOUSEHOLD : ''}
        WHERE ${conds.join(' AND ')})
     SELECT 'all' AS k, NULL AS v, NULL AS name, ARRAY[
              count(*)::int,
              count(*) FILTER (WHERE mode = 'credit')::int, count(*) FILTER (WHERE mode = 'prepayment')::int,
              count(*) FILTER (WHERE relay = 'connected')::int, count(*) FILTER (WHERE relay = 'disconnected')::int,
              count(*) FILTER (WHERE relay = 'armed')::int,
              count(*) FILTER (WHERE open_case)::int, count(*) FILTER (WHERE review)::int,
              count(*) FILTER (WHERE vulnerable)::int, ${stale.join(', ')}] AS n
       FROM base
     UNION ALL
     SELECT 'tariff', b.tariff_id::text, t.name, ARRAY[count(*)::int] FROM base b JOIN tariffs t ON t.id = b.tariff_id
      GROUP BY b.tariff_id, t.name
     UNION ALL
     SELECT 'fw', firmware_version, NULL, ARRAY[count(*)::int] FROM base WHERE firmware_version IS NOT NULL
      GROUP BY firmware_version`,
    p.values,
  );
  const all = rows.find((r) => r.k === 'all')!.n;
  const byCount = <T extends { count: number }>(a: T[]): T[] => a.sort((x, y) => y.count - x.count);
  return {
    all: all[0]!,
    mode: { credit: all[1]!, prepayment: all[2]! },
    relay: { connected: all[3]!, disconnected: all[4]!, armed: all[5]! },
    openCase: all[6]!,
    veeFindings: all[7]!,
    vulnerable: all[8]!,
    stale: FLEET_STALE_HOURS.map((hours, i) => ({ hours, count: all[9 + i]! })),
    tariffs: byCount(
      rows.filter((r) => r.k === 'tariff').map((r) => ({ id: Number(r.v), name: r.name!, count: r.n[0]! })),
    ),
    firmware: byCount(rows.filter((r) => r.k === 'fw').map((r) => ({ version: r.v!, count: r.n[0]! }))),
    asOf: new Date(nowMs).toISOString(),
  };
}

/** Meters matching the search and every filter. */
export async function fleetTotal(q: Q, actor: Actor, f: FleetFilter, nowMs = Date.now()): Promise<number> {
  const p = new Params();
  // The household-free form of every filter: no join of each meter to its household.
  const conds = [...baseConditions(actor, f, p), ...filterConditions(f, p, nowMs, false, searchSupplier(actor))];
  const { rows } = await q.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM meters m WHERE ${conds.join(' AND ')}`,
    p.values,
  );
  return rows[0]!.n;
}

/**
 * Counts and totals are the expensive part of a page with no search (a pass over the whole
 * fleet, ~0.3-1 s at 100,000 meters), and fifty people paging through the same fleet ask the
 * same question. So each answer is kept per (scope, search, filters): fresh for `freshMs`,
 * then served as it is while one refresh runs behind it (so no request waits for the pass
 * once the answer exists), and dropped after `maxAgeMs`. `asOf` tells the reader its age.
 */
export class FleetCountCache {
  private readonly entries = new Map<string, { at: number; value: Promise<unknown>; refreshing: boolean }>();
  constructor(
    private readonly freshMs = 10_000,
    private readonly maxAgeMs = 60_000,
    private readonly max = 1000,
  ) {}

  get<T>(key: string, nowMs: number, load: () => Promise<T>): Promise<T> {
    const hit = this.entries.get(key);
    if (hit && nowMs - hit.at < this.freshMs) return hit.value as Promise<T>;
    if (hit && nowMs - hit.at < this.maxAgeMs) {
      if (!hit.refreshing) {
        hit.refreshing = true;
        load().then(
          (v) => this.entries.set(key, { at: Date.now(), value: Promise.resolve(v), refreshing: false }),
          () => (hit.refreshing = false),
        );
      }
      return hit.value as Promise<T>;
    }
    // Concurrent askers of the same key share one query; a failure is not kept.
    const value = load();
    value.catch(() => this.entries.delete(key));
    if (this.entries.size >= this.max) {
      for (const [k, e] of this.entries) if (nowMs - e.at >= this.maxAgeMs) this.entries.delete(k);
      if (this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value!);
    }
    this.entries.set(key, { at: nowMs, value, refreshing: false });
    return value;
  }
}

/** Does the filter set narrow the search at all? (If not, the total is the counts' `all`.) */
export function hasFilters(f: FleetFilter): boolean {
  return [
    f.mode,
    f.relay,
    f.tariffId,
    f.firmware,
    f.lastSeenBefore,
    f.staleHours,
    f.openCase,
    f.veeFindings,
    f.vulnerable,
  ].some((v) => v !== undefined);
}

/** The cache key of an actor's view: scope (role, organisation) plus the given parts. */
export function scopeKey(actor: Actor, ...parts: unknown[]): string {
  return JSON.stringify([actor.role, actor.orgId, ...parts]);
}
