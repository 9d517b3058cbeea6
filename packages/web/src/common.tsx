// Shared hooks and small components.
import {
  createContext,
  useCallback,
  useContext,
  useEffect,
  useLayoutEffect,
  useRef,
  useState,
  type ReactNode,
} from 'react';
import type { Me, Meter } from '@kilowire/contract';
import { api, ApiError } from './api.ts';

export interface Session {
  me: Me;
  meters: Meter[];
  serial: string | null;
  setSerial: (s: string) => void;
  signOut: () => void;
}

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error('useSession outside a signed-in page');
  return s;
}

export function useMeter(): Meter | null {
  const { meters, serial } = useSession();
  return meters.find((m) => m.serial === serial) ?? null;
}

export interface Loaded<T> {
  data: T | null;
  error: ApiError | null;
  loading: boolean;
  reload: () => void;
}

/** GET `path` (null = nothing to load yet); reloads when the path changes. */
export function useApi<T>(path: string | null): Loaded<T> {
  const [state, setState] = useState<{ data: T | null; error: ApiError | null; loading: boolean }>({
    data: null,
    error: null,
    loading: path !== null,
  });
  const [n, setN] = useState(0);
  useEffect(() => {
    if (path === null) return;
    let live = true;
    setState((s) => ({ ...s, loading: true, error: null }));
    api<T>('GET', path).then(
      (data) => live && setState({ data, error: null, loading: false }),
      (e: unknown) =>
        live &&
        setState({
          data: null,
          error: e instanceof ApiError ? e : new ApiError(0, 'CLIENT', String(e)),
          loading: false,
        }),
    );
    return () => {
      live = false;
    };
  }, [path, n]);
  const reload = useCallback(() => setN((x) => x + 1), []);
  return { ...state, reload };
}

/** Ticks every `ms` so relative times ("updated 3 min ago") stay current. */
export function useNow(ms = 30_000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}

let firstPage = true;

/** The page's h1: sets the document title and, after a navigation, takes focus so screen readers announce the page. */
export function PageHeading({ children, title }: { children: ReactNode; title: string }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useLayoutEffect(() => {
    document.title = `${title} – Kilowire`;
    if (firstPage) firstPage = false;
    else ref.current?.focus();
  }, [title]);
  return (
    <h1 ref={ref} tabIndex={-1}>
      {children}
    </h1>
  );
}

export function ErrorMessage({ error, retry }: { error: ApiError; retry?: () => void }) {
  const message =
    error.status === 404
      ? 'This information is not available yet.'
      : error.status === 0
        ? error.message
        : `Something went wrong: ${error.message}`;
  return (
    <div className="notice notice-error" role="alert">
      <p>{message}</p>
      {retry && (
        <button type="button" className="btn btn-secondary" onClick={retry}>
          Try again
        </button>
      )}
    </div>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p className="muted" role="status">
      Loading {what}…
    </p>
  );
}

/** Shown only when the household has more than one meter. */
export function MeterPicker() {
  const { meters, serial, setSerial } = useSession();
  if (meters.length < 2) return null;
  return (
    <div className="field field-inline">
      <label htmlFor="meter-picker">Meter</label>
      <select id="meter-picker" value={serial ?? ''} onChange={(e) => setSerial(e.target.value)}>
        {meters.map((m) => (
          <option key={m.serial} value={m.serial}>
            {m.serial}
          </option>
        ))}
      </select>
    </div>
  );
}

/** Field-level messages from a 400 VALIDATION answer, keyed by the last path segment (body.mobile -> mobile). */
export function issuesByField(e: ApiError | null): Record<string, string> {
  const out: Record<string, string> = {};
  for (const i of e?.issues ?? []) {
    const key = i.path.split('.').slice(1).join('.') || i.path;
    out[key] ??= i.message;
  }
  return out;
}
