import { useEffect, useState } from 'react';
import type { TamperCasePage, TamperCaseStatus, TamperCaseSummary } from '@kilowire/contract';
import { qs } from '../../api.ts';
import { ErrorMessage, Loading, PageHeading, useApi } from '../../common.tsx';
import { formatDateTime } from '../../format.ts';
import { Link } from '../../router.tsx';
import { Badge, DataTable, EmptyState, type ColumnDef, type Tone } from '../../ui/index.ts';
import './tamper.css';

export const STATUS_LABEL: Record<TamperCaseStatus, string> = {
  open: 'Open',
  investigating: 'Investigating',
  resolved: 'Resolved',
};
export const STATUS_TONE: Record<TamperCaseStatus, Tone> = {
  open: 'bad',
  investigating: 'warn',
  resolved: 'good',
};

/** Staff see times in the UK's zone: the console is the supplier's, not the meter's. */
export const STAFF_TZ = 'Europe/London';

export function CaseStatus({ status }: { status: TamperCaseStatus }) {
  return <Badge tone={STATUS_TONE[status]}>{STATUS_LABEL[status]}</Badge>;
}

type Filter = TamperCaseStatus | 'all';
const FILTERS: Filter[] = ['open', 'investigating', 'resolved', 'all'];

export const caseColumns: ColumnDef<TamperCaseSummary, unknown>[] = [
  {
    id: 'case',
    header: 'Case',
    accessorKey: 'id',
    cell: ({ row }) => <Link href={`/tamper-cases/${row.original.id}`}>Case {row.original.id}</Link>,
  },
  {
    id: 'status',
    header: 'Status',
    accessorKey: 'status',
    cell: ({ row }) => <CaseStatus status={row.original.status} />,
  },
  {
    id: 'meter',
    header: 'Meter',
    accessorKey: 'serial',
    cell: ({ row }) => (
      <>
        {row.original.serial}
        {row.original.household && <div className="muted">{row.original.household}</div>}
      </>
    ),
  },
  { id: 'events', header: 'Events', accessorKey: 'events' },
  {
    id: 'opened',
    header: 'Opened',
    accessorKey: 'openedAt',
    cell: ({ row }) => formatDateTime(row.original.openedAt, STAFF_TZ),
  },
  {
    id: 'updated',
    header: 'Last change',
    accessorKey: 'updatedAt',
    cell: ({ row }) => formatDateTime(row.original.updatedAt, STAFF_TZ),
  },
];

/**
 * Supplier staff: the tamper cases of their meters, by status. A tamper event a meter
 * reports opens a case by itself; the list refreshes every 15 s so a new one shows up.
 */
export default function TamperCasesPage() {
  const [filter, setFilter] = useState<Filter>('open');
  const [cursor, setCursor] = useState<string | undefined>(undefined);
  const path = `/api/tamper-cases${qs({ status: filter === 'all' ? undefined : filter, limit: 50, cursor })}`;
  const page = useApi<TamperCasePage>(path);
  const { reload } = page;
  useEffect(() => {
    const t = setInterval(reload, 15_000);
    return () => clearInterval(t);
  }, [reload]);
  const counts = page.data?.counts;
  const countOf = (f: Filter) =>
    counts ? (f === 'all' ? counts.open + counts.investigating + counts.resolved : counts[f]) : null;

  return (
    <>
      <PageHeading title="Tamper cases">Tamper cases</PageHeading>
      <p className="muted">
        A tamper alert from a meter opens a case here; further alerts from the same meter join it until it is
        resolved.
      </p>
      <div className="toolbar case-filters" role="group" aria-label="Show cases">
        {FILTERS.map((f) => (
          <button
            key={f}
            type="button"
            className={`btn btn-small${filter === f ? '' : ' btn-secondary'}`}
            aria-pressed={filter === f}
            onClick={() => {
              setFilter(f);
              setCursor(undefined);
            }}
          >
            {f === 'all' ? 'All' : STATUS_LABEL[f]}
            {countOf(f) !== null && <span className="case-count"> ({countOf(f)})</span>}
          </button>
        ))}
      </div>
      {page.error && <ErrorMessage error={page.error} retry={reload} />}
      {page.loading && !page.data && <Loading what="tamper cases" />}
      {page.data && (
        <DataTable
          caption={`Tamper cases: ${filter === 'all' ? 'all' : STATUS_LABEL[filter].toLowerCase()}, newest first`}
          columns={caseColumns}
          rows={page.data.items}
          rowKey={(r) => String(r.id)}
          busy={page.loading}
          empty={
            <EmptyState title={filter === 'open' ? 'No open tamper cases' : 'No cases here'}>
              {filter === 'open'
                ? 'When a meter reports its cover opened, a magnetic field or a terminal cover removed, a case opens here.'
                : 'Choose another status above.'}
            </EmptyState>
          }
        />
      )}
      {page.data && (cursor || page.data.nextCursor) && (
        <div className="form-actions">
          {cursor && (
            <button type="button" className="btn btn-secondary" onClick={() => setCursor(undefined)}>
              Newest
            </button>
          )}
          {page.data.nextCursor && (
            <button
              type="button"
              className="btn btn-secondary"
              onClick={() => setCursor(page.data?.nextCursor ?? undefined)}
            >
              Older cases
            </button>
          )}
        </div>
      )}
    </>
  );
}
