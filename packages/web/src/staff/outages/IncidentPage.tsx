import { useEffect, useId, useMemo, useState, type FormEvent } from 'react';
import type {
  IncidentDetail,
  IncidentEtrBody,
  IncidentNoteBody,
  IncidentStatusBody,
  IncidentTransition,
} from '@kilowire/contract';
import { api, ApiError } from '../../api.ts';
import { ErrorMessage, issuesByField, Loading, useApi, useNow, useSession } from '../../common.tsx';
import { formatDateTime } from '../../format.ts';
import { Link } from '../../router.tsx';
import {
  Badge,
  ConfirmDialog,
  DataTable,
  EmptyState,
  PageHeader,
  Timeline,
  useToast,
  type ColumnDef,
} from '../../ui/index.ts';
import {
  duration,
  IncidentStatusBadge,
  isOpen,
  KIND_LABEL,
  NETWORK_TZ,
  SlaBadge,
  SOURCE_LABEL,
  STATUS_LABEL,
} from './words.tsx';
import './outages.css';

type Meter = IncidentDetail['meterList'][number];
type Entry = IncidentDetail['timeline'][number];

const ENTRY_LABEL: Record<Entry['kind'], string> = {
  detected: 'Outage detected',
  meter_joined: 'Meters joined',
  acknowledged: 'Acknowledged',
  dispatched: 'Crew dispatched',
  etr_set: 'Estimated restoration',
  restored: 'Restored',
  stragglers: 'Meters not back',
  closed: 'Closed',
  note: 'Note',
  sla_at_risk: 'SLA at risk',
  sla_breached: 'SLA breached',
};

/** An entry's words; an estimate is shown in the console's zone rather than as stored. */
function entryText(e: Entry): string | null {
  if (e.kind === 'etr_set') {
    const etr = typeof e.data?.etr === 'string' ? e.data.etr : null;
    return etr ? `Power back by ${formatDateTime(etr, NETWORK_TZ)}` : 'Estimate withdrawn';
  }
  return e.text;
}

/** What the control room can do next from each status (the API refuses the rest with 409). */
const NEXT: Record<IncidentDetail['status'], IncidentTransition[]> = {
  detected: ['acknowledged', 'dispatched', 'restored'],
  acknowledged: ['dispatched', 'restored'],
  dispatched: ['restored'],
  restored: ['closed'],
  closed: [],
};
const ACTION_LABEL: Record<IncidentTransition, string> = {
  acknowledged: 'Acknowledge',
  dispatched: 'Crew dispatched',
  restored: 'Mark restored',
  closed: 'Close incident',
};

function useSend(id: number, onDone: (d: IncidentDetail) => void) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const send = (method: 'POST' | 'PUT', path: string, body: unknown, after?: () => void) => {
    setBusy(true);
    setError(null);
    api<IncidentDetail>(method, `/api/incidents/${id}/${path}`, body).then(
      (d) => {
        setBusy(false);
        after?.();
        onDone(d);
      },
      (err: unknown) => {
        setBusy(false);
        setError(err instanceof ApiError ? err : new ApiError(0, 'CLIENT', String(err)));
      },
    );
  };
  return { busy, error, send };
}

