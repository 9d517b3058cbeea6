import { addDays, addMonths, eachDay } from '@kilowire/protocol';
import { withTx, type PoolClient, type Pool, type Q, type Who } from '../db/pool.ts';
import { AppError } from '../errors.ts';
import { microToMinor, milliToMinor, vatOf } from '../money/prices.ts';
import { postNetworkTxn } from './ledger.ts';
import { areaPricing, bandOfSlot, versionOnDay, type NetworkTariffVersion } from './tariffs.ts';

/**
 * Network-use invoices (migration 016). Once a month has been collected (every local day of
 * every area of the operator has a finished collection run), the operator invoices each
 * supplier with meters on its wires that month, from the latest collection version of each
 * (area, day):
 *
 * - energy: each meter-day's 48 local half-hour slots (collection_meter_days.slot_wh) go to
 *   the band of the tariff version in force in the area that local day; one line per area,
 *   tariff version and band: Wh × rate (thousandths of a minor unit per kWh, so Wh × rate is
 *   millionths), rounded once to minor units, half up;
 * - fixed: one line per area and tariff version: meter-days collected × charge per day
 *   (thousandths), rounded once, half up;
 * - VAT: one line per VAT rate on the sum of that rate's rounded lines, rounded once, half up
 *   (the household bills' rules, money/bills.ts).
 *
 * The invoice, its lines and its ledger transaction (supplier +gross, network_revenue −net,
 * vat −VAT; ref `netinv:<id>`) are written in one transaction. Issuing a month again changes
 * nothing when the figures are the same; when a collection was revised since, it issues a
 * credit or debit note for the difference (a new row; invoices never change).
 */

export type LineKind = 'energy' | 'fixed' | 'vat';
export interface InvoiceLine {
  kind: LineKind;
  areaId: string | null;
  tariffCode: string | null;
  version: number | null;
  fromDay: string | null;
  /** Last local day included. */
  toDay: string | null;
  band: string | null;
  bandName: string | null;
  wh: number | null;
  meterDays: number | null;
  rateMilli: number | null;
  vatBp: number | null;
  netMinor: number | null;
  amountMinor: number;
}

export interface InvoiceFigures {
  currency: string;
  meterDays: number;
  wh: number;
  lines: InvoiceLine[];
  netMinor: number;
  vatMinor: number;
  grossMinor: number;
}

/** One supplier's collected data in one area on one local day. */
export interface SupplierAreaDay {
  supplierId: number;
  areaId: string;
  day: string;
  meterDays: number;
  /** 48 sums of the local half-hours. */
  slotWh: number[];
}

function safe(n: number, what: string): number {
  if (!Number.isSafeInteger(n)) throw new Error(`${what} ${n} is out of exact integer range`);
  return n;
}

/**
 * Price one supplier's month (pure: the tests check it against their own sums). `priceOf`
 * gives the tariff version of an area on a day.
 */
