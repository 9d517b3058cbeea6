import { useId, useState, type FormEvent } from 'react';
import type {
  NetworkBalance,
  NetworkInvoice,
  NetworkInvoicesResponse,
  NetworkIssueResponse,
  NetworkPaymentResponse,
} from '@kilowire/contract';
import { api, ApiError, qs } from '../../api.ts';
import { ErrorMessage, Loading, useApi, useSession } from '../../common.tsx';
import { formatMoney } from '../../format.ts';
import { Badge, DataTable, EmptyState, PageHeader, useToast, type ColumnDef } from '../../ui/index.ts';
import { asApiError } from '../admin/shared.tsx';
import { KIND_LABEL, kwh, lastMonth, monthLabel, parsePounds } from './words.ts';
import './netbilling.css';

function columns(view: 'operator' | 'supplier' | 'admin'): ColumnDef<NetworkInvoice, unknown>[] {
  return [
    {
      id: 'id',
      header: 'Document',
      accessorKey: 'id',
      cell: ({ row }) => {
        const i = row.original;
        return (
          <>
            {KIND_LABEL[i.kind]} {i.id}
            {i.correctsId !== null && <div className="muted">corrects invoice {i.correctsId}</div>}
          </>
        );
      },
    },
    { id: 'month', header: 'Month', accessorKey: 'month', cell: ({ row }) => monthLabel(row.original.month) },
    ...(view !== 'supplier'
      ? [
          { id: 'supplier', header: 'Supplier', accessorKey: 'supplier' } as ColumnDef<
            NetworkInvoice,
            unknown
          >,
        ]
      : []),
    ...(view !== 'operator'
      ? [
          { id: 'operator', header: 'Network operator', accessorKey: 'operator' } as ColumnDef<
            NetworkInvoice,
            unknown
          >,
        ]
      : []),
    {
      id: 'use',
      header: 'Use',
      accessorKey: 'wh',
      cell: ({ row }) => (
        <span className="nb-use">
          {kwh(row.original.wh)}
          <span className="muted">{row.original.meterDays.toLocaleString('en-GB')} meter-days</span>
        </span>
      ),
    },
    {
      id: 'gross',
      header: 'Total',
      accessorKey: 'grossMinor',
      cell: ({ row }) => (
        <span className="nb-money">
          {formatMoney(row.original.grossMinor, row.original.currency)}
          <span className="muted nb-vat">
            incl. VAT {formatMoney(row.original.vatMinor, row.original.currency)}
          </span>
        </span>
      ),
    },
    {
      id: 'status',
      header: 'Status',
      accessorKey: 'status',
      cell: ({ row }) => {
        const i = row.original;
        if (i.kind !== 'invoice') return <Badge tone="info">{KIND_LABEL[i.kind]}</Badge>;
        if (i.status === 'paid') return <Badge tone="good">Paid</Badge>;
        return (
          <>
            <Badge tone="warn">Unpaid</Badge>
            {i.outstandingMinor !== null && i.outstandingMinor !== i.grossMinor && (
              <div className="muted">{formatMoney(i.outstandingMinor, i.currency)} to pay</div>
            )}
          </>
        );
      },
    },
    {
      id: 'docs',
      header: 'Documents',
      enableSorting: false,
      cell: ({ row }) => {
        const i = row.original;
        const what = `${KIND_LABEL[i.kind]} ${i.id}, ${monthLabel(i.month)}`;
        return (
          <span className="nb-docs">
            <a
              className="btn btn-small btn-secondary"
              href={`/api/network-invoices/${i.id}/pdf`}
              aria-label={`PDF of ${what}`}
            >
              PDF
            </a>
            <a
              className="btn btn-small btn-secondary"
              href={`/api/network-invoices/${i.id}/lines.csv`}
              download
              aria-label={`CSV lines of ${what}`}
            >
              CSV
            </a>
          </span>
        );
      },
    },
  ];
}

function Balances({
  balances,
  view,
}: {
  balances: NetworkBalance[];
  view: 'operator' | 'supplier' | 'admin';
}) {
  if (!balances.length) return null;
  return (
    <section aria-labelledby="nb-bal-h" className="nb-balances">
      <h2 id="nb-bal-h">{view === 'supplier' ? 'What you owe' : 'What suppliers owe'}</h2>
      <ul className="nb-cards">
        {balances.map((b) => (
          <li key={`${b.operatorId}-${b.supplierId}`} className="card nb-card">
            <p className="nb-card-name">{view === 'supplier' ? b.operator : b.supplier}</p>
            <p className="muted nb-card-label">
              {b.owedMinor > 0 ? 'Owed now' : b.owedMinor < 0 ? 'In credit' : 'Nothing owed'}
            </p>
            <p className="nb-card-figure">{formatMoney(Math.abs(b.owedMinor))}</p>
            <p className="muted">
              Invoiced {formatMoney(b.invoicedMinor)}, paid {formatMoney(b.paidMinor)}
            </p>
          </li>
        ))}
      </ul>
    </section>
  );
}

