// A small fetch wrapper for the same-origin API. The request and response types are those of
// the HTTP contract (@kilowire/contract), imported as types only: no zod in the bundle.
import type { ApiErrorCode, ErrorBody } from '@kilowire/contract';

export type ApiIssue = NonNullable<ErrorBody['error']['issues']>[number];

/**
 * The API's stable codes, plus the portal's own: NETWORK (no answer), CLIENT (a fault in the
 * portal) and HTTP_<status> (an answer without an error body, e.g. from a proxy).
 */
export type ErrorCode = ApiErrorCode | 'NETWORK' | 'CLIENT' | `HTTP_${number}`;

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly issues: ApiIssue[] = [],
    /** Seconds from a Retry-After header (429), if any. */
    readonly retryAfterS: number | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

let onUnauthenticated: () => void = () => {};

/** Called when any request (other than signing in) answers 401: the session is gone. */
export function setUnauthenticatedHandler(fn: () => void): void {
  onUnauthenticated = fn;
}

export async function api<T>(
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
  path: string,
  body?: unknown,
  /** Extra headers, e.g. the Idempotency-Key of a top-up. */
  headers: Record<string, string> = {},
): Promise<T> {
  const init: RequestInit = {
    method,
    credentials: 'same-origin',
    headers: { accept: 'application/json', ...headers },
  };
  if (method !== 'GET') {
    // Every non-GET carries a JSON body (the server refuses others with 415: a CSRF guard).
    init.headers = { ...init.headers, 'content-type': 'application/json' };
    init.body = JSON.stringify(body ?? {});
  }
  let res: Response;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'NETWORK', 'Could not reach Kilowire. Check your connection and try again.');
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let data: unknown = undefined;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    data = undefined;
  }
  if (!res.ok) {
    // Whatever answered may not be the API (a proxy's HTML page): read the error body warily.
    const e = (data as { error?: Partial<ErrorBody['error']> } | undefined)?.error;
    const retry = Number(res.headers.get('retry-after'));
    const err = new ApiError(
      res.status,
      e?.code ?? `HTTP_${res.status}`,
      e?.message ?? `Request failed (${res.status})`,
      e?.issues ?? [],
      Number.isFinite(retry) && retry > 0 ? Math.ceil(retry) : null,
    );
    // A failed sign-in is not a lost session.
    if (res.status === 401 && err.code !== 'INVALID_CREDENTIALS' && path !== '/api/session')
      onUnauthenticated();
    throw err;
  }
  return data as T;
}

type QueryValue = string | number | boolean | null | undefined;

/**
 * A query string (with its `?`, or '' when empty), leaving out empty values. Name the
 * contract's query type to have the fields checked: qs<AlertsQuery>({ ... }).
 */
export function qs<Q extends { [K in keyof Q]: QueryValue }>(params: Q): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries<QueryValue>(params))
    if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
  const s = u.toString();
  return s ? `?${s}` : '';
}