export function priceMonth(
  days: readonly SupplierAreaDay[],
  priceOf: (areaId: string, day: string) => NetworkTariffVersion,
): InvoiceFigures {
  interface Acc {
    line: InvoiceLine;
    /** The band's place in its tariff version (lines follow the tariff's order). */
    order?: number;
  }
  const energy = new Map<string, Acc>();
  const fixed = new Map<string, Acc>();
  let currency: string | null = null;
  let meterDays = 0;
  let wh = 0;
  const sorted = [...days].sort((a, b) => a.areaId.localeCompare(b.areaId) || a.day.localeCompare(b.day));
  for (const d of sorted) {
    const v = priceOf(d.areaId, d.day);
    if (currency === null) currency = v.currency;
    else if (currency !== v.currency)
      throw new AppError('CONFLICT', `tariffs in more than one currency (${currency}, ${v.currency})`);
    const span = (l: InvoiceLine) => {
      if (l.fromDay === null || d.day < l.fromDay) l.fromDay = d.day;
      if (l.toDay === null || d.day > l.toDay) l.toDay = d.day;
    };
    const base = { areaId: d.areaId, tariffCode: v.code, version: v.version, vatBp: v.vatBp, netMinor: null };
    const fk = `${d.areaId}|${v.tariffId}|${v.version}`;
    const f = fixed.get(fk) ?? {
      line: {
        kind: 'fixed' as const,
        ...base,
        fromDay: null,
        toDay: null,
        band: null,
        bandName: null,
        wh: null,
        meterDays: 0,
        rateMilli: v.fixedMilliPerDay,
        amountMinor: 0,
      },
    };
    f.line.meterDays! += d.meterDays;
    span(f.line);
    fixed.set(fk, f);
    meterDays += d.meterDays;
    for (let i = 0; i < 48; i++) {
      const slot = d.slotWh[i] ?? 0;
      const b = bandOfSlot(v.bands, d.day, i);
      const ek = `${fk}|${b.code}`;
      let e = energy.get(ek);
      if (!e) {
        e = {
          line: {
            kind: 'energy',
            ...base,
            fromDay: null,
            toDay: null,
            band: b.code,
            bandName: b.name,
            wh: 0,
            meterDays: null,
            rateMilli: b.rateMilli,
            amountMinor: 0,
          },
          order: v.bands.indexOf(b),
        };
        energy.set(ek, e);
      }
      e.line.wh! += slot;
      span(e.line);
      wh += slot;
    }
  }
  // Lines in a stable order: per area and version, energy bands then the fixed charge.
  const lines: InvoiceLine[] = [];
  const netByVat = new Map<number, number>();
  for (const [fk, f] of fixed) {
    const es = [...energy]
      .filter(([k]) => k.startsWith(`${fk}|`))
      .map(([, e]) => e)
      .sort((a, b) => a.order! - b.order!)
      .map((e) => e.line);
    for (const l of [...es, f.line]) {
      l.amountMinor =
        l.kind === 'energy'
          ? microToMinor(safe(l.wh! * l.rateMilli!, 'energy micro-units'))
          : milliToMinor(safe(l.meterDays! * l.rateMilli!, 'fixed milli-units'));
      lines.push(l);
      netByVat.set(l.vatBp!, (netByVat.get(l.vatBp!) ?? 0) + l.amountMinor);
    }
  }
  let netMinor = 0;
  let vatMinor = 0;
  for (const [vatBp, net] of [...netByVat].sort((a, b) => a[0] - b[0])) {
    const amountMinor = vatOf(net, vatBp);
    lines.push({
      kind: 'vat',
      areaId: null,
      tariffCode: null,
      version: null,
      fromDay: null,
      toDay: null,
      band: null,
      bandName: null,
      wh: null,
      meterDays: null,
      rateMilli: null,
      vatBp,
      netMinor: net,
      amountMinor,
    });
    netMinor += net;
    vatMinor += amountMinor;
  }
  return {
    currency: currency ?? 'GBP',
    meterDays,
    wh,
    lines,
    netMinor,
    vatMinor,
    grossMinor: netMinor + vatMinor,
  };
}

export interface MissingDay {
  areaId: string;
  day: string;
}

export interface MonthData {
  month: string;
  areas: string[];
  /** (area, day) pairs without a finished collection run: the month cannot be invoiced yet. */
  missing: MissingDay[];
  /** (area, day) pairs with collected data but no network tariff in force. */
  unpriced: MissingDay[];
  bySupplier: Map<number, InvoiceFigures>;
}

/** The first day of a month given as YYYY-MM or YYYY-MM-DD. */
export function monthStart(month: string): string {
  return `${month.slice(0, 7)}-01`;
}

/**
 * The operator's month as it would be invoiced now: the latest finished collection version
 * of every (area, day), priced. An area counts when it had meters installed during the month
 * or a collection of one of its days (then every day of the month must be collected); an
 * area whose meters all came later does not hold up older months.
 */
