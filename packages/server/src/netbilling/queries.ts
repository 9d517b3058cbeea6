import type { Q } from '../db/pool.ts';
import type { Actor } from '../policies.ts';
import { scopeSql } from '../policies.ts';
import type { InvoiceLine, LineKind } from './invoices.ts';

/**
 * Reading network invoices, always through the policies' `network_invoices` scope: an
 * operator its own, a supplier those it owes, an admin all. Whether an invoice is paid is not
 * stored (rows never change): it is paid once payments recorded against it cover it and its
 * notes.
 */
export interface InvoiceRow {
  id: number;
  operatorId: number;
  operator: string;
  supplierId: number;
  supplier: string;
  month: string;
  kind: 'invoice' | 'credit_note' | 'debit_note';
  correctsId: number | null;
  currency: string;
  meterDays: number;
  wh: number;
  netMinor: number;
  vatMinor: number;
  grossMinor: number;
  /** Invoices: gross of the invoice and its notes, less payments recorded against it. Notes: null. */
  outstandingMinor: number | null;
  status: 'issued' | 'paid';
  trigger: 'schedule' | 'staff';
  issuedAt: Date;
}

interface Raw {
  id: string;
  operator_id: number;
  operator: string;
  supplier_id: number;
  supplier: string;
  month: string;
  kind: InvoiceRow['kind'];
  corrects_id: string | null;
  currency: string;
  meter_days: number;
  wh: string;
  net_minor: string;
  vat_minor: string;
  gross_minor: string;
  outstanding: string | null;
  trigger: InvoiceRow['trigger'];
  issued_at: Date;
}

const SELECT = `SELECT i.id, i.operator_id, op.name AS operator, i.supplier_id, su.name AS supplier,
       to_char(i.month, 'YYYY-MM') AS month, i.kind, i.corrects_id, i.currency, i.meter_days, i.wh,
       i.net_minor, i.vat_minor, i.gross_minor, i.trigger, i.issued_at,
       CASE WHEN i.kind = 'invoice' THEN
         (SELECT sum(n.gross_minor) FROM network_invoices n WHERE n.id = i.id OR n.corrects_id = i.id)
         + coalesce((SELECT sum(e.amount_minor) FROM network_ledger_transactions t
                       JOIN network_ledger_entries e ON e.txn_id = t.id AND e.book = 'supplier'
                      WHERE t.invoice_id = i.id AND t.kind = 'payment'), 0)
       END::bigint AS outstanding
  FROM network_invoices i JOIN organisations op ON op.id = i.operator_id JOIN organisations su ON su.id = i.supplier_id`;

function present(r: Raw): InvoiceRow {
  const outstanding = r.outstanding === null ? null : Number(r.outstanding);
  return {
    id: Number(r.id),
    operatorId: r.operator_id,
    operator: r.operator,
    supplierId: r.supplier_id,
    supplier: r.supplier,
    month: r.month,
    kind: r.kind,
    correctsId: r.corrects_id === null ? null : Number(r.corrects_id),
    currency: r.currency.trim(),
    meterDays: r.meter_days,
    wh: Number(r.wh),
    netMinor: Number(r.net_minor),
    vatMinor: Number(r.vat_minor),
    grossMinor: Number(r.gross_minor),
    outstandingMinor: outstanding,
    status: outstanding !== null && outstanding <= 0 && Number(r.gross_minor) > 0 ? 'paid' : 'issued',
    trigger: r.trigger,
    issuedAt: r.issued_at,
  };
}

export interface InvoiceFilter {
  month?: string | undefined;
  supplierId?: number | undefined;
  limit: number;
  /** Invoices with a smaller id (paging, newest first). */
  before?: number | undefined;
}

export async function listInvoices(q: Q, actor: Actor, f: InvoiceFilter): Promise<InvoiceRow[]> {
  const s = scopeSql(actor, 'network_invoices', 'i', 5);
  const { rows } = await q.query<Raw>(
    `${SELECT}
      WHERE ($1::date IS NULL OR i.month = $1) AND ($2::int IS NULL OR i.supplier_id = $2)
        AND ($3::bigint IS NULL OR i.id < $3) AND ${s.sql}
      ORDER BY i.month DESC, i.id DESC LIMIT $4`,
    [
      f.month ? `${f.month.slice(0, 7)}-01` : null,
      f.supplierId ?? null,
      f.before ?? null,
      f.limit,
      ...s.params,
    ],
  );
  return rows.map(present);
}

/** One invoice or note in the actor's scope, or null (the route says 404). */
export async function invoiceInScope(q: Q, actor: Actor, id: number): Promise<InvoiceRow | null> {
  const s = scopeSql(actor, 'network_invoices', 'i', 2);
  const { rows } = await q.query<Raw>(`${SELECT} WHERE i.id = $1 AND ${s.sql}`, [id, ...s.params]);
  return rows[0] ? present(rows[0]) : null;
}

export async function invoiceLines(q: Q, invoiceId: number): Promise<InvoiceLine[]> {
  const { rows } = await q.query<{
    kind: LineKind;
    area_id: string | null;
    tariff_code: string | null;
    version: number | null;
    from_day: string | null;
    to_day: string | null;
    band: string | null;
    band_name: string | null;
    wh: string | null;
    meter_days: number | null;
    rate_milli: number | null;
    vat_bp: number | null;
    net_minor: string | null;
    amount_minor: string;
  }>(
    `SELECT kind, area_id, tariff_code, version, to_char(from_day, 'YYYY-MM-DD') AS from_day,
            to_char(to_day, 'YYYY-MM-DD') AS to_day, band, band_name, wh, meter_days, rate_milli, vat_bp,
            net_minor, amount_minor
       FROM network_invoice_lines WHERE invoice_id = $1 ORDER BY line_no`,
    [invoiceId],
  );
  return rows.map((r) => ({
    kind: r.kind,
    areaId: r.area_id,
    tariffCode: r.tariff_code,
    version: r.version,
    fromDay: r.from_day,
    toDay: r.to_day,
    band: r.band,
    bandName: r.band_name,
    wh: r.wh === null ? null : Number(r.wh),
    meterDays: r.meter_days,
    rateMilli: r.rate_milli,
    vatBp: r.vat_bp,
    netMinor: r.net_minor === null ? null : Number(r.net_minor),
    amountMinor: Number(r.amount_minor),
  }));
}
