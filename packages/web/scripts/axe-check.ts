// Accessibility smoke check: signs in to a running Kilowire server, visits every page of the
// portal at 320 px and 1280 px, runs axe-core and a few checks axe cannot do (skip link is the
// first Tab stop, no horizontal scrolling at 320 px), and saves a screenshot of each.
//
//   node --import tsx packages/web/scripts/axe-check.ts [baseUrl]
//   env: KW_URL (default http://127.0.0.1:8090), KW_CONSUMER (C100003), KW_PASSWORD,
//        CHROMIUM (default /usr/bin/chromium), KW_SHOTS (packages/web/test-results)
//
// Exits 1 on any serious or critical violation. The functions are exported for the e2e suite.
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

const require = createRequire(import.meta.url);

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
];
export const WIDTHS = [320, 1280] as const;

export interface PageSpec {
  name: string;
  path: string;
  /** Pages checked without a session. */
  public?: boolean;
  /** Put the page in the state to check (e.g. open the table view). */
  prepare?: (page: Page) => Promise<void>;
}

export const PAGES: PageSpec[] = [
  { name: 'login', path: '/login', public: true },
  {
    name: 'login-error',
    path: '/login',
    public: true,
    prepare: async (page) => {
      await page.getByLabel('Consumer ID').fill('C999999');
      await page.getByLabel('Password').fill('not-the-password');
      await page.getByRole('button', { name: 'Log in', exact: true }).click();
      await page.getByRole('alert').waitFor();
    },
  },
  { name: 'home', path: '/' },
  { name: 'statistics-day', path: '/statistics' },
  {
    name: 'statistics-day-table',
    path: '/statistics',
    prepare: async (page) => {
      await page.getByRole('checkbox', { name: 'Show as table' }).check();
      await page.locator('table caption').waitFor();
    },
  },
  { name: 'statistics-month', path: '/statistics?view=month' },
  { name: 'statistics-year', path: '/statistics?view=year' },
  { name: 'tariff', path: '/tariff' },
  { name: 'limits', path: '/limits' },
  { name: 'top-up', path: '/top-up' },
  { name: 'alerts', path: '/alerts' },
  { name: 'profile', path: '/profile' },
];

export interface Credentials {
  consumerId: string;
  password: string;
}

export interface PageResult {
  name: string;
  width: number;
  url: string;
  screenshot: string;
  violations: { id: string; impact: string | null; help: string; nodes: string[] }[];
  problems: string[];
}

export function axeSource(): string {
  return readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
}

export async function launch(executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium'): Promise<Browser> {
  return chromium.launch({ executablePath, args: CHROMIUM_ARGS, headless: true });
}

export async function newContext(browser: Browser, width: number): Promise<BrowserContext> {
  return browser.newContext({
    viewport: { width, height: width < 600 ? 720 : 900 },
    locale: 'en-GB',
    timezoneId: 'Europe/London',
    // The portal's CSP forbids inline scripts; axe-core is injected as one, by the test only.
    bypassCSP: true,
  });
}

/**
 * Everything the page writes to the browser console as an error, from now on: console.error
 * calls, Chromium's own lines (a request answered 4xx/5xx, a CSP refusal) and uncaught exceptions.
 */
export function consoleErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`${m.text()} (${m.location().url})`);
  });
  page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));
  return errors;
}

/** Sign in through the log-in form (so the form itself is exercised). */
export async function login(page: Page, baseUrl: string, creds: Credentials): Promise<void> {
  await page.goto(new URL('/login', baseUrl).href);
  await page.getByLabel('Consumer ID').fill(creds.consumerId);
  await page.getByLabel('Password').fill(creds.password);
  await page.getByRole('button', { name: 'Log in', exact: true }).click();
  await signedIn(page);
}

/** Signed in: every portal's header has "Log out" in line, at every width. */
export async function signedIn(page: Page): Promise<void> {
  await page.getByRole('button', { name: 'Log out' }).waitFor({ timeout: 15_000 });
}

/**
 * Follow a navigation link of the portal (household header or staff side navigation). On a
 * narrow screen the navigation is folded behind the Menu button: open it first, as a person would.
 */
export async function goToNav(page: Page, name: string): Promise<void> {
  // The staff shell loads lazily after sign-in: wait until its navigation is in the page
  // (folded navigation is display:none, so it is looked for among hidden elements too).
  await page
    .locator('nav')
    .getByRole('link', { name, exact: true, includeHidden: true })
    .first()
    .waitFor({ state: 'attached', timeout: 15_000 });
  const menu = page.getByRole('button', { name: 'Menu', exact: true });
  if ((await menu.isVisible()) && (await menu.getAttribute('aria-expanded')) !== 'true') await menu.click();
  await page
    .locator('nav')
    .getByRole('link', { name, exact: true })
    .filter({ visible: true })
    .first()
    .click();
}

/** Wait until the page has finished loading its data (no "Loading …" status left). */
export async function settle(page: Page): Promise<void> {
  await page.waitForLoadState('networkidle').catch(() => undefined);
  await page
    .waitForFunction(
      () =>
        ![...document.querySelectorAll('[role=status]')].some((e) => /^Loading/.test(e.textContent ?? '')),
      null,
      {
        timeout: 15_000,
      },
    )
    .catch(() => undefined);
}

