import { useId, useState } from 'react';
import type {
  OrganisationList,
  StaffUser,
  StaffUserCreate,
  StaffUserIssued,
  StaffUserQuery,
  StaffUserReset,
} from '@kilowire/contract';
import { api, ApiError, qs } from '../../api.ts';
import { ErrorMessage, issuesByField, Loading, PageHeading, useApi, useSession } from '../../common.tsx';
import { Badge, ConfirmDialog, DataTable, EmptyState, useToast, type ColumnDef } from '../../ui/index.ts';
import { asApiError, fmtTime, OnceSecret, unsorted, usePaged } from './shared.tsx';
import './admin.css';

const STATUS_TONE = { active: 'good', invited: 'info', disabled: 'bad' } as const;
const ROLE_LABEL = {
  supplier: 'Supplier staff',
  operator: 'Network operator staff',
  admin: 'Platform admin',
} as const;

type Pending =
  | { kind: 'disable' | 'enable'; user: StaffUser }
  | { kind: 'reset'; user: StaffUser; method: 'invite' | 'password'; password: string }
  | { kind: 'role'; user: StaffUser; to: 'agent' | 'admin' };

/**
 * Staff accounts. Administrators manage every organisation's staff (and platform admins);
 * a supplier admin manages their own organisation's. New people get a one-time invitation
 * link or an initial password they must change when they first sign in.
 */
