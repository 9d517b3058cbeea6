import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { localDate } from '@kilowire/protocol';
import { axeClean, shoot, SHOTS, staffLogin, withBrowserSystem } from './support/browser.ts';
import { tx } from '../../server/src/db/pool.ts';
import { emitEvents } from '../../server/src/events/emit.ts';
import { consoleErrors, goToNav, login, newContext, settle } from '../scripts/axe-check.ts';

/**
 * Tamper cases, monthly extracts and Green Button end to end, in Chromium, against the whole
 * system as `npm start` runs it: a tamper event stored as the gateway stores it (the row and
 * its domain event in one transaction) is picked up by the system's own jobs service and
 * opens a case a supplier then works; a supplier extracts last month and downloads the CSV;
 * a household downloads its Green Button file from its profile.
 */
const TZ = 'Europe/London';
const SUPPLIER = { email: 'supplier@kilowire.demo', password: 'supplier-demo-pass' };

const e2e = withBrowserSystem(
  'e2e-cases',
  { SIM_METERS: '3', SIM_SPEED: '60', SIM_BACKFILL_DAYS: '1', DEMO_TZ: TZ },
  { ownDb: true },
);

describe('tamper cases, extracts and Green Button', () => {
  it('a tamper event opens a case; a supplier adds a note and moves it to investigating', async () => {
    const meter = (await e2e.db.pool.query<{ id: number }>(`SELECT id FROM meters WHERE serial = 'KW000001'`))
      .rows[0]!;
    const at = new Date();
    await tx(e2e.db.pool, async (c) => {
      await c.query(
        `INSERT INTO meter_events (meter_id, seq, idx, ts, code) VALUES ($1, 900000001, 0, $2, 'tamper.cover')`,
        [meter.id, at],
      );
      await emitEvents(c, [
        {
          type: 'meter.event',
          meterId: meter.id,
          payload: {
            seq: 900000001,
            idx: 0,
            code: 'tamper.cover',
            t: Math.floor(at.getTime() / 1000),
            data: null,
          },
        },
      ]);
    });
    const caseId = await e2e.sys.waitFor(
      async () =>
        (
          await e2e.db.pool.query<{ id: number }>(`SELECT id FROM tamper_cases WHERE meter_id = $1`, [
            meter.id,
          ])
        ).rows[0]?.id,
      30_000,
      'the tamper case',
    );

    for (const width of [390, 1280]) {
      const ctx = await newContext(e2e.browser, width);
      const page = await ctx.newPage();
      const errors = consoleErrors(page);
      await staffLogin(page, e2e.baseUrl, SUPPLIER);
      await page.goto(`${e2e.baseUrl}/tamper-cases`);
      await settle(page);
      const main = page.locator('main');
      await expect.poll(() => main.innerText(), { timeout: 15_000 }).toContain('KW000001');
      expect(await main.innerText()).toMatch(/Open\s*\(1\)/);
      await shoot(page, 'tamper-cases', width);
      await axeClean(page);

      await page.getByRole('link', { name: `Case ${caseId}` }).click();
      await settle(page);
      await expect.poll(() => main.innerText(), { timeout: 15_000 }).toContain('Meter cover opened');
      if (width === 1280) {
        await page
          .getByLabel('Note', { exact: true })
          .fill('Household says the cover was knocked by a builder');
        await page.getByRole('button', { name: 'Add note' }).click();
        await expect
          .poll(() => main.innerText())
          .toContain('Household says the cover was knocked by a builder');
        await page.getByRole('button', { name: 'Move to investigating' }).click();
        await expect.poll(() => main.innerText()).toContain('Moved to Investigating');
        await page.getByLabel('Visit date').fill('2030-01-15');
        await page.getByRole('button', { name: 'Record action' }).click();
        await expect.poll(() => main.innerText()).toContain('Site visit booked for 2030-01-15');
        const st = await e2e.db.pool.query<{ status: string }>(
          'SELECT status FROM tamper_cases WHERE id = $1',
          [caseId],
        );
        expect(st.rows[0]!.status).toBe('investigating');
      }
      await settle(page);
      await shoot(page, 'tamper-case', width);
      await axeClean(page);
      expect(errors).toEqual([]);
      await ctx.close();
    }
  }, 240_000);

  it('a supplier starts an extract for last month, sees it finish and downloads the CSV', async () => {
    const today = localDate(Date.now() / 1000, TZ);
    const d = new Date(`${today}T00:00:00Z`);
    const month = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - 1, 1)).toISOString().slice(0, 7);
    // Last month's rollups for the demo's meters (a demo started today has none).
    await e2e.db.pool.query(
      `INSERT INTO daily_rollups (meter_id, day, wh, intervals)
       SELECT m.id, d::date, 7000 + m.id, 48 FROM meters m,
              generate_series(($1 || '-01')::date, ($1 || '-01')::date + interval '1 month' - interval '1 day', interval '1 day') d
       ON CONFLICT DO NOTHING`,
      [month],
    );
    for (const width of [1280, 390]) {
      const ctx = await newContext(e2e.browser, width);
      const page = await ctx.newPage();
      const errors = consoleErrors(page);
      await staffLogin(page, e2e.baseUrl, SUPPLIER);
      await goToNav(page, 'Extracts');
      await settle(page);
      const main = page.locator('main');
      if (width === 1280) {
        expect(await page.getByLabel('Month').inputValue()).toBe(month);
        await page.getByRole('button', { name: 'Start extract' }).click();
        // The page polls while the jobs service works; the download link appears when done.
        const link = page.getByRole('link', { name: /Download CSV/ }).first();
        await link.waitFor({ timeout: 60_000 });
        const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
        const file = path.join(SHOTS, 'extract.csv');
        await download.saveAs(file);
        const csv = readFileSync(file, 'utf8');
        const lines = csv.trim().split('\n');
        expect(lines[0]).toBe('kind,serial,period,wh,intervals,estimated');
        expect(lines).toContain(
          `monthly,KW000001,${month},${lines.filter((l) => l.startsWith('daily,KW000001,')).reduce((a, l) => a + Number(l.split(',')[3]), 0)},${lines.filter((l) => l.startsWith('daily,KW000001,')).length * 48},0`,
        );
        expect(lines.some((l) => l.startsWith(`daily,KW000001,${month}-01,`))).toBe(true);
      }
      await expect.poll(() => main.innerText(), { timeout: 15_000 }).toContain('Ready');
      await shoot(page, 'extracts', width);
      await axeClean(page);
      expect(errors).toEqual([]);
      await ctx.close();
    }
  }, 240_000);

  it('a household downloads its Green Button file from its profile', async () => {
    for (const width of [390, 1280]) {
      const ctx = await newContext(e2e.browser, width);
      const page = await ctx.newPage();
      const errors = consoleErrors(page);
      await login(page, e2e.baseUrl, { consumerId: 'C100001', password: 'consumer-demo-pass' });
      await page.goto(`${e2e.baseUrl}/profile`);
      await settle(page);
      const main = page.locator('main');
      await expect.poll(() => main.innerText(), { timeout: 15_000 }).toContain('Download my data');
      if (width === 1280) {
        // The simulator's first readings of KW000001 have arrived (it backfills a day).
        await e2e.sys.waitFor(
          async () =>
            (
              await e2e.db.pool.query(
                `SELECT 1 FROM interval_readings r JOIN meters m ON m.id = r.meter_id WHERE m.serial = 'KW000001' LIMIT 1`,
              )
            ).rowCount,
          90_000,
          'readings of KW000001',
        );
        const today = localDate(Date.now() / 1000, TZ);
        await page.getByLabel('Last day').fill(today);
        const [download] = await Promise.all([
          page.waitForEvent('download'),
          page.getByRole('link', { name: 'Download Green Button (XML)' }).click(),
        ]);
        const file = path.join(SHOTS, 'green-button.xml');
        await download.saveAs(file);
        const xml = readFileSync(file, 'utf8');
        expect(xml.startsWith('<?xml')).toBe(true);
        expect(xml).toContain('<espi:UsagePoint>');
        expect(xml).toContain('<espi:IntervalReading>');
        expect(xml.trim().endsWith('</feed>')).toBe(true);
      }
      await page.getByRole('heading', { name: 'Download my data' }).scrollIntoViewIfNeeded();
      await shoot(page, 'download-my-data', width);
      await axeClean(page);
      expect(errors).toEqual([]);
      await ctx.close();
    }
  }, 180_000);
});
