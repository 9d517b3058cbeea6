import type { LedgerKind } from '@kilowire/contract/enums';
import type { PoolClient, Q } from '../db/pool.ts';

/**
 * The double-entry ledger (migration 004). Every money fact about an account — a bill, a
 * payment, a top-up, a refund, a note, an adjustment — is one transaction whose lines sum to
 * zero; the database refuses an unbalanced transaction and any UPDATE or DELETE. A
 * customer's balance is the sum of its `customer` lines: positive = owes, negative = in credit.
 */
export { LEDGER_KINDS, type LedgerKind } from '@kilowire/contract/enums';
export const LEDGER_BOOKS = ['customer', 'energy', 'standing', 'vat', 'cash', 'adjustment'] as const;
export type LedgerBook = (typeof LEDGER_BOOKS)[number];

export interface LedgerLine {
  book: LedgerBook;
  /** Debit positive, credit negative; never 0. */
  amountMinor: number;
}

export interface NewTransaction {
  accountId: number;
  kind: LedgerKind;
  /** What it records, unique ('bill:42', 'topup:<uuid>'): posting the same ref again is a no-op. */
  ref: string;
  memo: string;
  createdBy?: number | null;
  /** Zero lines are dropped; the rest must sum to zero. `customer` lines belong to `accountId`. */
  lines: LedgerLine[];
}

export interface Posted {
  txnId: number;
  /** False when a transaction with this ref already existed (nothing was written). */
  created: boolean;
}

/**
 * Post one transaction in the caller's database transaction. Idempotent by `ref`. Throws
 * before touching the database when the lines do not balance (the trigger would refuse it).
 */
export async function postTransaction(c: PoolClient, t: NewTransaction): Promise<Posted> {
  const lines = t.lines.filter((l) => l.amountMinor !== 0);
  for (const l of lines) {
    if (!Number.isSafeInteger(l.amountMinor))
      throw new Error(`ledger amount ${l.amountMinor} is not an integer`);
  }
  const sum = lines.reduce((s, l) => s + l.amountMinor, 0);
  if (sum !== 0) throw new Error(`ledger transaction ${t.ref} does not balance (${sum})`);
  if (lines.length === 0) throw new Error(`ledger transaction ${t.ref} has no lines`);
  const ins = await c.query<{ id: string }>(
    `INSERT INTO ledger_transactions (account_id, kind, ref, memo, created_by)
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (ref) DO NOTHING RETURNING id`,
    [t.accountId, t.kind, t.ref, t.memo, t.createdBy ?? null],
  );
  if (ins.rows.length === 0) {
    const { rows } = await c.query<{ id: string }>('SELECT id FROM ledger_transactions WHERE ref = $1', [
      t.ref,
    ]);
    return { txnId: Number(rows[0]!.id), created: false };
  }
  const txnId = Number(ins.rows[0]!.id);
  await c.query(
    `INSERT INTO ledger_entries (txn_id, book, account_id, amount_minor)
     SELECT $1, l.book, CASE WHEN l.book = 'customer' THEN $2::bigint END, l.amount
       FROM unnest($3::text[], $4::bigint[]) AS l(book, amount)`,
    [txnId, t.accountId, lines.map((l) => l.book), lines.map((l) => l.amountMinor)],
  );
  return { txnId, created: true };
}

/** The account's balance: the sum of its customer lines (positive = owes). */
export async function accountBalance(q: Q, accountId: number): Promise<number> {
  const { rows } = await q.query<{ b: string }>(
    `SELECT coalesce(sum(amount_minor), 0)::bigint AS b FROM ledger_entries WHERE account_id = $1`,
    [accountId],
  );
  return Number(rows[0]!.b);
}

/** Balances of many accounts at once (accounts without entries are 0). */
export async function accountBalances(q: Q, accountIds: readonly number[]): Promise<Map<number, number>> {
  const { rows } = await q.query<{ account_id: string; b: string }>(
    `SELECT account_id, sum(amount_minor)::bigint AS b FROM ledger_entries
      WHERE account_id = ANY($1::bigint[]) GROUP BY account_id`,
    [accountIds],
  );
  const out = new Map<number, number>(accountIds.map((id) => [id, 0]));
  for (const r of rows) out.set(Number(r.account_id), Number(r.b));
  return out;
}

export interface LedgerRow {
  txnId: number;
  kind: LedgerKind;
  ref: string;
  memo: string;
  at: string;
  /** This transaction's effect on the customer's balance (positive = owes more). */
  amountMinor: number;
  /** Balance after this transaction. */
  balanceMinor: number;
}

/** An account's transactions, newest first, with the running balance after each. */
export async function ledgerRows(
  q: Q,
  accountId: number,
  limit = 100,
  beforeTxnId?: number,
): Promise<LedgerRow[]> {
  const { rows } = await q.query<{
    id: string;
    kind: LedgerKind;
    ref: string;
    memo: string;
    created_at: Date;
    amount: string;
    balance: string;
  }>(
    `WITH per_txn AS (
       SELECT t.id, t.kind, t.ref, t.memo, t.created_at, sum(e.amount_minor)::bigint AS amount
         FROM ledger_transactions t JOIN ledger_entries e ON e.txn_id = t.id AND e.account_id = $1
        WHERE t.account_id = $1
        GROUP BY t.id)
     SELECT * FROM (
       SELECT id, kind, ref, memo, created_at, amount,
              sum(amount) OVER (ORDER BY id ROWS UNBOUNDED PRECEDING)::bigint AS balance
         FROM per_txn) x
      WHERE $3::bigint IS NULL OR id < $3
      ORDER BY id DESC LIMIT $2`,
    [accountId, limit, beforeTxnId ?? null],
  );
  return rows.map((r) => ({
    txnId: Number(r.id),
    kind: r.kind,
    ref: r.ref,
    memo: r.memo,
    at: r.created_at.toISOString(),
    amountMinor: Number(r.amount),
    balanceMinor: Number(r.balance),
  }));
}