export default function StaffPage() {
  const { me } = useSession();
  const isAdmin = me.user.role === 'admin';
  const id = useId();
  const toast = useToast();
  const [q, setQ] = useState('');
  const [search, setSearch] = useState('');
  const list = usePaged<StaffUser>(
    `/api/staff-users${qs<Partial<StaffUserQuery>>({ q: search || undefined, limit: 50 })}`,
  );
  const orgs = useApi<OrganisationList>(isAdmin ? '/api/admin/organisations' : null);
  const [form, setForm] = useState({
    email: '',
    name: '',
    orgId: '',
    staffRole: 'agent' as 'agent' | 'admin',
    platformAdmin: false,
    method: 'invite' as 'invite' | 'password',
    password: '',
  });
  const [formError, setFormError] = useState<ApiError | null>(null);
  const [issued, setIssued] = useState<{ who: string; issued: StaffUserIssued; password?: string } | null>(
    null,
  );
  const [pending, setPending] = useState<Pending | null>(null);
  const [working, setWorking] = useState(false);

  const create = (e: React.FormEvent) => {
    e.preventDefault();
    setFormError(null);
    const body: StaffUserCreate = {
      email: form.email,
      name: form.name,
      staffRole: form.staffRole,
      ...(isAdmin ? { platformAdmin: form.platformAdmin } : {}),
      ...(isAdmin && !form.platformAdmin ? { orgId: Number(form.orgId) } : {}),
      access:
        form.method === 'invite' ? { method: 'invite' } : { method: 'password', password: form.password },
    };
    setWorking(true);
    api<StaffUserIssued>('POST', '/api/staff-users', body).then(
      (r) => {
        setIssued({
          who: r.user.email,
          issued: r,
          ...(form.method === 'password' ? { password: form.password } : {}),
        });
        setForm({ ...form, email: '', name: '', password: '' });
        setWorking(false);
        toast.show(`${r.user.name} added`);
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
    setWorking(true);
    const u = p.user;
    const done = (msg: string) => {
      setWorking(false);
      setPending(null);
      toast.show(msg);
      list.reload();
    };
    const fail = (err: unknown) => {
      setWorking(false);
      toast.show(asApiError(err).message, 'bad');
    };
    if (p.kind === 'disable' || p.kind === 'enable') {
      api<StaffUser>('POST', `/api/staff-users/${u.id}/${p.kind}`).then(
        () => done(`${u.name} ${p.kind === 'disable' ? 'disabled' : 'enabled'}`),
        fail,
      );
    } else if (p.kind === 'reset') {
      const body: StaffUserReset =
        p.method === 'invite' ? { method: 'invite' } : { method: 'password', password: p.password };
      api<StaffUserIssued>('POST', `/api/staff-users/${u.id}/reset`, body).then((r) => {
        setIssued({
          who: u.email,
          issued: r,
          ...(p.method === 'password' ? { password: p.password } : {}),
        });
        done(`Access reset for ${u.name}`);
      }, fail);
    } else if (p.kind === 'role') {
      api<StaffUser>('PATCH', `/api/staff-users/${u.id}`, { staffRole: p.to }).then(
        () => done(`${u.name} is now ${p.to === 'admin' ? 'an admin' : 'an agent'}`),
        fail,
      );
    }
  };

  const columns: ColumnDef<StaffUser, unknown>[] = [
    {
      header: 'Name',
      accessorKey: 'name',
      cell: ({ row }) => (
        <>
          <strong>{row.original.name}</strong>
          <br />
          <span className="muted">{row.original.email}</span>
        </>
      ),
    },
    ...(isAdmin
      ? [
          {
            header: 'Organisation',
            accessorFn: (u: StaffUser) => u.organisation?.name ?? 'Kilowire platform',
          },
        ]
      : []),
    {
      header: 'Role',
      accessorFn: (u) => (u.role === 'admin' ? ROLE_LABEL.admin : `${ROLE_LABEL[u.role]} · ${u.staffRole}`),
    },
    {
      header: 'Status',
      accessorKey: 'status',
      cell: ({ row }) => {
        const u = row.original;
        if (u.status === 'active' && u.mustChangePassword) return <Badge tone="warn">Initial password</Badge>;
        return (
          <Badge tone={STATUS_TONE[u.status]}>
            {u.status === 'invited' ? 'Invited' : u.status === 'active' ? 'Active' : 'Disabled'}
          </Badge>
        );
      },
    },
    { header: 'Added', accessorFn: (u) => fmtTime(u.createdAt) },
    {
      header: 'Actions',
      enableSorting: false,
      cell: ({ row }) => {
        const u = row.original;
        if (u.id === me.user.id) return <span className="muted">You</span>;
        return (
          <div className="adm-actions">
            <button
              type="button"
              className="btn btn-small btn-secondary"
              onClick={() => setPending({ kind: u.disabled ? 'enable' : 'disable', user: u })}
            >
              {u.disabled ? 'Enable' : 'Disable'}
              <span className="visually-hidden"> {u.name}</span>
            </button>
            <button
              type="button"
              className="btn btn-small btn-secondary"
              onClick={() => setPending({ kind: 'reset', user: u, method: 'invite', password: '' })}
            >
              Reset access<span className="visually-hidden"> for {u.name}</span>
            </button>
            {u.staffRole && (
              <button
                type="button"
                className="btn btn-small btn-secondary"
                onClick={() =>
                  setPending({ kind: 'role', user: u, to: u.staffRole === 'admin' ? 'agent' : 'admin' })
                }
              >
                {u.staffRole === 'admin' ? 'Make agent' : 'Make admin'}
                <span className="visually-hidden"> ({u.name})</span>
              </button>
            )}
          </div>
        );
      },
    },
  ];
  const fe = issuesByField(formError);
  const orgChoices = orgs.data?.items ?? [];

  return (
    <div className="adm">
      <PageHeading title="Staff">Staff</PageHeading>
      <p>
        {isAdmin
          ? 'Everyone who works in Kilowire: suppliers’ and network operators’ staff, and platform administrators.'
          : `The people of ${me.organisation?.name ?? 'your organisation'} who use this console.`}
      </p>

      {issued && (
        <OnceSecret
          title={
            issued.issued.invitePath
              ? `Invitation link for ${issued.who}`
              : `Initial password for ${issued.who}`
          }
          value={
            issued.issued.invitePath
              ? `${location.origin}${issued.issued.invitePath}`
              : (issued.password ?? '')
          }
        >
          <p>
            {issued.issued.invitePath
              ? `Send it to them; it works once, until ${fmtTime(issued.issued.inviteExpiresAt)}.`
              : 'They must choose their own password when they first sign in.'}
          </p>
        </OnceSecret>
      )}

      <form
        className="toolbar"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          setSearch(q.trim());
        }}
      >
        <div className="field">
          <label htmlFor={`${id}-q`}>Find by name or email</label>
          <input id={`${id}-q`} type="search" value={q} onChange={(e) => setQ(e.target.value)} />
        </div>
        <button type="submit" className="btn btn-secondary">
          Search
        </button>
      </form>
      {list.error && <ErrorMessage error={list.error} retry={list.reload} />}
      {!list.items && !list.error && <Loading what="staff" />}
      {list.items && (
        <DataTable
          caption="Staff users"
          columns={unsorted(columns)}
          rows={list.items}
          rowKey={(u) => String(u.id)}
          busy={list.busy}
          empty={
            <EmptyState title={search ? 'Nobody matches' : 'No staff yet'}>
              {search ? 'Try another name or email.' : 'Add the first person below.'}
            </EmptyState>
          }
        />
      )}
      {list.hasMore && (
        <button type="button" className="btn btn-secondary" onClick={list.more} disabled={list.busy}>
          Show more
        </button>
      )}

      <form className="card" onSubmit={create} aria-labelledby={`${id}-new`}>
        <h2 id={`${id}-new`}>Add a person</h2>
        {formError && !formError.issues.length && <ErrorMessage error={formError} />}
        <div className="adm-grid">
          <div className={fe.email ? 'field field-error' : 'field'}>
            <label htmlFor={`${id}-email`}>Work email</label>
            {fe.email && <p className="error-text">{fe.email}</p>}
            <input
              id={`${id}-email`}
              type="email"
              required
              autoComplete="off"
              value={form.email}
              onChange={(e) => setForm({ ...form, email: e.target.value })}
            />
          </div>
          <div className={fe.name ? 'field field-error' : 'field'}>
            <label htmlFor={`${id}-name`}>Name</label>
            <input
              id={`${id}-name`}
              required
              autoComplete="off"
              value={form.name}
              onChange={(e) => setForm({ ...form, name: e.target.value })}
            />
          </div>
          {isAdmin && (
            <div className="field">
              <label htmlFor={`${id}-org`}>Organisation</label>
              <select
                id={`${id}-org`}
                value={form.platformAdmin ? 'platform' : form.orgId}
                required
                onChange={(e) =>
                  setForm({
                    ...form,
                    platformAdmin: e.target.value === 'platform',
                    orgId: e.target.value === 'platform' ? '' : e.target.value,
                  })
                }
              >
                <option value="">Choose…</option>
                {orgChoices.map((o) => (
                  <option key={o.id} value={o.id}>
                    {o.name}
                  </option>
                ))}
                <option value="platform">Kilowire platform (administrator)</option>
              </select>
            </div>
          )}
          {!form.platformAdmin && (
            <div className="field">
              <label htmlFor={`${id}-role`}>Role</label>
              <p className="hint" id={`${id}-role-hint`}>
                Agents act on one meter at a time; admins also approve, price and manage staff.
              </p>
              <select
                id={`${id}-role`}
                aria-describedby={`${id}-role-hint`}
                value={form.staffRole}
                onChange={(e) => setForm({ ...form, staffRole: e.target.value as 'agent' | 'admin' })}
              >
                <option value="agent">Agent</option>
                <option value="admin">Admin</option>
              </select>
            </div>
          )}
        </div>
        <fieldset className="field">
          <legend>How they get in</legend>
          <label>
            <input
              type="radio"
              name={`${id}-method`}
              checked={form.method === 'invite'}
              onChange={() => setForm({ ...form, method: 'invite' })}
            />{' '}
            A one-time invitation link (they choose their password)
          </label>
          <br />
          <label>
            <input
              type="radio"
              name={`${id}-method`}
              checked={form.method === 'password'}
              onChange={() => setForm({ ...form, method: 'password' })}
            />{' '}
            An initial password they must change at first sign-in
          </label>
        </fieldset>
        {form.method === 'password' && (
          <div className={fe['access.password'] ? 'field field-error' : 'field'}>
            <label htmlFor={`${id}-pw`}>Initial password (at least 10 characters)</label>
            {fe['access.password'] && <p className="error-text">{fe['access.password']}</p>}
            <input
              id={`${id}-pw`}
              type="text"
              autoComplete="off"
              minLength={10}
              required
              value={form.password}
              onChange={(e) => setForm({ ...form, password: e.target.value })}
            />
          </div>
        )}
        <div className="form-actions">
          <button type="submit" className="btn" disabled={working}>
            Add person
          </button>
        </div>
      </form>

      <ConfirmDialog
        open={pending !== null}
        title={
          pending?.kind === 'disable'
            ? `Disable ${pending.user.name}?`
            : pending?.kind === 'enable'
              ? `Enable ${pending.user.name}?`
              : pending?.kind === 'reset'
                ? `Reset access for ${pending.user.name}?`
                : pending?.kind === 'role'
                  ? `Make ${pending.user.name} ${pending.to === 'admin' ? 'an admin' : 'an agent'}?`
                  : ''
        }
        confirmLabel={
          pending?.kind === 'disable'
            ? 'Disable'
            : pending?.kind === 'enable'
              ? 'Enable'
              : pending?.kind === 'reset'
                ? 'Reset access'
                : 'Change role'
        }
        danger={pending?.kind === 'disable' || pending?.kind === 'reset'}
        busy={working}
        canConfirm={
          !(pending?.kind === 'reset' && pending.method === 'password' && pending.password.length < 10)
        }
        onCancel={() => setPending(null)}
        onConfirm={run}
      >
        {pending?.kind === 'disable' && (
          <p>They are signed out everywhere at once and cannot sign in until enabled.</p>
        )}
        {pending?.kind === 'enable' && <p>They can sign in again with their password.</p>}
        {pending?.kind === 'role' && (
          <p>
            {pending.to === 'admin'
              ? 'Admins also approve actions, change prices, run bills and manage staff.'
              : 'Agents read and act on one meter at a time.'}
          </p>
        )}
        {pending?.kind === 'reset' && (
          <>
            <p>Their current password stops working and they are signed out everywhere.</p>
            <fieldset className="field">
              <legend>New access</legend>
              <label>
                <input
                  type="radio"
                  name={`${id}-reset`}
                  checked={pending.method === 'invite'}
                  onChange={() => setPending({ ...pending, method: 'invite' })}
                />{' '}
                A new invitation link
              </label>
              <br />
              <label>
                <input
                  type="radio"
                  name={`${id}-reset`}
                  checked={pending.method === 'password'}
                  onChange={() => setPending({ ...pending, method: 'password' })}
                />{' '}
                An initial password
              </label>
            </fieldset>
            {pending.method === 'password' && (
              <div className="field">
                <label htmlFor={`${id}-reset-pw`}>Initial password (at least 10 characters)</label>
                <input
                  id={`${id}-reset-pw`}
                  type="text"
                  autoComplete="off"
                  value={pending.password}
                  onChange={(e) => setPending({ ...pending, password: e.target.value })}
                />
              </div>
            )}
          </>
        )}
      </ConfirmDialog>
    </div>
  );
}
