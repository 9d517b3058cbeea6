import type { PoolClient, Q } from '../db/pool.ts';
import { AppError } from '../errors.ts';

/**
 * The network ledger (migration 016): double entry in minor units between a network operator
 * and the suppliers using its wires, with the household ledger's rules — rows never change,
 * every transaction's lines sum to zero (the database refuses the rest), and a ref names what
 * a transaction records so that posting it twice is a no-op. A supplier's debt to an
 * operator is the sum of its `supplier` lines in that operator's transactions.
 */
export const NETWORK_BOOKS = ['supplier', 'network_revenue', 'vat', 'cash'] as const;
export type NetworkBook = (typeof NETWORK_BOOKS)[number];
export type NetworkTxnKind = 'invoice' | 'credit_note' | 'debit_note' | 'payment';

export interface NetworkTxn {
  operatorId: number;
  supplierId: number;
  kind: NetworkTxnKind;
  ref: string;
  invoiceId: number | null;
  memo: string;
  createdBy: number | null;
  /** Debit positive, credit negative; zero lines are dropped; the rest must sum to zero. */
  lines: { book: NetworkBook; amountMinor: number }[];
}

export async function postNetworkTxn(
  c: PoolClient,
  t: NetworkTxn,
): Promise<{ txnId: number; created: boolean }> {
  const lines = t.lines.filter((l) => l.amountMinor !== 0);
  for (const l of lines)
    if (!Number.isSafeInteger(l.amountMinor))
      throw new Error(`ledger amount ${l.amountMinor} is not an integer`);
  if (!lines.length) throw new Error(`network ledger transaction ${t.ref} has no lines`);
  const sum = lines.reduce((s, l) => s + l.amountMinor, 0);
  if (sum !== 0) throw new Error(`network ledger transaction ${t.ref} does not balance (${sum})`);
  const ins = await c.query<{ id: string }>(
    `INSERT INTO network_ledger_transactions (operator_id, supplier_id, kind, ref, invoice_id, memo, created_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (ref) DO NOTHING RETURNING id`,
    [t.operatorId, t.supplierId, t.kind, t.ref, t.invoiceId, t.memo, t.createdBy],
  );
  if (!ins.rows[0]) {
    const { rows } = await c.query<{ id: string }>(
      'SELECT id FROM network_ledger_transactions WHERE ref = $1',
      [t.ref],
    );
    return { txnId: Number(rows[0]!.id), created: false };
  }
  const txnId = Number(ins.rows[0].id);
  await c.query(
    `INSERT INTO network_ledger_entries (txn_id, book, supplier_id, amount_minor)
     SELECT $1, l.book, CASE WHEN l.book = 'supplier' THEN $2::int END, l.amount
       FROM unnest($3::text[], $4::bigint[]) AS l(book, amount)`,
    [txnId, t.supplierId, lines.map((l) => l.book), lines.map((l) => l.amountMinor)],
  );
  return { txnId, created: true };
}

export interface SupplierBalance {
  operatorId: number;
  operator: string;
  supplierId: number;
  supplier: string;
  /** Positive: the supplier owes the operator. */
  owedMinor: number;
  invoicedMinor: number;
  paidMinor: number;
}

/**
 * What each supplier owes each operator, limited to one operator and/or one supplier (null:
 * all). Pairs with no transactions are not listed.
 */
export async function networkBalances(
  q: Q,
  operatorId: number | null,
  supplierId: number | null,
): Promise<SupplierBalance[]> {
  const { rows } = await q.query<{
    operator_id: number;
    operator: string;
    supplier_id: number;
    supplier: string;
    owed: string;
    invoiced: string;
    paid: string;
  }>(
    `SELECT t.operator_id, op.name AS operator, t.supplier_id, su.name AS supplier,
            sum(e.amount_minor)::bigint AS owed,
            coalesce(sum(e.amount_minor) FILTER (WHERE t.kind <> 'payment'), 0)::bigint AS invoiced,
            coalesce(-sum(e.amount_minor) FILTER (WHERE t.kind = 'payment'), 0)::bigint AS paid
       FROM network_ledger_transactions t
       JOIN network_ledger_entries e ON e.txn_id = t.id AND e.book = 'supplier'
       JOIN organisations op ON op.id = t.operator_id JOIN organisations su ON su.id = t.supplier_id
      WHERE ($1::int IS NULL OR t.operator_id = $1) AND ($2::int IS NULL OR t.supplier_id = $2)
      GROUP BY t.operator_id, op.name, t.supplier_id, su.name
      ORDER BY op.name, su.name`,
    [operatorId, supplierId],
  );
  return rows.map((r) => ({
    operatorId: r.operator_id,
    operator: r.operator,
    supplierId: r.supplier_id,
    supplier: r.supplier,
    owedMinor: Number(r.owed),
    invoicedMinor: Number(r.invoiced),
    paidMinor: Number(r.paid),
  }));
}

export interface NewPayment {
  supplierId: number;
  amountMinor: number;
  /** The bank's reference: one payment per operator and reference (recording it twice is a no-op). */
  reference: string;
  invoiceId: number | null;
}

/** A supplier's payment received by the operator: cash in, the supplier's debt down. */
export async function recordNetworkPayment(
  c: PoolClient,
  operatorId: number,
  p: NewPayment,
  userId: number | null,
): Promise<{ txnId: number; created: boolean }> {
  const sup = await c.query(`SELECT 1 FROM organisations WHERE id = $1 AND kind = 'supplier'`, [
    p.supplierId,
  ]);
  if (!sup.rows[0]) throw new AppError('NOT_FOUND', 'supplier not found');
  if (p.invoiceId !== null) {
    const inv = await c.query(
      `SELECT 1 FROM network_invoices WHERE id = $1 AND operator_id = $2 AND supplier_id = $3 AND kind = 'invoice'`,
      [p.invoiceId, operatorId, p.supplierId],
    );
    if (!inv.rows[0]) throw new AppError('NOT_FOUND', 'invoice not found');
  }
  const ref = `netpay:${operatorId}:${p.reference}`;
  const r = await postNetworkTxn(c, {
    operatorId,
    supplierId: p.supplierId,
    kind: 'payment',
    ref,
    invoiceId: p.invoiceId,
    memo: `Payment ${p.reference}`,
    createdBy: userId,
    lines: [
      { book: 'cash', amountMinor: p.amountMinor },
      { book: 'supplier', amountMinor: -p.amountMinor },
    ],
  });
  if (!r.created) {
    // The same reference again is the same payment; a different amount or supplier under it is a mistake.
    const { rows } = await c.query<{ supplier_id: number; amount: string }>(
      `SELECT t.supplier_id, -e.amount_minor AS amount FROM network_ledger_transactions t
         JOIN network_ledger_entries e ON e.txn_id = t.id AND e.book = 'supplier' WHERE t.id = $1`,
      [r.txnId],
    );
    const prev = rows[0]!;
    if (prev.supplier_id !== p.supplierId || Number(prev.amount) !== p.amountMinor)
      throw new AppError('CONFLICT', `payment ${p.reference} is already recorded with other figures`);
  }
  return r;
}
