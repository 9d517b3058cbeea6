import { useEffect, useId, useState, type FormEvent } from 'react';
import type { SupplySettings, SupplySettingsBody } from '@kilowire/contract';
import { api, ApiError } from '../../api.ts';
import { ErrorMessage, issuesByField, Loading, PageHeading, useApi } from '../../common.tsx';
import { useToast } from '../../ui/index.ts';
import './supply.css';

/**
 * The supplier's protection settings: protected hours (nights, weekends, holidays) in the
 * supplier's time zone, the bulk threshold, the hourly disconnection quota per person, and
 * how long an approval request stays open.
 */
export function SupplySettingsPage() {
  const loaded = useApi<SupplySettings>('/api/supplier/settings');
  return (
    <>
      <PageHeading title="Protection">Protection</PageHeading>
      <p>
        A non-payment disconnection in protected hours or of a vulnerable household, and any action on more
        meters than the threshold, waits for a second supplier admin.
      </p>
      {loaded.error ? (
        <ErrorMessage error={loaded.error} retry={loaded.reload} />
      ) : !loaded.data ? (
        <Loading what="settings" />
      ) : (
        <SettingsForm initial={loaded.data} onSaved={loaded.reload} />
      )}
    </>
  );
}

function SettingsForm({ initial, onSaved }: { initial: SupplySettings; onSaved: () => void }) {
  const id = useId();
  const toast = useToast();
  const { updatedAt: _u, ...start } = initial;
  const [s, setS] = useState<SupplySettingsBody>(start);
  const [holiday, setHoliday] = useState('');
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<ApiError | null>(null);
  useEffect(() => setFailure(null), [s]);
  const errs = issuesByField(failure);
  const set = <K extends keyof SupplySettingsBody>(k: K, v: SupplySettingsBody[K]) =>
    setS((x) => ({ ...x, [k]: v }));
  const num = (v: string) => (v === '' ? 0 : Math.trunc(Number(v)));

  const addHoliday = (): void => {
    if (!holiday || s.holidays.includes(holiday)) return;
    set('holidays', [...s.holidays, holiday].sort());
    setHoliday('');
  };
  const submit = (e: FormEvent): void => {
    e.preventDefault();
    if (busy) return;
    setBusy(true);
    api<SupplySettings>('PUT', '/api/supplier/settings', s).then(
      () => {
        setBusy(false);
        toast.show('Protection settings saved.');
        onSaved();
      },
      (err: unknown) => {
        setBusy(false);
        setFailure(err instanceof ApiError ? err : new ApiError(0, 'CLIENT', String(err)));
      },
    );
  };
  const error = (k: string) =>
    errs[k] ? (
      <p className="error-text" id={`${id}-${k}-err`}>
        <span aria-hidden="true">⚠ </span>
        {errs[k]}
      </p>
    ) : null;

  return (
    <form onSubmit={submit} noValidate>
      {failure && failure.code !== 'VALIDATION' && <ErrorMessage error={failure} />}
      {failure?.code === 'VALIDATION' && (
        <div className="notice notice-error" role="alert">
          <p>Some values are not valid: see the fields marked below.</p>
        </div>
      )}
      <div className="settings-grid">
        <section className="card" aria-labelledby={`${id}-hours`}>
          <h2 id={`${id}-hours`}>Protected hours</h2>
          <div className={`field${errs.tz ? ' field-error' : ''}`}>
            <label htmlFor={`${id}-tz`}>Time zone</label>
            <p className="hint" id={`${id}-tz-hint`}>
              Protected hours are judged in this zone, e.g. Europe/London.
            </p>
            {error('tz')}
            <input
              id={`${id}-tz`}
              value={s.tz}
              onChange={(e) => set('tz', e.target.value)}
              aria-describedby={`${id}-tz-hint`}
              aria-invalid={errs.tz ? true : undefined}
            />
          </div>
          <fieldset className="field">
            <legend>Nights</legend>
            {/* A div, not a label, around the box: `.field > label` would make the label a block. */}
            <div className="check">
              <input
                id={`${id}-nights`}
                type="checkbox"
                checked={s.nights.enabled}
                onChange={(e) => set('nights', { ...s.nights, enabled: e.target.checked })}
              />
              <label htmlFor={`${id}-nights`}>Protect nights</label>
            </div>
            {error('nights.to')}
            <div className="input-row">
              <label htmlFor={`${id}-from`}>From</label>
              <input
                id={`${id}-from`}
                type="time"
                value={s.nights.from}
                disabled={!s.nights.enabled}
                onChange={(e) => set('nights', { ...s.nights, from: e.target.value })}
              />
              <label htmlFor={`${id}-to`}>to</label>
              <input
                id={`${id}-to`}
                type="time"
                value={s.nights.to}
                disabled={!s.nights.enabled}
                onChange={(e) => set('nights', { ...s.nights, to: e.target.value })}
              />
            </div>
          </fieldset>
          <label className="check field">
            <input type="checkbox" checked={s.weekends} onChange={(e) => set('weekends', e.target.checked)} />
            Protect Saturdays and Sundays
          </label>
          <fieldset className="field">
            <legend>Holidays</legend>
            {s.holidays.length === 0 ? (
              <p className="muted">No holidays listed.</p>
            ) : (
              <ul className="holiday-list">
                {s.holidays.map((d) => (
                  <li key={d}>
                    {new Date(`${d}T12:00:00Z`).toLocaleDateString('en-GB', { dateStyle: 'medium' })}
                    <button
                      type="button"
                      className="btn btn-secondary btn-small"
                      onClick={() =>
                        set(
                          'holidays',
                          s.holidays.filter((x) => x !== d),
                        )
                      }
                    >
                      Remove<span className="visually-hidden"> {d}</span>
                    </button>
                  </li>
                ))}
              </ul>
            )}
            {error('holidays')}
            <div className="input-row">
              <label htmlFor={`${id}-holiday`} className="visually-hidden">
                Holiday date
              </label>
              <input
                id={`${id}-holiday`}
                type="date"
                value={holiday}
                onChange={(e) => setHoliday(e.target.value)}
              />
              <button type="button" className="btn btn-secondary" onClick={addHoliday} disabled={!holiday}>
                Add holiday
              </button>
            </div>
          </fieldset>
        </section>
        <section className="card" aria-labelledby={`${id}-limits`}>
          <h2 id={`${id}-limits`}>Limits</h2>
          {(
            [
              [
                'bulkThreshold',
                'Bulk threshold (meters)',
                'More meters than this in one action wait for approval.',
              ],
              [
                'hourlyDisconnectQuota',
                'Disconnections per person per hour',
                'Beyond it, further requests are refused.',
              ],
              ['approvalTtlHours', 'Approval requests lapse after (hours)', 'Between 1 and 168 hours.'],
            ] as const
          ).map(([k, label, hint]) => (
            <div key={k} className={`field${errs[k] ? ' field-error' : ''}`}>
              <label htmlFor={`${id}-${k}`}>{label}</label>
              <p className="hint" id={`${id}-${k}-hint`}>
                {hint}
              </p>
              {error(k)}
              <input
                id={`${id}-${k}`}
                type="number"
                inputMode="numeric"
                min={1}
                className="input-short"
                value={s[k]}
                onChange={(e) => set(k, num(e.target.value))}
                aria-describedby={`${id}-${k}-hint`}
                aria-invalid={errs[k] ? true : undefined}
              />
            </div>
          ))}
        </section>
      </div>
      <div className="form-actions">
        <button type="submit" className="btn" aria-disabled={busy}>
          {busy ? 'Saving…' : 'Save settings'}
        </button>
        {initial.updatedAt ? (
          <span className="muted">Last changed {new Date(initial.updatedAt).toLocaleString('en-GB')}</span>
        ) : (
          <span className="muted">The defaults are in use.</span>
        )}
      </div>
    </form>
  );
}
