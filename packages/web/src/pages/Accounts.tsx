import { useEffect, useId, useState, type FormEvent } from 'react';
import type { Account, AccountPage, AccountsQuery } from '@kilowire/contract';
import { api, ApiError, qs } from '../api.ts';
import { ErrorMessage, Loading, PageHeading } from '../common.tsx';
import { formatMoney } from '../format.ts';
import { navigate, replaceSearch } from '../router.tsx';
import { AccountView } from './Bills.tsx';

const PAGE = 50;

/** Staff: find an account (name, consumer ID, meter serial) and open its balance, bills and ledger. */
export function AccountsPage() {
  const id = useId();
  const params = new URLSearchParams(location.search);
  const [accountId, setAccountId] = useState<number | null>(() => Number(params.get('account')) || null);
  // The path stays /accounts: follow the query string on back and forward.
  useEffect(() => {
    const f = () => setAccountId(Number(new URLSearchParams(location.search).get('account')) || null);
    addEventListener('popstate', f);
    return () => removeEventListener('popstate', f);
  }, []);
  const open = (id: number | null) => {
    navigate(id === null ? '/accounts' : `/accounts?account=${id}`);
    setAccountId(id);
  };
  const [q, setQ] = useState(params.get('q') ?? '');
  const [query, setQuery] = useState(params.get('q') ?? '');
  const [items, setItems] = useState<Account[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [n, setN] = useState(0);

  useEffect(() => {
    let live = true;
    setItems(null);
    setError(null);
    api<AccountPage>('GET', `/api/accounts${qs<AccountsQuery>({ q: query || undefined, limit: PAGE })}`).then(
      (p) => {
        if (!live) return;
        setItems(p.items);
        setCursor(p.nextCursor);
      },
      (e: unknown) => live && setError(e instanceof ApiError ? e : new ApiError(0, 'CLIENT', String(e))),
    );
    return () => {
      live = false;
    };
  }, [query, n]);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    setQuery(q.trim());
    replaceSearch(q.trim() ? `?q=${encodeURIComponent(q.trim())}` : '');
  };
  const more = () => {
    if (!cursor) return;
    api<AccountPage>(
      'GET',
      `/api/accounts${qs<AccountsQuery>({ q: query || undefined, limit: PAGE, cursor })}`,
    ).then(
      (p) => {
        setItems((cur) => [...(cur ?? []), ...p.items]);
        setCursor(p.nextCursor);
      },
      (e: unknown) => setError(e instanceof ApiError ? e : new ApiError(0, 'CLIENT', String(e))),
    );
  };

  if (accountId !== null) return <OneAccount id={accountId} back={() => open(null)} />;
  return (
    <>
      <PageHeading title="Accounts">Accounts</PageHeading>
      <form className="card filters" role="search" onSubmit={submit}>
        <div className="field">
          <label htmlFor={`${id}-q`}>Name, consumer ID or meter serial</label>
          <input id={`${id}-q`} type="search" value={q} onChange={(e) => setQ(e.target.value)} />
        </div>
        <button type="submit" className="btn">
          Search
        </button>
      </form>
      {error && <ErrorMessage error={error} retry={() => setN(n + 1)} />}
      {!items && !error && <Loading what="accounts" />}
      {items && items.length === 0 && <p role="status">No accounts match.</p>}
      {items && items.length > 0 && (
        <div className="table-scroll" role="region" aria-label="Accounts" tabIndex={0}>
          <table className="data-table">
            <caption className="visually-hidden">Accounts and balances</caption>
            <thead>
              <tr>
                <th scope="col">Customer</th>
                <th scope="col">Meter</th>
                <th scope="col">Type</th>
                <th scope="col" className="num">
                  Balance
                </th>
              </tr>
            </thead>
            <tbody>
              {items.map((a) => (
                <tr key={a.id}>
                  <th scope="row">
                    <a
                      href={`/accounts?account=${a.id}`}
                      onClick={(e) => {
                        e.preventDefault();
                        open(a.id);
                      }}
                    >
                      {a.customer}
                    </a>
                    <span className="muted"> · {a.consumerId}</span>
                  </th>
                  <td>{a.meterSerial ?? '—'}</td>
                  <td>{a.mode === 'credit' ? 'Credit' : 'Prepayment'}</td>
                  <td className="num">{formatMoney(a.balanceMinor, a.currency)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <p className="muted">Balance: positive = the customer owes; negative = in credit.</p>
      {cursor && (
        <button type="button" className="btn btn-secondary" onClick={more}>
          Show more accounts
        </button>
      )}
    </>
  );
}

function OneAccount({ id, back }: { id: number; back: () => void }) {
  // The list route filtered to nothing but this account's page of one (scope is the server's).
  const [state, setState] = useState<{ account: Account | null; error: ApiError | null }>({
    account: null,
    error: null,
  });
  const [n, setN] = useState(0);
  useEffect(() => {
    let live = true;
    api<{ account: Account }>('GET', `/api/accounts/${id}/ledger?limit=1`).then(
      (p) => live && setState({ account: p.account, error: null }),
      (e: unknown) =>
        live &&
        setState({ account: null, error: e instanceof ApiError ? e : new ApiError(0, 'CLIENT', String(e)) }),
    );
    return () => {
      live = false;
    };
  }, [id, n]);
  return (
    <>
      <PageHeading title="Account">{state.account ? state.account.customer : 'Account'}</PageHeading>
      <p>
        <a
          href="/accounts"
          onClick={(e) => {
            e.preventDefault();
            back();
          }}
        >
          All accounts
        </a>
      </p>
      {state.error && <ErrorMessage error={state.error} retry={() => setN(n + 1)} />}
      {!state.account && !state.error && <Loading what="the account" />}
      {state.account && <AccountView account={state.account} staff />}
    </>
  );
}
