import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { Me } from '@kilowire/contract';
import { SHOTS, withBrowserSystem } from './support/browser.ts';
import {
  axeSource,
  consoleErrors,
  isBlocking,
  newContext,
  reflowCheck,
  runAxe,
  settle,
  signedIn,
} from '../scripts/axe-check.ts';
import { NAV } from '../src/nav.ts';
import { allowed, STAFF_PAGES } from '../src/staff/routes.tsx';

/**
 * Every page of every portal, for every role, at 390 and 1280 px, in Chromium against the
 * whole demo system: axe finds no serious or critical violation, the page does not scroll
 * sideways, and a full-page screenshot is kept in test-results/e2e/pages/ for a person to look
 * at. The pages come from the portals' own tables (the household NAV, STAFF_PAGES filtered by
 * the user's /api/me capabilities), so a page added to either is checked without touching
 * this file.
 */
const PAGE_SHOTS = path.join(SHOTS, 'pages');
const WIDTHS = [390, 1280] as const;

interface Who {
  role: string;
  login: { staff: boolean; id: string; password: string };
}

const WHO: Who[] = [
  { role: 'household-credit', login: { staff: false, id: 'C100001', password: 'consumer-demo-pass' } },
  // Every third demo household is on prepayment.
  { role: 'household-prepay', login: { staff: false, id: 'C100003', password: 'consumer-demo-pass' } },
  {
    role: 'supplier-admin',
    login: { staff: true, id: 'supplier@kilowire.demo', password: 'supplier-demo-pass' },
  },
  { role: 'supplier-agent', login: { staff: true, id: 'agent@kilowire.demo', password: 'agent-demo-pass' } },
  { role: 'administrator', login: { staff: true, id: 'admin@kilowire.demo', password: 'admin-demo-pass' } },
  {
    role: 'network-operator',
    login: { staff: true, id: 'operator@kilowire.demo', password: 'operator-demo-pass' },
  },
];

const e2e = withBrowserSystem('e2e-pages', {
  SIM_METERS: '3',
  SIM_SPEED: '900',
  SIM_BACKFILL_DAYS: '2',
  DEMO_TZ: 'Europe/London',
});

beforeAll(() => {
  mkdirSync(PAGE_SHOTS, { recursive: true });
});

async function logIn(page: Page, who: Who): Promise<void> {
  await page.goto(new URL(who.login.staff ? '/login?as=staff' : '/login', e2e.baseUrl).href);
  const staffLink = page.getByRole('button', { name: 'Staff? Log in with your email' });
  if (who.login.staff && (await staffLink.isVisible())) await staffLink.click();
  await page.getByLabel(who.login.staff ? 'Email' : 'Consumer ID').fill(who.login.id);
  await page.getByLabel('Password').fill(who.login.password);
  await page.getByRole('button', { name: 'Log in', exact: true }).click();
  await signedIn(page);
}

/** The addresses of this user's portal: from the tables the portal itself renders. */
async function pagesOf(page: Page): Promise<{ name: string; path: string; example?: boolean }[]> {
  const r = await page.request.get(new URL('/api/me', e2e.baseUrl).href);
  expect(r.status()).toBe(200);
  const me = (await r.json()) as Me;
  if (me.user.role === 'consumer') {
    return NAV.map((n) => ({ name: n.href === '/' ? 'home' : n.href.slice(1), path: n.href }));
  }
  return STAFF_PAGES.filter((p) => allowed(p, me.user.role, me.capabilities)).map((p) => {
    const at = typeof p.path === 'string' ? p.path : p.example;
    // A pattern page without an example cannot be visited: that is a defect of the table.
    expect(at, `STAFF_PAGES entry ${String(p.path)} needs an example`).toBeDefined();
    return {
      name: at!.slice(1).replace(/[^a-z0-9]+/gi, '-') || 'home',
      path: at!,
      example: typeof p.path !== 'string',
    };
  });
}

