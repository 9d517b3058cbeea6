import { useId, useState, type FormEvent } from 'react';
import type { TariffDecisionBody, TariffRequest, TariffRequests } from '@kilowire/contract';
import { api, ApiError } from '../api.ts';
import { ErrorMessage, Loading, PageHeading, useApi } from '../common.tsx';
import { longDay } from '../tariffs.ts';

const STATUS: Record<TariffRequest['status'], string> = {
  requested: 'Waiting for a decision',
  approved: 'Approved',
  declined: 'Declined',
  withdrawn: 'Withdrawn',
};

/** Supplier staff: households' requests to change tariff, open ones first. */
export function TariffRequestsPage() {
  const list = useApi<TariffRequests>('/api/tariff-change-requests');
  const open = list.data?.items.filter((r) => r.status === 'requested') ?? [];
  const decided = list.data?.items.filter((r) => r.status !== 'requested') ?? [];
  return (
    <>
      <PageHeading title="Tariff requests">Tariff requests</PageHeading>
      <p>
        Households ask to move to another of your open tariffs. They are told your decision by their chosen
        channels.
      </p>
      {list.error ? (
        <ErrorMessage error={list.error} retry={list.reload} />
      ) : !list.data ? (
        <Loading what="requests" />
      ) : (
        <>
          <h2>Waiting ({open.length})</h2>
          {open.length === 0 ? (
            <p>No requests are waiting for a decision.</p>
          ) : (
            <ul className="tariff-list">
              {open.map((r) => (
                <li key={r.id}>
                  <RequestCard r={r} onDecided={list.reload} />
                </li>
              ))}
            </ul>
          )}
          <h2>Decided</h2>
          {decided.length === 0 ? (
            <p>Nothing decided yet.</p>
          ) : (
            // A list, not a table: the reasons are sentences and must read well on a phone.
            <ul className="decided-list">
              {decided.map((r) => (
                <li key={r.id}>
                  <strong>{r.household}</strong> · meter {r.serial} · to {r.toTariff}
                  <br />
                  <span className={r.status === 'declined' ? undefined : 'ok-text'}>{STATUS[r.status]}</span>
                  {r.status === 'approved' && r.effectiveFrom && ` from ${longDay(r.effectiveFrom)}`}
                  {r.status === 'declined' && r.reason && `: ${r.reason}`}
                  {r.decidedAt && (
                    <span className="muted">
                      {' '}
                      ({new Date(r.decidedAt).toLocaleDateString('en-GB', { dateStyle: 'medium' })})
                    </span>
                  )}
                </li>
              ))}
            </ul>
          )}
        </>
      )}
    </>
  );
}

function RequestCard({ r, onDecided }: { r: TariffRequest; onDecided: () => void }) {
  const idp = useId();
  const [mode, setMode] = useState<'none' | 'approve' | 'decline'>('none');
  const [date, setDate] = useState('');
  const [reason, setReason] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<ApiError | null>(null);
  const send = (body: TariffDecisionBody): void => {
    setBusy(true);
    setFailure(null);
    api<TariffRequest>('POST', `/api/tariff-change-requests/${r.id}/decision`, body).then(
      () => {
        setBusy(false);
        onDecided();
      },
      (e: unknown) => {
        setBusy(false);
        setFailure(e instanceof ApiError ? e : new ApiError(0, 'CLIENT', String(e)));
      },
    );
  };
  const submit = (e: FormEvent): void => {
    e.preventDefault();
    if (busy) return;
    if (mode === 'decline') {
      if (!reason.trim()) {
        setError('Give the household a reason.');
        document.getElementById(`${idp}-reason`)?.focus();
        return;
      }
      send({ decision: 'decline', reason: reason.trim() });
    } else send({ decision: 'approve', ...(date ? { effectiveFrom: date } : {}) });
  };
  return (
    <section className="card" aria-labelledby={`${idp}-h`}>
      <h3 id={`${idp}-h`}>
        {r.household} · meter {r.serial}
      </h3>
      <p>
        From <strong>{r.fromTariff ?? 'no tariff'}</strong> to <strong>{r.toTariff}</strong>, asked on{' '}
        {new Date(r.createdAt).toLocaleDateString('en-GB', { dateStyle: 'long' })}.
      </p>
      {failure && <ErrorMessage error={failure} />}
      {mode === 'none' ? (
        <div className="form-actions">
          <button type="button" className="btn" onClick={() => setMode('approve')}>
            Approve<span className="visually-hidden"> the request of {r.household}</span>
          </button>
          <button type="button" className="btn btn-secondary" onClick={() => setMode('decline')}>
            Decline<span className="visually-hidden"> the request of {r.household}</span>
          </button>
        </div>
      ) : (
        <form onSubmit={submit} noValidate className="inline-form">
          {mode === 'approve' ? (
            <div className="field">
              <label htmlFor={`${idp}-date`}>Start the new tariff on (optional)</label>
              <p className="hint" id={`${idp}-date-hint`}>
                Default: the meter&apos;s next local midnight.
              </p>
              <input
                id={`${idp}-date`}
                type="date"
                value={date}
                onChange={(e) => setDate(e.target.value)}
                aria-describedby={`${idp}-date-hint`}
              />
            </div>
          ) : (
            <div className={`field${error ? ' field-error' : ''}`}>
              <label htmlFor={`${idp}-reason`}>Reason (the household sees it)</label>
              {error && (
                <p className="error-text" id={`${idp}-reason-err`}>
                  <span aria-hidden="true">⚠ </span>
                  {error}
                </p>
              )}
              <textarea
                id={`${idp}-reason`}
                rows={3}
                maxLength={500}
                value={reason}
                onChange={(e) => setReason(e.target.value)}
                aria-invalid={error ? true : undefined}
                aria-describedby={error ? `${idp}-reason-err` : undefined}
              />
            </div>
          )}
          <div className="form-actions">
            <button type="submit" className="btn" aria-disabled={busy}>
              {busy ? 'Sending…' : mode === 'approve' ? 'Approve' : 'Decline'}
            </button>
            <button type="button" className="btn btn-secondary" onClick={() => setMode('none')}>
              Cancel
            </button>
          </div>
        </form>
      )}
    </section>
  );
}