export async function monthData(q: Q, operatorId: number, month: string): Promise<MonthData> {
  const from = monthStart(month);
  const to = addMonths(from, 1);
  const days = eachDay(from, addDays(to, -1));
  const areas = await q.query<{ id: string }>(
    `SELECT a.id FROM network_areas a
      WHERE a.operator_id = $1
        AND (EXISTS (SELECT 1 FROM meters m
                      WHERE m.area_id = a.id AND m.created_at < ($3::date::timestamp AT TIME ZONE a.tz)
                        AND (m.decommissioned_at IS NULL OR m.decommissioned_at > ($2::date::timestamp AT TIME ZONE a.tz)))
             OR EXISTS (SELECT 1 FROM collection_runs r WHERE r.area_id = a.id AND r.day >= $2 AND r.day < $3))
      ORDER BY a.id`,
    [operatorId, from, to],
  );
  const areaIds = areas.rows.map((r) => r.id);
  const runs = await q.query<{ id: string; area_id: string; day: string }>(
    `SELECT DISTINCT ON (area_id, day) id, area_id, to_char(day, 'YYYY-MM-DD') AS day
       FROM collection_runs
      WHERE area_id = ANY($1::text[]) AND day >= $2 AND day < $3 AND status = 'done'
      ORDER BY area_id, day, version DESC`,
    [areaIds, from, to],
  );
  const have = new Set(runs.rows.map((r) => `${r.area_id}|${r.day}`));
  const missing: MissingDay[] = [];
  for (const a of areaIds)
    for (const d of days) if (!have.has(`${a}|${d}`)) missing.push({ areaId: a, day: d });
  const runIds = runs.rows.map((r) => r.id);
  const runOf = new Map(runs.rows.map((r) => [r.id, r]));
  // Per run and supplier: meter-days, and the 48 local half-hour sums.
  const agg = await q.query<{ run_id: string; supplier_id: number; meter_days: number; slots: string[] }>(
    `SELECT d.run_id, d.supplier_id, count(*)::int AS meter_days,
            (SELECT array_agg(s ORDER BY i) FROM (
               SELECT i, sum(x.slot_wh[i])::bigint AS s
                 FROM collection_meter_days x, generate_series(1, 48) AS i
                WHERE x.run_id = d.run_id AND x.supplier_id = d.supplier_id GROUP BY i) y) AS slots
       FROM collection_meter_days d WHERE d.run_id = ANY($1::bigint[])
      GROUP BY d.run_id, d.supplier_id`,
    [runIds],
  );
  const pricing = await areaPricing(q, areaIds);
  const bySupplierDays = new Map<number, SupplierAreaDay[]>();
  const unpricedSet = new Set<string>();
  for (const r of agg.rows) {
    const run = runOf.get(r.run_id)!;
    if (!versionOnDay(pricing, run.area_id, run.day)) unpricedSet.add(`${run.area_id}|${run.day}`);
    const list = bySupplierDays.get(r.supplier_id) ?? [];
    list.push({
      supplierId: r.supplier_id,
      areaId: run.area_id,
      day: run.day,
      meterDays: r.meter_days,
      slotWh: r.slots.map(Number),
    });
    bySupplierDays.set(r.supplier_id, list);
  }
  const unpriced = [...unpricedSet].sort().map((k) => {
    const [areaId, day] = k.split('|') as [string, string];
    return { areaId, day };
  });
  const bySupplier = new Map<number, InvoiceFigures>();
  if (!unpriced.length) {
    for (const [supplierId, list] of bySupplierDays)
      bySupplier.set(
        supplierId,
        priceMonth(list, (a, d) => versionOnDay(pricing, a, d)!),
      );
  }
  return { month: from, areas: areaIds, missing, unpriced, bySupplier };
}

