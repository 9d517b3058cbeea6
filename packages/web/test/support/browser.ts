import { expect } from 'vitest';
import type { Page } from 'playwright-core';
import { signedIn } from '../../scripts/axe-check.ts';

/** The demo's staff logins (packages/server/src/demo/seed.ts). */
export const STAFF = {
  supplier: { email: 'supplier@kilowire.demo', password: 'supplier-demo-pass' },
  supplier2: { email: 'supplier2@kilowire.demo', password: 'supplier2-demo-pass' },
  agent: { email: 'agent@kilowire.demo', password: 'agent-demo-pass' },
  operator: { email: 'operator@kilowire.demo', password: 'operator-demo-pass' },
  admin: { email: 'admin@kilowire.demo', password: 'admin-demo-pass' },
} as const;

/** Sign a staff user in through the log-in page, as a person would, and wait for the console. */
export async function staffLogin(
  page: Page,
  baseUrl: string,
  who: { email: string; password: string } = STAFF.supplier,
): Promise<void> {
  await page.goto(new URL('/login?as=staff', baseUrl).href);
  await page.getByLabel('Email').fill(who.email);
  await page.getByLabel('Password').fill(who.password);
  await page.getByRole('button', { name: 'Log in', exact: true }).click();
  await signedIn(page);
}

/** GET an API path with the page's session; the test fails unless it answers 200. */
export async function apiGet<T>(page: Page, baseUrl: string, url: string): Promise<T> {
  const r = await page.request.get(new URL(url, baseUrl).href);
  expect(r.status(), url).toBe(200);
  return (await r.json()) as T;
}