/** A datetime-local value (the browser's zone) for an ISO instant, and back. */
function toLocalInput(iso: string | null): string {
  if (!iso) return '';
  const d = new Date(iso);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

/**
 * One incident: where it stands (status, SLA clock, estimate), what to do next, the
 * households (a count and postcodes: the operator sees no names), the meters with those that
 * did not come back, and the timeline. Refreshes every 10 s while the incident is open.
 */
export default function IncidentPage({ param }: { param?: string }) {
  const id = Number(param);
  const valid = Number.isInteger(id) && id > 0;
  const loaded = useApi<IncidentDetail>(valid ? `/api/incidents/${id}` : null);
  const [fresh, setFresh] = useState<IncidentDetail | null>(null);
  const d = fresh?.id === id ? fresh : loaded.data;
  const { me } = useSession();
  const canWork = me.capabilities.includes('incidents.manage');
  const now = useNow(10_000);
  const reload = loaded.reload;
  const open = d ? isOpen(d.status) : false;
  useEffect(() => {
    if (!open) return;
    const t = setInterval(() => {
      setFresh(null);
      reload();
    }, 10_000);
    return () => clearInterval(t);
  }, [open, reload]);
  const onDone = (x: IncidentDetail) => setFresh(x);

  const meterColumns = useMemo<ColumnDef<Meter, unknown>[]>(
    () => [
      { id: 'serial', header: 'Meter', accessorKey: 'serial' },
      { id: 'source', header: 'Reported by', accessorFn: (m) => SOURCE_LABEL[m.source] },
      {
        id: 'failed',
        header: 'Power off',
        accessorKey: 'failedAt',
        cell: ({ row }) => formatDateTime(row.original.failedAt, NETWORK_TZ),
      },
      {
        id: 'restored',
        header: 'Power back',
        accessorKey: 'restoredAt',
        cell: ({ row }) =>
          row.original.restoredAt ? (
            formatDateTime(row.original.restoredAt, NETWORK_TZ)
          ) : row.original.straggler ? (
            <Badge tone="bad">Did not come back</Badge>
          ) : (
            <Badge tone="warn">Still off</Badge>
          ),
      },
    ],
    [],
  );

  if (!valid)
    return (
      <>
        <PageHeader title="Incident" />
        <EmptyState title="No such incident" action={<Link href="/network">All incidents</Link>} />
      </>
    );
  const title = d
    ? d.kind === 'feeder'
      ? `Outage on feeder ${d.feederId}`
      : `Outage at meter ${d.serial}`
    : 'Incident';
  const stragglers = d?.meterList.filter((m) => m.straggler) ?? [];
  return (
    <div className="incident-page">
      <PageHeader
        title={title}
        heading={
          <>
            {title} <span className="muted incident-no">#{id}</span>
          </>
        }
        description={<Link href="/network">← Network overview</Link>}
      />
      {loaded.error?.code === 'NOT_FOUND' && !d && (
        <EmptyState title="No such incident" action={<Link href="/network">All incidents</Link>}>
          It does not exist, or it is on another operator's network.
        </EmptyState>
      )}
      {loaded.error && loaded.error.code !== 'NOT_FOUND' && (
        <ErrorMessage error={loaded.error} retry={reload} />
      )}
      {loaded.loading && !d && <Loading what="the incident" />}
      {d && (
        <div className="incident-layout">
          <div className="incident-facts">
            <section className="card" aria-labelledby="inc-state">
              <h2 id="inc-state" className="incident-badges">
                <IncidentStatusBadge status={d.status} /> <SlaBadge state={d.slaState} open={open} />
              </h2>
              <dl className="facts">
                <div>
                  <dt>Kind</dt>
                  <dd>{KIND_LABEL[d.kind]}</dd>
                </div>
                <div>
                  <dt>Area · feeder</dt>
                  <dd>
                    {d.areaId} · {d.feederId ?? 'none'}
                  </dd>
                </div>
                <div>
                  <dt>Power off since</dt>
                  <dd>
                    {formatDateTime(d.firstFailureAt, NETWORK_TZ)}
                    {open && <span className="muted"> ({duration(now - Date.parse(d.firstFailureAt))})</span>}
                  </dd>
                </div>
                <div>
                  <dt>Detected</dt>
                  <dd>
                    {formatDateTime(d.detectedAt, NETWORK_TZ)}{' '}
                    <span className="muted">
                      ({duration(Date.parse(d.detectedAt) - Date.parse(d.firstFailureAt))} after the first
                      failure)
                    </span>
                  </dd>
                </div>
                <div>
                  <dt>Restore by (SLA)</dt>
                  <dd>{formatDateTime(d.slaTargetAt, NETWORK_TZ)}</dd>
                </div>
                <div>
                  <dt>Estimated restoration</dt>
                  <dd>{d.etr ? formatDateTime(d.etr, NETWORK_TZ) : 'None given'}</dd>
                </div>
                {d.restoredAt && (
                  <div>
                    <dt>Restored</dt>
                    <dd>{formatDateTime(d.restoredAt, NETWORK_TZ)}</dd>
                  </div>
                )}
                <div>
                  <dt>Meters off</dt>
                  <dd>
                    {d.metersOff} of {d.meters}
                  </dd>
                </div>
                <div>
                  <dt>Households</dt>
                  <dd>{d.households.count}</dd>
                </div>
              </dl>
              {d.households.postcodes.length > 0 && (
                <p className="incident-postcodes">
                  <span className="muted">Postcodes: </span>
                  {d.households.postcodes.join(', ')}
                </p>
              )}
              {d.followsId !== null && (
                <p>
                  Follows up a meter that did not come back after{' '}
                  <Link href={`/incidents/${d.followsId}`}>incident #{d.followsId}</Link>.
                </p>
              )}
            </section>
          </div>
          <div className="incident-side">
            {canWork && <Actions d={d} onDone={onDone} />}
            {canWork && open && <EtrForm d={d} onDone={onDone} />}
            {canWork && <NoteForm id={d.id} onDone={onDone} />}
            {!canWork && (
              <p className="notice notice-info">
                You can follow this incident; the operator's control room works it.
              </p>
            )}
          </div>
          <div className="incident-rest">
            {stragglers.length > 0 && (
              <section className="card" aria-labelledby="inc-stragglers">
                <h2 id="inc-stragglers">Meters that did not come back ({stragglers.length})</h2>
                <p className="muted">Each is followed up as a single-household incident.</p>
                <ul className="incident-stragglers">
                  {stragglers.map((m, i) => (
                    <li key={m.serial}>
                      {m.serial}
                      {d.followUps[i] !== undefined && (
                        <>
                          {' '}
                          · <Link href={`/incidents/${d.followUps[i]}`}>incident #{d.followUps[i]}</Link>
                        </>
                      )}
                    </li>
                  ))}
                </ul>
              </section>
            )}

            <section aria-labelledby="inc-meters">
              <h2 id="inc-meters">Affected meters ({d.meterList.length})</h2>
              <DataTable
                caption="Affected meters, those still off first"
                columns={meterColumns}
                rows={d.meterList}
                rowKey={(m) => m.serial}
                empty={<EmptyState title="No meters">No meter is in this incident.</EmptyState>}
              />
            </section>

            <section aria-labelledby="inc-timeline">
              <h2 id="inc-timeline">Timeline</h2>
              <Timeline
                tz={NETWORK_TZ}
                entries={d.timeline.map((e) => ({
                  key: e.id,
                  title: ENTRY_LABEL[e.kind],
                  actor: e.actor,
                  at: e.at,
                  text: entryText(e),
                  kind: e.actor ? 'action' : undefined,
                }))}
              />
            </section>
          </div>
        </div>
      )}
    </div>
  );
}

function Actions({ d, onDone }: { d: IncidentDetail; onDone: (d: IncidentDetail) => void }) {
  const toast = useToast();
  const [confirm, setConfirm] = useState<IncidentTransition | null>(null);
  const s = useSend(d.id, (x) => {
    toast.show(`Incident ${STATUS_LABEL[x.status].toLowerCase()}`);
    onDone(x);
  });
  const next = NEXT[d.status];
  if (!next.length) return null;
  const go = (to: IncidentTransition) =>
    s.send('POST', 'status', { to } satisfies IncidentStatusBody, () => setConfirm(null));
  return (
    <section className="card" aria-labelledby="inc-actions">
      <h2 id="inc-actions">Next step</h2>
      <div className="incident-actions">
        {next.map((to, i) => (
          <button
            key={to}
            type="button"
            className={`btn${i === 0 ? '' : ' btn-secondary'}`}
            disabled={s.busy}
            onClick={() => (to === 'restored' || to === 'closed' ? setConfirm(to) : go(to))}
          >
            {ACTION_LABEL[to]}
          </button>
        ))}
      </div>
      {s.error && <ErrorMessage error={s.error} />}
      <ConfirmDialog
        open={confirm !== null}
        title={confirm === 'closed' ? 'Close this incident?' : 'Mark this incident restored?'}
        confirmLabel={confirm ? ACTION_LABEL[confirm] : ''}
        busy={s.busy}
        onConfirm={() => confirm && go(confirm)}
        onCancel={() => setConfirm(null)}
      >
        {confirm === 'closed' ? (
          <p>A closed incident cannot be reopened; a new failure opens a new incident.</p>
        ) : (
          <p>
            Meters that have not reported their power back ({d.metersOff}) will be listed as not back and
            followed up one by one.
          </p>
        )}
      </ConfirmDialog>
    </section>
  );
}

function EtrForm({ d, onDone }: { d: IncidentDetail; onDone: (d: IncidentDetail) => void }) {
  const uid = useId();
  const toast = useToast();
  const [value, setValue] = useState(toLocalInput(d.etr));
  const [local, setLocal] = useState<string | null>(null);
  const s = useSend(d.id, (x) => {
    toast.show(x.etr ? 'Estimate saved; households still off are told' : 'Estimate withdrawn');
    onDone(x);
  });
  const err = local ?? issuesByField(s.error).etr;
  return (
    <form
      className="card"
      noValidate
      onSubmit={(e: FormEvent) => {
        e.preventDefault();
        const t = Date.parse(value);
        if (!value || Number.isNaN(t)) {
          setLocal('Choose a date and time.');
          return;
        }
        setLocal(null);
        s.send('PUT', 'etr', { etr: new Date(t).toISOString() } satisfies IncidentEtrBody);
      }}
    >
      <h2>Estimated restoration</h2>
      <div className={`field${err ? ' field-error' : ''}`}>
        <label htmlFor={`${uid}-etr`}>Power back by</label>
        <input
          id={`${uid}-etr`}
          type="datetime-local"
          value={value}
          onChange={(e) => setValue(e.target.value)}
          aria-invalid={err ? true : undefined}
          aria-describedby={`${uid}-hint${err ? ` ${uid}-err` : ''}`}
        />
        <p className="hint" id={`${uid}-hint`}>
          Your local time. Every household still without power is told, and told again if you change it.
        </p>
        {err && (
          <p className="error-text" id={`${uid}-err`}>
            {err}
          </p>
        )}
      </div>
      {s.error && !err && <ErrorMessage error={s.error} />}
      <div className="form-actions">
        <button type="submit" className="btn" disabled={s.busy}>
          {d.etr ? 'Change estimate' : 'Set estimate'}
        </button>
        {d.etr && (
          <button
            type="button"
            className="btn btn-secondary"
            disabled={s.busy}
            onClick={() => s.send('PUT', 'etr', { etr: null } satisfies IncidentEtrBody, () => setValue(''))}
          >
            Withdraw
          </button>
        )}
      </div>
    </form>
  );
}

function NoteForm({ id, onDone }: { id: number; onDone: (d: IncidentDetail) => void }) {
  const uid = useId();
  const toast = useToast();
  const [text, setText] = useState('');
  const s = useSend(id, (x) => {
    setText('');
    toast.show('Note added');
    onDone(x);
  });
  const err = issuesByField(s.error).text;
  return (
    <form
      className="card"
      noValidate
      onSubmit={(e: FormEvent) => {
        e.preventDefault();
        s.send('POST', 'notes', { text } satisfies IncidentNoteBody);
      }}
    >
      <h2>Add a note</h2>
      <div className={`field${err ? ' field-error' : ''}`}>
        <label htmlFor={`${uid}-note`}>Note</label>
        <textarea
          id={`${uid}-note`}
          rows={3}
          value={text}
          maxLength={2000}
          onChange={(e) => setText(e.target.value)}
          aria-invalid={err ? true : undefined}
          aria-describedby={err ? `${uid}-err` : undefined}
        />
        {err && (
          <p className="error-text" id={`${uid}-err`}>
            Write the note first.
          </p>
        )}
      </div>
      {s.error && !err && <ErrorMessage error={s.error} />}
      <div className="form-actions">
        <button type="submit" className="btn" disabled={s.busy}>
          Add note
        </button>
      </div>
    </form>
  );
}
