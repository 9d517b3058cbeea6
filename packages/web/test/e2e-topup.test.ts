import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Meter, Topup, TopupPage } from '@kilowire/contract';
import { apiGet, SHOTS, withBrowserSystem } from './support/browser.ts';
import type { DemoSystem } from './support/system.ts';
import {
  consoleErrors,
  goToNav,
  isBlocking,
  login,
  newContext,
  runAxeCheck,
  settle,
} from '../scripts/axe-check.ts';

/**
 * A prepayment household tops up through the sandbox card page and sees the credit arrive on
 * its meter, in Chromium, against the whole system started as `npm start` starts it (the
 * simulated meters answer the credit command). A declined card first, then the test card
 * that pays. Screenshots at 390 and 1280 px into test-results/e2e.
 */
// Every third demo household is prepayment: C100003 with meter KW000003.
const PREPAY = { consumerId: 'C100003', password: 'consumer-demo-pass' };
const SERIAL = 'KW000003';

const e2e = withBrowserSystem('e2e-topup', {
  SIM_METERS: '3',
  // Meters on the wall clock from the start: the credit command is judged by real time.
  SIM_BACKFILL_DAYS: '0',
  NOTIFY_POLL_S: '0.5',
  EVENTS_SWEEP_MS: '500',
});

const waitFor: DemoSystem['waitFor'] = (fn, ms, what) => e2e.sys.waitFor(fn, ms, what);

