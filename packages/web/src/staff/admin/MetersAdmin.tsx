import { useId, useState } from 'react';
import type {
  AdminMeter,
  AdminMeterQuery,
  MeterExchanged,
  MeterIssued,
  MeterProvision,
  ProvisioningOptions,
} from '@kilowire/contract';
import { api, ApiError, qs } from '../../api.ts';
import { ErrorMessage, issuesByField, Loading, PageHeading, useApi } from '../../common.tsx';
import { Badge, ConfirmDialog, DataTable, EmptyState, useToast, type ColumnDef } from '../../ui/index.ts';
import { asApiError, fmtTime, OnceSecret, unsorted, usePaged } from './shared.tsx';
import './admin.css';

type Pending =
  | { kind: 'rotate' | 'decommission'; meter: AdminMeter }
  | { kind: 'exchange'; meter: AdminMeter; newSerial: string };

const EMPTY_FORM = {
  serial: '',
  hardwareClass: 'KW-1P-100A',
  tz: 'Europe/London',
  intervalS: '1800',
  supplierId: '',
  areaId: '',
  feederId: '',
};

/**
 * Meter provisioning: register a meter (its broker credential is shown once), re-key it,
 * decommission it, or exchange it for a new one on the same account.
 */
export default function MetersAdminPage() {
  const id = useId();
  const toast = useToast();
  const [q, setQ] = useState('');
  const [filter, setFilter] = useState<{ q: string; status: '' | 'active' | 'decommissioned' }>({
    q: '',
    status: '',
  });
  const list = usePaged<AdminMeter>(
    `/api/admin/meters${qs<Partial<AdminMeterQuery>>({ q: filter.q || undefined, status: filter.status || undefined, limit: 50 })}`,
  );
  const options = useApi<ProvisioningOptions>('/api/admin/meters/options');
  const [form, setForm] = useState(EMPTY_FORM);
  const [formError, setFormError] = useState<ApiError | null>(null);
  const [secret, setSecret] = useState<{ serial: string; credential: string; what: string } | null>(null);
  const [pending, setPending] = useState<Pending | null>(null);
  const [working, setWorking] = useState(false);

  const register = (e: React.FormEvent) => {
    e.preventDefault();
    setFormError(null);
    setWorking(true);
    const body: MeterProvision = {
      serial: form.serial.trim(),
      hardwareClass: form.hardwareClass.trim(),
      tz: form.tz.trim(),
      intervalS: form.intervalS === '900' ? 900 : 1800,
      supplierId: Number(form.supplierId),
      areaId: form.areaId,
      feederId: form.feederId || null,
    };
    api<MeterIssued>('POST', '/api/admin/meters', body).then(
      (r) => {
        setSecret({ serial: r.meter.serial, credential: r.credential, what: 'registered' });
        setForm({ ...EMPTY_FORM, supplierId: form.supplierId, areaId: form.areaId });
        setWorking(false);
        toast.show(`Meter ${r.meter.serial} registered`);
        list.reload();
      },
      (err: unknown) => {
        setFormError(asApiError(err));
        setWorking(false);
      },
    );
  };

  const run = () => {
    const p = pending;
    if (!p) return;
    const m = p.meter;
    setWorking(true);
    const fail = (err: unknown) => {
      setWorking(false);
      toast.show(asApiError(err).message, 'bad');
    };
    const done = (msg: string) => {
      setWorking(false);
      setPending(null);
      toast.show(msg);
      list.reload();
    };
    if (p.kind === 'rotate') {
      api<MeterIssued>('POST', `/api/admin/meters/${encodeURIComponent(m.serial)}/rotate-credential`).then(
        (r) => {
          setSecret({ serial: m.serial, credential: r.credential, what: 're-keyed' });
          done(`New credential for ${m.serial}; the old one no longer works`);
        },
        fail,
      );
    } else if (p.kind === 'decommission') {
      api<AdminMeter>('POST', `/api/admin/meters/${encodeURIComponent(m.serial)}/decommission`).then(
        () => done(`${m.serial} decommissioned`),
        fail,
      );
    } else if (p.kind === 'exchange') {
      api<MeterExchanged>('POST', `/api/admin/meters/${encodeURIComponent(m.serial)}/exchange`, {
        newSerial: p.newSerial.trim(),
      }).then((r) => {
        setSecret({ serial: r.meter.serial, credential: r.credential, what: `put in place of ${m.serial}` });
        done(`${r.meter.serial} replaces ${m.serial}`);
      }, fail);
    }
  };

  const columns: ColumnDef<AdminMeter, unknown>[] = [
    { header: 'Serial', accessorKey: 'serial', cell: ({ row }) => <strong>{row.original.serial}</strong> },
    {
      header: 'Status',
      accessorKey: 'status',
      cell: ({ row }) =>
        row.original.status === 'active' ? (
          <Badge tone="good">Active</Badge>
        ) : (
          <Badge tone="neutral">
            Decommissioned{row.original.replacedBy ? ` → ${row.original.replacedBy}` : ''}
          </Badge>
        ),
    },
    { header: 'Supplier', accessorFn: (m) => m.supplier.name },
    { header: 'Area', accessorFn: (m) => `${m.area.name}${m.feederId ? ` · ${m.feederId}` : ''}` },
    { header: 'Household', accessorFn: (m) => m.consumerName ?? '—' },
    { header: 'Hardware', accessorKey: 'hardwareClass' },
    {
      header: 'Last seen',
      accessorKey: 'lastSeenAt',
      cell: ({ row }) => (
        <span data-testid={`last-seen-${row.original.serial}`}>{fmtTime(row.original.lastSeenAt)}</span>
      ),
    },
    {
      header: 'Actions',
      enableSorting: false,
      cell: ({ row }) => {
        const m = row.original;
        if (m.status !== 'active') return <span className="muted">{fmtTime(m.decommissionedAt)}</span>;
        return (
          <div className="adm-actions">
            <button
              type="button"
              className="btn btn-small btn-secondary"
              onClick={() => setPending({ kind: 'rotate', meter: m })}
            >
              Rotate key<span className="visually-hidden"> of {m.serial}</span>
            </button>
            <button
              type="button"
              className="btn btn-small btn-secondary"
              onClick={() => setPending({ kind: 'exchange', meter: m, newSerial: '' })}
            >
              Exchange<span className="visually-hidden"> {m.serial}</span>
            </button>
            <button
              type="button"
              className="btn btn-small btn-secondary"
              onClick={() => setPending({ kind: 'decommission', meter: m })}
            >
              Decommission<span className="visually-hidden"> {m.serial}</span>
            </button>
          </div>
        );
      },
    },
  ];

  const fe = issuesByField(formError);
  const areas = options.data?.areas ?? [];
  const feeders = areas.find((a) => a.id === form.areaId)?.feeders ?? [];
  const field = (name: keyof typeof EMPTY_FORM, label: string, input: React.ReactNode, hint?: string) => (
    <div className={fe[name] ? 'field field-error' : 'field'}>
      <label htmlFor={`${id}-${name}`}>{label}</label>
      {hint && <p className="hint">{hint}</p>}
      {fe[name] && <p className="error-text">{fe[name]}</p>}
      {input}
    </div>
  );

  return (
    <div className="adm">
      <PageHeading title="Meters">Meters</PageHeading>
      <p>Register meters, re-key them, take them out of service, or exchange one on a household’s account.</p>

      {secret && (
        <OnceSecret
          title={`Broker credential of ${secret.serial} (${secret.what})`}
          value={secret.credential}
        >
          <p>
            The meter signs in to the MQTT broker with username <strong>{secret.serial}</strong>, client ID{' '}
            <strong>{secret.serial}</strong> and this password.
          </p>
        </OnceSecret>
      )}

      <form
        className="toolbar"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          setFilter({ ...filter, q: q.trim() });
        }}
      >
        <div className="field">
          <label htmlFor={`${id}-q`}>Serial starts with</label>
          <input id={`${id}-q`} type="search" value={q} onChange={(e) => setQ(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor={`${id}-status`}>Status</label>
          <select
            id={`${id}-status`}
            value={filter.status}
            onChange={(e) => setFilter({ ...filter, status: e.target.value as typeof filter.status })}
          >
            <option value="">All</option>
            <option value="active">Active</option>
            <option value="decommissioned">Decommissioned</option>
          </select>
        </div>
        <button type="submit" className="btn btn-secondary">
          Search
        </button>
      </form>
      {list.error && <ErrorMessage error={list.error} retry={list.reload} />}
      {!list.items && !list.error && <Loading what="meters" />}
      {list.items && (
        <DataTable
          caption="Meters"
          columns={unsorted(columns)}
          rows={list.items}
          rowKey={(m) => m.serial}
          busy={list.busy}
          empty={
            <EmptyState title={filter.q || filter.status ? 'No meter matches' : 'No meters yet'}>
              {filter.q || filter.status
                ? 'Try another serial or status.'
                : 'Register the first meter below.'}
            </EmptyState>
          }
        />
      )}
      {list.hasMore && (
        <button type="button" className="btn btn-secondary" onClick={list.more} disabled={list.busy}>
          Show more
        </button>
      )}

      <form className="card" onSubmit={register} aria-labelledby={`${id}-new`}>
        <h2 id={`${id}-new`}>Register a meter</h2>
        {options.error && <ErrorMessage error={options.error} retry={options.reload} />}
        {formError && !formError.issues.length && <ErrorMessage error={formError} />}
        <div className="adm-grid adm-grid-3">
          {field(
            'serial',
            'Serial',
            <input
              id={`${id}-serial`}
              required
              pattern="[A-Za-z0-9_\-]{1,32}"
              value={form.serial}
              onChange={(e) => setForm({ ...form, serial: e.target.value })}
            />,
            'Up to 32 letters, digits, _ or -',
          )}
          {field(
            'hardwareClass',
            'Hardware class',
            <input
              id={`${id}-hardwareClass`}
              required
              value={form.hardwareClass}
              onChange={(e) => setForm({ ...form, hardwareClass: e.target.value })}
            />,
          )}
          {field(
            'tz',
            'Time zone',
            <input
              id={`${id}-tz`}
              required
              value={form.tz}
              onChange={(e) => setForm({ ...form, tz: e.target.value })}
            />,
          )}
          {field(
            'intervalS',
            'Reading interval',
            <select
              id={`${id}-intervalS`}
              value={form.intervalS}
              onChange={(e) => setForm({ ...form, intervalS: e.target.value })}
            >
              <option value="1800">30 minutes</option>
              <option value="900">15 minutes</option>
            </select>,
          )}
          {field(
            'supplierId',
            'Supplier',
            <select
              id={`${id}-supplierId`}
              required
              value={form.supplierId}
              onChange={(e) => setForm({ ...form, supplierId: e.target.value })}
            >
              <option value="">Choose…</option>
              {options.data?.suppliers.map((s) => (
                <option key={s.id} value={s.id}>
                  {s.name}
                </option>
              ))}
            </select>,
          )}
          {field(
            'areaId',
            'Network area',
            <select
              id={`${id}-areaId`}
              required
              value={form.areaId}
              onChange={(e) => setForm({ ...form, areaId: e.target.value, feederId: '' })}
            >
              <option value="">Choose…</option>
              {areas.map((a) => (
                <option key={a.id} value={a.id}>
                  {a.name} ({a.operator})
                </option>
              ))}
            </select>,
          )}
          {field(
            'feederId',
            'Feeder (optional)',
            <select
              id={`${id}-feederId`}
              value={form.feederId}
              disabled={feeders.length === 0}
              onChange={(e) => setForm({ ...form, feederId: e.target.value })}
            >
              <option value="">None</option>
              {feeders.map((f) => (
                <option key={f.id} value={f.id}>
                  {f.name}
                </option>
              ))}
            </select>,
          )}
        </div>
        <div className="form-actions">
          <button type="submit" className="btn" disabled={working}>
            Register meter
          </button>
        </div>
      </form>

      <ConfirmDialog
        open={pending !== null}
        title={
          pending?.kind === 'rotate'
            ? `Rotate the key of ${pending.meter.serial}?`
            : pending?.kind === 'decommission'
              ? `Decommission ${pending.meter.serial}?`
              : pending
                ? `Exchange ${pending.meter.serial}?`
                : ''
        }
        confirmLabel={
          pending?.kind === 'rotate'
            ? 'Rotate key'
            : pending?.kind === 'decommission'
              ? 'Decommission'
              : 'Exchange'
        }
        danger
        busy={working}
        canConfirm={
          !(pending?.kind === 'exchange' && !/^[A-Za-z0-9_-]{1,32}$/.test(pending.newSerial.trim()))
        }
        onCancel={() => setPending(null)}
        onConfirm={run}
      >
        {pending?.kind === 'rotate' && (
          <p>
            The meter is disconnected and its current credential stops working now. Install the new one on the
            meter.
          </p>
        )}
        {pending?.kind === 'decommission' && (
          <p>
            The meter can no longer connect and open commands for it are cancelled. Its readings stay on the
            household’s account. This cannot be undone.
          </p>
        )}
        {pending?.kind === 'exchange' && (
          <>
            <p>
              The new meter takes this one’s place on {pending.meter.consumerName ?? 'its account'}; this one
              is decommissioned and its readings stay on the account.
            </p>
            <div className="field">
              <label htmlFor={`${id}-newserial`}>Serial of the new meter</label>
              <input
                id={`${id}-newserial`}
                value={pending.newSerial}
                onChange={(e) => setPending({ ...pending, newSerial: e.target.value })}
              />
            </div>
          </>
        )}
      </ConfirmDialog>
    </div>
  );
}
