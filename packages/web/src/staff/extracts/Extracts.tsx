import { useEffect, useId, useState, type FormEvent } from 'react';
import type { Extract, ExtractBody, ExtractPage } from '@kilowire/contract';
import { api, ApiError } from '../../api.ts';
import { ErrorMessage, issuesByField, Loading, PageHeading, useApi } from '../../common.tsx';
import { formatDateTime } from '../../format.ts';
import { Badge, DataTable, EmptyState, useToast, type ColumnDef, type Tone } from '../../ui/index.ts';
import './extracts.css';

/** Last calendar month, YYYY-MM: the month usually extracted. */
function lastMonth(): string {
  const d = new Date();
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - 1, 1)).toISOString().slice(0, 7);
}

const TONE: Record<Extract['status'], Tone> = {
  queued: 'neutral',
  running: 'info',
  done: 'good',
  failed: 'bad',
};
const LABEL: Record<Extract['status'], string> = {
  queued: 'Queued',
  running: 'Running',
  done: 'Ready',
  failed: 'Failed',
};

function monthLabel(m: string): string {
  return new Intl.DateTimeFormat('en-GB', { month: 'long', year: 'numeric', timeZone: 'UTC' }).format(
    new Date(`${m}-01T00:00:00Z`),
  );
}

function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function selectionText(x: Extract): string {
  const s = x.selection;
  const parts: string[] = [];
  if (s.mode) parts.push(s.mode === 'credit' ? 'credit meters' : 'prepayment meters');
  if (s.tariffId) parts.push(`tariff ${s.tariffId}`);
  if (s.serials) parts.push(`${s.serials.length} named meter${s.serials.length === 1 ? '' : 's'}`);
  return parts.length ? parts.join(', ') : 'all meters';
}

function Progress({ x }: { x: Extract }) {
  if (x.status === 'failed') return <span className="error-text">{x.error ?? 'Failed'}</span>;
  if (x.metersTotal === null) return <span className="muted">Waiting to start</span>;
  const pct = x.metersTotal ? Math.floor((x.metersDone / x.metersTotal) * 100) : 100;
  return (
    <div className="extract-progress">
      <progress max={100} value={pct} aria-label={`Extract ${x.id} progress`}>
        {pct} %
      </progress>
      <span>
        {x.metersDone.toLocaleString('en-GB')} of {x.metersTotal.toLocaleString('en-GB')} meters
      </span>
    </div>
  );
}

const columns: ColumnDef<Extract, unknown>[] = [
  {
    id: 'month',
    header: 'Month',
    accessorKey: 'month',
    cell: ({ row }) => (
      <>
        {monthLabel(row.original.month)}
        <div className="muted">{selectionText(row.original)}</div>
      </>
    ),
  },
  {
    id: 'status',
    header: 'Status',
    accessorKey: 'status',
    cell: ({ row }) => <Badge tone={TONE[row.original.status]}>{LABEL[row.original.status]}</Badge>,
  },
  {
    id: 'progress',
    header: 'Progress',
    enableSorting: false,
    cell: ({ row }) => <Progress x={row.original} />,
  },
  {
    id: 'requested',
    header: 'Requested',
    accessorKey: 'createdAt',
    cell: ({ row }) => (
      <>
        {formatDateTime(row.original.createdAt, 'Europe/London')}
        {row.original.requestedBy && <div className="muted">{row.original.requestedBy}</div>}
      </>
    ),
  },
  {
    id: 'file',
    header: 'File',
    enableSorting: false,
    cell: ({ row }) =>
      row.original.status === 'done' ? (
        // An aria-label, not a visually hidden span: absolutely positioned text inside the
        // scrolling table would widen the page at 390 px.
        <a
          className="btn btn-small extract-download"
          href={`/api/extracts/${row.original.id}/download`}
          download
          aria-label={`Download CSV for ${monthLabel(row.original.month)}, ${size(row.original.bytes)}`}
        >
          Download CSV <span className="extract-size">({size(row.original.bytes)})</span>
        </a>
      ) : (
        <span className="muted">Not ready</span>
      ),
  },
];

/**
 * Supplier staff: monthly consumption extracts. The jobs service builds the CSV (each meter's
 * days in its own time zone, then its month total); progress updates every 2 s while one runs.
 */
