import { useEffect, useId, useRef, useState, type FormEvent } from 'react';
import type { Topup, TopupBody, TopupPage, TopupsQuery } from '@kilowire/contract';
import { api, ApiError, qs } from '../api.ts';
import { ErrorMessage, Loading, MeterPicker, PageHeading, useApi, useMeter, useSession } from '../common.tsx';
import { formatMoney } from '../format.ts';
import { Link } from '../router.tsx';
import { EmptyState } from '../ui/index.ts';

/** Amounts offered with one tap, minor units. */
const PRESETS = [1000, 2000, 3000, 5000];

/**
 * A fresh Idempotency-Key for one top-up the household means to make. Pressing the button
 * twice, or a retry after a lost answer, sends the same key and gets the same top-up.
 * getRandomValues works on plain-http addresses too, where crypto.randomUUID does not.
 */
function newKey(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return `kw-${Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')}`;
}

/** Pounds and pence typed by a person ("12", "12.5", "£12.50") as minor units, or null. */
export function parseMoneyInput(s: string): number | null {
  const t = s.trim().replace(/^£/, '').replace(/,/g, '');
  if (!/^\d{1,6}(\.\d{1,2})?$/.test(t)) return null;
  const [whole, frac = ''] = t.split('.');
  return Number(whole) * 100 + Number(frac.padEnd(2, '0'));
}

const STATUS_LABEL: Record<Topup['status'], string> = {
  pending: 'Waiting for payment',
  declined: 'Declined',
  expired: 'Not completed',
  paid: 'Paid, sending to meter',
  applied: 'On your meter',
  refunded: 'Refunded',
};

function statusLabel(t: Topup): string {
  if (t.kind === 'payment' && t.status === 'paid') return 'Paid';
  if (t.status === 'paid' && t.waitingForMeter) return 'Paid, waiting for your meter';
  return STATUS_LABEL[t.status];
}

const dateTime = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeStyle: 'short' });

export function TopUpPage() {
  const meter = useMeter();
  const { me } = useSession();
  const list = useApi<TopupPage>(`/api/top-ups${qs<TopupsQuery>({ limit: 10 })}`);
  // The account decides (a credit account pays toward its balance), not what the meter last reported.
  const account = me.consumer?.accounts.find((a) => meter && a.meters.includes(meter.serial));
  const credit = (account?.mode ?? meter?.mode) === 'credit';
  const cancelled = new URLSearchParams(location.search).get('cancelled');
  return (
    <>
      <PageHeading title={credit ? 'Make a payment' : 'Top up'}>
        {credit ? 'Make a payment' : 'Top up your meter'}
      </PageHeading>
      {cancelled && (
        <div className="notice" role="status">
          <p>You left the payment page before paying. No money was taken.</p>
        </div>
      )}
      <MeterPicker />
      {!meter ? (
        <p>There is no meter on your account yet.</p>
      ) : list.error ? (
        <ErrorMessage error={list.error} retry={list.reload} />
      ) : !list.data ? (
        <Loading what="payment options" />
      ) : (
        <>
          {list.data.provider === 'sandbox' && (
            <p className="notice sandbox-note">
              <strong>Sandbox payments.</strong> This Kilowire takes test payments only: no real card is
              charged.
            </p>
          )}
          <TopUpForm serial={meter.serial} page={list.data} credit={credit} key={meter.serial} />
          <History items={list.data.items} />
        </>
      )}
    </>
  );
}

