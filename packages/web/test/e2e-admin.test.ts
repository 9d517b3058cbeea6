import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { AdminMeterList, StaffUserIssued } from '@kilowire/contract';
import { SHOTS, staffLogin, withBrowserSystem } from './support/browser.ts';
import { freePort } from '../../server/src/net.ts';
import { RawMeter, readingsMsg } from '../../server/test/support/world.ts';
import {
  axeSource,
  checkPage,
  isBlocking,
  newContext,
  type PageResult,
  type PageSpec,
} from '../scripts/axe-check.ts';

/**
 * The administrator in Chromium against the whole system (demo seed, embedded broker):
 * registers a meter through the UI, reads its credential, a meter connects to the system's
 * broker with it and reports, and the admin sees it last seen; invites a staff user who
 * accepts in a second browser context and signs in. Every admin page at 390 and 1280 px:
 * screenshots in test-results/e2e/ and no serious or critical axe violation.
 */
const ADMIN = { email: 'admin@kilowire.demo', password: 'admin-demo-pass' };
const WIDTHS = [390, 1280] as const;

let mqttPort = 0;

const e2e = withBrowserSystem(
  'e2e-admin',
  async () => {
    mqttPort = await freePort();
    return { SIM_METERS: '2', SIM_SPEED: '60', SIM_BACKFILL_DAYS: '0', EMBEDDED_MQTT_PORT: String(mqttPort) };
  },
  { embeddedBroker: true },
);

async function post<T>(page: Page, url: string, data: unknown): Promise<T> {
  const r = await page.request.post(new URL(url, e2e.baseUrl).href, {
    data,
    headers: { origin: e2e.baseUrl },
  });
  expect(r.status(), `${url}: ${await r.text()}`).toBeLessThan(300);
  return (await r.json()) as T;
}

