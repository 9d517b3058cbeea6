import { useId, useState } from 'react';
import { api, ApiError } from '../../api.ts';
import './admin.css';

/**
 * Shown instead of everything else to someone who signed in with an initial password an
 * administrator chose: the API answers them nothing else (403 PASSWORD_CHANGE_REQUIRED).
 */
export default function ChoosePasswordPage({
  name,
  onDone,
  onSignOut,
}: {
  name: string;
  onDone: () => void;
  onSignOut: () => void;
}) {
  const id = useId();
  const [current, setCurrent] = useState('');
  const [pw, setPw] = useState('');
  const [pw2, setPw2] = useState('');
  const [problem, setProblem] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = (e: React.FormEvent) => {
    e.preventDefault();
    if (pw.length < 10) return setProblem('Choose at least 10 characters.');
    if (pw !== pw2) return setProblem('The two new passwords are not the same.');
    if (pw === current) return setProblem('Choose a password different from the one you were given.');
    setProblem(null);
    setBusy(true);
    api<void>('POST', '/api/me/password', { currentPassword: current, newPassword: pw }).then(
      onDone,
      (err: unknown) => {
        setBusy(false);
        setProblem(
          err instanceof ApiError && err.code === 'WRONG_PASSWORD'
            ? 'The password you were given is not correct.'
            : err instanceof ApiError
              ? err.message
              : String(err),
        );
      },
    );
  };
  return (
    <>
      <a className="skip-link" href="#main">
        Skip to main content
      </a>
      <main id="main" tabIndex={-1} className="container narrow adm-narrow">
        <h1>Choose your password</h1>
        <p>
          Welcome, {name}. You signed in with a password someone else chose for you; pick your own before you
          start.
        </p>
        <form className="card" onSubmit={submit} noValidate>
          {problem && (
            <div className="notice notice-error" role="alert">
              <p>{problem}</p>
            </div>
          )}
          <div className="field">
            <label htmlFor={`${id}-cur`}>Password you were given</label>
            <input
              id={`${id}-cur`}
              type="password"
              autoComplete="current-password"
              value={current}
              onChange={(e) => setCurrent(e.target.value)}
            />
          </div>
          <div className="field">
            <label htmlFor={`${id}-pw`}>New password</label>
            <p className="hint" id={`${id}-pw-hint`}>
              At least 10 characters.
            </p>
            <input
              id={`${id}-pw`}
              type="password"
              autoComplete="new-password"
              aria-describedby={`${id}-pw-hint`}
              value={pw}
              onChange={(e) => setPw(e.target.value)}
            />
          </div>
          <div className="field">
            <label htmlFor={`${id}-pw2`}>New password again</label>
            <input
              id={`${id}-pw2`}
              type="password"
              autoComplete="new-password"
              value={pw2}
              onChange={(e) => setPw2(e.target.value)}
            />
          </div>
          <div className="form-actions">
            <button type="submit" className="btn" disabled={busy}>
              {busy ? 'Saving…' : 'Save and continue'}
            </button>
            <button type="button" className="btn btn-secondary" onClick={onSignOut}>
              Log out
            </button>
          </div>
        </form>
      </main>
    </>
  );
}
