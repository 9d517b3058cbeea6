// @vitest-environment jsdom
import { act, createElement } from 'react';
import { createRoot, type Root } from 'react-dom/client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ErrorBody, LoginResponse } from '@kilowire/contract';
import { LOGIN_FAILED, LoginPage } from '../src/pages/Login.tsx';

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

let root: Root;
let host: HTMLElement;

/** A fetch stand-in that gives one answer, typed by the contract. */
function answer(
  status: number,
  body: LoginResponse | ErrorBody,
  headers: Record<string, string> = {},
): (url: string, init?: RequestInit) => Promise<Response> {
  return () =>
    Promise.resolve(
      new Response(JSON.stringify(body), {
        status,
        headers: { 'content-type': 'application/json', ...headers },
      }),
    );
}

async function submit(id: string, password: string): Promise<void> {
  const set = (el: HTMLInputElement, v: string): void => {
    // React tracks the value through the native setter.
    Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value')?.set?.call(el, v);
    el.dispatchEvent(new Event('input', { bubbles: true }));
  };
  act(() => {
    set(host.querySelector<HTMLInputElement>('#consumer-id')!, id);
    set(host.querySelector<HTMLInputElement>('#password')!, password);
  });
  await act(async () => {
    host.querySelector<HTMLButtonElement>('button[type=submit]')!.click();
    await new Promise((r) => setTimeout(r, 0));
  });
}

describe('log-in page', () => {
  const onSignedIn = vi.fn();
  beforeEach(() => {
    host = document.createElement('div');
    document.body.append(host);
    root = createRoot(host);
    act(() => root.render(createElement(LoginPage, { onSignedIn })));
  });
  afterEach(() => {
    act(() => root.unmount());
    host.remove();
    vi.unstubAllGlobals();
    onSignedIn.mockReset();
  });

  it('labels the fields for password managers and allows paste', () => {
    const id = host.querySelector<HTMLInputElement>('#consumer-id')!;
    const pw = host.querySelector<HTMLInputElement>('#password')!;
    expect(id.autocomplete).toBe('username');
    expect(pw.autocomplete).toBe('current-password');
    expect(host.querySelector('label[for=consumer-id]')?.textContent).toBe('Consumer ID');
    expect(host.querySelector('label[for=password]')?.textContent).toBe('Password');
    expect(pw.getAttribute('onpaste')).toBeNull();
  });

  it('shows one generic message for a wrong ID or password', async () => {
    const fetch = vi.fn(answer(401, { error: { code: 'INVALID_CREDENTIALS', message: 'no such consumer' } }));
    vi.stubGlobal('fetch', fetch);
    await submit('C999', 'x');
    const alert = host.querySelector('[role=alert]');
    expect(alert?.textContent).toBe(LOGIN_FAILED);
    expect(alert?.textContent).not.toContain('no such');
    expect(fetch).toHaveBeenCalledOnce();
    const [url, init] = fetch.mock.calls[0]!;
    expect(url).toBe('/api/session');
    expect(init).toMatchObject({ method: 'POST', headers: { 'content-type': 'application/json' } });
    expect(onSignedIn).not.toHaveBeenCalled();
  });

  it('tells how long to wait when rate limited', async () => {
    vi.stubGlobal(
      'fetch',
      vi.fn(answer(429, { error: { code: 'RATE_LIMITED', message: 'slow down' } }, { 'retry-after': '42' })),
    );
    await submit('C100001', 'x');
    expect(host.querySelector('[role=alert]')?.textContent).toBe('Too many attempts. Try again in 42 s.');
  });

  it('signs in', async () => {
    vi.stubGlobal(
      'fetch',
      vi.fn(
        answer(200, {
          user: { id: 1, role: 'consumer', displayName: 'A' },
          expiresAt: '2026-01-01T00:00:00Z',
        }),
      ),
    );
    await submit('C100001', 'consumer-demo-pass');
    expect(onSignedIn).toHaveBeenCalledOnce();
    expect(host.querySelector('[role=alert]')).toBeNull();
  });
});
