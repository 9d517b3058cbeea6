import { useId, useState, type FormEvent } from 'react';
import type {
  TamperActionBody,
  TamperCaseAction,
  TamperCaseDetail,
  TamperCaseEntry,
  TamperStatusBody,
} from '@kilowire/contract';
import { api, ApiError } from '../../api.ts';
import { ErrorMessage, issuesByField, Loading, PageHeading, useApi } from '../../common.tsx';
import { formatDateTime } from '../../format.ts';
import { Link } from '../../router.tsx';
import { EmptyState, Timeline, useToast } from '../../ui/index.ts';
import { CaseStatus, STAFF_TZ, STATUS_LABEL } from './TamperCases.tsx';
import './tamper.css';

export const ACTION_LABEL: Record<TamperCaseAction, string> = {
  site_visit_booked: 'Site visit booked',
  site_visit_done: 'Site visit done',
  disconnect: 'Supply disconnected',
  reconnect: 'Supply reconnected',
  meter_exchanged: 'Meter exchanged',
  other: 'Other action',
};

/** What staff record here; disconnect and reconnect happen on the meter page and are noted there. */
const RECORDABLE: TamperCaseAction[] = ['site_visit_booked', 'site_visit_done', 'meter_exchanged', 'other'];

function entryText(e: TamperCaseEntry): string {
  if (e.kind === 'status') {
    const to = typeof e.data?.to === 'string' ? e.data.to : null;
    const label = to && to in STATUS_LABEL ? STATUS_LABEL[to as keyof typeof STATUS_LABEL] : to;
    return to === 'open' ? 'Case opened' : `Moved to ${label ?? 'a new status'}`;
  }
  if (e.kind === 'action' && e.action) {
    const visit = typeof e.data?.visitDate === 'string' ? ` for ${e.data.visitDate}` : '';
    return `${ACTION_LABEL[e.action]}${visit}`;
  }
  return 'Note';
}

