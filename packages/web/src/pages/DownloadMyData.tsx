import { useId, useState } from 'react';
import type { Daily } from '@kilowire/contract';
import { api, ApiError, qs } from '../api.ts';
import { ErrorMessage, useMeter } from '../common.tsx';

/** The API's bound (GREEN_BUTTON_MAX_DAYS in the contract; the portal takes no zod values). */
const GREEN_BUTTON_MAX_DAYS = 397;

/** Today and a month ago in the household's zone (the meter's days), YYYY-MM-DD. */
function localDay(tz: string, offsetDays = 0): string {
  const d = new Date(Date.now() + offsetDays * 86_400_000);
  return new Intl.DateTimeFormat('en-CA', {
    timeZone: tz,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
  }).format(d);
}

function daysBetween(a: string, b: string): number {
  return (Date.parse(`${b}T00:00:00Z`) - Date.parse(`${a}T00:00:00Z`)) / 86_400_000;
}

/** The daily rows as CSV (RFC 4180 line ends), energy in integer Wh. */
function dailyCsv(d: Daily): string {
  const lines = [
    'day,wh,intervals,estimated_intervals',
    ...d.days.map((x) => `${x.day},${x.wh},${x.intervals},${x.estimated}`),
  ];
  return lines.join('\r\n') + '\r\n';
}

function saveFile(text: string, name: string): void {
  const url = URL.createObjectURL(new Blob([text], { type: 'text/csv;charset=utf-8' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/**
 * "Download my data": the household's half-hourly readings for a range of days, as a Green
 * Button file (the ESPI XML other energy apps import) or as daily CSV. The XML is a plain
 * link to the API (streamed, downloaded with the session cookie); the CSV is made here from
 * the daily figures the portal already reads.
 */
export function DownloadMyData() {
  const meter = useMeter();
  const id = useId();
  const tz = meter?.tz ?? 'Europe/London';
  const [from, setFrom] = useState(() => localDay(tz, -30));
  const [to, setTo] = useState(() => localDay(tz, -1));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  if (!meter) return null;
  const span = from && to ? daysBetween(from, to) : NaN;
  const problem =
    !from || !to
      ? 'Choose both dates.'
      : span < 0
        ? 'The last day must not be before the first.'
        : span >= GREEN_BUTTON_MAX_DAYS
          ? 'Choose at most 13 months at a time.'
          : null;
  const base = `/api/meters/${encodeURIComponent(meter.serial)}`;
  return (
    <section className="card form" aria-labelledby={`${id}-h`}>
      <h2 id={`${id}-h`}>Download my data</h2>
      <p>
        Your meter&apos;s readings for the days you choose. The Green Button file holds every half-hour and
        opens in other energy apps; the CSV has one line per day.
      </p>
      <div className="field">
        <label htmlFor={`${id}-from`}>First day</label>
        <input id={`${id}-from`} type="date" value={from} onChange={(e) => setFrom(e.target.value)} />
      </div>
      <div className={`field${problem ? ' field-error' : ''}`}>
        <label htmlFor={`${id}-to`}>Last day</label>
        {problem && (
          <p className="error-text" id={`${id}-err`}>
            {problem}
          </p>
        )}
        <input
          id={`${id}-to`}
          type="date"
          value={to}
          onChange={(e) => setTo(e.target.value)}
          aria-invalid={problem ? true : undefined}
          aria-describedby={problem ? `${id}-err` : undefined}
        />
      </div>
      {error && <ErrorMessage error={error} />}
      {problem ? null : (
        <div className="form-actions">
          <a className="btn" href={`${base}/green-button${qs({ from, to })}`} download>
            Download Green Button (XML)
          </a>
          <button
            type="button"
            className="btn btn-secondary"
            disabled={busy}
            onClick={() => {
              setBusy(true);
              setError(null);
              api<Daily>('GET', `${base}/daily${qs({ from, to })}`).then(
                (d) => {
                  setBusy(false);
                  saveFile(dailyCsv(d), `kilowire-${meter.serial}-${from}-${to}.csv`);
                },
                (err: unknown) => {
                  setBusy(false);
                  setError(err instanceof ApiError ? err : new ApiError(0, 'CLIENT', String(err)));
                },
              );
            }}
          >
            Download daily CSV
          </button>
        </div>
      )}
    </section>
  );
}