/**
 * #9 Network-use invoices. Operator staff: the invoices their operator issued, balances per
 * supplier, and (operator admins) issuing a month and recording payments. Supplier staff
 * (`/network-charges`): the network invoices their organisation owes, its balance, downloads.
 */
export function NetworkInvoicesPage({ view }: { view: 'operator' | 'supplier' | 'admin' }) {
  const { me } = useSession();
  const manage = me.capabilities.includes('network_tariffs.manage');
  const [month, setMonth] = useState('');
  const [supplierId, setSupplierId] = useState('');
  const path = `/api/network-invoices${qs({ month: month || undefined, supplierId: supplierId || undefined })}`;
  const list = useApi<NetworkInvoicesResponse>(path);
  const data = list.data;
  const id = useId();
  const title = view === 'supplier' ? 'Network charges' : 'Network invoices';
  return (
    <>
      <PageHeader
        title={title}
        description={
          view === 'supplier'
            ? 'What network operators charge you for carrying your customers’ electricity: one invoice a month per operator, from the daily collection of your meters.'
            : 'Network-use invoices to each supplier, one a month, priced from the daily collection with your network tariffs.'
        }
      />
      {manage && <IssueMonth onDone={list.reload} />}
      {list.error && <ErrorMessage error={list.error} retry={list.reload} />}
      {list.loading && !data && <Loading what="invoices" />}
      {data && <Balances balances={data.balances} view={view} />}
      <section aria-labelledby={`${id}-h`}>
        <h2 id={`${id}-h`}>{view === 'supplier' ? 'Invoices' : 'Issued invoices and notes'}</h2>
        <div className="nb-filters">
          <div className="field">
            <label htmlFor={`${id}-month`}>Show one month</label>
            <div className="nb-row">
              <input
                id={`${id}-month`}
                type="month"
                value={month}
                onChange={(e) => setMonth(e.target.value)}
              />
              {month && (
                <button type="button" className="btn btn-small btn-secondary" onClick={() => setMonth('')}>
                  All months
                </button>
              )}
            </div>
          </div>
          {data && data.suppliers.length > 1 && (
            <div className="field">
              <label htmlFor={`${id}-sup`}>Supplier</label>
              <select id={`${id}-sup`} value={supplierId} onChange={(e) => setSupplierId(e.target.value)}>
                <option value="">All suppliers</option>
                {data.suppliers.map((s) => (
                  <option key={s.id} value={String(s.id)}>
                    {s.name}
                  </option>
                ))}
              </select>
            </div>
          )}
        </div>
        {data && (
          <DataTable
            caption={`${title}, newest month first`}
            columns={columns(view)}
            rows={data.items}
            rowKey={(i) => String(i.id)}
            busy={list.loading}
            empty={
              <EmptyState title={month ? `No invoices for ${monthLabel(month)}` : 'No invoices yet'}>
                {view === 'supplier'
                  ? 'Network operators invoice each month once its daily collection is complete.'
                  : manage
                    ? 'Issue a month above once its daily collection is complete.'
                    : 'Invoices appear here once a month has been issued.'}
              </EmptyState>
            }
          />
        )}
        <p className="muted nb-note">
          Invoices never change: when a day is collected again after its month was invoiced, issuing the month
          again adds a credit or debit note for the difference.
        </p>
      </section>
      {manage && data && data.suppliers.length > 0 && (
        <RecordPayment suppliers={data.suppliers} invoices={data.items} onDone={list.reload} />
      )}
    </>
  );
}

function IssueMonth({ onDone }: { onDone: () => void }) {
  const id = useId();
  const toast = useToast();
  const [month, setMonth] = useState(lastMonth);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    api<NetworkIssueResponse>('POST', '/api/network-invoices/issue', { month }).then(
      (r) => {
        setBusy(false);
        const parts = [
          r.issued.length ? `${r.issued.length} invoice${r.issued.length === 1 ? '' : 's'} issued` : null,
          r.notes.length ? `${r.notes.length} note${r.notes.length === 1 ? '' : 's'} for revised data` : null,
          r.unchanged ? `${r.unchanged} unchanged` : null,
        ].filter(Boolean);
        toast.show(
          `${monthLabel(r.month)}: ${parts.length ? parts.join(', ') : 'no supplier used the network'}`,
        );
        onDone();
      },
      (err: unknown) => {
        setBusy(false);
        setError(asApiError(err));
      },
    );
  };
  return (
    <form className="card nb-form" onSubmit={submit} noValidate>
      <h2>Issue a month</h2>
      <p className="muted">
        One invoice per supplier, from the latest collection of every day. Issuing a month again changes
        nothing unless a day was collected again since; then the difference is a credit or debit note.
      </p>
      <div className="nb-row">
        <div className="field">
          <label htmlFor={`${id}-m`}>Month</label>
          <input
            id={`${id}-m`}
            type="month"
            required
            value={month}
            onChange={(e) => setMonth(e.target.value)}
          />
        </div>
        <button type="submit" className="btn" disabled={busy || !month}>
          {busy ? 'Issuing…' : 'Issue invoices'}
        </button>
      </div>
      {error && (
        <div className="notice notice-error" role="alert">
          <p>
            {error.code === 'CONFLICT'
              ? `Not issued: ${error.message}.`
              : `Something went wrong: ${error.message}`}
          </p>
        </div>
      )}
    </form>
  );
}

