import { beforeAll, describe, expect, it } from 'vitest';
import { addDays, addMonths, daysBetween, eachDay, localDate, localMidnight } from '@kilowire/protocol';
import { collectDay } from '../../server/src/collection/collect.ts';
import { axeClean, shoot, STAFF, staffLogin, withBrowserSystem } from './support/browser.ts';
import { consoleErrors, goToNav, newContext, settle } from '../scripts/axe-check.ts';

/**
 * Network-use charges end to end, in Chromium, against the system as `npm start` runs it:
 * the demo's simulated meters backfill last month through the broker, the real daily
 * collection takes each of its days, the operator creates a network tariff and assigns it to
 * its area in the portal, issues the month, and the supplier finds the invoice it owes, its
 * balance and the PDF in its Money section.
 */
const TZ = 'Europe/London';
const AREA = 'EAST-1';

const today = localDate(Date.now() / 1000, TZ);
const monthStart = addMonths(today, -1);
const nextMonth = addMonths(today, 0);
const month = monthStart.slice(0, 7);

const e2e = withBrowserSystem(
  'e2e-netbilling',
  {
    SIM_METERS: '3',
    // Catch up with real time fast: the history must hold the whole of last month.
    SIM_SPEED: '1000000',
    SIM_BACKFILL_DAYS: String(daysBetween(monthStart, today) + 1),
    DEMO_TZ: TZ,
  },
  { ownDb: true },
);

beforeAll(async () => {
  // Every half-hour of last month stored for the three meters.
  const t0 = localMidnight(monthStart, TZ);
  const t1 = localMidnight(nextMonth, TZ);
  const expected = ((t1 - t0) / 1800) * 3;
  await e2e.sys.waitFor(
    async () => {
      const { rows } = await e2e.db.pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM interval_readings WHERE ts >= to_timestamp($1) AND ts < to_timestamp($2)`,
        [t0, t1],
      );
      return rows[0]!.n >= expected;
    },
    180_000,
    'last month backfilled',
  );
}, 300_000);

describe('network-use charges', () => {
  it('the operator creates a tariff, assigns its area, issues last month; the supplier sees what it owes', async () => {
    // The operator admin sets up its tariff in the portal.
    {
      const ctx = await newContext(e2e.browser, 1280);
      const page = await ctx.newPage();
      const errors = consoleErrors(page);
      await staffLogin(page, e2e.baseUrl, STAFF.operator);
      await goToNav(page, 'Network tariffs');
      await settle(page);
      const main = page.locator('main');
      await expect.poll(() => main.innerText()).toContain('No network tariffs yet');
      const create = page.getByRole('form', { name: 'Create a tariff' });
      await create.getByLabel('Code').fill('EG-DUOS');
      await create.getByLabel('Name', { exact: true }).fill('Eastgrid use of system');
      await create.getByLabel('Prices from (local day)').fill(monthStart);
      await create.getByRole('button', { name: 'Create tariff' }).click();
      await expect.poll(() => main.innerText()).toContain('Version 1 in force');
      await page.getByText('Assign to an area', { exact: true }).click();
      const assign = page.getByRole('form', { name: 'Assign to an area' });
      await assign.getByLabel('From (local day)').fill(monthStart);
      await assign.getByRole('button', { name: 'Assign' }).click();
      await expect.poll(() => main.innerText()).toContain(`prices ${AREA} from ${monthStart}`);
      await settle(page);
      await shoot(page, 'network-tariffs', 1280);
      await axeClean(page);
      expect(errors).toEqual([]);
      await ctx.close();
    }

    // The month's daily collection (what the cut-off job does for each day).
    for (const day of eachDay(monthStart, addDays(nextMonth, -1)))
      await collectDay(e2e.db.pool, AREA, day, 'cutoff');

    for (const width of [1280, 390]) {
      const ctx = await newContext(e2e.browser, width);
      const page = await ctx.newPage();
      const errors = consoleErrors(page);
      await staffLogin(page, e2e.baseUrl, STAFF.operator);
      if (width === 390) {
        await page.goto(`${e2e.baseUrl}/network-tariffs`);
        await settle(page);
        await shoot(page, 'network-tariffs', width);
        await axeClean(page);
      }
      await page.goto(`${e2e.baseUrl}/network-invoices`);
      await settle(page);
      const main = page.locator('main');
      if (width === 1280) {
        await expect.poll(() => main.innerText()).toContain('No invoices yet');
        await page.getByLabel('Month', { exact: true }).first().fill(month);
        await page.getByRole('button', { name: 'Issue invoices' }).click();
        await expect.poll(() => page.locator('body').innerText()).toMatch(/1 invoice issued/);
      }
      await expect.poll(() => main.innerText(), { timeout: 15_000 }).toContain('Brightvolt Energy');
      // The status column comes with the list's own load, which can land after the supplier's name.
      await expect.poll(() => main.innerText(), { timeout: 15_000 }).toContain('Unpaid');
      await settle(page);
      await shoot(page, 'network-invoices', width);
      await axeClean(page);
      expect(errors).toEqual([]);
      await ctx.close();
    }
    const inv = (
      await e2e.db.pool.query<{ id: string; gross_minor: string; meter_days: number }>(
        `SELECT id, gross_minor, meter_days FROM network_invoices`,
      )
    ).rows;
    expect(inv).toHaveLength(1);
    expect(inv[0]!.meter_days).toBe(3 * daysBetween(monthStart, nextMonth));
    const gross = Number(inv[0]!.gross_minor);
    expect(gross).toBeGreaterThan(0);
    const pounds = `£${(gross / 100).toLocaleString('en-GB', { minimumFractionDigits: 2 })}`;

    // The supplier's staff find it in their Money section.
    for (const width of [1280, 390]) {
      const ctx = await newContext(e2e.browser, width);
      const page = await ctx.newPage();
      const errors = consoleErrors(page);
      await staffLogin(page, e2e.baseUrl, STAFF.supplier);
      await goToNav(page, 'Network charges');
      await settle(page);
      const main = page.locator('main');
      await expect.poll(() => main.innerText(), { timeout: 15_000 }).toContain('Eastgrid Networks');
      const text = await main.innerText();
      expect(text).toContain('What you owe');
      expect(text).toContain(pounds);
      const pdf = await page.request.get(`${e2e.baseUrl}/api/network-invoices/${inv[0]!.id}/pdf`);
      expect(pdf.status()).toBe(200);
      expect((await pdf.body()).subarray(0, 5).toString()).toBe('%PDF-');
      await shoot(page, 'network-charges', width);
      await axeClean(page);
      expect(errors).toEqual([]);
      await ctx.close();
    }
  }, 300_000);
});
