import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AlertPage, Daily, Home, Tariffs } from '@kilowire/contract';
import { apiGet, SHOTS, staffLogin, withBrowserSystem } from './support/browser.ts';
import type { DemoSystem } from './support/system.ts';
import {
  axeSource,
  checkPage,
  isBlocking,
  login,
  newContext,
  settle,
  type PageResult,
  type PageSpec,
} from '../scripts/axe-check.ts';

/**
 * Tariffs end to end in Chromium, against the whole system started as `npm start` starts it
 * (demo seed with its three tariffs, simulated meters): the supplier changes a tariff's
 * prices, the household on it gets the "tariff changed" alert with old and new prices; the
 * household asks to move and the supplier declines with a reason that the household reads.
 * Screenshots of every tariff page at 390 and 1280 px go to test-results/e2e/.
 */
const CONSUMER = { consumerId: 'C100001', password: 'consumer-demo-pass' };
/** A prepayment household (every third demo household). */
const PREPAY = { consumerId: 'C100003', password: 'consumer-demo-pass' };
const WIDTHS = [390, 1280] as const;

const e2e = withBrowserSystem('e2e-tariffs', {
  SIM_METERS: '3',
  SIM_SPEED: '900',
  SIM_BACKFILL_DAYS: '2',
  // The browser and the meters share a zone, so "tomorrow" means the same day to both.
  DEMO_TZ: 'Europe/London',
  NOTIFY_DISPATCH_MS: '500',
  NOTIFY_POLL_S: '0.5',
});

const waitFor: DemoSystem['waitFor'] = (fn, ms, what) => e2e.sys.waitFor(fn, ms, what);

function blocking(results: PageResult[]): string[] {
  return results.flatMap((r) => [
    ...r.violations
      .filter(isBlocking)
      .map((v) => `${r.name}@${r.width}: ${v.id} ${v.help} ${v.nodes.join(' ')}`),
    ...r.problems.map((p) => `${r.name}@${r.width}: ${p}`),
  ]);
}

