import { useEffect, useId, useState, type FormEvent } from 'react';
import type { Limits, LimitsBody } from '@kilowire/contract';
import { api, ApiError } from '../api.ts';
import {
  ErrorMessage,
  issuesByField,
  Loading,
  MeterPicker,
  PageHeading,
  useApi,
  useMeter,
} from '../common.tsx';
import {
  formatKwh,
  formatMoney,
  minorToInput,
  parseKwhInput,
  parseMoneyInput,
  whToInput,
} from '../format.ts';

export function LimitsPage() {
  const meter = useMeter();
  const path = meter ? `/api/meters/${encodeURIComponent(meter.serial)}/limits` : null;
  const loaded = useApi<Limits>(path);
  return (
    <>
      <PageHeading title="Limits">Usage limits</PageHeading>
      <p>Get an alert when you use more than you planned. Limits do not switch off your supply.</p>
      <MeterPicker />
      {!path ? (
        <p>There is no meter on your account yet.</p>
      ) : loaded.error ? (
        <ErrorMessage error={loaded.error} retry={loaded.reload} />
      ) : !loaded.data ? (
        <Loading what="your limits" />
      ) : (
        <>
          <LimitsForm path={path} initial={loaded.data} key={path} />
          {meter?.mode === 'prepayment' && (
            <LowCreditForm path={path} initial={loaded.data} currency="GBP" key={`${path}-credit`} />
          )}
        </>
      )}
    </>
  );
}

const COMMAND_WORDS: Record<string, string> = {
  requested: 'being sent to your meter',
  awaiting_approval: 'being sent to your meter',
  queued: 'waiting to reach your meter',
  sent: 'sent to your meter, waiting for its answer',
  ok: 'set on your meter',
  rejected: 'refused by your meter — contact your supplier',
  failed: 'not applied by your meter — contact your supplier',
  expired: 'not delivered: your meter was out of reach — save it again',
  cancelled: 'cancelled',
};

/**
 * Prepayment: the household's own low-credit warning. The meter itself warns (and the portal
 * alert follows), so the level is sent to the meter; its delivery is shown until it is set.
 */
function LowCreditForm({ path, initial, currency }: { path: string; initial: Limits; currency: string }) {
  const [saved, setSaved] = useState(initial);
  const [text, setText] = useState(
    initial.lowCreditMinor === null ? '' : minorToInput(initial.lowCreditMinor),
  );
  const [error, setError] = useState<string | null>(null);
  const [failure, setFailure] = useState<ApiError | null>(null);
  const [status, setStatus] = useState('');
  const [busy, setBusy] = useState(false);
  const hintId = useId();
  const errId = useId();

  const submit = (e: FormEvent): void => {
    e.preventDefault();
    if (busy) return;
    const t = text.trim();
    const parsed = t === '' ? { ok: true as const, minor: null } : parseMoneyInput(t);
    if (!parsed.ok) {
      setError(parsed.message);
      document.getElementById('limit-lowCredit')?.focus();
      return;
    }
    setError(null);
    setFailure(null);
    setBusy(true);
    // The kWh limits are read fresh so that saving this never undoes a change made above.
    api<Limits>('GET', path)
      .then((cur) =>
        api<Limits>('PUT', path, {
          dailyLimitWh: cur.dailyLimitWh,
          hourlyLimitWh: cur.hourlyLimitWh,
          lowCreditMinor: parsed.minor,
        } satisfies LimitsBody),
      )
      .then(
        (s) => {
          setBusy(false);
          setSaved(s);
          setStatus(parsed.minor === null ? 'Low-credit warning cleared.' : 'Low-credit warning saved.');
        },
        (err: unknown) => {
          setBusy(false);
          setFailure(err instanceof ApiError ? err : new ApiError(0, 'CLIENT', String(err)));
        },
      );
  };

  return (
    <form onSubmit={submit} noValidate className="card form" aria-labelledby="low-credit-h">
      <h2 id="low-credit-h">Low-credit warning</h2>
      <div className={`field${error ? ' field-error' : ''}`}>
        <label htmlFor="limit-lowCredit">Warn me when my credit falls below (£)</label>
        <p className="hint" id={hintId}>
          For example 5 or 2.50. Leave empty for no warning of your own.{' '}
          {saved.lowCreditMinor === null
            ? 'Not set.'
            : `Currently ${formatMoney(saved.lowCreditMinor, currency)}.`}
          {saved.lowCreditCommand &&
            ` This level is ${COMMAND_WORDS[saved.lowCreditCommand.status] ?? saved.lowCreditCommand.status}.`}
        </p>
        {error && (
          <p className="error-text" id={errId}>
            <span aria-hidden="true">⚠ </span>
            {error}
          </p>
        )}
        <div className="input-row">
          <span aria-hidden="true">£</span>
          <input
            id="limit-lowCredit"
            type="text"
            inputMode="decimal"
            autoComplete="off"
            className="input-short"
            value={text}
            onChange={(e) => setText(e.target.value)}
            aria-invalid={error ? true : undefined}
            aria-describedby={error ? `${errId} ${hintId}` : hintId}
          />
        </div>
      </div>
      {failure && <ErrorMessage error={failure} />}
      <div className="form-actions">
        <button type="submit" className="btn" aria-disabled={busy}>
          {busy ? 'Saving…' : 'Save warning'}
        </button>
        <p role="status" aria-live="polite" className="saved">
          {status && (
            <>
              <span aria-hidden="true">✓ </span>
              {status}
            </>
          )}
        </p>
      </div>
    </form>
  );
}

type Field = keyof LimitsBody;

