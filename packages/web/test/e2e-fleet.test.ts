import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { AlertPage, FleetResponse, Meter } from '@kilowire/contract';
import { apiGet, SHOTS, staffLogin, withBrowserSystem } from './support/browser.ts';
import {
  axeSource,
  checkPage,
  isBlocking,
  login,
  newContext,
  settle,
  type PageResult,
} from '../scripts/axe-check.ts';

/**
 * The fleet end to end in Chromium, against the whole system as `npm start` runs it (demo
 * seed, simulated meters reporting): a supplier signs in, lands on the Fleet, finds a meter by
 * the household's name, opens the meter page and sees the household and its usage, disconnects
 * the supply with a reason, and the household reads that reason on its Alerts page.
 * Screenshots of both pages at 390 and 1280 px go to test-results/e2e/, checked with axe.
 */
const SERIAL = 'KW000001';

const e2e = withBrowserSystem('e2e-fleet', { SIM_METERS: '4', SIM_SPEED: '900', SIM_BACKFILL_DAYS: '3' });

describe('fleet end to end', () => {
  it('a supplier finds a meter by the household name and opens its page', async () => {
    const ctx = await newContext(e2e.browser, 1280);
    const page = await ctx.newPage();
    await staffLogin(page, e2e.baseUrl);
    // The Fleet is the console's home.
    await expect.poll(() => page.locator('main h1').innerText(), { timeout: 15_000 }).toBe('Fleet');
    const who = await page.request.get(`${e2e.baseUrl}/api/fleet?q=${SERIAL}`);
    expect(who.status()).toBe(200);
    const name = ((await who.json()) as FleetResponse).items[0]!.consumer!.name;
    // Wait until the meter has reported, so the meter page has usage to show.
    await e2e.sys.waitFor(
      async () => {
        const r = await page.request.get(`${e2e.baseUrl}/api/meters/${SERIAL}/overview`);
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

    // Remote disconnection from the meter page, with a reason. Safety, not non-payment: it
    // needs no second person whatever the hour the test runs at.
    await page.getByRole('button', { name: 'Disconnect', exact: true }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Reason').selectOption('safety');
    await dialog.getByLabel(/^Details/).fill('Scorched meter tails reported by the household');
    await dialog.getByRole('button', { name: 'Disconnect', exact: true }).click();
    await e2e.sys.waitFor(
      async () =>
        (await apiGet<Meter>(page, e2e.baseUrl, `/api/meters/${SERIAL}`)).relay === 'disconnected' ||
        undefined,
      60_000,
      'the meter to open its relay',
    );
    await page.reload();
    await expect
      .poll(() => page.locator('.supply-panel').innerText(), { timeout: 15_000 })
      .toContain('Disconnected');
    // Who asked, and why, is on the meter's command list.
    await expect.poll(() => page.locator('main').innerText()).toMatch(/safety/i);
    await settle(page);
    await page.screenshot({ path: path.join(SHOTS, 'meter-disconnected-1280.png'), fullPage: true });
    await ctx.close();

    // The household is told the real reason (not "after a tamper alert") and what to do.
    const hctx = await newContext(e2e.browser, 390);
    const h = await hctx.newPage();
    await login(h, e2e.baseUrl, { consumerId: 'C100001', password: 'consumer-demo-pass' });
    const alert = await e2e.sys.waitFor(
      async () => (await apiGet<AlertPage>(h, e2e.baseUrl, '/api/alerts?type=disconnected')).items[0],
      60_000,
      'the disconnection alert',
    );
    expect(alert.title).toBe('Supply disconnected for safety');
    expect(alert.message).toContain('for safety reasons');
    expect(alert.message).not.toMatch(/tamper/i);
    await h.goto(`${e2e.baseUrl}/alerts`);
    await expect
      .poll(() => h.locator('main').innerText(), { timeout: 15_000 })
      .toContain('Supply disconnected for safety');
    await settle(h);
    await h.screenshot({ path: path.join(SHOTS, 'household-safety-alert-390.png'), fullPage: true });
    await hctx.close();
  });

  it('the fleet and meter pages at 390 and 1280 px: screenshots, no serious axe violations', async () => {
    const results: PageResult[] = [];
    const source = axeSource();
    for (const width of [390, 1280]) {
      const ctx = await newContext(e2e.browser, width);
      const page = await ctx.newPage();
      await staffLogin(page, e2e.baseUrl);
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
        const r = await checkPage(page, e2e.baseUrl, spec, width, SHOTS, source);
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
