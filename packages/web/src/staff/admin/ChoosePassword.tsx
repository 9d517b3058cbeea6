import { useId, useState } from 'react';
import { api, ApiError } from '../../api.ts';
import { NewPasswordFields, newPasswordProblem } from './shared.tsx';
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
    const bad = newPasswordProblem(pw, pw2);
    if (bad) return setProblem(bad);
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
          <NewPasswordFields
            pw={pw}
            again={pw2}
            onPw={setPw}
            onAgain={setPw2}
            againLabel="New password again"
          />
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