function useSubmit<T>(id: number, path: string, onDone: (d: TamperCaseDetail) => void) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const send = (body: T) => {
    setBusy(true);
    setError(null);
    api<TamperCaseDetail>('POST', `/api/tamper-cases/${id}/${path}`, body).then(
      (d) => {
        setBusy(false);
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

/** One tamper case: the meter and household, the events behind it, its timeline and what to do next. */
export default function TamperCasePage({ param }: { param?: string }) {
  const id = Number(param);
  const valid = Number.isInteger(id) && id > 0;
  const loaded = useApi<TamperCaseDetail>(valid ? `/api/tamper-cases/${id}` : null);
  const [fresh, setFresh] = useState<TamperCaseDetail | null>(null);
  const d = fresh && fresh.id === id ? fresh : loaded.data;

  if (!valid)
    return (
      <>
        <PageHeading title="Tamper case">Tamper case</PageHeading>
        <EmptyState title="No such case" action={<Link href="/tamper-cases">All tamper cases</Link>} />
      </>
    );
  return (
    <>
      <PageHeading title={`Tamper case ${id}`}>Tamper case {id}</PageHeading>
      <p>
        <Link href="/tamper-cases">← All tamper cases</Link>
      </p>
      {loaded.error && <ErrorMessage error={loaded.error} retry={loaded.reload} />}
      {loaded.loading && !d && <Loading what="the case" />}
      {d && (
        <div className="case-layout">
          <div className="case-main">
            <section className="card" aria-labelledby="case-facts">
              <h2 id="case-facts">
                <CaseStatus status={d.status} /> Meter {d.serial}
              </h2>
              <dl className="case-facts">
                <dt>Household</dt>
                <dd>
                  {d.household ?? 'No account'}
                  {d.consumerId && <span className="muted"> · {d.consumerId}</span>}
                </dd>
                <dt>Opened</dt>
                <dd>{formatDateTime(d.openedAt, STAFF_TZ)}</dd>
                <dt>Supply</dt>
                <dd>{d.meter.relay ?? 'unknown'}</dd>
                {d.resolution && (
                  <>
                    <dt>Resolution</dt>
                    <dd>{d.resolution}</dd>
                  </>
                )}
              </dl>
              <p>
                <Link href={`/meters/${encodeURIComponent(d.serial)}`}>Open meter {d.serial}</Link>
                <span className="muted">
                  {' '}
                  to disconnect or reconnect the supply; it is noted on this case.
                </span>
              </p>
            </section>
            <section aria-labelledby="case-events">
              <h2 id="case-events">Tamper events ({d.timeline.events.length})</h2>
              <ul className="case-events">
                {d.timeline.events.map((e) => (
                  <li key={`${e.seq}:${e.idx}`}>
                    <strong>{e.text}</strong>{' '}
                    <span className="muted">{formatDateTime(e.at, d.meter.tz)}</span>
                  </li>
                ))}
              </ul>
            </section>
            <section aria-labelledby="case-timeline">
              <h2 id="case-timeline">Timeline</h2>
              <Timeline
                tz={STAFF_TZ}
                entries={d.timeline.entries.map((e) => ({
                  key: e.id,
                  title: entryText(e),
                  actor: e.actor,
                  at: e.at,
                  text: e.text,
                  kind: e.kind === 'status' ? undefined : e.kind,
                }))}
              />
            </section>
          </div>
          <div className="case-side">
            <AddNote id={id} onDone={setFresh} />
            {d.status !== 'resolved' && <MoveStatus d={d} onDone={setFresh} />}
            {d.status !== 'resolved' && <RecordAction id={id} onDone={setFresh} />}
          </div>
        </div>
      )}
    </>
  );
}

function AddNote({ id, onDone }: { id: number; onDone: (d: TamperCaseDetail) => void }) {
  const uid = useId();
  const toast = useToast();
  const [text, setText] = useState('');
  const s = useSubmit<{ text: string }>(id, 'notes', (d) => {
    setText('');
    toast.show('Note added');
    onDone(d);
  });
  const err = issuesByField(s.error).text;
  return (
    <form
      className="card"
      noValidate
      onSubmit={(e: FormEvent) => {
        e.preventDefault();
        s.send({ text });
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

function MoveStatus({ d, onDone }: { d: TamperCaseDetail; onDone: (d: TamperCaseDetail) => void }) {
  const uid = useId();
  const toast = useToast();
  const to = d.status === 'open' ? 'investigating' : 'resolved';
  const [text, setText] = useState('');
  const s = useSubmit<TamperStatusBody>(d.id, 'status', (x) => {
    setText('');
    toast.show(`Case moved to ${STATUS_LABEL[x.status].toLowerCase()}`);
    onDone(x);
  });
  const err = issuesByField(s.error).text;
  return (
    <form
      className="card"
      noValidate
      onSubmit={(e: FormEvent) => {
        e.preventDefault();
        s.send({ status: to, ...(text.trim() ? { text } : {}) });
      }}
    >
      <h2>{to === 'investigating' ? 'Start investigating' : 'Resolve the case'}</h2>
      <div className={`field${err ? ' field-error' : ''}`}>
        <label htmlFor={`${uid}-text`}>
          {to === 'resolved' ? 'Resolution (required)' : 'Comment (optional)'}
        </label>
        <textarea
          id={`${uid}-text`}
          rows={2}
          value={text}
          maxLength={2000}
          onChange={(e) => setText(e.target.value)}
          aria-invalid={err ? true : undefined}
          aria-describedby={err ? `${uid}-err` : undefined}
        />
        {err && (
          <p className="error-text" id={`${uid}-err`}>
            {err}
          </p>
        )}
      </div>
      {s.error && !err && <ErrorMessage error={s.error} />}
      <div className="form-actions">
        <button type="submit" className="btn" disabled={s.busy}>
          {to === 'investigating' ? 'Move to investigating' : 'Resolve case'}
        </button>
      </div>
    </form>
  );
}

function RecordAction({ id, onDone }: { id: number; onDone: (d: TamperCaseDetail) => void }) {
  const uid = useId();
  const toast = useToast();
  const [action, setAction] = useState<TamperCaseAction>('site_visit_booked');
  const [visitDate, setVisitDate] = useState('');
  const [text, setText] = useState('');
  const s = useSubmit<TamperActionBody>(id, 'actions', (d) => {
    setText('');
    setVisitDate('');
    toast.show(`${ACTION_LABEL[action]} recorded`);
    onDone(d);
  });
  const f = issuesByField(s.error);
  return (
    <form
      className="card"
      noValidate
      onSubmit={(e: FormEvent) => {
        e.preventDefault();
        s.send({
          action,
          ...(text.trim() ? { text } : {}),
          ...(action === 'site_visit_booked' && visitDate ? { visitDate } : {}),
        });
      }}
    >
      <h2>Record an action</h2>
      <div className="field">
        <label htmlFor={`${uid}-action`}>Action</label>
        <select
          id={`${uid}-action`}
          value={action}
          onChange={(e) => setAction(e.target.value as TamperCaseAction)}
        >
          {RECORDABLE.map((a) => (
            <option key={a} value={a}>
              {ACTION_LABEL[a]}
            </option>
          ))}
        </select>
      </div>
      {action === 'site_visit_booked' && (
        <div className={`field${f.visitDate ? ' field-error' : ''}`}>
          <label htmlFor={`${uid}-date`}>Visit date</label>
          <input
            id={`${uid}-date`}
            type="date"
            value={visitDate}
            onChange={(e) => setVisitDate(e.target.value)}
            aria-invalid={f.visitDate ? true : undefined}
            aria-describedby={f.visitDate ? `${uid}-date-err` : undefined}
          />
          {f.visitDate && (
            <p className="error-text" id={`${uid}-date-err`}>
              Choose the date of the visit.
            </p>
          )}
        </div>
      )}
      <div className="field">
        <label htmlFor={`${uid}-text`}>Details (optional)</label>
        <input id={`${uid}-text`} value={text} maxLength={2000} onChange={(e) => setText(e.target.value)} />
      </div>
      {s.error && !f.visitDate && <ErrorMessage error={s.error} />}
      <div className="form-actions">
        <button type="submit" className="btn" disabled={s.busy}>
          Record action
        </button>
      </div>
    </form>
  );
}
