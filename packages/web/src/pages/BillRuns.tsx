import { useEffect, useId, useState, type FormEvent } from 'react';
import type { BillRun, BillRunBody, BillRunDetail, BillRunPage } from '@kilowire/contract';
import { api, ApiError } from '../api.ts';
import { ErrorMessage, issuesByField, Loading, PageHeading, useApi, useSession } from '../common.tsx';
import { formatDateTime } from '../format.ts';
import { dayLabel, periodLabel } from './Bills.tsx';
import { EmptyState } from '../ui/index.ts';

/** The first day of last month: the usual period to bill for cycle day 1. */
function lastMonthStart(): string {
  const d = new Date();
  const m = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - 1, 1));
  return m.toISOString().slice(0, 10);
}

const STATUS: Record<BillRun['status'], string> = { queued: 'Queued', running: 'Running', done: 'Done' };
const TRIGGER: Record<BillRun['trigger'], string> = {
  schedule: 'Daily schedule',
  staff: 'Started by staff',
  demo: 'Demo',
};

/** Supplier staff: start a bill run, watch its progress, read its failures. Admins watch. */
export function BillRunsPage() {
  const { me } = useSession();
  const canStart = me.user.role === 'supplier';
  const runs = useApi<BillRunPage>('/api/bill-runs?limit=20');
  const [selected, setSelected] = useState<number | null>(null);
  const open = runs.data?.items.some((r) => r.status !== 'done') ?? false;
  const { reload } = runs;
  // Progress: refresh every 2 s while a run is not done.
  useEffect(() => {
    if (!open) return;
    const t = setInterval(reload, 2000);
    return () => clearInterval(t);
  }, [open, reload]);

  return (
    <>
      <PageHeading title="Bill runs">Bill runs</PageHeading>
      <p>
        A bill run bills every credit account on one billing cycle day for one period. The daily schedule
        starts them by itself; you can start one here. Accounts that cannot be billed are listed with the
        reason and the rest of the run goes on.
      </p>
      {canStart && (
        <StartRun
          onStarted={(id) => {
            setSelected(id);
            reload();
          }}
        />
      )}
      <section aria-labelledby="runs-h">
        <h2 id="runs-h">Recent runs</h2>
        {runs.error && <ErrorMessage error={runs.error} retry={reload} />}
        {runs.loading && !runs.data && <Loading what="bill runs" />}
        {runs.data && runs.data.items.length === 0 && (
          <EmptyState title="No bill runs yet.">
            <p>Start one above: it bills every credit account for the period you choose.</p>
          </EmptyState>
        )}
        {runs.data && runs.data.items.length > 0 && (
          <div className="table-scroll" role="region" aria-label="Recent bill runs" tabIndex={0}>
            <table className="data-table">
              <caption className="visually-hidden">Recent bill runs, newest first</caption>
              <thead>
                <tr>
                  <th scope="col">Period</th>
                  <th scope="col">Status</th>
                  <th scope="col" className="num">
                    Processed
                  </th>
                  <th scope="col" className="num">
                    Issued
                  </th>
                  <th scope="col" className="num">
                    Failed
                  </th>
                  <th scope="col">
                    <span className="visually-hidden">Details</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {runs.data.items.map((r) => (
                  <tr key={r.id}>
                    <th scope="row">
                      {periodLabel(r)}
                      <span className="muted"> · day {r.cycleDay}</span>
                    </th>
                    <td>{STATUS[r.status]}</td>
                    <td className="num">
                      {r.processed} of {r.total}
                    </td>
                    <td className="num">{r.issued}</td>
                    <td className="num">{r.failed}</td>
                    <td>
                      <button
                        type="button"
                        className="btn btn-small btn-secondary"
                        aria-pressed={selected === r.id}
                        onClick={() => setSelected(r.id)}
                      >
                        Details<span className="visually-hidden"> of the run for {periodLabel(r)}</span>
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      {selected !== null && <RunDetail id={selected} tick={runs.data} />}
    </>
  );
}

function StartRun({ onStarted }: { onStarted: (id: number) => void }) {
  const id = useId();
  const [periodStart, setPeriodStart] = useState(lastMonthStart);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const fields = issuesByField(error);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    api<BillRunDetail>('POST', '/api/bill-runs', { periodStart } satisfies BillRunBody).then(
      (r) => {
        setBusy(false);
        onStarted(r.id);
      },
      (err: unknown) => {
        setBusy(false);
        setError(err instanceof ApiError ? err : new ApiError(0, 'CLIENT', String(err)));
      },
    );
  };
  return (
    <form className="card" onSubmit={submit} noValidate>
      <h2>Start a bill run</h2>
      <div className={`field${fields.periodStart ? ' field-error' : ''}`}>
        <label htmlFor={`${id}-start`}>First day of the period</label>
        <p className="hint" id={`${id}-hint`}>
          Its day of the month is the billing cycle day billed (1 to 28); the period runs one month.
        </p>
        <input
          id={`${id}-start`}
          type="date"
          value={periodStart}
          required
          aria-describedby={`${id}-hint${fields.periodStart ? ` ${id}-err` : ''}`}
          aria-invalid={fields.periodStart ? true : undefined}
          onChange={(e) => setPeriodStart(e.target.value)}
        />
        {fields.periodStart && (
          <p className="error-text" id={`${id}-err`}>
            {fields.periodStart}
          </p>
        )}
      </div>
      {error && !fields.periodStart && <ErrorMessage error={error} />}
      <button type="submit" className="btn" aria-disabled={busy || undefined} disabled={busy}>
        {busy ? 'Starting…' : 'Start bill run'}
      </button>
    </form>
  );
}

function RunDetail({ id, tick }: { id: number; tick: unknown }) {
  const run = useApi<BillRunDetail>(`/api/bill-runs/${id}`);
  const { reload } = run;
  // Follow the list's refreshes while the run is in progress.
  useEffect(() => {
    reload();
  }, [tick, reload]);
  const r = run.data;
  return (
    <section className="card" aria-labelledby="run-h" aria-live="polite">
      <h2 id="run-h">{r ? `Run for ${periodLabel(r)}` : 'Run'}</h2>
      {run.error && <ErrorMessage error={run.error} retry={reload} />}
      {!r && !run.error && <Loading what="the run" />}
      {r && (
        <>
          <div
            className="bar-track"
            role="progressbar"
            aria-label="Accounts processed"
            aria-valuemin={0}
            aria-valuemax={r.total}
            aria-valuenow={r.processed}
          >
            <div
              className="bar-fill"
              style={{ width: `${r.total ? (100 * r.processed) / r.total : 100}%` }}
            />
          </div>
          <dl className="facts">
            <div>
              <dt>Status</dt>
              <dd>{STATUS[r.status]}</dd>
            </div>
            <div>
              <dt>Processed</dt>
              <dd>
                {r.processed} of {r.total} accounts
              </dd>
            </div>
            <div>
              <dt>Bills issued</dt>
              <dd>{r.issued}</dd>
            </div>
            <div>
              <dt>Already billed before this run</dt>
              <dd>{r.alreadyBilled}</dd>
            </div>
            <div>
              <dt>Failed</dt>
              <dd>{r.failed}</dd>
            </div>
            <div>
              <dt>Started</dt>
              <dd>
                {TRIGGER[r.trigger]}, {formatDateTime(r.createdAt, 'Europe/London')}
              </dd>
            </div>
            <div>
              <dt>Period</dt>
              <dd>
                {dayLabel(r.periodStart)}, cycle day {r.cycleDay}
              </dd>
            </div>
          </dl>
          {r.failures.length > 0 && (
            <div className="table-scroll" role="region" aria-label="Accounts not billed" tabIndex={0}>
              <table className="data-table">
                <caption>Accounts not billed</caption>
                <thead>
                  <tr>
                    <th scope="col">Account</th>
                    <th scope="col">Reason</th>
                  </tr>
                </thead>
                <tbody>
                  {r.failures.map((f) => (
                    <tr key={f.accountId}>
                      <th scope="row">
                        <a href={`/accounts?account=${f.accountId}`}>
                          {f.accountId} · {f.customer}
                        </a>
                      </th>
                      <td>{f.reason}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </>
      )}
    </section>
  );
}
