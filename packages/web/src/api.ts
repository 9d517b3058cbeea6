// A small fetch wrapper for the same-origin API and the response types the portal uses.

export interface ApiIssue {
  path: string;
  message: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
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
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  path: string,
  body?: unknown,
): Promise<T> {
  const init: RequestInit = { method, credentials: 'same-origin', headers: { accept: 'application/json' } };
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
    const e = (data as { error?: { code?: string; message?: string; issues?: ApiIssue[] } } | undefined)
      ?.error;
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

export const qs = (params: Record<string, string | number | undefined | null>): string => {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params))
    if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
  const s = u.toString();
  return s ? `?${s}` : '';
};

// ---- response types -------------------------------------------------------------------

export type Role = 'consumer' | 'supplier' | 'operator' | 'admin';

export interface Me {
  user: { id: number; role: Role; displayName: string; email: string | null; consumerId: string | null };
  consumer: {
    id: number;
    name: string;
    email: string | null;
    mobile: string | null;
    supplier: { id: number; name: string };
    accounts: {
      id: number;
      mode: 'credit' | 'prepayment';
      billingCycleDay: number;
      currency: string;
      meters: string[];
    }[];
  } | null;
}

export type Relay = 'connected' | 'disconnected' | 'armed';
export type MeterMode = 'credit' | 'prepayment';

export interface Meter {
  serial: string;
  mode: MeterMode | null;
  relay: Relay | null;
  tz: string;
  intervalS: number;
  lastSeenAt: string | null;
  creditMinor: number | null;
}

export interface Home {
  meter: {
    serial: string;
    tz: string;
    mode: MeterMode | null;
    relay: Relay | null;
    creditMinor: number | null;
    currency: string;
  };
  lastReadingAt: string | null;
  today: { date: string; wh: number; dailyLimitWh: number | null; hourlyLimitWh: number | null };
  billingPeriod: { start: string; wh: number };
  unreadAlerts: number;
}

export interface Interval {
  start: string;
  startUtc: string;
  wh: number | null;
  estimated: boolean;
}

export interface DayIntervals {
  serial: string;
  tz: string;
  date: string;
  intervalS: number;
  start: string;
  end: string;
  expectedIntervals: number;
  receivedIntervals: number;
  estimatedIntervals: number;
  wh: number;
  intervals: Interval[];
}

export interface Rollup {
  wh: number;
  intervals: number;
  estimated: number;
}

export interface Daily {
  serial: string;
  tz: string;
  wh: number;
  days: (Rollup & { day: string })[];
}

export interface Monthly {
  serial: string;
  tz: string;
  wh: number;
  months: (Rollup & { month: string })[];
}

export interface Limits {
  dailyLimitWh: number | null;
  hourlyLimitWh: number | null;
}

export const ALERT_TYPES = [
  'daily_limit',
  'hourly_limit',
  'tamper',
  'disconnected',
  'credit_low',
  'tariff_changed',
] as const;
export type AlertType = (typeof ALERT_TYPES)[number];
export const ALERT_LABELS: Record<AlertType, string> = {
  daily_limit: 'Daily limit reached',
  hourly_limit: 'Hourly limit reached',
  tamper: 'Tampering detected',
  disconnected: 'Supply disconnected',
  credit_low: 'Credit running low',
  tariff_changed: 'Tariff changed',
};
export const CHANNELS = ['email', 'sms', 'web'] as const;
export type Channel = (typeof CHANNELS)[number];
export const CHANNEL_LABELS: Record<Channel, string> = { email: 'Email', sms: 'SMS', web: 'Web' };

export interface Profile {
  name: string;
  email: string | null;
  mobile: string | null;
  quietHours: { from: string; to: string } | null;
  channels: Record<AlertType, Record<Channel, boolean>>;
}

export interface Alert {
  id: number | string;
  type: AlertType | string;
  severity: string;
  title: string;
  message: string;
  meterSerial: string | null;
  createdAt: string;
  readAt: string | null;
}

export interface AlertPage {
  items: Alert[];
  nextCursor: string | null;
  unread: number;
}