describe('every page of the three portals', () => {
  it('passes axe at 390 and 1280 px for every role, without sideways scrolling, screenshots kept', async () => {
    const source = axeSource();
    const failures: string[] = [];
    let visited = 0;
    // The log-in page, both ways in, before anyone signs in.
    for (const width of WIDTHS) {
      const ctx = await newContext(e2e.browser, width);
      const page = await ctx.newPage();
      for (const [name, at] of [
        ['login', '/login'],
        ['login-staff', '/login?as=staff'],
      ] as const) {
        await page.goto(new URL(at, e2e.baseUrl).href);
        await page.getByRole('button', { name: 'Log in', exact: true }).waitFor();
        await page.screenshot({
          path: path.join(PAGE_SHOTS, `anonymous-${name}-${width}.png`),
          fullPage: true,
        });
        for (const v of (await runAxe(page, source)).filter(isBlocking))
          failures.push(`anonymous ${at}@${width}: ${v.id} ${v.help} ${v.nodes.join(' ')}`);
        failures.push(...(await reflowCheck(page, width)).map((x) => `anonymous ${at}@${width}: ${x}`));
        visited++;
      }
      await ctx.close();
    }
    for (const who of WHO) {
      for (const width of WIDTHS) {
        const ctx = await newContext(e2e.browser, width);
        const page = await ctx.newPage();
        const errors = consoleErrors(page);
        await logIn(page, who);
        const pages = await pagesOf(page);
        expect(pages.length, `${who.role} has pages`).toBeGreaterThan(0);
        for (const p of pages) {
          const before = errors.length;
          await page.goto(new URL(p.path, e2e.baseUrl).href);
          await settle(page);
          // A page that could not load its data shows an error notice: that is a failure too.
          // Except the "not found" of an example address whose row this demo does not have
          // (e.g. /tamper-cases/1 before any tamper): its not-found state is checked instead.
          const alerts = await page.locator('main .notice-error').allInnerTexts();
          const missingExample =
            p.example === true && alerts.every((a) => /not available|not found/i.test(a));
          if (missingExample) {
            const mine = errors.splice(before).filter((e) => !/status of 404/.test(e));
            errors.push(...mine);
          } else if (alerts.length) failures.push(`${who.role} ${p.path}@${width}: ${alerts.join(' | ')}`);
          if ((await page.locator('main h1').count()) !== 1)
            failures.push(`${who.role} ${p.path}@${width}: not exactly one h1`);
          await page.screenshot({
            path: path.join(PAGE_SHOTS, `${who.role}-${p.name}-${width}.png`),
            fullPage: true,
          });
          for (const v of (await runAxe(page, source)).filter(isBlocking))
            failures.push(`${who.role} ${p.path}@${width}: ${v.id} ${v.help} ${v.nodes.join(' ')}`);
          for (const problem of await reflowCheck(page, width))
            failures.push(`${who.role} ${p.path}@${width}: ${problem}`);
          visited++;
        }
        failures.push(...errors.map((e) => `${who.role}@${width}: console: ${e}`));
        await ctx.close();
      }
    }
    expect(failures).toEqual([]);
    // Two log-in pages, two households × 8 pages and at least one page per staff role, at both widths.
    expect(visited).toBeGreaterThanOrEqual((2 + 2 * NAV.length + 4) * WIDTHS.length);
  }, 600_000);

  it('at 390 px the household header is one row: Menu and Log out in line, the navigation folded until opened', async () => {
    const ctx = await newContext(e2e.browser, 390);
    const page = await ctx.newPage();
    await logIn(page, WHO[0]!);
    await settle(page);
    const header = page.locator('header.site-header');
    const menu = page.getByRole('button', { name: 'Menu', exact: true });
    const logout = page.getByRole('button', { name: 'Log out' });
    const nav = page.getByRole('navigation', { name: 'Main' });
    expect(await menu.isVisible()).toBe(true);
    expect(await logout.isVisible()).toBe(true);
    expect(await nav.isVisible()).toBe(false);
    expect(await menu.getAttribute('aria-expanded')).toBe('false');
    // One row: brand, Menu and Log out share a line and the header is no taller than one.
    const box = (await header.boundingBox())!;
    const brand = (await page.locator('header .brand').boundingBox())!;
    const m = (await menu.boundingBox())!;
    const l = (await logout.boundingBox())!;
    expect(box.height).toBeLessThan(72);
    for (const b of [m, l])
      expect(Math.abs(b.y + b.height / 2 - (brand.y + brand.height / 2))).toBeLessThan(8);
    expect(l.x + l.width).toBeLessThanOrEqual(390);
    await page.screenshot({ path: path.join(PAGE_SHOTS, 'household-header-closed-390.png') });

    await menu.click();
    expect(await menu.getAttribute('aria-expanded')).toBe('true');
    expect(await nav.isVisible()).toBe(true);
    for (const n of NAV)
      expect(await nav.getByRole('link', { name: n.label, exact: true }).isVisible()).toBe(true);
    await page.screenshot({ path: path.join(PAGE_SHOTS, 'household-header-open-390.png') });
    // Escape closes it and gives focus back to the button; following a link closes it too.
    await page.keyboard.press('Escape');
    expect(await nav.isVisible()).toBe(false);
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('menu-button');
    await menu.click();
    await nav.getByRole('link', { name: 'Profile', exact: true }).click();
    await page.getByRole('heading', { level: 1 }).first().waitFor();
    expect(await nav.isVisible()).toBe(false);
    expect(new URL(page.url()).pathname).toBe('/profile');

    // At 320 px, the narrowest phone, it still fits: nothing scrolls sideways, both buttons shown.
    await page.setViewportSize({ width: 320, height: 720 });
    expect(await reflowCheck(page, 320)).toEqual([]);
    expect(await menu.isVisible()).toBe(true);
    expect(await logout.isVisible()).toBe(true);
    const l320 = (await logout.boundingBox())!;
    expect(l320.x + l320.width).toBeLessThanOrEqual(320);
    await page.screenshot({ path: path.join(PAGE_SHOTS, 'household-header-closed-320.png') });

    // At 1280 px the same navigation is one visible row and there is no Menu button.
    await page.setViewportSize({ width: 1280, height: 900 });
    expect(await nav.isVisible()).toBe(true);
    expect(await menu.isVisible()).toBe(false);
    const row = await nav
      .getByRole('link')
      .evaluateAll((as) => new Set(as.map((a) => a.getBoundingClientRect().top)).size);
    expect(row).toBe(1);
    await ctx.close();
  }, 120_000);
});