function TopUpForm({ serial, page, credit }: { serial: string; page: TopupPage; credit: boolean }) {
  const { limits } = page;
  const [choice, setChoice] = useState<number | 'other'>(PRESETS[1]!);
  const [other, setOther] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [failure, setFailure] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const key = useRef(newKey());
  const hintId = useId();
  const errId = useId();
  const presets = PRESETS.filter((p) => p >= limits.minMinor && p <= limits.maxMinor);

  const amount = choice === 'other' ? parseMoneyInput(other) : choice;
  // A different amount is a different top-up: it gets its own key.
  useEffect(() => {
    key.current = newKey();
  }, [amount]);

  const submit = (e: FormEvent): void => {
    e.preventDefault();
    if (busy) return;
    setFailure(null);
    let problem: string | null = null;
    if (amount === null) problem = 'Enter an amount in pounds, for example 15 or 15.50.';
    else if (amount < limits.minMinor) problem = `The smallest amount is ${formatMoney(limits.minMinor)}.`;
    else if (amount > limits.maxMinor) problem = `The largest amount is ${formatMoney(limits.maxMinor)}.`;
    setError(problem);
    if (problem || amount === null) {
      document.getElementById(choice === 'other' ? 'topup-other' : 'topup-amount-0')?.focus();
      return;
    }
    setBusy(true);
    const body: TopupBody = { meterSerial: serial, amountMinor: amount };
    api<Topup>('POST', '/api/top-ups', body, { 'idempotency-key': key.current }).then(
      (t) => {
        // Off to the provider's page (the sandbox's is part of this portal).
        if (t.paymentUrl) location.assign(t.paymentUrl);
        else location.assign(`/top-ups/${t.id}`);
      },
      (err: unknown) => {
        setBusy(false);
        const a = err instanceof ApiError ? err : new ApiError(0, 'CLIENT', String(err));
        if (a.code === 'TOPUP_LIMIT') setError(a.message);
        else setFailure(a);
      },
    );
  };

  return (
    <form onSubmit={submit} noValidate className="card form">
      <fieldset
        className={`field${error ? ' field-error' : ''}`}
        aria-describedby={error ? `${errId} ${hintId}` : hintId}
      >
        <legend>{credit ? 'How much would you like to pay?' : 'How much would you like to add?'}</legend>
        <p className="hint" id={hintId}>
          From {formatMoney(limits.minMinor)} to {formatMoney(limits.maxMinor)} at a time, and up to{' '}
          {formatMoney(limits.dailyMaxMinor)} a day.
        </p>
        {error && (
          <p className="error-text" id={errId}>
            <span aria-hidden="true">⚠ </span>
            {error}
          </p>
        )}
        <div className="amount-options">
          {presets.map((p, i) => (
            <label key={p} className="amount-option">
              <input
                type="radio"
                name="amount"
                id={`topup-amount-${i}`}
                checked={choice === p}
                onChange={() => {
                  setChoice(p);
                  setError(null);
                }}
              />
              <span>{formatMoney(p)}</span>
            </label>
          ))}
          <label className="amount-option">
            <input
              type="radio"
              name="amount"
              checked={choice === 'other'}
              onChange={() => {
                setChoice('other');
                setTimeout(() => document.getElementById('topup-other')?.focus(), 0);
              }}
            />
            <span>Other amount</span>
          </label>
        </div>
        {choice === 'other' && (
          <div className="other-amount">
            <label htmlFor="topup-other">Amount in pounds</label>
            <div className="input-row">
              <span aria-hidden="true">£</span>
              <input
                id="topup-other"
                type="text"
                inputMode="decimal"
                autoComplete="off"
                className="input-short"
                value={other}
                onChange={(e) => setOther(e.target.value)}
                aria-invalid={error ? true : undefined}
              />
            </div>
          </div>
        )}
      </fieldset>
      {failure && <ErrorMessage error={failure} />}
      <div className="form-actions">
        <button type="submit" className="btn" aria-disabled={busy}>
          {busy ? 'Opening the payment page…' : amount ? `Pay ${formatMoney(amount)}` : 'Continue to payment'}
        </button>
        <p className="hint">
          You pay on the next page. {credit ? '' : 'The credit is sent to your meter straight after.'}
        </p>
      </div>
    </form>
  );
}

