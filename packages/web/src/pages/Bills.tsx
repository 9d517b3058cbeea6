import { useState } from 'react';
import type {
  Account,
  AccountPage,
  Bill,
  BillPage,
  BillsQuery,
  LedgerItem,
  LedgerKind,
  LedgerPage,
  LedgerQuery,
} from '@kilowire/contract';
import { api, ApiError, qs } from '../api.ts';
import { ErrorMessage, Loading, PageHeading, useApi, useSession } from '../common.tsx';
import { formatDateTime, formatMoney } from '../format.ts';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/** A local calendar day "2026-03-01" as "1 Mar 2026" (a date, not an instant: no zone maths). */
export function dayLabel(d: string): string {
  return `${Number(d.slice(8, 10))} ${MONTHS[Number(d.slice(5, 7)) - 1]} ${d.slice(0, 4)}`;
}
/** The last day of a period whose end is exclusive. */
function lastDay(end: string): string {
  const t =
    Date.UTC(Number(end.slice(0, 4)), Number(end.slice(5, 7)) - 1, Number(end.slice(8, 10))) - 86_400_000;
  return new Date(t).toISOString().slice(0, 10);
}
export function periodLabel(b: { periodStart: string; periodEnd: string }): string {
  return `${dayLabel(b.periodStart)} to ${dayLabel(lastDay(b.periodEnd))}`;
}

const KIND_LABELS: Record<LedgerKind, string> = {
  bill: 'Bill',
  payment: 'Payment',
  topup: 'Top-up',
  refund: 'Refund',
  adjustment: 'Adjustment',
  credit_note: 'Credit note',
  debit_note: 'Debit note',
  usage: 'Energy used (meter)',
  opening: 'Opening balance',
};

/** "You owe £12.30" / "In credit £4.00" / "Nothing to pay": the sign of a balance in words. */
export function balanceWords(minor: number, currency: string, staff = false): string {
  if (minor > 0) return `${staff ? 'Owes' : 'You owe'} ${formatMoney(minor, currency)}`;
  if (minor < 0) return `In credit ${formatMoney(-minor, currency)}`;
  return staff ? 'Settled' : 'Nothing to pay';
}

/** The household's bills and account: balance, bills with their PDFs, ledger entries. */
export function BillsPage() {
  const { serial } = useSession();
  const accounts = useApi<AccountPage>('/api/accounts');
  const account =
    accounts.data?.items.find((a) => a.meterSerial === serial) ?? accounts.data?.items[0] ?? null;
  return (
    <>
      <PageHeading title="Bills">Bills and account</PageHeading>
      {accounts.error && <ErrorMessage error={accounts.error} retry={accounts.reload} />}
      {accounts.loading && <Loading what="your account" />}
      {accounts.data && !account && <p role="status">There is no account to show yet.</p>}
      {account && <AccountView account={account} staff={false} />}
    </>
  );
}

/** One account: balance, bills and ledger. Used by households and by staff. */
export function AccountView({ account, staff }: { account: Account; staff: boolean }) {
  const bills = useApi<BillPage>(`/api/bills${qs<BillsQuery>({ accountId: account.id, limit: 24 })}`);
  return (
    <>
      <section className="card" aria-labelledby="acct-balance">
        <h2 id="acct-balance">Balance</h2>
        <p className="big-number">{balanceWords(account.balanceMinor, account.currency, staff)}</p>
        <dl className="facts">
          <div>
            <dt>Account</dt>
            <dd>
              {account.id}
              {staff ? ` · ${account.customer} (${account.consumerId})` : ''}
            </dd>
          </div>
          <div>
            <dt>Payment type</dt>
            <dd>
              {account.mode === 'credit'
                ? `Monthly bill (period starts on day ${account.billingCycleDay})`
                : 'Prepayment'}
            </dd>
          </div>
          {account.meterSerial && (
            <div>
              <dt>Meter</dt>
              <dd>{account.meterSerial}</dd>
            </div>
          )}
        </dl>
      </section>
      <section aria-labelledby="acct-bills">
        <h2 id="acct-bills">Bills</h2>
        {bills.error && <ErrorMessage error={bills.error} retry={bills.reload} />}
        {bills.loading && <Loading what="bills" />}
        {bills.data && bills.data.items.length === 0 && (
          <p role="status">
            {account.mode === 'credit'
              ? 'No bills yet. Your first bill is issued after your first billing period ends.'
              : 'Prepayment accounts are not billed: you pay with top-ups.'}
          </p>
        )}
        {bills.data && bills.data.items.length > 0 && (
          <ul className="bill-list">
            {bills.data.items.map((b) => (
              <BillCard key={b.id} bill={b} />
            ))}
          </ul>
        )}
      </section>
      <Ledger account={account} staff={staff} />
    </>
  );
}

