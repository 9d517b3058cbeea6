import { useEffect, useState } from 'react';
import type { InviteInfo } from '@kilowire/contract';
import { api, ApiError } from '../../api.ts';
import { Link } from '../../router.tsx';
import { fmtTime, NewPasswordFields, newPasswordProblem } from './shared.tsx';
import './admin.css';

/**
 * Accepting an invitation (public: the link is the credential). Shows who it is for, lets
 * them choose a password, then sends them to sign in.
 */
export default function InvitePage({ token }: { token: string }) {
  const [info, setInfo] = useState<InviteInfo | null>(null);
  const [state, setState] = useState<'loading' | 'ready' | 'invalid' | 'error' | 'done'>('loading');
  const [pw, setPw] = useState('');
  const [pw2, setPw2] = useState('');
  const [problem, setProblem] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    document.title = 'Your invitation – Kilowire';
    api<InviteInfo>('GET', `/api/invites/${encodeURIComponent(token)}`).then(
      (i) => {
        setInfo(i);
        setState('ready');
      },
      (e: unknown) => setState(e instanceof ApiError && e.status === 404 ? 'invalid' : 'error'),
    );
  }, [token]);
  const submit = (e: React.FormEvent) => {
    e.preventDefault();
    const bad = newPasswordProblem(pw, pw2);
    if (bad) return setProblem(bad);
    setProblem(null);
    setBusy(true);
    api<void>('POST', `/api/invites/${encodeURIComponent(token)}`, { password: pw }).then(
      () => setState('done'),
      (err: unknown) => {
        setBusy(false);
        if (err instanceof ApiError && err.status === 404) setState('invalid');
        else setProblem(err instanceof ApiError ? err.message : String(err));
      },
    );
  };
  return (
    <>
      <a className="skip-link" href="#main">
        Skip to main content
      </a>
      <main id="main" tabIndex={-1} className="container narrow adm-narrow">
        <h1>
          <span aria-hidden="true">⚡ </span>Welcome to Kilowire
        </h1>
        {state === 'loading' && (
          <p className="muted" role="status">
            Checking your invitation…
          </p>
        )}
        {state === 'invalid' && (
          <div className="notice notice-error" role="alert">
            <p>
              This invitation link is not valid: it was already used, it has expired, or it is incomplete.
            </p>
            <p>Ask the person who invited you for a new one.</p>
          </div>
        )}
        {state === 'error' && (
          <div className="notice notice-error" role="alert">
            <p>Could not check the invitation. Try again in a moment.</p>
          </div>
        )}
        {state === 'done' && (
          <div className="notice" role="status">
            <p>Your password is set.</p>
            <p>
              <Link href="/login">Sign in</Link> with {info?.email} and your new password.
            </p>
          </div>
        )}
        {state === 'ready' && info && (
          <form className="card" onSubmit={submit} noValidate>
            <p>
              {info.name}, you are invited to {info.organisation ? `${info.organisation} on ` : ''}Kilowire as{' '}
              <strong>{info.email}</strong>. Choose your password to finish.
            </p>
            {problem && (
              <div className="notice notice-error" role="alert">
                <p>{problem}</p>
              </div>
            )}
            <input type="email" autoComplete="username" value={info.email} readOnly hidden />
            <NewPasswordFields
              pw={pw}
              again={pw2}
              onPw={setPw}
              onAgain={setPw2}
              againLabel="The same again"
            />
            <div className="form-actions">
              <button type="submit" className="btn" disabled={busy}>
                {busy ? 'Saving…' : 'Set my password'}
              </button>
            </div>
            <p className="muted">The link works once, until {fmtTime(info.expiresAt)}.</p>
          </form>
        )}
      </main>
    </>
  );
}