function History({ items }: { items: Topup[] }) {
  return (
    <section aria-labelledby="history-h">
      <h2 id="history-h">Recent payments</h2>
      {items.length === 0 ? (
        <EmptyState title="No payments yet.">
          <p>Your top-ups and payments will be listed here.</p>
        </EmptyState>
      ) : (
        <ul className="topup-list">
          {items.map((t) => (
            <li key={t.id} className="topup-item">
              <Link href={`/top-ups/${t.id}`}>
                <span className="topup-amount">{formatMoney(t.amountMinor, t.currency)}</span>
                <span className="visually-hidden">, </span>
                <span
                  className={`topup-status topup-${t.status}${t.waitingForMeter ? ' topup-waiting' : ''}`}
                >
                  {statusLabel(t)}
                </span>
              </Link>
              <span className="muted topup-when">
                {dateTime.format(new Date(t.createdAt))} · meter {t.meterSerial}
              </span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

/** Follows one top-up: pending -> paid -> on your meter (or declined, not completed, refunded). */
export function TopupStatusPage({ id }: { id: string }) {
  const loaded = useApi<Topup>(`/api/top-ups/${encodeURIComponent(id)}`);
  const { reload } = loaded;
  const t = loaded.data;
  const open = !t || t.status === 'pending' || (t.status === 'paid' && t.kind === 'topup');
  // Poll while something is still on its way; stop at a final state.
  useEffect(() => {
    if (!open || loaded.error) return;
    const h = setTimeout(reload, 2000);
    return () => clearTimeout(h);
  }, [open, loaded.error, reload, t]);
  return (
    <>
      <PageHeading title="Your payment">{t?.kind === 'payment' ? 'Your payment' : 'Your top-up'}</PageHeading>
      {loaded.error && !t ? (
        <ErrorMessage error={loaded.error} retry={reload} />
      ) : !t ? (
        <Loading what="your payment" />
      ) : (
        <TopupProgress t={t} />
      )}
      <p>
        <Link href="/top-up">Back to payments</Link>
      </p>
    </>
  );
}

function TopupProgress({ t }: { t: Topup }) {
  const money = formatMoney(t.amountMinor, t.currency);
  const steps =
    t.kind === 'topup'
      ? [
          {
            label: 'Payment',
            done: t.status !== 'pending' && t.status !== 'declined' && t.status !== 'expired',
          },
          { label: 'Paid', done: ['paid', 'applied', 'refunded'].includes(t.status) },
          { label: 'On your meter', done: t.status === 'applied' },
        ]
      : [
          { label: 'Payment', done: ['paid', 'refunded'].includes(t.status) },
          { label: 'Paid', done: ['paid', 'refunded'].includes(t.status) },
        ];
  const current = steps.findIndex((s) => !s.done);
  return (
    <div className="card">
      <p className="big-number">{money}</p>
      <p className="muted">
        Meter {t.meterSerial} · started {dateTime.format(new Date(t.createdAt))}
      </p>
      {t.status !== 'declined' && t.status !== 'expired' && t.status !== 'refunded' && (
        <ol className="steps" aria-label="Progress">
          {steps.map((s, i) => (
            <li
              key={s.label}
              className={s.done ? 'step-done' : i === current ? 'step-current' : 'step-todo'}
              aria-current={i === current ? 'step' : undefined}
            >
              <span aria-hidden="true" className="step-mark">
                {s.done ? '✓' : i + 1}
              </span>
              {s.label}
              <span className="visually-hidden">
                {s.done ? ' (done)' : i === current ? ' (in progress)' : ''}
              </span>
            </li>
          ))}
        </ol>
      )}
      <div role="status" aria-live="polite">
        <StatusMessage t={t} money={money} />
      </div>
    </div>
  );
}

function StatusMessage({ t, money }: { t: Topup; money: string }) {
  const { meters } = useSession();
  switch (t.status) {
    case 'pending':
      return (
        <>
          <p>Waiting for the payment to be confirmed. This page updates by itself.</p>
          {t.paymentUrl && (
            <p>
              Not paid yet? <a href={t.paymentUrl}>Go back to the payment page</a>.
            </p>
          )}
        </>
      );
    case 'paid':
      if (t.kind === 'payment') return <p className="ok-text">Payment received. Thank you.</p>;
      return t.waitingForMeter ? (
        <div className="notice notice-warn">
          <p>
            <strong>Waiting for your meter.</strong> Your payment is safe, but your meter has not been
            reachable. The credit is added as soon as it connects again. You do not need to pay again.
          </p>
        </div>
      ) : (
        <p>Payment received. Sending {money} to your meter…</p>
      );
    case 'applied': {
      const armed = meters.find((m) => m.serial === t.meterSerial)?.relay !== 'connected';
      return (
        <>
          <p className="ok-text">
            <span aria-hidden="true">✓ </span>
            {money} is on your meter.
          </p>
          {armed && <p>If your power was off, press the button on your meter to switch it back on.</p>}
        </>
      );
    }
    case 'declined':
      return (
        <div className="notice notice-error">
          <p>
            Your payment was declined{t.failureReason ? `: ${t.failureReason.replace(/\.$/, '')}` : ''}. No
            money was taken.
          </p>
          <p>
            {t.paymentUrl ? <a href={t.paymentUrl}>Try again with another card</a> : null}
            {t.paymentUrl ? ' or ' : ''}
            <Link href="/top-up">start a new payment</Link>.
          </p>
        </div>
      );
    case 'expired':
      return (
        <p>
          This payment was not completed and no money was taken.{' '}
          <Link href="/top-up">Start a new payment</Link>.
        </p>
      );
    case 'refunded':
      return (
        <p>
          {formatMoney(t.refundedMinor, t.currency)} of this payment was refunded to your card
          {t.refundedAt ? ` on ${dateTime.format(new Date(t.refundedAt))}` : ''}.
        </p>
      );
  }
}
