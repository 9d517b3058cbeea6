import { useId, useState } from 'react';
import type { AreaCreate, Organisation, OrganisationCreate, OrganisationList } from '@kilowire/contract';
import { api, ApiError } from '../../api.ts';
import { ErrorMessage, issuesByField, Loading, PageHeading, useApi } from '../../common.tsx';
import { ConfirmDialog, DataTable, EmptyState, useToast, type ColumnDef } from '../../ui/index.ts';
import { asApiError } from './shared.tsx';
import './admin.css';

const KIND_LABEL: Record<Organisation['kind'], string> = {
  supplier: 'Supplier',
  network_operator: 'Network operator',
  platform: 'Platform',
};

/** Feeders typed one per line as "ID Name" (e.g. "N1-F3 Station Road"). */
function parseFeeders(text: string): AreaCreate['feeders'] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => {
      const [id, ...name] = l.split(/\s+/);
      return { id: id!, name: name.join(' ') || id! };
    });
}

/** Suppliers and network operators: create, rename, and give operators their areas and feeders. */
export default function OrganisationsPage() {
  const list = useApi<OrganisationList>('/api/admin/organisations');
  const toast = useToast();
  const id = useId();
  const [form, setForm] = useState<OrganisationCreate>({ kind: 'supplier', slug: '', name: '' });
  const [formError, setFormError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const [rename, setRename] = useState<{ org: Organisation; name: string } | null>(null);
  const [area, setArea] = useState({ operatorId: '', id: '', name: '', feeders: '' });
  const [areaError, setAreaError] = useState<ApiError | null>(null);

  const create = (e: React.FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setFormError(null);
    api<Organisation>('POST', '/api/admin/organisations', form).then(
      (o) => {
        toast.show(`${o.name} created`);
        setForm({ kind: form.kind, slug: '', name: '' });
        setBusy(false);
        list.reload();
      },
      (err: unknown) => {
        setFormError(asApiError(err));
        setBusy(false);
      },
    );
  };
  const addArea = (e: React.FormEvent) => {
    e.preventDefault();
    setAreaError(null);
    const body: AreaCreate = { id: area.id, name: area.name, feeders: parseFeeders(area.feeders) };
    api<Organisation>('POST', `/api/admin/organisations/${area.operatorId}/areas`, body).then(
      () => {
        toast.show(`Area ${area.id} added`);
        setArea({ ...area, id: '', name: '', feeders: '' });
        list.reload();
      },
      (err: unknown) => setAreaError(asApiError(err)),
    );
  };
  const fe = issuesByField(formError);
  const operators = list.data?.items.filter((o) => o.kind === 'network_operator') ?? [];

  const columns: ColumnDef<Organisation, unknown>[] = [
    { header: 'Name', accessorKey: 'name' },
    { header: 'Kind', accessorFn: (o) => KIND_LABEL[o.kind] },
    { header: 'Slug', accessorKey: 'slug' },
    { header: 'Staff', accessorKey: 'staffCount' },
    { header: 'Meters', accessorKey: 'meterCount' },
    {
      header: 'Areas and feeders',
      enableSorting: false,
      cell: ({ row }) =>
        row.original.kind === 'network_operator'
          ? row.original.areas.map((a) => `${a.name} (${a.feeders.length} feeders)`).join(', ') || '—'
          : '—',
    },
    {
      header: 'Actions',
      enableSorting: false,
      cell: ({ row }) => (
        <button
          type="button"
          className="btn btn-small btn-secondary"
          onClick={() => setRename({ org: row.original, name: row.original.name })}
        >
          Rename<span className="visually-hidden"> {row.original.name}</span>
        </button>
      ),
    },
  ];

  return (
    <div className="adm">
      <PageHeading title="Organisations">Organisations</PageHeading>
      <p>Suppliers sell energy to households; network operators run the wires in their areas.</p>
      {list.error && <ErrorMessage error={list.error} retry={list.reload} />}
      {list.loading && !list.data && <Loading what="organisations" />}
      {list.data && (
        <DataTable
          caption="Organisations"
          columns={columns}
          rows={list.data.items}
          rowKey={(o) => String(o.id)}
          empty={<EmptyState title="No organisations yet">Create the first supplier below.</EmptyState>}
        />
      )}

      <form className="card" onSubmit={create} aria-labelledby={`${id}-new`}>
        <h2 id={`${id}-new`}>New organisation</h2>
        {formError && !formError.issues.length && <ErrorMessage error={formError} />}
        <div className="adm-grid adm-grid-3">
          <div className="field">
            <label htmlFor={`${id}-kind`}>Kind</label>
            <select
              id={`${id}-kind`}
              value={form.kind}
              onChange={(e) => setForm({ ...form, kind: e.target.value as OrganisationCreate['kind'] })}
            >
              <option value="supplier">Supplier</option>
              <option value="network_operator">Network operator</option>
            </select>
          </div>
          <div className={fe.name ? 'field field-error' : 'field'}>
            <label htmlFor={`${id}-name`}>Name</label>
            {fe.name && <p className="error-text">{fe.name}</p>}
            <input
              id={`${id}-name`}
              required
              value={form.name}
              onChange={(e) => setForm({ ...form, name: e.target.value })}
            />
          </div>
          <div className={fe.slug ? 'field field-error' : 'field'}>
            <label htmlFor={`${id}-slug`}>Short name (slug)</label>
            <p className="hint" id={`${id}-slug-hint`}>
              Lower-case letters, digits and -
            </p>
            {fe.slug && <p className="error-text">{fe.slug}</p>}
            <input
              id={`${id}-slug`}
              required
              aria-describedby={`${id}-slug-hint`}
              value={form.slug}
              onChange={(e) => setForm({ ...form, slug: e.target.value })}
            />
          </div>
        </div>
        <div className="form-actions">
          <button type="submit" className="btn" disabled={busy}>
            Create organisation
          </button>
        </div>
      </form>

      <form className="card" onSubmit={addArea} aria-labelledby={`${id}-area`}>
        <h2 id={`${id}-area`}>New network area</h2>
        {operators.length === 0 ? (
          <p className="muted">Create a network operator first: areas and feeders belong to one.</p>
        ) : (
          <>
            {areaError && <ErrorMessage error={areaError} />}
            <div className="adm-grid adm-grid-3">
              <div className="field">
                <label htmlFor={`${id}-op`}>Network operator</label>
                <select
                  id={`${id}-op`}
                  required
                  value={area.operatorId}
                  onChange={(e) => setArea({ ...area, operatorId: e.target.value })}
                >
                  <option value="">Choose…</option>
                  {operators.map((o) => (
                    <option key={o.id} value={o.id}>
                      {o.name}
                    </option>
                  ))}
                </select>
              </div>
              <div className="field">
                <label htmlFor={`${id}-aid`}>Area ID</label>
                <input
                  id={`${id}-aid`}
                  required
                  value={area.id}
                  onChange={(e) => setArea({ ...area, id: e.target.value })}
                />
              </div>
              <div className="field">
                <label htmlFor={`${id}-aname`}>Area name</label>
                <input
                  id={`${id}-aname`}
                  required
                  value={area.name}
                  onChange={(e) => setArea({ ...area, name: e.target.value })}
                />
              </div>
            </div>
            <div className="field">
              <label htmlFor={`${id}-feeders`}>Feeders</label>
              <p className="hint" id={`${id}-feeders-hint`}>
                One per line: ID, then a name (e.g. “N1-F3 Station Road”).
              </p>
              <textarea
                id={`${id}-feeders`}
                rows={3}
                aria-describedby={`${id}-feeders-hint`}
                value={area.feeders}
                onChange={(e) => setArea({ ...area, feeders: e.target.value })}
              />
            </div>
            <div className="form-actions">
              <button type="submit" className="btn">
                Add area
              </button>
            </div>
          </>
        )}
      </form>

      <ConfirmDialog
        open={rename !== null}
        title={`Rename ${rename?.org.name ?? ''}`}
        confirmLabel="Rename"
        canConfirm={(rename?.name.trim().length ?? 0) >= 2}
        onCancel={() => setRename(null)}
        onConfirm={() => {
          if (!rename) return;
          api<Organisation>('PATCH', `/api/admin/organisations/${rename.org.id}`, { name: rename.name }).then(
            (o) => {
              toast.show(`Renamed to ${o.name}`);
              setRename(null);
              list.reload();
            },
            (err: unknown) => toast.show(asApiError(err).message, 'bad'),
          );
        }}
      >
        <div className="field">
          <label htmlFor={`${id}-rename`}>New name</label>
          <input
            id={`${id}-rename`}
            value={rename?.name ?? ''}
            onChange={(e) => rename && setRename({ ...rename, name: e.target.value })}
          />
        </div>
      </ConfirmDialog>
    </div>
  );
}
