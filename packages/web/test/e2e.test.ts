import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AlertPage, Home, Limits, Profile } from '@kilowire/contract';
import { apiGet, SHOTS, withBrowserSystem } from './support/browser.ts';
import type { DemoSystem } from './support/system.ts';
import {
  consoleErrors,
  isBlocking,
  login,
  newContext,
  runAxeCheck,
  settle,
  signedIn,
} from '../scripts/axe-check.ts';

/**
 * The portal end to end, in Debian's Chromium, against the whole system started the way
 * `npm start` starts it (embedded PostgreSQL and broker, simulated meters) — or, when the
 * run targets the machine's PostgreSQL and Mosquitto, against those.
 */
const CONSUMER = { consumerId: 'C100001', password: 'consumer-demo-pass' };

/**
 * A time zone where it is now between 09:00 and 22:00, so that the simulated meters (one
 * day of backfill, fast-forwarded) produce several hours of "today" after the test sets
 * the limit: the crossing then happens in simulated time, not by lowering the limit.
 */
function zoneWithDaytime(): string {
  const zones = [
    'Pacific/Kiritimati',
    'Asia/Tokyo',
    'Asia/Kolkata',
    'Europe/Berlin',
    'Europe/London',
    'America/Sao_Paulo',
    'America/New_York',
    'America/Denver',
    'America/Los_Angeles',
    'Pacific/Honolulu',
  ];
  for (const tz of zones) {
    const h = Number(
      new Intl.DateTimeFormat('en-GB', { timeZone: tz, hour: '2-digit', hourCycle: 'h23' }).format(
        new Date(),
      ),
    );
    if (h >= 9 && h < 22) return tz;
  }
  return 'Europe/London';
}

const e2e = withBrowserSystem('e2e', () => ({
  SIM_METERS: '3',
  SIM_SPEED: '900',
  SIM_BACKFILL_DAYS: '1',
  DEMO_TZ: zoneWithDaytime(),
  NOTIFY_DISPATCH_MS: '500',
  NOTIFY_POLL_S: '0.5',
}));

const waitFor: DemoSystem['waitFor'] = (fn, ms, what) => e2e.sys.waitFor(fn, ms, what);

describe('before sign-in', () => {
  it('loads the log-in page, and the app before anyone signed in, with no console error', async () => {
    // Not newContext(): that bypasses the CSP for axe, and a CSP refusal must count here too.
    const ctx = await e2e.browser.newContext({ locale: 'en-GB', timezoneId: 'Europe/London' });
    const page = await ctx.newPage();
    const errors = consoleErrors(page);
    const refused: string[] = [];
    page.on('response', (r) => {
      if (r.status() >= 400) refused.push(`${r.status()} ${r.request().method()} ${r.url()}`);
    });
    const visits = [
      ['/login', '/login'],
      ['/login?as=staff', '/login?as=staff'],
      ['/', '/login'],
      ['/statistics?view=month', `/login?next=${encodeURIComponent('/statistics?view=month')}`],
    ] as const;
    for (const [from, to] of visits) {
      await page.goto(`${e2e.baseUrl}${from}`);
      await settle(page);
      await page.getByLabel('Password').waitFor({ timeout: 10_000 });
      const url = new URL(page.url());
      expect(url.pathname + url.search, from).toBe(to);
    }
    expect(errors).toEqual([]);
    expect(refused).toEqual([]);
    await ctx.close();
  }, 60_000);
});