function describeDays(list: readonly MissingDay[]): string {
  const shown = list
    .slice(0, 6)
    .map((m) => `${m.areaId} ${m.day}`)
    .join(', ');
  return list.length > 6 ? `${shown} and ${list.length - 6} more` : shown;
}

export interface IssueResult {
  month: string;
  /** Invoices issued now. */
  issued: number[];
  /** Credit and debit notes issued now (a revised collection changed a month invoiced before). */
  notes: number[];
  /** Suppliers whose invoice for the month stands as it was. */
  unchanged: number;
}

export interface IssueOptions {
  who?: Who;
  trigger?: 'schedule' | 'staff';
}

/**
 * Invoice an operator's month (see the top of this file). Refuses (CONFLICT, naming the days)
 * while any (area, day) of the month has no finished collection or no tariff. Safe to call
 * again and concurrently: one transaction, serialised per operator and month by an advisory
 * lock; a month is invoiced once per supplier (unique index), later differences are notes.
 */
export async function issueMonth(
  pool: Pool,
  operatorId: number,
  month: string,
  opts: IssueOptions = {},
): Promise<IssueResult> {
  const from = monthStart(month);
  const who = opts.who ?? { actorId: null };
  return withTx(pool, who, async (t) => {
    // A month of a large area is one pass over ~30 collection runs' rows (48 slots each):
    // longer than an API request's default statement budget.
    await t.c.query("SET LOCAL statement_timeout = '600s'");
    await t.c.query(`SELECT pg_advisory_xact_lock(hashtext('netinv:' || $1::text || ':' || $2::text))`, [
      operatorId,
      from,
    ]);
    const data = await monthData(t.c, operatorId, from);
    if (data.missing.length)
      throw new AppError(
        'CONFLICT',
        `the month is not fully collected yet: ${data.missing.length} area-days missing (${describeDays(data.missing)})`,
      );
    if (data.unpriced.length)
      throw new AppError(
        'CONFLICT',
        `no network tariff for ${data.unpriced.length} area-days (${describeDays(data.unpriced)})`,
      );
    const result: IssueResult = { month: from, issued: [], notes: [], unchanged: 0 };
    const prior = await t.c.query<{
      supplier_id: number;
      invoice_id: string;
      net: string;
      vat: string;
      gross: string;
    }>(
      `SELECT supplier_id, min(id) FILTER (WHERE kind = 'invoice') AS invoice_id,
              sum(net_minor)::bigint AS net, sum(vat_minor)::bigint AS vat, sum(gross_minor)::bigint AS gross
         FROM network_invoices WHERE operator_id = $1 AND month = $2 GROUP BY supplier_id`,
      [operatorId, from],
    );
    const priorOf = new Map(prior.rows.map((r) => [r.supplier_id, r]));
    const suppliers = [...new Set([...data.bySupplier.keys(), ...priorOf.keys()])].sort((a, b) => a - b);
    const userId = who.actorId;
    const trigger = opts.trigger ?? 'staff';
    for (const supplierId of suppliers) {
      const fig = data.bySupplier.get(supplierId) ?? {
        currency: 'GBP',
        meterDays: 0,
        wh: 0,
        lines: [],
        netMinor: 0,
        vatMinor: 0,
        grossMinor: 0,
      };
      const p = priorOf.get(supplierId);
      if (!p) {
        const id = await insertInvoice(
          t.c,
          operatorId,
          supplierId,
          from,
          'invoice',
          null,
          fig,
          fig,
          trigger,
          userId,
        );
        result.issued.push(id);
        continue;
      }
      const diff = {
        net: fig.netMinor - Number(p.net),
        vat: fig.vatMinor - Number(p.vat),
        gross: fig.grossMinor - Number(p.gross),
      };
      if (diff.net === 0 && diff.vat === 0) {
        result.unchanged++;
        continue;
      }
      const kind = diff.gross < 0 ? 'credit_note' : 'debit_note';
      const id = await insertInvoice(
        t.c,
        operatorId,
        supplierId,
        from,
        kind,
        Number(p.invoice_id),
        { ...fig, netMinor: diff.net, vatMinor: diff.vat, grossMinor: diff.gross },
        fig,
        trigger,
        userId,
      );
      result.notes.push(id);
    }
    await t.audit('network_invoice.issue', `${operatorId}:${from}`, {
      operatorId,
      month: from,
      trigger,
      issued: result.issued,
      notes: result.notes,
      unchanged: result.unchanged,
    });
    return result;
  });
}