export default function ExtractsPage() {
  const list = useApi<ExtractPage>('/api/extracts?limit=20');
  const { reload } = list;
  const active = list.data?.items.some((x) => x.status === 'queued' || x.status === 'running') ?? false;
  useEffect(() => {
    if (!active) return;
    const t = setInterval(reload, 2000);
    return () => clearInterval(t);
  }, [active, reload]);
  return (
    <>
      <PageHeading title="Extracts">Monthly extracts</PageHeading>
      <p className="muted">
        Daily and monthly consumption of your meters for one month, as a CSV file: one <code>daily</code> row
        per meter and local day (energy in Wh, half-hours received, how many were estimated), then a{' '}
        <code>monthly</code> row with the meter&apos;s total.
      </p>
      <StartExtract onStarted={reload} />
      <section aria-labelledby="extracts-h">
        <h2 id="extracts-h">Recent extracts</h2>
        {list.error && <ErrorMessage error={list.error} retry={reload} />}
        {list.loading && !list.data && <Loading what="extracts" />}
        {list.data && (
          <DataTable
            caption="Recent extracts, newest first"
            columns={columns}
            rows={list.data.items}
            rowKey={(x) => String(x.id)}
            empty={<EmptyState title="No extracts yet">Choose a month above and start one.</EmptyState>}
          />
        )}
      </section>
    </>
  );
}

function StartExtract({ onStarted }: { onStarted: () => void }) {
  const id = useId();
  const toast = useToast();
  const [month, setMonth] = useState(lastMonth);
  const [mode, setMode] = useState<'' | 'credit' | 'prepayment'>('');
  const [serials, setSerials] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const f = issuesByField(error);
  const serialErr = Object.entries(f).find(([k]) => k.startsWith('selection.serials'))?.[1];
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const list = serials
      .split(/[\s,;]+/)
      .map((s) => s.trim())
      .filter(Boolean);
    const body: ExtractBody = {
      month,
      ...(mode || list.length
        ? { selection: { ...(mode ? { mode } : {}), ...(list.length ? { serials: list } : {}) } }
        : {}),
    };
    setBusy(true);
    setError(null);
    api<Extract>('POST', '/api/extracts', body).then(
      (x) => {
        setBusy(false);
        toast.show(`Extract for ${monthLabel(x.month)} started`);
        onStarted();
      },
      (err: unknown) => {
        setBusy(false);
        setError(err instanceof ApiError ? err : new ApiError(0, 'CLIENT', String(err)));
      },
    );
  };
  return (
    <form className="card extract-form" onSubmit={submit} noValidate>
      <h2>Start an extract</h2>
      <div className="extract-fields">
        <div className={`field${f.month ? ' field-error' : ''}`}>
          <label htmlFor={`${id}-month`}>Month</label>
          {f.month && (
            <p className="error-text" id={`${id}-month-err`}>
              {f.month}
            </p>
          )}
          <input
            id={`${id}-month`}
            type="month"
            value={month}
            required
            onChange={(e) => setMonth(e.target.value)}
            aria-invalid={f.month ? true : undefined}
            aria-describedby={f.month ? `${id}-month-err` : undefined}
          />
        </div>
        <div className="field">
          <label htmlFor={`${id}-mode`}>Meters</label>
          <select id={`${id}-mode`} value={mode} onChange={(e) => setMode(e.target.value as typeof mode)}>
            <option value="">All meters</option>
            <option value="credit">Credit meters only</option>
            <option value="prepayment">Prepayment meters only</option>
          </select>
        </div>
        <div className={`field extract-serials${serialErr ? ' field-error' : ''}`}>
          <label htmlFor={`${id}-serials`}>Only these serials (optional)</label>
          <p className="hint" id={`${id}-serials-hint`}>
            Separated by commas or spaces.
          </p>
          {serialErr && (
            <p className="error-text" id={`${id}-serials-err`}>
              {serialErr}
            </p>
          )}
          <input
            id={`${id}-serials`}
            value={serials}
            onChange={(e) => setSerials(e.target.value)}
            aria-describedby={`${id}-serials-hint${serialErr ? ` ${id}-serials-err` : ''}`}
          />
        </div>
      </div>
      {error && !f.month && !serialErr && <ErrorMessage error={error} />}
      <div className="form-actions">
        <button type="submit" className="btn" disabled={busy}>
          {busy ? 'Starting…' : 'Start extract'}
        </button>
      </div>
    </form>
  );
}
