import type { Account, Bill } from '@kilowire/contract';
import type { Q } from '../db/pool.ts';
import { scopeSql, type Actor } from '../policies.ts';
import { accountBalances } from './ledger.ts';

/**
 * Read models of accounts and bills, always limited by the actor's scope (policies.ts): a
 * row outside it is not found, exactly as if it did not exist.
 */

interface AccountRow {
  id: string;
  customer: string;
  login_id: string;
  supplier_id: number;
  supplier_name: string;
  mode: Account['mode'];
  billing_cycle_day: number;
  currency: string;
  serial: string | null;
}

const ACCOUNT_SELECT = `SELECT a.id, cu.name AS customer, u.login_id, a.supplier_id, o.name AS supplier_name, a.mode,
       a.billing_cycle_day, a.currency,
       (SELECT m.serial FROM meters m WHERE m.account_id = a.id ORDER BY m.id LIMIT 1) AS serial
  FROM accounts a JOIN consumers cu ON cu.id = a.consumer_id JOIN users u ON u.id = cu.user_id
  JOIN organisations o ON o.id = a.supplier_id`;

async function withBalances(q: Q, rows: AccountRow[]): Promise<Account[]> {
  const balances = await accountBalances(
    q,
    rows.map((r) => Number(r.id)),
  );
  return rows.map((r) => ({
    id: Number(r.id),
    customer: r.customer,
    consumerId: r.login_id,
    supplier: { id: r.supplier_id, name: r.supplier_name },
    mode: r.mode,
    billingCycleDay: r.billing_cycle_day,
    currency: r.currency.trim(),
    meterSerial: r.serial,
    balanceMinor: balances.get(Number(r.id)) ?? 0,
  }));
}

/** Accounts in scope, by id, a page after `afterId`; `search` matches name, consumer ID or serial. */
export async function listAccounts(
  q: Q,
  actor: Actor,
  o: { search?: string | undefined; mode?: string | undefined; limit: number; afterId: number | null },
): Promise<{ items: Account[]; nextAfter: number | null }> {
  const scope = scopeSql(actor, 'accounts', 'a', 5);
  const { rows } = await q.query<AccountRow>(
    `${ACCOUNT_SELECT}
      WHERE (${scope.sql}) AND ($1::bigint IS NULL OR a.id > $1) AND ($2::text IS NULL OR a.mode = $2)
        AND ($3::text IS NULL OR cu.name ILIKE '%' || $3 || '%' OR u.login_id ILIKE $3 || '%'
             OR EXISTS (SELECT 1 FROM meters m WHERE m.account_id = a.id AND m.serial ILIKE $3 || '%'))
      ORDER BY a.id LIMIT $4`,
    [
      o.afterId,
      o.mode ?? null,
      o.search ? o.search.replace(/[\\%_]/g, (c) => `\\${c}`) : null,
      o.limit + 1,
      ...scope.params,
    ],
  );
  const more = rows.length > o.limit;
  const page = rows.slice(0, o.limit);
  return { items: await withBalances(q, page), nextAfter: more ? Number(page[page.length - 1]!.id) : null };
}

/** One account in scope, or null (the route answers 404). */
export async function accountInScope(q: Q, actor: Actor, id: number): Promise<Account | null> {
  const scope = scopeSql(actor, 'accounts', 'a', 2);
  const { rows } = await q.query<AccountRow>(`${ACCOUNT_SELECT} WHERE a.id = $1 AND (${scope.sql})`, [
    id,
    ...scope.params,
  ]);
  return rows[0] ? (await withBalances(q, rows))[0]! : null;
}

interface BillRow {
  id: string;
  account_id: string;
  customer: string;
  serial: string;
  period_start: string;
  period_end: string;
  currency: string;
  energy_minor: string;
  standing_minor: string;
  vat_minor: string;
  total_minor: string;
  previous_balance_minor: string;
  payments_minor: string;
  other_minor: string;
  amount_due_minor: string;
  due_date: string;
  issued_at: Date;
  estimated: boolean;
  notes: { id: number; kind: 'credit_note' | 'debit_note'; reason: string; total: number; at: string }[];
}

