import { useId, useState } from 'react';
import type { AuditEntry, AuditExportQuery, AuditQuery } from '@kilowire/contract';
import { qs } from '../../api.ts';
import { ErrorMessage, Loading, PageHeading } from '../../common.tsx';
import { DataTable, EmptyState, type ColumnDef } from '../../ui/index.ts';
import { fmtTime, unsorted, usePaged } from './shared.tsx';
import './admin.css';

type Filters = { actor: string; action: string; target: string; from: string; to: string };
const NONE: Filters = { actor: '', action: '', target: '', from: '', to: '' };

/** A datetime-local value (the browser's zone) as an ISO instant, or undefined. */
const instant = (v: string) => (v ? new Date(v).toISOString() : undefined);

function exportQuery(f: Filters): AuditExportQuery {
  return {
    actor: f.actor || undefined,
    action: f.action || undefined,
    target: f.target || undefined,
    from: instant(f.from),
    to: instant(f.to),
  };
}

/** Who did what, when: filters, newest first, and the same selection as a CSV file. */
export default function AuditPage() {
  const id = useId();
  const [draft, setDraft] = useState<Filters>(NONE);
  const [applied, setApplied] = useState<Filters>(NONE);
  const list = usePaged<AuditEntry>(
    `/api/audit${qs<Partial<AuditQuery>>({ ...exportQuery(applied), limit: 100 })}`,
  );
  const columns: ColumnDef<AuditEntry, unknown>[] = [
    { header: 'When (UTC)', accessorKey: 'at', cell: ({ row }) => fmtTime(row.original.at) },
    { header: 'Who', accessorFn: (e) => e.actor?.name ?? 'System' },
    { header: 'Action', accessorKey: 'action', cell: ({ row }) => <code>{row.original.action}</code> },
    { header: 'Target', accessorFn: (e) => e.target ?? '—' },
    {
      header: 'Detail',
      enableSorting: false,
      cell: ({ row }) => (
        <span className="adm-detail">
          {row.original.detail === null ? '—' : JSON.stringify(row.original.detail)}
        </span>
      ),
    },
    { header: 'From', accessorFn: (e) => e.ip ?? '—' },
  ];
  const input = (name: keyof Filters, label: string, type = 'text', hint?: string) => (
    <div className="field">
      <label htmlFor={`${id}-${name}`}>{label}</label>
      {hint && (
        <p className="hint" id={`${id}-${name}-hint`}>
          {hint}
        </p>
      )}
      <input
        id={`${id}-${name}`}
        type={type}
        value={draft[name]}
        aria-describedby={hint ? `${id}-${name}-hint` : undefined}
        onChange={(e) => setDraft({ ...draft, [name]: e.target.value })}
      />
    </div>
  );
  return (
    <div className="adm">
      <PageHeading title="Audit log">Audit log</PageHeading>
      <p>Every change anyone made, recorded in the same transaction as the change.</p>
      <form
        className="card"
        aria-label="Audit filters"
        onSubmit={(e) => {
          e.preventDefault();
          setApplied(draft);
        }}
      >
        <div className="adm-grid adm-grid-3">
          {input('actor', 'Who', 'text', 'Name, email or user number')}
          {input('action', 'Action', 'text', 'Exact, or a prefix ending in “.” (e.g. meter.)')}
          {input('target', 'Target', 'text', 'e.g. a meter serial or user:12')}
          {input('from', 'From', 'datetime-local')}
          {input('to', 'Until', 'datetime-local')}
        </div>
        <div className="form-actions">
          <button type="submit" className="btn">
            Apply filters
          </button>
          <button
            type="button"
            className="btn btn-secondary"
            onClick={() => {
              setDraft(NONE);
              setApplied(NONE);
            }}
          >
            Clear
          </button>
          <a
            className="btn btn-secondary"
            href={`/api/audit/export.csv${qs<AuditExportQuery>(exportQuery(applied))}`}
            download
          >
            Export CSV
          </a>
        </div>
      </form>
      {list.error && <ErrorMessage error={list.error} retry={list.reload} />}
      {!list.items && !list.error && <Loading what="audit log" />}
      {list.items && (
        <DataTable
          caption="Audit log entries, newest first"
          columns={unsorted(columns)}
          rows={list.items}
          rowKey={(e) => String(e.id)}
          busy={list.busy}
          empty={
            <EmptyState title="Nothing recorded for these filters">
              Widen the time range or clear a filter.
            </EmptyState>
          }
        />
      )}
      {list.hasMore && (
        <button type="button" className="btn btn-secondary" onClick={list.more} disabled={list.busy}>
          Show older entries
        </button>
      )}
    </div>
  );
}