describe('top-up through the sandbox', () => {
  let topupId = '';
  let session = '';

  it('a prepayment household pays on the SANDBOX card page (declined first) and sees the credit on its meter', async () => {
    const ctx = await newContext(e2e.browser, 390);
    const page = await ctx.newPage();
    const errors = consoleErrors(page);
    await login(page, e2e.baseUrl, PREPAY);
    // The meter must have reported once, so its credit is known before the top-up.
    await waitFor(
      async () => (await apiGet<Meter>(page, e2e.baseUrl, `/api/meters/${SERIAL}`)).creditMinor !== null,
      60_000,
      'the meter to report its credit',
    );

    await goToNav(page, 'Payments');
    await page.getByRole('heading', { name: 'Top up your meter' }).waitFor();
    await settle(page);
    expect(await page.locator('main').innerText()).toMatch(
      /From £5\.00 to £250\.00 at a time, and up to £500\.00 a day/,
    );
    await page.screenshot({ path: path.join(SHOTS, 'topup-390.png'), fullPage: true });

    // A custom amount below the minimum is explained before anything is sent.
    await page.getByLabel('Other amount').check();
    await page.getByLabel('Amount in pounds').fill('2');
    await page.getByRole('button', { name: 'Pay £2.00' }).click();
    await expect.poll(() => page.locator('.error-text').innerText()).toMatch(/The smallest amount is £5\.00/);
    await page.screenshot({ path: path.join(SHOTS, 'topup-error-390.png'), fullPage: true });
    await page.getByRole('radio', { name: '£20.00' }).check();
    await page.getByRole('button', { name: 'Pay £20.00' }).click();

    // The sandbox card page, clearly marked.
    await page.waitForURL(/\/pay\/sandbox\/cs_sandbox_/);
    await page.getByLabel('Card number').waitFor();
    session = new URL(page.url()).pathname.split('/').pop()!;
    expect(await page.locator('body').innerText()).toContain('SANDBOX');
    await page.getByLabel('Card number').fill('4000 0000 0000 0002');
    await page.getByRole('button', { name: 'Pay', exact: true }).click();
    await page
      .getByRole('alert')
      .filter({ hasText: /declined/i })
      .waitFor({ timeout: 10_000 });
    await page.screenshot({ path: path.join(SHOTS, 'sandbox-declined-390.png'), fullPage: true });

    await page.getByLabel('Card number').fill('4242 4242 4242 4242');
    await page.getByRole('button', { name: 'Pay', exact: true }).click();
    await page.waitForURL(/\/top-ups\/[0-9a-f-]{36}$/, { timeout: 15_000 });
    topupId = new URL(page.url()).pathname.split('/').pop()!;
    await page
      .getByText('£20.00 is on your meter.')
      .waitFor({ timeout: 60_000 })
      .catch(async (e: unknown) => {
        await page.screenshot({ path: path.join(SHOTS, 'topup-status-timeout-390.png'), fullPage: true });
        throw e;
      });
    await page.screenshot({ path: path.join(SHOTS, 'topup-applied-390.png'), fullPage: true });

    // What the page says is what the meter said: its credit.add reply is stored.
    const t = await apiGet<Topup>(page, e2e.baseUrl, `/api/top-ups/${topupId}`);
    expect(t).toMatchObject({ status: 'applied', amountMinor: 2000, kind: 'topup' });
    const list = await apiGet<TopupPage>(page, e2e.baseUrl, '/api/top-ups');
    expect(list.items.map((i) => i.id)).toContain(topupId);
    await page.getByRole('link', { name: 'Back to payments' }).click();
    await page.getByText('On your meter').first().waitFor();
    await page.screenshot({ path: path.join(SHOTS, 'topup-history-390.png'), fullPage: true });

    // The payment alerts, in the portal.
    await goToNav(page, 'Alerts');
    await waitFor(
      async () => {
        await page.reload();
        await settle(page);
        return /Credit on your meter/.test(await page.locator('main').innerText());
      },
      30_000,
      'the "on your meter" alert',
    );
    const alerts = await page.locator('main').innerText();
    expect(alerts).toMatch(/Payment declined/);
    expect(alerts).toMatch(/Payment received/);
    expect(errors.filter((e) => !/422|402/.test(e))).toEqual([]);
    await ctx.close();

    const wide = await newContext(e2e.browser, 1280);
    const w = await wide.newPage();
    await login(w, e2e.baseUrl, PREPAY);
    await w.goto(`${e2e.baseUrl}/top-ups/${topupId}`);
    await w.getByText('£20.00 is on your meter.').waitFor();
    await w.screenshot({ path: path.join(SHOTS, 'topup-applied-1280.png'), fullPage: true });
    await w.goto(`${e2e.baseUrl}/top-up`);
    await settle(w);
    await w.screenshot({ path: path.join(SHOTS, 'topup-1280.png'), fullPage: true });
    await wide.close();
  }, 240_000);

  it('the payment pages have no serious accessibility violation at 320, 390 and 1280 px', async () => {
    // A checkout not paid yet, to check the card form itself.
    const ctx = await newContext(e2e.browser, 1280);
    const page = await ctx.newPage();
    await login(page, e2e.baseUrl, PREPAY);
    const res = await page.request.post(`${e2e.baseUrl}/api/top-ups`, {
      headers: { 'content-type': 'application/json', 'idempotency-key': `kw-e2e-axe-${Date.now()}` },
      data: { meterSerial: SERIAL, amountMinor: 1500 },
    });
    expect(res.status()).toBe(201);
    const open = (await res.json()) as Topup;
    await ctx.close();
    const results = await runAxeCheck({
      baseUrl: e2e.baseUrl,
      creds: PREPAY,
      shotsDir: SHOTS,
      // 320 too: the portal's narrowest supported width (the general axe check runs /top-up there as well).
      widths: [320, 390, 1280],
      executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
      pages: [
        { name: 'axe-topup', path: '/top-up' },
        { name: 'axe-topup-status', path: `/top-ups/${topupId}` },
        { name: 'axe-sandbox-paid', path: `/pay/sandbox/${session}`, public: true },
        { name: 'axe-sandbox-card', path: open.paymentUrl!, public: true },
      ],
    });
    const blocking = results.flatMap((r) =>
      r.violations
        .filter(isBlocking)
        .map((v) => `${r.name}@${r.width}: ${v.id} ${v.help} ${v.nodes.join(' ')}`),
    );
    expect(blocking).toEqual([]);
    expect(results.flatMap((r) => r.problems.map((p) => `${r.name}@${r.width}: ${p}`))).toEqual([]);
  }, 120_000);
});
