import { useCallback, useEffect, useId, useState } from 'react';
import { MIN_PASSWORD_LENGTH } from '@kilowire/contract/enums';
import { api, ApiError } from '../../api.ts';

/** Any failure as an ApiError, for ErrorMessage. */
export const asApiError = (e: unknown): ApiError =>
  e instanceof ApiError ? e : new ApiError(0, 'CLIENT', String(e));

/**
 * A keyset-paged list (`{ items, nextCursor }`): the first page for `path`, more on demand.
 * A new `path` (filters changed) starts again from the first page.
 */
export function usePaged<T>(path: string) {
  const [items, setItems] = useState<T[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const [n, setN] = useState(0);
  useEffect(() => {
    let live = true;
    setBusy(true);
    setError(null);
    api<{ items: T[]; nextCursor: string | null }>('GET', path).then(
      (p) => {
        if (!live) return;
        setItems(p.items);
        setCursor(p.nextCursor);
        setBusy(false);
      },
      (e: unknown) => {
        if (!live) return;
        setError(asApiError(e));
        setBusy(false);
      },
    );
    return () => {
      live = false;
    };
  }, [path, n]);
  const more = useCallback(() => {
    if (!cursor) return;
    const sep = path.includes('?') ? '&' : '?';
    setBusy(true);
    api<{ items: T[]; nextCursor: string | null }>(
      'GET',
      `${path}${sep}cursor=${encodeURIComponent(cursor)}`,
    ).then(
      (p) => {
        setItems((cur) => [...(cur ?? []), ...p.items]);
        setCursor(p.nextCursor);
        setBusy(false);
      },
      (e: unknown) => {
        setError(asApiError(e));
        setBusy(false);
      },
    );
  }, [cursor, path]);
  const reload = useCallback(() => setN((x) => x + 1), []);
  return { items, error, busy, hasMore: cursor !== null, more, reload };
}

/**
 * A secret shown this once (a meter's broker credential, an invitation link): what it is, a
 * copy button, and the warning that it cannot be shown again.
 */
export function OnceSecret({
  title,
  value,
  children,
}: {
  title: string;
  value: string;
  children?: React.ReactNode;
}) {
  const [copied, setCopied] = useState(false);
  return (
    <section className="adm-secret" aria-labelledby="adm-secret-title">
      <h2 id="adm-secret-title">{title}</h2>
      <p>
        <strong>Shown once.</strong> Kilowire keeps only a hash of it: copy it now, it cannot be shown again.
      </p>
      <code data-testid="once-secret">{value}</code>
      {children}
      <button
        type="button"
        className="btn btn-small"
        onClick={() => {
          navigator.clipboard?.writeText(value).then(
            () => setCopied(true),
            () => setCopied(false),
          );
        }}
      >
        {copied ? 'Copied' : 'Copy'}
      </button>
      <span className="visually-hidden" aria-live="polite">
        {copied ? 'Copied to the clipboard' : ''}
      </span>
    </section>
  );
}

/**
 * Columns of a keyset-paged list: the server decides the order (newest first, by serial) and
 * only some pages are loaded, so sorting them in the browser would misrepresent the whole.
 */
export function unsorted<C extends { enableSorting?: boolean }>(columns: C[]): C[] {
  return columns.map((c) => ({ ...c, enableSorting: false }));
}

export function fmtTime(iso: string | null): string {
  if (!iso) return '—';
  return new Date(iso).toLocaleString('en-GB', {
    day: 'numeric',
    month: 'short',
    year: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    timeZone: 'UTC',
    timeZoneName: 'short',
  });
}

/** Why a new password (typed twice) cannot be used yet, or null: the server's rule, said first here. */
export function newPasswordProblem(pw: string, again: string): string | null {
  if (pw.length < MIN_PASSWORD_LENGTH) return `Choose at least ${MIN_PASSWORD_LENGTH} characters.`;
  if (pw !== again) return 'The two new passwords are not the same.';
  return null;
}

/** "New password" and "the same again", for an invite and for a first sign-in. */
export function NewPasswordFields(p: {
  pw: string;
  again: string;
  onPw: (v: string) => void;
  onAgain: (v: string) => void;
  againLabel: string;
}) {
  const id = useId();
  return (
    <>
      <div className="field">
        <label htmlFor={`${id}-pw`}>New password</label>
        <p className="hint" id={`${id}-pw-hint`}>
          At least {MIN_PASSWORD_LENGTH} characters. A few unrelated words make a strong one.
        </p>
        <input
          id={`${id}-pw`}
          type="password"
          autoComplete="new-password"
          aria-describedby={`${id}-pw-hint`}
          value={p.pw}
          onChange={(e) => p.onPw(e.target.value)}
        />
      </div>
      <div className="field">
        <label htmlFor={`${id}-pw2`}>{p.againLabel}</label>
        <input
          id={`${id}-pw2`}
          type="password"
          autoComplete="new-password"
          value={p.again}
          onChange={(e) => p.onAgain(e.target.value)}
        />
      </div>
    </>
  );
}
