import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { isBlocking, launch, runAxe, signedIn } from '../../scripts/axe-check.ts';
import { startDemoSystem, type DemoSystem } from './system.ts';
import type { TestDb } from '../../../server/test/support/db.ts';

/** Where the browser tests keep their screenshots and downloads: test-results/e2e. */
export const SHOTS = path.resolve(import.meta.dirname, '../../../..', 'test-results', 'e2e');

/** The whole system and a Chromium for one e2e file, filled in by its beforeAll. */
export interface BrowserSystem {
  readonly baseUrl: string;
  /** The test's own database (with `ownDb`, or when the run targets the machine's PostgreSQL). */
  readonly db: TestDb;
  readonly sys: DemoSystem;
  readonly browser: Browser;
}

/**
 * Start the whole demo system (`startDemoSystem(name, env, o)`) and a Chromium before the
 * file's tests, and close both after them. `env` may be a function when it needs something
 * found at start-up (a free port). The object returned is filled in by the beforeAll: read
 * its fields inside hooks and tests, not at the file's top level.
 */
export function withBrowserSystem(
  name: string,
  env: Record<string, string> | (() => Record<string, string> | Promise<Record<string, string>>),
  o: { ownDb?: boolean; embeddedBroker?: boolean } = {},
): BrowserSystem {
  let sys: DemoSystem | undefined;
  let browser: Browser | undefined;
  const live: BrowserSystem = {
    get baseUrl() {
      return started().baseUrl;
    },
    get db() {
      const db = started().db;
      if (!db) throw new Error(`${name}: no test database (start it with { ownDb: true })`);
      return db;
    },
    get sys() {
      return started();
    },
    get browser() {
      if (!browser) throw new Error(`${name}: the browser is not launched yet`);
      return browser;
    },
  };
  function started(): DemoSystem {
    if (!sys) throw new Error(`${name}: the system is not started yet`);
    return sys;
  }
  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    sys = await startDemoSystem(name, typeof env === 'function' ? await env() : env, o);
    browser = await launch(process.env.CHROMIUM ?? '/usr/bin/chromium');
  }, 150_000);
  afterAll(async () => {
    await browser?.close();
    await sys?.stop();
  });
  return live;
}

/** A full-page screenshot: test-results/e2e/<name>-<width>.png. */
export async function shoot(page: Page, name: string, width: number): Promise<void> {
  await page.screenshot({ path: path.join(SHOTS, `${name}-${width}.png`), fullPage: true });
}

/** axe finds no serious or critical violation on the page. */
export async function axeClean(page: Page): Promise<void> {
  expect((await runAxe(page)).filter(isBlocking).map((v) => `${v.id}: ${v.help}`)).toEqual([]);
}

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
