import { useEffect, useRef, useState, type FormEvent } from 'react';
import type { LoginBody, LoginResponse } from '@kilowire/contract';
import { api, ApiError } from '../api.ts';

/** The one message for unknown ID, wrong password and disabled account. */
export const LOGIN_FAILED = 'The consumer ID or password is not correct. Check both and try again.';
const STAFF_LOGIN_FAILED = 'The email or password is not correct. Check both and try again.';

export function loginErrorMessage(e: unknown): string {
  if (e instanceof ApiError) {
    if (e.status === 429 || e.code === 'RATE_LIMITED') {
      return e.retryAfterS
        ? `Too many attempts. Try again in ${e.retryAfterS} s.`
        : 'Too many attempts. Wait a minute and try again.';
    }
    if (e.status === 401 || e.status === 400 || e.status === 403) return LOGIN_FAILED;
    if (e.status === 0) return e.message;
  }
  return 'Signing in failed because of a problem on our side. Try again in a moment.';
}

export function LoginPage({ onSignedIn }: { onSignedIn: () => void }) {
  // Households sign in with their consumer ID; supplier and operator staff with their email.
  const [staff, setStaff] = useState(() => new URLSearchParams(location.search).get('as') === 'staff');
  const [consumerId, setConsumerId] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const errorRef = useRef<HTMLDivElement>(null);

  useEffect(() => {
    document.title = 'Log in – Kilowire';
  }, []);
  useEffect(() => {
    if (error) errorRef.current?.focus();
  }, [error]);

  const submit = (e: FormEvent): void => {
    e.preventDefault();
    if (busy) return;
    if (!consumerId.trim() || !password) {
      setError(staff ? 'Enter your email and your password.' : 'Enter your consumer ID and your password.');
      return;
    }
    setBusy(true);
    setError(null);
    const body: LoginBody = staff
      ? { email: consumerId.trim(), password }
      : { consumerId: consumerId.trim(), password };
    api<LoginResponse>('POST', '/api/session', body).then(
      () => {
        setBusy(false);
        setPassword('');
        onSignedIn();
      },
      (err: unknown) => {
        setBusy(false);
        const msg = loginErrorMessage(err);
        setError(staff && msg === LOGIN_FAILED ? STAFF_LOGIN_FAILED : msg);
      },
    );
  };

  return (
    <main id="main" className="container narrow login">
      <div className="login-band">
        <p className="brand brand-login">
          <span aria-hidden="true" className="brand-mark">
            ⚡
          </span>
          Kilowire
        </p>
        <p className="login-tagline">
          {staff
            ? 'The console for energy suppliers, network operators and the platform team.'
            : 'Your electricity at a glance: what you use, what it costs, and your credit.'}
        </p>
      </div>
      <h1>{staff ? 'Staff log in' : 'Log in'}</h1>
      <p>
        {staff
          ? 'Supplier, network operator and platform staff sign in with their work email.'
          : 'Use the consumer ID printed on your electricity bill.'}
      </p>
      <form onSubmit={submit} noValidate className="card">
        {error && (
          <div className="notice notice-error" role="alert" tabIndex={-1} ref={errorRef} id="login-error">
            <p>{error}</p>
          </div>
        )}
        <div className="field">
          <label htmlFor="consumer-id">{staff ? 'Email' : 'Consumer ID'}</label>
          <input
            id="consumer-id"
            name="username"
            type={staff ? 'email' : 'text'}
            autoComplete="username"
            autoCapitalize={staff ? 'none' : 'characters'}
            spellCheck={false}
            required
            value={consumerId}
            onChange={(e) => setConsumerId(e.target.value)}
            aria-describedby="consumer-id-hint"
          />
          <p className="hint" id="consumer-id-hint">
            {staff ? 'For example name@supplier.example' : 'For example C100001'}
          </p>
        </div>
        <div className="field">
          <label htmlFor="password">Password</label>
          <input
            id="password"
            name="password"
            type="password"
            autoComplete="current-password"
            required
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </div>
        <button type="submit" className="btn" aria-disabled={busy}>
          {busy ? 'Logging in…' : 'Log in'}
        </button>
      </form>
      <p>
        <button
          type="button"
          className="link-button"
          onClick={() => {
            setStaff(!staff);
            setError(null);
            setConsumerId('');
          }}
        >
          {staff ? 'Household? Log in with your consumer ID' : 'Staff? Log in with your email'}
        </button>
      </p>
    </main>
  );
}