interface AxeResult {
  violations: { id: string; impact: string | null; help: string; nodes: { target: unknown[] }[] }[];
}

/** Inject axe-core and run it (WCAG 2.0-2.2 A/AA rules plus best practices). */
export async function runAxe(page: Page, source = axeSource()): Promise<PageResult['violations']> {
  await page.addScriptTag({ content: source });
  const r = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run: (ctx: Document, opts: unknown) => Promise<unknown> } })
      .axe;
    return axe.run(document, {
      runOnly: {
        type: 'tag',
        values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'],
      },
      resultTypes: ['violations'],
    });
  });
  return (r as AxeResult).violations.map((v) => ({
    id: v.id,
    impact: v.impact,
    help: v.help,
    nodes: v.nodes.map((n) => JSON.stringify(n.target)),
  }));
}

/** Reflow: no sideways scrolling of the page at its width (WCAG 1.4.10). */
export async function reflowCheck(page: Page, width: number): Promise<string[]> {
  const overflow = await page.evaluate(
    () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
  );
  return overflow > 1 ? [`page scrolls sideways by ${overflow}px at ${width}px (WCAG 1.4.10)`] : [];
}

/** On a freshly loaded signed-in page: the skip link is the first Tab stop and main has one h1. */
export async function keyboardStartCheck(page: Page, spec: PageSpec): Promise<string[]> {
  const problems: string[] = [];
  if (!spec.public) {
    await page.keyboard.press('Tab');
    const first = await page.evaluate(() => document.activeElement?.className ?? '');
    if (!first.includes('skip-link')) problems.push(`first Tab stop is not the skip link (got "${first}")`);
    // Leave no focus ring in the screenshot that follows.
    await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
    const h1 = await page.locator('main h1').count();
    if (h1 !== 1) problems.push(`expected one h1 in main, found ${h1}`);
  }
  return problems;
}

export async function checkPage(
  page: Page,
  baseUrl: string,
  spec: PageSpec,
  width: number,
  shotsDir: string,
  source: string,
): Promise<PageResult> {
  const url = new URL(spec.path, baseUrl).href;
  await page.goto(url);
  await settle(page);
  const problems = await keyboardStartCheck(page, spec);
  if (spec.prepare) {
    await spec.prepare(page);
    await settle(page);
  }
  const screenshot = path.join(shotsDir, `${spec.name}-${width}.png`);
  await page.screenshot({ path: screenshot, fullPage: true });
  const violations = await runAxe(page, source);
  problems.push(...(await reflowCheck(page, width)));
  return { name: spec.name, width, url, screenshot, violations, problems };
}

export interface RunOptions {
  baseUrl?: string;
  creds?: Credentials;
  pages?: PageSpec[];
  widths?: readonly number[];
  shotsDir?: string;
  executablePath?: string;
}

export async function runAxeCheck(opts: RunOptions = {}): Promise<PageResult[]> {
  const baseUrl = opts.baseUrl ?? process.env.KW_URL ?? 'http://127.0.0.1:8090';
  const creds = opts.creds ?? {
    consumerId: process.env.KW_CONSUMER ?? 'C100003',
    password: process.env.KW_PASSWORD ?? 'consumer-demo-pass',
  };
  const shotsDir =
    opts.shotsDir ?? process.env.KW_SHOTS ?? path.resolve(import.meta.dirname, '../test-results');
  mkdirSync(shotsDir, { recursive: true });
  const source = axeSource();
  const browser = await launch(opts.executablePath);
  const results: PageResult[] = [];
  try {
    for (const width of opts.widths ?? WIDTHS) {
      const anon = await newContext(browser, width);
      const user = await newContext(browser, width);
      const anonPage = await anon.newPage();
      const userPage = await user.newPage();
      await login(userPage, baseUrl, creds);
      for (const spec of opts.pages ?? PAGES) {
        results.push(
          await checkPage(spec.public ? anonPage : userPage, baseUrl, spec, width, shotsDir, source),
        );
      }
      await anon.close();
      await user.close();
    }
  } finally {
    await browser.close();
  }
  return results;
}

export function isBlocking(v: PageResult['violations'][number]): boolean {
  return v.impact === 'serious' || v.impact === 'critical';
}

async function main(): Promise<void> {
  const results = await runAxeCheck({ baseUrl: process.argv[2] });
  let failed = false;
  for (const r of results) {
    const blocking = r.violations.filter(isBlocking);
    const other = r.violations.filter((v) => !isBlocking(v));
    const ok = blocking.length === 0 && r.problems.length === 0;
    if (!ok) failed = true;
    console.log(
      `${ok ? 'ok  ' : 'FAIL'} ${r.name} @${r.width}px  (${path.relative(process.cwd(), r.screenshot)})`,
    );
    for (const v of blocking)
      console.log(`     ${v.impact}: ${v.id} — ${v.help}\n       ${v.nodes.slice(0, 5).join('\n       ')}`);
    for (const v of other)
      console.log(`     (${v.impact ?? 'n/a'}) ${v.id} — ${v.help}: ${v.nodes.slice(0, 3).join(' ')}`);
    for (const p of r.problems) console.log(`     problem: ${p}`);
  }
  console.log(
    failed
      ? '\naxe check FAILED'
      : `\naxe check passed: ${results.length} page views, no serious or critical violations`,
  );
  process.exitCode = failed ? 1 : 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === import.meta.filename) {
  await main();
}