function RecordPayment({
  suppliers,
  invoices,
  onDone,
}: {
  suppliers: { id: number; name: string }[];
  invoices: NetworkInvoice[];
  onDone: () => void;
}) {
  const id = useId();
  const toast = useToast();
  const [supplierId, setSupplierId] = useState(String(suppliers[0]?.id ?? ''));
  const [amount, setAmount] = useState('');
  const [reference, setReference] = useState('');
  const [invoiceId, setInvoiceId] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const [amountErr, setAmountErr] = useState<string | null>(null);
  const open = invoices.filter(
    (i) => i.kind === 'invoice' && i.status !== 'paid' && String(i.supplierId) === supplierId,
  );
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const minor = parsePounds(amount);
    if (minor === null) {
      setAmountErr('Enter an amount in pounds, for example 1250 or 1250.40.');
      return;
    }
    setAmountErr(null);
    setBusy(true);
    setError(null);
    api<NetworkPaymentResponse>('POST', '/api/network-invoices/payments', {
      supplierId: Number(supplierId),
      amountMinor: minor,
      reference,
      invoiceId: invoiceId ? Number(invoiceId) : null,
    }).then(
      (r) => {
        setBusy(false);
        toast.show(r.created ? `Payment ${reference} recorded` : `Payment ${reference} was already recorded`);
        setAmount('');
        setReference('');
        setInvoiceId('');
        onDone();
      },
      (err: unknown) => {
        setBusy(false);
        setError(asApiError(err));
      },
    );
  };
  return (
    <form className="card nb-form" onSubmit={submit} noValidate>
      <h2>Record a payment</h2>
      <div className="nb-grid">
        <div className="field">
          <label htmlFor={`${id}-s`}>Supplier</label>
          <select id={`${id}-s`} value={supplierId} onChange={(e) => setSupplierId(e.target.value)}>
            {suppliers.map((s) => (
              <option key={s.id} value={String(s.id)}>
                {s.name}
              </option>
            ))}
          </select>
        </div>
        <div className={`field${amountErr ? ' field-error' : ''}`}>
          <label htmlFor={`${id}-a`}>Amount (£)</label>
          {amountErr && (
            <p className="error-text" id={`${id}-a-err`}>
              {amountErr}
            </p>
          )}
          <input
            id={`${id}-a`}
            inputMode="decimal"
            value={amount}
            onChange={(e) => setAmount(e.target.value)}
            aria-invalid={amountErr ? true : undefined}
            aria-describedby={amountErr ? `${id}-a-err` : undefined}
          />
        </div>
        <div className="field">
          <label htmlFor={`${id}-r`}>Bank reference</label>
          <input
            id={`${id}-r`}
            value={reference}
            maxLength={64}
            onChange={(e) => setReference(e.target.value)}
          />
        </div>
        <div className="field">
          <label htmlFor={`${id}-i`}>Against invoice</label>
          <select id={`${id}-i`} value={invoiceId} onChange={(e) => setInvoiceId(e.target.value)}>
            <option value="">On account</option>
            {open.map((i) => (
              <option key={i.id} value={String(i.id)}>
                {i.id} · {monthLabel(i.month)} · {formatMoney(i.outstandingMinor ?? i.grossMinor, i.currency)}
              </option>
            ))}
          </select>
        </div>
      </div>
      {error && <ErrorMessage error={error} />}
      <div className="form-actions">
        <button type="submit" className="btn" disabled={busy || !reference.trim() || !amount.trim()}>
          {busy ? 'Recording…' : 'Record payment'}
        </button>
      </div>
    </form>
  );
}

export default function OperatorInvoices() {
  const { me } = useSession();
  return <NetworkInvoicesPage view={me.user.role === 'admin' ? 'admin' : 'operator'} />;
}

export function SupplierCharges() {
  return <NetworkInvoicesPage view="supplier" />;
}
