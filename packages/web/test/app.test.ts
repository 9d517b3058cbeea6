// @vitest-environment jsdom
import { act, createElement } from 'react';
import { createRoot, type Root } from 'react-dom/client';
import { afterEach, beforeEach, describe, expect, it, vi, type MockInstance } from 'vitest';
import type { Limits, Me, MeterList, SessionState } from '@kilowire/contract';
import { App } from '../src/App.tsx';

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

const ME: Me = {
  user: { id: 7, role: 'consumer', displayName: 'Ada', email: null, consumerId: 'C100001', staffRole: null },
  capabilities: ['home.read', 'profile.manage'],
  organisation: null,
  consumer: {
    id: 3,
    name: 'Ada Lovelace',
    email: null,
    mobile: null,
    supplier: { id: 1, name: 'Demo Energy' },
    accounts: [{ id: 5, mode: 'credit', billingCycleDay: 1, currency: 'GBP', meters: ['KW1'] }],
  },
};
const METERS: MeterList = {
  items: [
    {
      serial: 'KW1',
      mode: 'credit',
      relay: 'connected',
      tz: 'Europe/London',
      intervalS: 1800,
      area: { id: 'north', name: 'North' },
      supplier: { id: 1, name: 'Demo Energy' },
      lastSeenAt: null,
      creditMinor: null,
      firmwareVersion: null,
    },
  ],
  nextCursor: null,
};
const LIMITS: Limits = {
  dailyLimitWh: 10_000,
  hourlyLimitWh: null,
  lowCreditMinor: null,
  lowCreditCommand: null,
};

/** A stand-in for the API: answers GETs by path, 404 for anything else; records what was asked. */
function fakeApi(answers: Record<string, unknown>) {
  return vi.fn((url: string, init?: RequestInit) => {
    const path = url.split('?')[0] ?? url;
    const body = init?.method === 'GET' ? answers[path] : undefined;
    return Promise.resolve(
      body === undefined
        ? new Response(JSON.stringify({ error: { code: 'NOT_FOUND', message: 'no such route' } }), {
            status: 404,
          })
        : new Response(JSON.stringify(body), {
            status: 200,
            headers: { 'content-type': 'application/json' },
          }),
    );
  });
}

let root: Root;
let host: HTMLElement;
let consoleError: MockInstance<typeof console.error>;

/** Let the stubbed requests answer and React render what they bring. */
async function settle(until: () => boolean = () => true): Promise<void> {
  // Pages load on first visit (lazy chunks): wait for what the test looks for, up to 3 s.
  for (let i = 0; i < 150; i++) {
    await act(() => new Promise<void>((r) => setTimeout(r, 20)));
    if (until()) return;
  }
}

async function boot(at: string, answers: Record<string, unknown>, until?: () => boolean): Promise<string[]> {
  history.replaceState(null, '', at);
  const fetch = fakeApi(answers);
  vi.stubGlobal('fetch', fetch);
  act(() => root.render(createElement(App)));
  await settle(until);
  return fetch.mock.calls.map(([url, init]) => `${init?.method ?? 'GET'} ${url}`);
}

describe('start-up', () => {
  beforeEach(() => {
    host = document.createElement('div');
    document.body.append(host);
    root = createRoot(host);
    consoleError = vi.spyOn(console, 'error');
  });
  afterEach(() => {
    act(() => root.unmount());
    host.remove();
    vi.unstubAllGlobals();
    vi.restoreAllMocks();
  });

  it('asks whether anyone is signed in, and shows the log-in page without a failed request', async () => {
    const signedOut: SessionState = { signedIn: false };
    const asked = await boot('/statistics', { '/api/session': signedOut });
    expect(asked).toEqual(['GET /api/session']);
    expect(location.pathname + location.search).toBe('/login?next=%2Fstatistics');
    expect(host.querySelector('h1')?.textContent).toBe('Log in');
    expect(consoleError).not.toHaveBeenCalled();
  });

  it('loads the account of a signed-in browser and opens the page asked for', async () => {
    const signedIn: SessionState = {
      signedIn: true,
      user: { id: 7, role: 'consumer', displayName: 'Ada' },
      expiresAt: '2030-01-01T00:00:00.000Z',
    };
    const asked = await boot(
      '/limits',
      {
        '/api/session': signedIn,
        '/api/me': ME,
        '/api/meters': METERS,
        '/api/meters/KW1/limits': LIMITS,
      },
      () => host.querySelector('#limit-dailyLimitWh') !== null,
    );
    expect(asked).toEqual([
      'GET /api/session',
      'GET /api/me',
      'GET /api/meters?limit=200',
      'GET /api/meters/KW1/limits',
    ]);
    expect(location.pathname).toBe('/limits');
    expect(host.querySelector('nav[aria-label=Main]')).not.toBeNull();
    expect(host.querySelector('.signed-in')?.textContent).toContain('Ada Lovelace');
    expect(host.querySelector<HTMLInputElement>('#limit-dailyLimitWh')?.value).toBe('10');
    expect(consoleError).not.toHaveBeenCalled();
  });
});