function LimitsForm({ path, initial }: { path: string; initial: Limits }) {
  const [saved, setSaved] = useState<Limits>(initial);
  const [text, setText] = useState({
    dailyLimitWh: whToInput(initial.dailyLimitWh),
    hourlyLimitWh: whToInput(initial.hourlyLimitWh),
  });
  const [errors, setErrors] = useState<Partial<Record<Field, string>>>({});
  const [status, setStatus] = useState('');
  const [failure, setFailure] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    if (!status) return;
    const t = setTimeout(() => setStatus(''), 8000);
    return () => clearTimeout(t);
  }, [status]);

  const save = (next: LimitsBody, message: string): void => {
    setBusy(true);
    setFailure(null);
    setStatus('');
    api<Limits>('PUT', path, next).then(
      (s) => {
        setBusy(false);
        setSaved(s);
        setText({ dailyLimitWh: whToInput(s.dailyLimitWh), hourlyLimitWh: whToInput(s.hourlyLimitWh) });
        setStatus(message);
      },
      (e: unknown) => {
        setBusy(false);
        const err = e instanceof ApiError ? e : new ApiError(0, 'CLIENT', String(e));
        const byField = issuesByField(err);
        setErrors({ dailyLimitWh: byField.dailyLimitWh, hourlyLimitWh: byField.hourlyLimitWh });
        setFailure(err);
      },
    );
  };

  const submit = (e: FormEvent): void => {
    e.preventDefault();
    if (busy) return;
    const next: LimitsBody = { dailyLimitWh: null, hourlyLimitWh: null };
    const errs: Partial<Record<Field, string>> = {};
    for (const f of ['dailyLimitWh', 'hourlyLimitWh'] as const) {
      if (text[f].trim() === '') continue;
      const r = parseKwhInput(text[f]);
      if (r.ok) next[f] = r.wh;
      else errs[f] = r.message;
    }
    if (
      !errs.hourlyLimitWh &&
      !errs.dailyLimitWh &&
      next.hourlyLimitWh !== null &&
      next.dailyLimitWh !== null &&
      next.hourlyLimitWh > next.dailyLimitWh
    ) {
      errs.hourlyLimitWh = 'The hourly limit cannot be more than the daily limit.';
    }
    setErrors(errs);
    if (errs.dailyLimitWh || errs.hourlyLimitWh) {
      setStatus('');
      document.getElementById(errs.dailyLimitWh ? 'limit-dailyLimitWh' : 'limit-hourlyLimitWh')?.focus();
      return;
    }
    save(next, 'Limits saved.');
  };

  const clear = (f: Field): void => {
    if (busy) return;
    setErrors({});
    save(
      { dailyLimitWh: saved.dailyLimitWh, hourlyLimitWh: saved.hourlyLimitWh, [f]: null },
      f === 'dailyLimitWh' ? 'Daily limit cleared.' : 'Hourly limit cleared.',
    );
  };

  return (
    <form onSubmit={submit} noValidate className="card form">
      <LimitField
        field="dailyLimitWh"
        label="Daily limit (kWh)"
        hint="For example 10 or 7.5. A typical home uses 8 to 10 kWh a day."
        value={text.dailyLimitWh}
        current={saved.dailyLimitWh}
        error={errors.dailyLimitWh}
        onChange={(v) => setText({ ...text, dailyLimitWh: v })}
        onClear={() => clear('dailyLimitWh')}
      />
      <LimitField
        field="hourlyLimitWh"
        label="Hourly limit (kWh, optional)"
        hint="Alerts you when a single hour uses more than this, for example 2."
        value={text.hourlyLimitWh}
        current={saved.hourlyLimitWh}
        error={errors.hourlyLimitWh}
        onChange={(v) => setText({ ...text, hourlyLimitWh: v })}
        onClear={() => clear('hourlyLimitWh')}
      />
      {failure && <ErrorMessage error={failure} />}
      <div className="form-actions">
        <button type="submit" className="btn" aria-disabled={busy}>
          {busy ? 'Saving…' : 'Save limits'}
        </button>
        <p role="status" aria-live="polite" className="saved">
          {status && (
            <>
              <span aria-hidden="true">✓ </span>
              {status}
            </>
          )}
        </p>
      </div>
    </form>
  );
}

function LimitField(props: {
  field: Field;
  label: string;
  hint: string;
  value: string;
  current: number | null;
  error: string | undefined;
  onChange: (v: string) => void;
  onClear: () => void;
}) {
  const id = `limit-${props.field}`;
  const hintId = useId();
  const errId = useId();
  return (
    <div className={`field${props.error ? ' field-error' : ''}`}>
      <label htmlFor={id}>{props.label}</label>
      <p className="hint" id={hintId}>
        {props.hint}{' '}
        {props.current === null
          ? 'Not set.'
          : `Currently ${formatKwh(props.current, props.current % 100 ? 2 : 1)}.`}
      </p>
      {props.error && (
        <p className="error-text" id={errId}>
          <span aria-hidden="true">⚠ </span>
          {props.error}
        </p>
      )}
      <div className="input-row">
        <input
          id={id}
          type="text"
          inputMode="decimal"
          autoComplete="off"
          className="input-short"
          value={props.value}
          onChange={(e) => props.onChange(e.target.value)}
          aria-invalid={props.error ? true : undefined}
          aria-describedby={props.error ? `${errId} ${hintId}` : hintId}
        />
        <span aria-hidden="true">kWh</span>
        {props.current !== null && (
          <button type="button" className="btn btn-secondary" onClick={props.onClear}>
            Clear<span className="visually-hidden"> {props.label.replace(/ \(.*\)$/, '').toLowerCase()}</span>
          </button>
        )}
      </div>
    </div>
  );
}