const BILL_SELECT = `SELECT b.id, b.account_id, cu.name AS customer, m.serial,
       to_char(b.period_start, 'YYYY-MM-DD') AS period_start, to_char(b.period_end, 'YYYY-MM-DD') AS period_end,
       b.currency, b.energy_minor, b.standing_minor, b.vat_minor, b.total_minor, b.previous_balance_minor,
       b.payments_minor, b.other_minor, b.amount_due_minor, to_char(b.due_date, 'YYYY-MM-DD') AS due_date, b.issued_at,
       b.reads @> '[{"estimated": true}]' AS estimated,
       coalesce((SELECT json_agg(json_build_object('id', n.id, 'kind', n.kind, 'reason', n.reason, 'total', n.total_minor,
                                                   'at', n.issued_at) ORDER BY n.id)
                   FROM bill_notes n WHERE n.bill_id = b.id), '[]') AS notes
  FROM bills b JOIN accounts a ON a.id = b.account_id JOIN consumers cu ON cu.id = a.consumer_id
  JOIN meters m ON m.id = b.meter_id`;

const toBill = (r: BillRow): Bill => ({
  id: Number(r.id),
  accountId: Number(r.account_id),
  customer: r.customer,
  meterSerial: r.serial,
  periodStart: r.period_start,
  periodEnd: r.period_end,
  currency: r.currency.trim(),
  energyMinor: Number(r.energy_minor),
  standingMinor: Number(r.standing_minor),
  vatMinor: Number(r.vat_minor),
  totalMinor: Number(r.total_minor),
  previousBalanceMinor: Number(r.previous_balance_minor),
  paymentsMinor: Number(r.payments_minor),
  otherMinor: Number(r.other_minor),
  amountDueMinor: Number(r.amount_due_minor),
  dueDate: r.due_date,
  issuedAt: r.issued_at.toISOString(),
  estimated: r.estimated,
  notes: r.notes.map((n) => ({
    id: n.id,
    kind: n.kind,
    reason: n.reason,
    totalMinor: Number(n.total),
    issuedAt: new Date(n.at).toISOString(),
  })),
});

/** Bills in scope, newest first (by id), a page before `beforeId`. */
export async function listBills(
  q: Q,
  actor: Actor,
  o: {
    accountId?: number | undefined;
    from?: string | undefined;
    to?: string | undefined;
    limit: number;
    beforeId: number | null;
  },
): Promise<{ items: Bill[]; nextBefore: number | null }> {
  const scope = scopeSql(actor, 'bills', 'b', 6);
  const { rows } = await q.query<BillRow>(
    `${BILL_SELECT}
      WHERE (${scope.sql}) AND ($1::bigint IS NULL OR b.id < $1) AND ($2::bigint IS NULL OR b.account_id = $2)
        AND ($3::date IS NULL OR b.period_start >= $3) AND ($4::date IS NULL OR b.period_start <= $4)
      ORDER BY b.id DESC LIMIT $5`,
    [o.beforeId, o.accountId ?? null, o.from ?? null, o.to ?? null, o.limit + 1, ...scope.params],
  );
  const more = rows.length > o.limit;
  const page = rows.slice(0, o.limit);
  return { items: page.map(toBill), nextBefore: more ? Number(page[page.length - 1]!.id) : null };
}

/** One bill in scope, or null. */
export async function billInScope(q: Q, actor: Actor, id: number): Promise<Bill | null> {
  const scope = scopeSql(actor, 'bills', 'b', 2);
  const { rows } = await q.query<BillRow>(`${BILL_SELECT} WHERE b.id = $1 AND (${scope.sql})`, [
    id,
    ...scope.params,
  ]);
  return rows[0] ? toBill(rows[0]) : null;
}