describe('consumer portal end to end', () => {
  it('logs in, shows today, sets a limit, sees it crossed in simulated time, alert in portal and outbox, changes preferences', async () => {
    const ctx = await newContext(e2e.browser, 1280);
    const page = await ctx.newPage();
    await login(page, e2e.baseUrl, CONSUMER);

    // Today's data from the simulated meter appears once its clock passes local midnight.
    const first = await waitFor(
      async () => {
        const h = await apiGet<Home>(page, e2e.baseUrl, '/api/home');
        return h.today.wh > 0 ? h : undefined;
      },
      120_000,
      "today's first readings",
    );
    await page.goto(`${e2e.baseUrl}/`);
    await settle(page);
    await expect.poll(() => page.locator('main').innerText(), { timeout: 10_000 }).toMatch(/kWh/);
    await page.screenshot({ path: path.join(SHOTS, 'home-1280.png'), fullPage: true });

    // A limit 1.5 kWh above what has been used so far today: the meter crosses it later today.
    const limitKwh = Math.ceil((first.today.wh + 1500) / 100) / 10;
    await page.goto(`${e2e.baseUrl}/limits`);
    await settle(page);
    const daily = page.getByLabel(/daily limit/i).first();
    await daily.fill(String(limitKwh));
    await page.getByRole('button', { name: /save/i }).first().click();
    await expect
      .poll(() => page.getByRole('status').allInnerTexts(), { timeout: 10_000 })
      .toEqual(expect.arrayContaining([expect.stringMatching(/saved/i)]));
    const saved = await apiGet<Limits>(page, e2e.baseUrl, '/api/meters/KW000001/limits');
    expect(saved.dailyLimitWh).toBe(Math.round(limitKwh * 1000));
    const before = await apiGet<AlertPage>(page, e2e.baseUrl, '/api/alerts?type=daily_limit');
    expect(before.items).toHaveLength(0);

    // Simulated time runs on; the rule fires once when the day's total crosses the limit.
    await waitFor(
      async () => {
        const a = await apiGet<AlertPage>(page, e2e.baseUrl, '/api/alerts?type=daily_limit');
        return a.items.length > 0;
      },
      150_000,
      'the daily-limit alert',
    );
    await page.goto(`${e2e.baseUrl}/alerts`);
    await settle(page);
    const alertsText = await page.locator('main').innerText();
    expect(alertsText).toMatch(/daily limit/i);
    expect(alertsText).toContain(limitKwh.toFixed(1));
    await page.screenshot({ path: path.join(SHOTS, 'alerts-1280.png'), fullPage: true });
    // Exactly one, and about today: the day the limit was set, crossed as the meter's day went on.
    const after = await apiGet<AlertPage>(page, e2e.baseUrl, '/api/alerts?type=daily_limit');
    expect(after.items).toHaveLength(1);
    const todayShort = new Intl.DateTimeFormat('en-GB', {
      day: 'numeric',
      month: 'short',
      timeZone: 'UTC',
    }).format(new Date(`${first.today.date}T12:00:00Z`));
    expect(after.items[0]!.message).toContain(`on ${todayShort}`);
    expect(after.items[0]!.message).toContain(`${limitKwh.toFixed(1)} kWh`);

    // Profile: switch SMS on for daily limits, with a mobile number; it persists.
    await page.goto(`${e2e.baseUrl}/profile`);
    await settle(page);
    await page
      .getByLabel(/mobile/i)
      .first()
      .fill('+447700900123');
    const sms = page.getByRole('checkbox', { name: /daily limit.*sms|sms.*daily limit/i });
    await sms.check();
    await page.getByRole('button', { name: /save/i }).first().click();
    await expect
      .poll(() => apiGet<Profile>(page, e2e.baseUrl, '/api/me/profile'), { timeout: 10_000 })
      .toMatchObject({ mobile: '+447700900123', channels: { daily_limit: { sms: true } } });
    await page.reload();
    await settle(page);
    expect(await page.getByRole('checkbox', { name: /daily limit.*sms|sms.*daily limit/i }).isChecked()).toBe(
      true,
    );
    await ctx.close();

    // Supplier staff see the email that went to the built-in outbox.
    const staffCtx = await newContext(e2e.browser, 1280);
    const staff = await staffCtx.newPage();
    await staff.goto(`${e2e.baseUrl}/login?as=staff`);
    await staff.getByLabel('Email').fill('supplier@kilowire.demo');
    await staff.getByLabel('Password').fill('supplier-demo-pass');
    await staff.getByRole('button', { name: 'Log in', exact: true }).click();
    await signedIn(staff);
    await waitFor(
      async () => {
        await staff.goto(`${e2e.baseUrl}/outbox`);
        await settle(staff);
        const text = await staff.locator('main').innerText();
        return /c100001@example\.org/i.test(text) && /daily limit/i.test(text);
      },
      60_000,
      'the alert email in the outbox',
    );
    await staff.screenshot({ path: path.join(SHOTS, 'outbox-1280.png'), fullPage: true });
    await staffCtx.close();
  }, 400_000);

  it('has no serious or critical accessibility violation on any page at 320 px and 1280 px', async () => {
    const results = await runAxeCheck({
      baseUrl: e2e.baseUrl,
      creds: CONSUMER,
      shotsDir: SHOTS,
      executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    });
    expect(results.length).toBeGreaterThanOrEqual(10);
    const blocking = results.flatMap((r) =>
      r.violations
        .filter(isBlocking)
        .map((v) => `${r.name}@${r.width}: ${v.id} ${v.help} ${v.nodes.join(' ')}`),
    );
    const problems = results.flatMap((r) => r.problems.map((p) => `${r.name}@${r.width}: ${p}`));
    expect(blocking).toEqual([]);
    expect(problems).toEqual([]);
    const widths = new Set(results.map((r) => r.width));
    expect([...widths].sort((a, b) => a - b)).toEqual([320, 1280]);
  }, 300_000);
});