function BillCard({ bill: b }: { bill: Bill }) {
  return (
    <li className="card bill-item">
      <div className="list-head">
        <h3 className="bill-period">{periodLabel(b)}</h3>
        <a className="btn btn-small" href={`/api/bills/${b.id}/pdf`} target="_blank" rel="noopener">
          Open PDF<span className="visually-hidden"> of the bill for {periodLabel(b)}</span>
        </a>
      </div>
      <dl className="facts">
        <div>
          <dt>Charges for the period</dt>
          <dd>{formatMoney(b.totalMinor, b.currency)}</dd>
        </div>
        <div>
          <dt>Amount due</dt>
          <dd>
            {b.amountDueMinor > 0
              ? `${formatMoney(b.amountDueMinor, b.currency)} by ${dayLabel(b.dueDate)}`
              : b.amountDueMinor < 0
                ? `None: ${formatMoney(-b.amountDueMinor, b.currency)} in credit`
                : 'None'}
          </dd>
        </div>
      </dl>
      {b.estimated && (
        <p className="muted">
          <span className="badge badge-warn">Estimated</span> A meter read on this bill was estimated. If an
          actual read differs, we send a credit or debit note.
        </p>
      )}
      {b.notes.map((n) => (
        <p key={n.id}>
          <span className="badge">{n.kind === 'credit_note' ? 'Credit note' : 'Debit note'}</span>{' '}
          {formatMoney(n.totalMinor, b.currency)}: {n.reason}
        </p>
      ))}
    </li>
  );
}

const PAGE = 50;

function Ledger({ account, staff }: { account: Account; staff: boolean }) {
  const first = useApi<LedgerPage>(`/api/accounts/${account.id}/ledger${qs<LedgerQuery>({ limit: PAGE })}`);
  const [more, setMore] = useState<{ items: LedgerItem[]; cursor: string | null } | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const items = [...(first.data?.items ?? []), ...(more?.items ?? [])];
  const cursor = more ? more.cursor : (first.data?.nextCursor ?? null);
  const loadMore = () => {
    if (!cursor) return;
    api<LedgerPage>(
      'GET',
      `/api/accounts/${account.id}/ledger${qs<LedgerQuery>({ limit: PAGE, cursor })}`,
    ).then(
      (p) => setMore((m) => ({ items: [...(m?.items ?? []), ...p.items], cursor: p.nextCursor })),
      (e: unknown) => setError(e instanceof ApiError ? e : new ApiError(0, 'CLIENT', String(e))),
    );
  };
  const caption = 'Account entries, newest first';
  return (
    <section aria-labelledby="acct-ledger">
      <h2 id="acct-ledger">Account entries</h2>
      {first.error && <ErrorMessage error={first.error} retry={first.reload} />}
      {error && <ErrorMessage error={error} />}
      {first.loading && <Loading what="account entries" />}
      {first.data && items.length === 0 && <p role="status">No entries yet.</p>}
      {items.length > 0 && (
        <div className="table-scroll" role="region" aria-label={caption} tabIndex={0}>
          <table className="data-table">
            <caption>{caption}</caption>
            <thead>
              <tr>
                <th scope="col">Date</th>
                <th scope="col">What</th>
                <th scope="col" className="num">
                  Amount
                </th>
                <th scope="col" className="num">
                  Balance
                </th>
              </tr>
            </thead>
            <tbody>
              {items.map((e) => (
                <tr key={e.txnId}>
                  <th scope="row">
                    <time dateTime={e.at}>{formatDateTime(e.at, 'Europe/London')}</time>
                  </th>
                  <td>
                    {e.memo.startsWith(KIND_LABELS[e.kind]) ? (
                      e.memo
                    ) : (
                      <>
                        {KIND_LABELS[e.kind]}
                        <span className="muted"> · {e.memo}</span>
                      </>
                    )}
                  </td>
                  <td className="num">{formatMoney(e.amountMinor, account.currency)}</td>
                  <td className="num">{formatMoney(e.balanceMinor, account.currency)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <p className="muted">
        Positive amounts add to what {staff ? 'the customer owes' : 'you owe'}; payments and credits are
        negative.
      </p>
      {cursor && (
        <button type="button" className="btn btn-secondary" onClick={loadMore}>
          Show older entries
        </button>
      )}
    </section>
  );
}
