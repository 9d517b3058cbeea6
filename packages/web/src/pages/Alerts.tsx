import { useEffect, useId, useState, type FormEvent } from 'react';
import type { Alert, AlertPage, AlertsQuery, AlertType } from '@kilowire/contract';
import { ALERT_TYPES, HOUSEHOLD_ALERT_TYPES, OPERATOR_ALERT_TYPES } from '@kilowire/contract/enums';
import { api, ApiError, qs } from '../api.ts';
import { ErrorMessage, Loading, PageHeading, useMeter, useNow, useSession } from '../common.tsx';
import { formatDateTime, relativeTime } from '../format.ts';
import { ALERT_LABELS, SEVERITY_LABELS } from '../labels.ts';
import { EmptyState } from '../ui/index.ts';

type Status = NonNullable<AlertsQuery['status']>;

/** The filter form's state: '' = any (the form's "All" choices). */
interface Filters {
  type: AlertType | '';
  from: string;
  to: string;
  status: Status | '';
}

const PAGE = 20;

const asType = (v: string | null): AlertType | '' => ALERT_TYPES.find((t) => t === v) ?? '';
const asStatus = (v: string | null): Status | '' => (v === 'read' || v === 'unread' ? v : '');

function filtersFromUrl(): Filters {
  const q = new URLSearchParams(location.search);
  return {
    type: asType(q.get('type')),
    from: q.get('from') ?? '',
    to: q.get('to') ?? '',
    status: asStatus(q.get('status')),
  };
}

export function alertsQuery(f: Filters, cursor?: string): string {
  return qs<AlertsQuery>({
    type: f.type || undefined,
    from: f.from || undefined,
    to: f.to || undefined,
    status: f.status || undefined,
    limit: PAGE,
    cursor,
  });
}

