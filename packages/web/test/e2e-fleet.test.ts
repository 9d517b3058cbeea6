import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import type { FleetResponse } from '@kilowire/contract';
import { startDemoSystem, type DemoSystem } from './support/system.ts';
import {
  axeSource,
  checkPage,
  isBlocking,
  launch,
  newContext,
  settle,
  type PageResult,
} from '../scripts/axe-check.ts';

/**
 * The fleet end to end in Chromium, against the whole system as `npm start` runs it (demo
 * seed, simulated meters reporting): a supplier signs in, lands on the Fleet, finds a meter by
 * the household's name, opens the meter page and sees the household and its usage.
 * Screenshots of both pages at 390 and 1280 px go to test-results/e2e/, checked with axe.
 */
const ROOT = path.resolve(import.meta.dirname, '../../..');
const SHOTS = path.join(ROOT, 'test-results', 'e2e');
const SERIAL = 'KW000001';

let sys: DemoSystem | undefined;
let baseUrl = '';
let browser: Browser;

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  sys = await startDemoSystem('e2e-fleet', { SIM_METERS: '4', SIM_SPEED: '900', SIM_BACKFILL_DAYS: '3' });
  baseUrl = sys.baseUrl;
  browser = await launch(process.env.CHROMIUM ?? '/usr/bin/chromium');
}, 150_000);

afterAll(async () => {
  await browser?.close();
  await sys?.stop();
});

async function staffLogin(page: Page): Promise<void> {
  await page.goto(`${baseUrl}/login?as=staff`);
  await page.getByLabel('Email').fill('supplier@kilowire.demo');
  await page.getByLabel('Password').fill('supplier-demo-pass');
  await page.getByRole('button', { name: 'Log in', exact: true }).click();
  await page.getByRole('navigation', { name: 'Main' }).waitFor({ timeout: 15_000 });
}

describe('fleet end to end', () => {
  it('a supplier finds a meter by the household name and opens its page', async () => {
    const ctx = await newContext(browser, 1280);
    const page = await ctx.newPage();
    await staffLogin(page);
    // The Fleet is the console's home.
    await expect.poll(() => page.locator('main h1').innerText(), { timeout: 15_000 }).toBe('Fleet');
    const who = await page.request.get(`${baseUrl}/api/fleet?q=${SERIAL}`);
    expect(who.status()).toBe(200);
    const name = ((await who.json()) as FleetResponse).items[0]!.consumer!.name;
    // Wait until the meter has reported, so the meter page has usage to show.
    await sys!.waitFor(
      async () => {
        const r = await page.request.get(`${baseUrl}/api/meters/${SERIAL}/overview`);
        const o = (await r.json()) as { usage: unknown[] };
        return o.usage.length > 0 ? true : undefined;
      },
      90_000,
      'usage of the first meter',
    );

    const surname = name.split(' ').pop()!;
    await page.getByLabel('Search meters').fill(surname.slice(0, 4).toLowerCase());
    const link = page.getByRole('link', { name: SERIAL, exact: true });
    await link.waitFor({ timeout: 15_000 });
    // Only households with that name are left (the search answered, not just the first page).
    await expect
      .poll(
        async () => {
          const rows = await page.locator('tbody tr').allInnerTexts();
          return rows.length > 0 && rows.every((r) => r.toLowerCase().includes(surname.toLowerCase()));
        },
        { timeout: 15_000 },
      )
      .toBe(true);
    await expect.poll(() => page.locator('table').innerText()).toContain(name);
    await settle(page);
    await page.screenshot({ path: path.join(SHOTS, 'fleet-search-1280.png'), fullPage: true });

    await link.click();
    await expect.poll(() => page.locator('main h1').innerText(), { timeout: 15_000 }).toBe(SERIAL);
    await expect.poll(() => page.locator('main').innerText()).toContain(name);
    // The usage chart, described for screen readers with the total of the days it shows.
    await expect
      .poll(() => page.locator('main svg desc').first().textContent())
      .toMatch(/kWh over \d+ days? with data/);
    await ctx.close();
  });

  it('the fleet and meter pages at 390 and 1280 px: screenshots, no serious axe violations', async () => {
    const results: PageResult[] = [];
    const source = axeSource();
    for (const width of [390, 1280]) {
      const ctx = await newContext(browser, width);
      const page = await ctx.newPage();
      await staffLogin(page);
      for (const spec of [
        { name: 'fleet', path: '/fleet' },
        {
          name: 'fleet-filters',
          path: '/fleet?vulnerable=true',
          prepare: async (p: Page) => {
            const toggle = p.getByRole('button', { name: /^Filters/ });
            if (await toggle.isVisible()) await toggle.click();
          },
        },
        { name: 'meter', path: `/meters/${SERIAL}` },
      ]) {
        const r = await checkPage(page, baseUrl, spec, width, SHOTS, source);
        results.push(r);
      }
      await ctx.close();
    }
    const bad = results.flatMap((r) => [
      ...r.violations
        .filter(isBlocking)
        .map((v) => `${r.name}@${r.width}: ${v.id} ${v.help} ${v.nodes.join(' ')}`),
      ...r.problems.map((p) => `${r.name}@${r.width}: ${p}`),
    ]);
    expect(bad).toEqual([]);
  });
});