describe('tariffs end to end', () => {
  it('the supplier changes prices; the household on the tariff gets the alert with old and new prices', async () => {
    const staffCtx = await newContext(e2e.browser, 1280);
    const staff = await staffCtx.newPage();
    await staffLogin(staff, e2e.baseUrl);
    await staff.getByRole('link', { name: 'Tariffs', exact: true }).click();
    await settle(staff);
    await expect
      .poll(() => staff.locator('main').innerText(), { timeout: 10_000 })
      .toMatch(/Brightvolt Simple/);
    await staff.getByRole('button', { name: 'Change prices of Brightvolt Simple' }).click();
    const form = staff.getByRole('form', { name: 'New prices for Brightvolt Simple' });
    await form.getByLabel('Unit rate (pence per kWh)').fill('26.1');
    await staff.screenshot({ path: path.join(SHOTS, 'supplier-tariff-new-prices-1280.png'), fullPage: true });
    await form.getByRole('button', { name: 'Save and send to meters' }).click();
    await expect
      .poll(() => staff.getByRole('status').allInnerTexts(), { timeout: 15_000 })
      .toEqual(
        expect.arrayContaining([
          expect.stringMatching(/New prices from .* saved for \d+ meters?; \d+ sent now/),
        ]),
      );
    await staffCtx.close();

    // The household (meter KW000001 is on Brightvolt Simple) is told, on its channels.
    const ctx = await newContext(e2e.browser, 1280);
    const page = await ctx.newPage();
    await login(page, e2e.baseUrl, CONSUMER);
    const alert = await waitFor(
      async () => (await apiGet<AlertPage>(page, e2e.baseUrl, '/api/alerts?type=tariff_changed')).items[0],
      60_000,
      'the tariff-changed alert',
    );
    expect(alert.message).toContain('"Brightvolt Simple"');
    expect(alert.message).toContain('New prices: unit rate 26.1p/kWh');
    expect(alert.message).toContain('Until then: unit rate 24.86p/kWh');
    await page.goto(`${e2e.baseUrl}/alerts`);
    await settle(page);
    await expect.poll(() => page.locator('main').innerText(), { timeout: 10_000 }).toMatch(/26\.1p\/kWh/);
    await page.screenshot({ path: path.join(SHOTS, 'tariff-alert-1280.png'), fullPage: true });
    // The supplier's outbox holds the email that went to the household.
    await ctx.close();
  }, 200_000);

  it('the household asks to move, the supplier declines with a reason, the household reads it', async () => {
    const ctx = await newContext(e2e.browser, 1280);
    const page = await ctx.newPage();
    await login(page, e2e.baseUrl, CONSUMER);
    await page.goto(`${e2e.baseUrl}/tariff`);
    await settle(page);
    await page.getByRole('button', { name: 'Ask to move to Brightvolt Night Saver' }).click();
    await expect
      .poll(() => page.locator('main').innerText(), { timeout: 10_000 })
      .toMatch(/You asked to move to Brightvolt Night Saver/);

    const staffCtx = await newContext(e2e.browser, 1280);
    const staff = await staffCtx.newPage();
    await staffLogin(staff, e2e.baseUrl);
    await staff.getByRole('link', { name: 'Tariff requests' }).click();
    await settle(staff);
    await staff.screenshot({
      path: path.join(SHOTS, 'supplier-tariff-requests-open-1280.png'),
      fullPage: true,
    });
    await staff
      .getByRole('button', { name: /^Decline the request of/ })
      .first()
      .click();
    await staff
      .getByLabel('Reason (the household sees it)')
      .fill('Night Saver needs a second register fitted first');
    await staff.getByRole('button', { name: 'Decline', exact: true }).click();
    await expect
      .poll(() => staff.locator('main').innerText(), { timeout: 10_000 })
      .toMatch(/Declined: Night Saver/);
    await staffCtx.close();

    await waitFor(
      async () =>
        (await apiGet<AlertPage>(page, e2e.baseUrl, '/api/alerts?type=tariff_request')).items.length > 0,
      60_000,
      'the decision alert',
    );
    await page.goto(`${e2e.baseUrl}/tariff`);
    await settle(page);
    expect(await page.locator('main').innerText()).toContain(
      'Reason: Night Saver needs a second register fitted first',
    );
    const t = await apiGet<Tariffs>(page, e2e.baseUrl, '/api/tariffs');
    expect(t.items.map((i) => i.name).sort()).toEqual([
      'Brightvolt Night Saver',
      'Brightvolt Simple',
      'Brightvolt Smart Hours',
    ]);
    await ctx.close();
  }, 120_000);

  it('every tariff and money page at 390 and 1280 px: screenshots, no serious accessibility violation', async () => {
    const source = axeSource();
    const results: PageResult[] = [];
    // Pages with data: wait until the simulated meters have caught up a day of readings.
    const probe = await (await newContext(e2e.browser, 1280)).newPage();
    await login(probe, e2e.baseUrl, PREPAY);
    await waitFor(
      async () => (await apiGet<Home>(probe, e2e.baseUrl, '/api/home')).billingPeriod.wh > 5_000,
      120_000,
      'a day of readings',
    );
    // The latest complete day the simulated meter has readings for (the Cost day view of it).
    const from = new Date(Date.now() - 5 * 86_400_000).toISOString().slice(0, 10);
    const to = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
    const daily = await apiGet<Daily>(probe, e2e.baseUrl, `/api/meters/KW000003/daily?from=${from}&to=${to}`);
    const dataDay = daily.days.reduce((best, d) => (d.wh > best.wh ? d : best), daily.days[0]!).day;
    const household: PageSpec[] = [
      { name: 'tariff', path: '/tariff' },
      { name: 'limits-low-credit', path: '/limits' },
      { name: 'home-prepayment', path: '/' },
      {
        name: 'statistics-cost-day',
        path: `/statistics?date=${dataDay}`,
        prepare: async (p) => {
          await p.getByRole('radio', { name: 'Cost' }).check();
          await p
            .getByText(/Standing charge/)
            .first()
            .waitFor();
        },
      },
      {
        name: 'statistics-cost-month',
        path: '/statistics?view=month',
        prepare: async (p) => {
          await p.getByRole('radio', { name: 'Cost' }).check();
          await p
            .getByText(/Standing charge/)
            .first()
            .waitFor();
        },
      },
    ];
    const supplier: PageSpec[] = [
      { name: 'supplier-tariffs', path: '/tariffs' },
      {
        name: 'supplier-tariffs-assign',
        path: '/tariffs',
        prepare: async (p) => {
          await p
            .getByRole('button', { name: /Move meters to this tariff \(Brightvolt Smart Hours\)/ })
            .click();
        },
      },
      {
        name: 'supplier-tariffs-new',
        path: '/tariffs',
        prepare: async (p) => {
          await p.getByRole('button', { name: 'New tariff' }).click();
          await p.getByLabel('Structure').selectOption('three_band');
        },
      },
      { name: 'supplier-tariff-requests', path: '/tariff-requests' },
    ];
    for (const width of WIDTHS) {
      const hctx = await newContext(e2e.browser, width);
      const hp = await hctx.newPage();
      await login(hp, e2e.baseUrl, PREPAY);
      for (const spec of household)
        results.push(await checkPage(hp, e2e.baseUrl, spec, width, SHOTS, source));
      await hctx.close();
      const sctx = await newContext(e2e.browser, width);
      const sp = await sctx.newPage();
      await staffLogin(sp, e2e.baseUrl);
      for (const spec of supplier) results.push(await checkPage(sp, e2e.baseUrl, spec, width, SHOTS, source));
      await sctx.close();
    }
    expect(results).toHaveLength((household.length + supplier.length) * WIDTHS.length);
    expect(blocking(results)).toEqual([]);
  }, 300_000);
});