export function AlertsPage() {
  const [filters, setFilters] = useState<Filters>(filtersFromUrl);
  const [draft, setDraft] = useState<Filters>(filters);
  const [items, setItems] = useState<Alert[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [unread, setUnread] = useState(0);
  const [error, setError] = useState<ApiError | null>(null);
  const [status, setStatus] = useState('');
  const [n, setN] = useState(0);
  const ids = useId();
  const tz = useMeter()?.tz ?? 'Europe/London';
  const now = useNow(60_000);
  const { me } = useSession();
  // Only a household marks its alerts read; staff lists are shared by a whole organisation.
  const mayMark = me.capabilities.includes('alerts.mark');
  // The types this user can ever see: a household's, an operator's, or (supplier, admin) all.
  const role = me.user.role;
  const types: readonly AlertType[] =
    role === 'consumer' ? HOUSEHOLD_ALERT_TYPES : role === 'operator' ? OPERATOR_ALERT_TYPES : ALERT_TYPES;

  useEffect(() => {
    let live = true;
    setItems(null);
    setError(null);
    history.replaceState(null, '', `/alerts${qs({ ...filters })}`);
    api<AlertPage>('GET', `/api/alerts${alertsQuery(filters)}`).then(
      (p) => {
        if (!live) return;
        setItems(p.items);
        setCursor(p.nextCursor);
        setUnread(p.unread);
      },
      (e: unknown) => live && setError(e instanceof ApiError ? e : new ApiError(0, 'CLIENT', String(e))),
    );
    return () => {
      live = false;
    };
  }, [filters, n]);

  const more = (): void => {
    if (!cursor) return;
    api<AlertPage>('GET', `/api/alerts${alertsQuery(filters, cursor)}`).then(
      (p) => {
        setItems((cur) => [...(cur ?? []), ...p.items]);
        setCursor(p.nextCursor);
        setUnread(p.unread);
      },
      (e: unknown) => setError(e instanceof ApiError ? e : new ApiError(0, 'CLIENT', String(e))),
    );
  };

  const markRead = (a: Alert): void => {
    api('POST', `/api/alerts/${a.id}/read`, {}).then(
      () => {
        const readAt = new Date().toISOString();
        setItems((cur) =>
          (cur ?? [])
            .map((x) => (x.id === a.id ? { ...x, readAt } : x))
            .filter((x) => filters.status !== 'unread' || x.readAt === null),
        );
        setUnread((u) => Math.max(0, u - 1));
        setStatus(`Marked "${a.title}" as read.`);
      },
      (e: unknown) => setError(e instanceof ApiError ? e : new ApiError(0, 'CLIENT', String(e))),
    );
  };

  const markAll = (): void => {
    api('POST', '/api/alerts/read-all', {}).then(
      () => {
        setStatus('All alerts marked as read.');
        setN((x) => x + 1);
      },
      (e: unknown) => setError(e instanceof ApiError ? e : new ApiError(0, 'CLIENT', String(e))),
    );
  };

  const apply = (e: FormEvent): void => {
    e.preventDefault();
    setFilters(draft);
  };
  const reset = (): void => {
    const empty: Filters = { type: '', from: '', to: '', status: '' };
    setDraft(empty);
    setFilters(empty);
  };

  return (
    <>
      <PageHeading title="Alerts">Alerts</PageHeading>
      <form className="card filters" onSubmit={apply} aria-label="Filter alerts">
        <div className="field">
          <label htmlFor={`${ids}-type`}>Type</label>
          <select
            id={`${ids}-type`}
            value={draft.type}
            onChange={(e) => setDraft({ ...draft, type: asType(e.target.value) })}
          >
            <option value="">All types</option>
            {types.map((t) => (
              <option key={t} value={t}>
                {ALERT_LABELS[t]}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor={`${ids}-from`}>From date</label>
          <input
            id={`${ids}-from`}
            type="date"
            value={draft.from}
            max={draft.to || undefined}
            onChange={(e) => setDraft({ ...draft, from: e.target.value })}
          />
        </div>
        <div className="field">
          <label htmlFor={`${ids}-to`}>To date</label>
          <input
            id={`${ids}-to`}
            type="date"
            value={draft.to}
            min={draft.from || undefined}
            onChange={(e) => setDraft({ ...draft, to: e.target.value })}
          />
        </div>
        <div className="field">
          <label htmlFor={`${ids}-status`}>Show</label>
          <select
            id={`${ids}-status`}
            value={draft.status}
            onChange={(e) => setDraft({ ...draft, status: asStatus(e.target.value) })}
          >
            <option value="">Read and unread</option>
            <option value="unread">Unread only</option>
            <option value="read">Read only</option>
          </select>
        </div>
        <div className="form-actions">
          <button type="submit" className="btn">
            Apply filters
          </button>
          <button type="button" className="btn btn-secondary" onClick={reset}>
            Clear filters
          </button>
        </div>
      </form>

      <div className="list-head">
        {mayMark && (
          <p>
            <strong>{unread}</strong> unread
          </p>
        )}
        {mayMark && unread > 0 && (
          <button type="button" className="btn btn-secondary" onClick={markAll}>
            Mark all as read
          </button>
        )}
      </div>
      <p role="status" aria-live="polite" className="saved">
        {status}
      </p>

      {error ? (
        <ErrorMessage error={error} retry={() => setN((x) => x + 1)} />
      ) : !items ? (
        <Loading what="alerts" />
      ) : items.length === 0 ? (
        <EmptyState title="No alerts match these filters.">
          <p>New alerts appear here as they happen; clear the filters to see them all.</p>
        </EmptyState>
      ) : (
        <>
          <ul className="alert-list">
            {items.map((a) => (
              <li
                key={a.id}
                className={`alert-item${a.readAt || !mayMark ? '' : ' unread'} sev-${a.severity}`}
              >
                <div className="alert-main">
                  <h2 className="alert-title">
                    {mayMark && !a.readAt && <span className="badge">Unread</span>} {a.title}
                  </h2>
                  <p>{a.message}</p>
                  <p className="muted">
                    {ALERT_LABELS[a.type]} · {SEVERITY_LABELS[a.severity]} ·{' '}
                    <time dateTime={a.createdAt} title={formatDateTime(a.createdAt, tz)}>
                      {formatDateTime(a.createdAt, tz)}
                    </time>{' '}
                    ({relativeTime(a.createdAt, now)}){a.meterSerial && ` · meter ${a.meterSerial}`}
                  </p>
                </div>
                {mayMark && !a.readAt && (
                  <button type="button" className="btn btn-secondary btn-small" onClick={() => markRead(a)}>
                    Mark as read<span className="visually-hidden">: {a.title}</span>
                  </button>
                )}
              </li>
            ))}
          </ul>
          {cursor && (
            <button type="button" className="btn btn-secondary" onClick={more}>
              Show more alerts
            </button>
          )}
        </>
      )}
    </>
  );
}
