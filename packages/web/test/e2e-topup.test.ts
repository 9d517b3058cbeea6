import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import type { Meter, Topup, TopupPage } from '@kilowire/contract';
import { startPrivateMosquitto, type TestBroker } from '../../server/test/support/brokers.ts';
import { createTestDb, type TestDb } from '../../server/test/support/db.ts';
import { freePort } from '../../server/src/net.ts';
import {
  consoleErrors,
  isBlocking,
  launch,
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
const ROOT = path.resolve(import.meta.dirname, '../../..');
const SHOTS = path.join(ROOT, 'test-results', 'e2e');
// Every third demo household is prepayment: C100003 with meter KW000003.
const PREPAY = { consumerId: 'C100003', password: 'consumer-demo-pass' };
const SERIAL = 'KW000003';

let privateBroker: TestBroker | undefined;
let proc: ChildProcess;
let output = '';
let baseUrl = '';
let db: TestDb | undefined;
let browser: Browser;

async function waitFor<T>(
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  ms: number,
  what: string,
): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (proc?.exitCode !== null && proc?.exitCode !== undefined)
      throw new Error(`the system exited (${proc.exitCode}):\n${output.slice(-3000)}`);
    if (Date.now() > until)
      throw new Error(`timed out waiting for ${what}\n--- server output ---\n${output.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  const port = await freePort();
  baseUrl = `http://127.0.0.1:${port}`;
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'kw-e2e-topup-'));
  chmodSync(dataDir, 0o711);
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    PORT: String(port),
    DATA_DIR: dataDir,
    EMBEDDED_PG_PORT: String(await freePort()),
    EMBEDDED_MQTT_PORT: String(await freePort()),
    SIM_METERS: '3',
    // Meters on the wall clock from the start: the credit command is judged by real time.
    SIM_BACKFILL_DAYS: '0',
    DEMO_SEED: 'true',
    NOTIFY_POLL_S: '0.5',
    EVENTS_SWEEP_MS: '500',
    LOG_LEVEL: 'warn',
  };
  delete env.DATABASE_URL;
  delete env.MQTT_URL;
  if (inject('mqttUrl')) {
    db = await createTestDb();
    await db.pool.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public');
    env.DATABASE_URL = db.url;
    // A Mosquitto of its own: the demo's meter ids are fixed, and other whole-system tests
    // run at the same time.
    privateBroker = await startPrivateMosquitto();
    env.MQTT_URL = privateBroker.url;
    env.MQTT_PASSWORD = 'e2e-headend';
  }
  proc = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'packages/server/src/main.ts')], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const keep = (d: Buffer) => (output = (output + d.toString()).slice(-50_000));
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  await waitFor(() => output.includes('Kilowire is running'), 90_000, 'the system to start');
  browser = await launch(process.env.CHROMIUM ?? '/usr/bin/chromium');
}, 150_000);

// Registered first so that it runs last (after hooks run in reverse): the system stops first.
afterAll(async () => {
  await privateBroker?.close();
});

afterAll(async () => {
  await browser?.close();
  if (proc && proc.exitCode === null) {
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill('SIGTERM');
      setTimeout(() => proc.kill('SIGKILL'), 15_000).unref();
    });
  }
  await db?.drop();
});

async function apiGet<T>(page: Page, url: string): Promise<T> {
  const r = await page.request.get(new URL(url, baseUrl).href);
  expect(r.status(), url).toBe(200);
  return (await r.json()) as T;
}

describe('top-up through the sandbox', () => {
  let topupId = '';
  let session = '';

  it('a prepayment household pays on the SANDBOX card page (declined first) and sees the credit on its meter', async () => {
    const ctx = await newContext(browser, 390);
    const page = await ctx.newPage();
    const errors = consoleErrors(page);
    await login(page, baseUrl, PREPAY);
    // The meter must have reported once, so its credit is known before the top-up.
    await waitFor(
      async () => (await apiGet<Meter>(page, `/api/meters/${SERIAL}`)).creditMinor !== null,
      60_000,
      'the meter to report its credit',
    );

    await page.getByRole('link', { name: 'Payments' }).click();
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
    const t = await apiGet<Topup>(page, `/api/top-ups/${topupId}`);
    expect(t).toMatchObject({ status: 'applied', amountMinor: 2000, kind: 'topup' });
    const list = await apiGet<TopupPage>(page, '/api/top-ups');
    expect(list.items.map((i) => i.id)).toContain(topupId);
    await page.getByRole('link', { name: 'Back to payments' }).click();
    await page.getByText('On your meter').first().waitFor();
    await page.screenshot({ path: path.join(SHOTS, 'topup-history-390.png'), fullPage: true });

    // The payment alerts, in the portal.
    await page.getByRole('link', { name: 'Alerts' }).click();
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

    const wide = await newContext(browser, 1280);
    const w = await wide.newPage();
    await login(w, baseUrl, PREPAY);
    await w.goto(`${baseUrl}/top-ups/${topupId}`);
    await w.getByText('£20.00 is on your meter.').waitFor();
    await w.screenshot({ path: path.join(SHOTS, 'topup-applied-1280.png'), fullPage: true });
    await w.goto(`${baseUrl}/top-up`);
    await settle(w);
    await w.screenshot({ path: path.join(SHOTS, 'topup-1280.png'), fullPage: true });
    await wide.close();
  }, 240_000);

  it('the payment pages have no serious accessibility violation at 320, 390 and 1280 px', async () => {
    // A checkout not paid yet, to check the card form itself.
    const ctx = await newContext(browser, 1280);
    const page = await ctx.newPage();
    await login(page, baseUrl, PREPAY);
    const res = await page.request.post(`${baseUrl}/api/top-ups`, {
      headers: { 'content-type': 'application/json', 'idempotency-key': `kw-e2e-axe-${Date.now()}` },
      data: { meterSerial: SERIAL, amountMinor: 1500 },
    });
    expect(res.status()).toBe(201);
    const open = (await res.json()) as Topup;
    await ctx.close();
    const results = await runAxeCheck({
      baseUrl,
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