describe('the administrator', () => {
  it('registers a meter in the UI; the meter connects with the credential shown, reports, and is seen', async () => {
    const ctx = await newContext(e2e.browser, 1280);
    const page = await ctx.newPage();
    await staffLogin(page, e2e.baseUrl, { email: ADMIN.email, password: ADMIN.password });
    await page.getByRole('link', { name: 'Meters' }).click();
    await page.getByRole('heading', { name: 'Register a meter' }).waitFor();
    await page.getByLabel('Serial', { exact: true }).fill('E2EADM1');
    await page.getByLabel('Supplier').selectOption({ label: 'Brightvolt Energy' });
    await page.getByLabel('Network area').selectOption({ index: 1 });
    await page.getByLabel('Feeder (optional)').selectOption({ index: 1 });
    await page.getByRole('button', { name: 'Register meter' }).click();
    const secret = page.getByTestId('once-secret');
    await secret.waitFor();
    const credential = (await secret.textContent())!.trim();
    expect(credential.length).toBeGreaterThanOrEqual(32);
    await page.screenshot({ path: path.join(SHOTS, 'admin-meter-credential-1280.png'), fullPage: true });

    const meter = await RawMeter.connect(`mqtt://127.0.0.1:${mqttPort}`, 'E2EADM1', credential);
    const now = Math.floor(Date.now() / 1000);
    const start = Math.floor(now / 1800) * 1800 - 2 * 1800;
    await meter.readings(readingsMsg(1, start, [120, 340], 1_000));
    await meter.waitAck((a) => a.kind === 'ack' && a.stream === 'readings' && a.upTo >= 1, 20_000);
    await meter.close();

    await page.getByLabel('Serial starts with').fill('E2EADM');
    const seen = page.getByTestId('last-seen-E2EADM1');
    await e2e.sys.waitFor(
      async () => {
        await page.getByRole('button', { name: 'Search' }).click();
        await page.waitForLoadState('networkidle');
        const t = (await seen.textContent().catch(() => null)) ?? '—';
        return t !== '—' && t;
      },
      30_000,
      'the admin to see the meter last seen',
    );
    const list = (await (
      await page.request.get(`${e2e.baseUrl}/api/admin/meters?q=E2EADM1`)
    ).json()) as AdminMeterList;
    expect(Date.parse(list.items[0]!.lastSeenAt!)).toBeGreaterThan(Date.now() - 120_000);
    await page.screenshot({ path: path.join(SHOTS, 'admin-meter-seen-1280.png'), fullPage: true });
    await ctx.close();
  }, 120_000);

  it('invites a staff user, who accepts in another browser and signs in', async () => {
    const ctx = await newContext(e2e.browser, 1280);
    const page = await ctx.newPage();
    await staffLogin(page, e2e.baseUrl, { email: ADMIN.email, password: ADMIN.password });
    await page.getByRole('link', { name: 'Staff' }).click();
    await page.getByRole('heading', { name: 'Add a person' }).waitFor();
    await page.getByLabel('Work email').fill('new.agent@kilowire.demo');
    await page.getByLabel('Name', { exact: true }).fill('New Agent');
    await page.getByLabel('Organisation').selectOption({ label: 'Brightvolt Energy' });
    await page.getByRole('button', { name: 'Add person' }).click();
    const link = (await page.getByTestId('once-secret').textContent())!.trim();
    expect(link).toMatch(/\/invite\/[A-Za-z0-9_-]{43}$/);
    await page.getByRole('cell', { name: /New Agent new\.agent/ }).waitFor();
    await page.screenshot({ path: path.join(SHOTS, 'admin-staff-invited-1280.png'), fullPage: true });

    const other = await newContext(e2e.browser, 390);
    const p2 = await other.newPage();
    await p2.goto(link);
    await p2.getByText('new.agent@kilowire.demo').first().waitFor();
    await p2.screenshot({ path: path.join(SHOTS, 'invite-390.png'), fullPage: true });
    await p2.getByLabel('New password').fill('agent chosen password');
    await p2.getByLabel('The same again').fill('agent chosen password');
    await p2.getByRole('button', { name: 'Set my password' }).click();
    await p2.getByText('Your password is set.').waitFor();
    await staffLogin(p2, e2e.baseUrl, {
      email: 'new.agent@kilowire.demo',
      password: 'agent chosen password',
    });
    await p2.screenshot({ path: path.join(SHOTS, 'invite-accepted-console-390.png'), fullPage: true });
    // Used: the same link now says so.
    await p2.goto(link);
    await p2.getByText(/not valid/).waitFor();
    await other.close();
    await ctx.close();
  }, 120_000);

  it('every admin page at 390 and 1280 px: screenshots, no serious accessibility violation', async () => {
    const source = axeSource();
    const results: PageResult[] = [];
    const setup = await (await newContext(e2e.browser, 1280)).newPage();
    await staffLogin(setup, e2e.baseUrl, { email: ADMIN.email, password: ADMIN.password });
    // Someone with an initial password (the choose-your-password page) and an open invite.
    await post<StaffUserIssued>(setup, '/api/staff-users', {
      email: 'first.day@kilowire.demo',
      name: 'First Day',
      orgId: 1,
      access: { method: 'password', password: 'given-initial-pass' },
    });
    const invite = await post<StaffUserIssued>(setup, '/api/staff-users', {
      email: 'later@kilowire.demo',
      name: 'Later Person',
      orgId: 1,
      access: { method: 'invite' },
    });
    const pages: PageSpec[] = [
      { name: 'admin-organisations', path: '/organisations' },
      { name: 'admin-staff', path: '/staff' },
      { name: 'admin-meters', path: '/meters-admin' },
      {
        name: 'admin-meters-exchange',
        path: '/meters-admin',
        prepare: async (p) => {
          await p.getByRole('button', { name: 'Exchange E2EADM1' }).click();
          await p.getByLabel('Serial of the new meter').waitFor();
        },
      },
      { name: 'admin-audit', path: '/audit' },
      { name: 'admin-system', path: '/system' },
    ];
    for (const width of WIDTHS) {
      const ctx = await newContext(e2e.browser, width);
      const page = await ctx.newPage();
      await staffLogin(page, e2e.baseUrl, { email: ADMIN.email, password: ADMIN.password });
      for (const spec of pages) results.push(await checkPage(page, e2e.baseUrl, spec, width, SHOTS, source));
      await ctx.close();
      const pub = await newContext(e2e.browser, width);
      const pp = await pub.newPage();
      results.push(
        await checkPage(
          pp,
          e2e.baseUrl,
          { name: 'invite', path: invite.invitePath!, public: true },
          width,
          SHOTS,
          source,
        ),
      );
      await pub.close();
      const fresh = await newContext(e2e.browser, width);
      const fp = await fresh.newPage();
      await fp.goto(`${e2e.baseUrl}/login?as=staff`);
      await fp.getByLabel('Email').fill('first.day@kilowire.demo');
      await fp.getByLabel('Password').fill('given-initial-pass');
      await fp.getByRole('button', { name: 'Log in', exact: true }).click();
      await fp.getByRole('heading', { name: 'Choose your password' }).waitFor();
      results.push(
        await checkPage(fp, e2e.baseUrl, { name: 'choose-password', path: '/' }, width, SHOTS, source),
      );
      if (width === 1280) {
        // Choosing one's own password opens the console.
        await fp.getByLabel('Password you were given').fill('given-initial-pass');
        await fp.getByLabel('New password', { exact: true }).fill('first day own password');
        await fp.getByLabel('New password again').fill('first day own password');
        await fp.getByRole('button', { name: 'Save and continue' }).click();
        await fp.getByRole('navigation', { name: 'Console' }).waitFor({ timeout: 15_000 });
      }
      await fresh.close();
    }
    // The supplier admin's own staff page.
    const sctx = await newContext(e2e.browser, 1280);
    const sp = await sctx.newPage();
    await staffLogin(sp, e2e.baseUrl, { email: 'supplier@kilowire.demo', password: 'supplier-demo-pass' });
    results.push(
      await checkPage(sp, e2e.baseUrl, { name: 'supplier-staff', path: '/staff' }, 1280, SHOTS, source),
    );
    await sctx.close();
    const blocking = results.flatMap((r) => [
      ...r.violations
        .filter(isBlocking)
        .map((v) => `${r.name}@${r.width}: ${v.id} ${v.help} ${v.nodes.join(' ')}`),
      ...r.problems.map((p) => `${r.name}@${r.width}: ${p}`),
    ]);
    expect(blocking).toEqual([]);
  }, 300_000);
});
