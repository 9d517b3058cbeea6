import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { localDate } from '@kilowire/protocol';
import { staffLogin } from './support/browser.ts';
import { startDemoSystem, type DemoSystem } from './support/system.ts';
import { type TestDb } from '../../server/test/support/db.ts';
import { tx } from '../../server/src/db/pool.ts';
import { emitEvents } from '../../server/src/events/emit.ts';
import {
  consoleErrors,
  goToNav,
  isBlocking,
  launch,
  login,
  newContext,
  runAxe,
  settle,
} from '../scripts/axe-check.ts';

/**
 * Tamper cases, monthly extracts and Green Button end to end, in Chromium, against the whole
 * system as `npm start` runs it: a tamper event stored as the gateway stores it (the row and
 * its domain event in one transaction) is picked up by the system's own jobs service and
 * opens a case a supplier then works; a supplier extracts last month and downloads the CSV;
 * a household downloads its Green Button file from its profile.
 */
const ROOT = path.resolve(import.meta.dirname, '../../..');
const SHOTS = path.join(ROOT, 'test-results', 'e2e');
const TZ = 'Europe/London';
const SUPPLIER = { email: 'supplier@kilowire.demo', password: 'supplier-demo-pass' };

let sys: DemoSystem | undefined;
let baseUrl = '';
let db: TestDb;
let browser: Browser;

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  sys = await startDemoSystem(
    'e2e-cases',
    { SIM_METERS: '3', SIM_SPEED: '60', SIM_BACKFILL_DAYS: '1', DEMO_TZ: TZ },
    { ownDb: true },
  );
  baseUrl = sys.baseUrl;
  db = sys.db!;
  browser = await launch(process.env.CHROMIUM ?? '/usr/bin/chromium');
}, 150_000);

afterAll(async () => {
  await browser?.close();
  await sys?.stop();
});

async function shoot(page: Page, name: string, width: number) {
  await page.screenshot({ path: path.join(SHOTS, `${name}-${width}.png`), fullPage: true });
}

const axeClean = async (page: Page) =>
  expect((await runAxe(page)).filter(isBlocking).map((v) => `${v.id}: ${v.help}`)).toEqual([]);

describe('tamper cases, extracts and Green Button', () => {
  it('a tamper event opens a case; a supplier adds a note and moves it to investigating', async () => {
    const meter = (await db.pool.query<{ id: number }>(`SELECT id FROM meters WHERE serial = 'KW000001'`))
      .rows[0]!;
    const at = new Date();
    await tx(db.pool, async (c) => {
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
    const caseId = await sys!.waitFor(
      async () =>
        (await db.pool.query<{ id: number }>(`SELECT id FROM tamper_cases WHERE meter_id = $1`, [meter.id]))
          .rows[0]?.id,
      30_000,
      'the tamper case',
    );

    for (const width of [390, 1280]) {
      const ctx = await newContext(browser, width);
      const page = await ctx.newPage();
      const errors = consoleErrors(page);
      await staffLogin(page, baseUrl, SUPPLIER);
      await page.goto(`${baseUrl}/tamper-cases`);
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
        const st = await db.pool.query<{ status: string }>('SELECT status FROM tamper_cases WHERE id = $1', [
          caseId,
        ]);
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
    await db.pool.query(
      `INSERT INTO daily_rollups (meter_id, day, wh, intervals)
       SELECT m.id, d::date, 7000 + m.id, 48 FROM meters m,
              generate_series(($1 || '-01')::date, ($1 || '-01')::date + interval '1 month' - interval '1 day', interval '1 day') d
       ON CONFLICT DO NOTHING`,
      [month],
    );
    for (const width of [1280, 390]) {
      const ctx = await newContext(browser, width);
      const page = await ctx.newPage();
      const errors = consoleErrors(page);
      await staffLogin(page, baseUrl, SUPPLIER);
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
      const ctx = await newContext(browser, width);
      const page = await ctx.newPage();
      const errors = consoleErrors(page);
      await login(page, baseUrl, { consumerId: 'C100001', password: 'consumer-demo-pass' });
      await page.goto(`${baseUrl}/profile`);
      await settle(page);
      const main = page.locator('main');
      await expect.poll(() => main.innerText(), { timeout: 15_000 }).toContain('Download my data');
      if (width === 1280) {
        // The simulator's first readings of KW000001 have arrived (it backfills a day).
        await sys!.waitFor(
          async () =>
            (
              await db.pool.query(
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