async function insertInvoice(
  c: PoolClient,
  operatorId: number,
  supplierId: number,
  month: string,
  kind: 'invoice' | 'credit_note' | 'debit_note',
  correctsId: number | null,
  totals: Pick<InvoiceFigures, 'netMinor' | 'vatMinor' | 'grossMinor'>,
  fig: InvoiceFigures,
  trigger: 'schedule' | 'staff',
  userId: number | null,
): Promise<number> {
  const { rows } = await c.query<{ id: string }>(
    `INSERT INTO network_invoices (operator_id, supplier_id, month, kind, corrects_id, currency, meter_days, wh,
                                   net_minor, vat_minor, gross_minor, trigger, issued_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id`,
    [
      operatorId,
      supplierId,
      month,
      kind,
      correctsId,
      fig.currency,
      fig.meterDays,
      fig.wh,
      totals.netMinor,
      totals.vatMinor,
      totals.grossMinor,
      trigger,
      userId,
    ],
  );
  const id = Number(rows[0]!.id);
  const L = fig.lines;
  if (L.length)
    await c.query(
      `INSERT INTO network_invoice_lines (invoice_id, line_no, kind, area_id, tariff_code, version, from_day, to_day,
                                          band, band_name, wh, meter_days, rate_milli, vat_bp, net_minor, amount_minor)
       SELECT $1, n, kind, area, code, ver, fd, td, band, bname, wh, md, rate, vat, net, amt
         FROM unnest($2::text[], $3::text[], $4::text[], $5::int[], $6::date[], $7::date[], $8::text[], $9::text[],
                     $10::bigint[], $11::int[], $12::int[], $13::int[], $14::bigint[], $15::bigint[])
              WITH ORDINALITY AS l(kind, area, code, ver, fd, td, band, bname, wh, md, rate, vat, net, amt, n)`,
      [
        id,
        L.map((l) => l.kind),
        L.map((l) => l.areaId),
        L.map((l) => l.tariffCode),
        L.map((l) => l.version),
        L.map((l) => l.fromDay),
        L.map((l) => l.toDay),
        L.map((l) => l.band),
        L.map((l) => l.bandName),
        L.map((l) => l.wh),
        L.map((l) => l.meterDays),
        L.map((l) => l.rateMilli),
        L.map((l) => l.vatBp),
        L.map((l) => l.netMinor),
        L.map((l) => l.amountMinor),
      ],
    );
  const memo =
    kind === 'invoice'
      ? `Network use ${month.slice(0, 7)} (invoice ${id})`
      : `${kind === 'credit_note' ? 'Credit' : 'Debit'} note ${id} for network use ${month.slice(0, 7)}`;
  // An invoice of nothing (a supplier with only zero-rated use) has no ledger effect.
  if (totals.grossMinor === 0 && totals.netMinor === 0) return id;
  await postNetworkTxn(c, {
    operatorId,
    supplierId,
    kind,
    ref: `netinv:${id}`,
    invoiceId: id,
    memo,
    createdBy: userId,
    lines: [
      { book: 'supplier', amountMinor: totals.grossMinor },
      { book: 'network_revenue', amountMinor: -totals.netMinor },
      { book: 'vat', amountMinor: -totals.vatMinor },
    ],
  });
  return id;
}
