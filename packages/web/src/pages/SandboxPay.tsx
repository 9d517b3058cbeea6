import { useId, useLayoutEffect, useState, type FormEvent } from 'react';
import type { SandboxPayBody, SandboxPayResponse, SandboxSession } from '@kilowire/contract';
import { api, ApiError } from '../api.ts';
import { ErrorMessage, issuesByField, Loading, useApi } from '../common.tsx';
import { formatMoney } from '../format.ts';

/**
 * The sandbox provider's card page: what Stripe's checkout page is for real payments. It
 * needs no session (like Stripe's page, the unguessable checkout id is the key), stands
 * apart from the portal's navigation, and says SANDBOX plainly so nobody types a real card.
 */
export function SandboxPayPage({ session }: { session: string }) {
  const path = `/api/payments/sandbox/${encodeURIComponent(session)}`;
  const loaded = useApi<SandboxSession>(path);
  useLayoutEffect(() => {
    document.title = 'Pay (sandbox) – Kilowire';
  }, []);
  return (
    <div className="sandbox-page">
      <div className="sandbox-banner" role="note">
        <strong>SANDBOX</strong> Test payments only. No real card is charged and no money moves.
      </div>
      <main id="main" className="container narrow">
        <h1>Pay by card</h1>
        {loaded.error ? (
          loaded.error.status === 404 ? (
            <div className="notice notice-error" role="alert">
              <p>This payment page does not exist or is no longer available.</p>
              <p>
                <a href="/top-up">Return to Kilowire</a>
              </p>
            </div>
          ) : (
            <ErrorMessage error={loaded.error} retry={loaded.reload} />
          )
        ) : !loaded.data ? (
          <Loading what="the payment" />
        ) : (
          <Checkout path={path} s={loaded.data} />
        )}
      </main>
    </div>
  );
}

function Checkout({ path, s }: { path: string; s: SandboxSession }) {
  const [card, setCard] = useState('');
  const [fieldError, setFieldError] = useState<string | null>(null);
  const [declined, setDeclined] = useState<string | null>(
    s.status === 'declined' ? 'Your card was declined.' : null,
  );
  const [failure, setFailure] = useState<ApiError | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const hintId = useId();
  const errId = useId();
  const amount = formatMoney(s.amountMinor, s.currency);

  if (s.status === 'complete' || s.status === 'processing') {
    return (
      <div className="card">
        <p>This payment of {amount} has been made.</p>
        <p>
          <a href={s.returnUrl}>Return to Kilowire</a>
        </p>
      </div>
    );
  }
  if (s.status === 'expired') {
    return (
      <div className="card">
        <p>This payment page has expired. No money was taken.</p>
        <p>
          <a href={s.cancelUrl}>Return to Kilowire</a>
        </p>
      </div>
    );
  }

  const submit = (e: FormEvent): void => {
    e.preventDefault();
    if (busy || done) return;
    const digits = card.replace(/\s+/g, '');
    if (!/^\d{12,19}$/.test(digits)) {
      setFieldError('Enter the card number: 12 to 19 digits, spaces allowed.');
      document.getElementById('card-number')?.focus();
      return;
    }
    setFieldError(null);
    setFailure(null);
    setDeclined(null);
    setBusy(true);
    const body: SandboxPayBody = { cardNumber: card };
    api<SandboxPayResponse>('POST', `${path}/pay`, body).then(
      (r) => {
        setBusy(false);
        if (r.outcome === 'declined') {
          setDeclined(r.message);
          return;
        }
        setDone('Payment accepted. Taking you back to Kilowire…');
        setTimeout(() => location.assign(r.returnUrl), 800);
      },
      (err: unknown) => {
        setBusy(false);
        const a = err instanceof ApiError ? err : new ApiError(0, 'CLIENT', String(err));
        if (a.code === 'CARD_UNKNOWN' || a.code === 'VALIDATION') {
          setFieldError(issuesByField(a).cardNumber ? a.message : a.message);
          document.getElementById('card-number')?.focus();
        } else setFailure(a);
      },
    );
  };

  return (
    <form className="card form" onSubmit={submit} noValidate>
      <dl className="facts">
        <div>
          <dt>For</dt>
          <dd>{s.description}</dd>
        </div>
        <div>
          <dt>Amount</dt>
          <dd>{amount}</dd>
        </div>
      </dl>
      {declined && (
        <div className="notice notice-error" role="alert">
          <p>{declined} No money was taken. Try another card.</p>
        </div>
      )}
      <div className={`field${fieldError ? ' field-error' : ''}`}>
        <label htmlFor="card-number">Card number</label>
        <p className="hint" id={hintId}>
          Test cards: 4242 4242 4242 4242 pays; 4000 0000 0000 0002 is declined.
        </p>
        {fieldError && (
          <p className="error-text" id={errId}>
            <span aria-hidden="true">⚠ </span>
            {fieldError}
          </p>
        )}
        <input
          id="card-number"
          type="text"
          inputMode="numeric"
          autoComplete="off"
          className="input-card"
          value={card}
          onChange={(e) => setCard(e.target.value)}
          aria-invalid={fieldError ? true : undefined}
          aria-describedby={fieldError ? `${errId} ${hintId}` : hintId}
        />
      </div>
      {failure && <ErrorMessage error={failure} />}
      <div className="form-actions">
        <button type="submit" className="btn" aria-disabled={busy || done !== null}>
          {busy ? 'Paying…' : 'Pay'}
        </button>
        <span className="muted">{amount}</span>
        <a href={s.cancelUrl}>Cancel and return to Kilowire</a>
      </div>
      <p role="status" aria-live="polite" className="saved">
        {done}
      </p>
    </form>
  );
}
