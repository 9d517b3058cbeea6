import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { AlertPage, ApprovalList, Meter, SupplyResult } from '@kilowire/contract';
import { apiGet, SHOTS, staffLogin, withBrowserSystem } from './support/browser.ts';
import type { DemoSystem } from './support/system.ts';
import { axeSource, isBlocking, login, newContext, runAxe, settle } from '../scripts/axe-check.ts';

/**
 * Remote supply control end to end in Chromium, against the whole system (demo seed,
 * simulated meters): supplier admin A lowers the bulk threshold on the Protection page and
 * asks for a bulk non-payment disconnection over it; it waits, and A cannot approve it on
 * /approvals; supplier admin B approves it; the commands reach the meters (their relays
 * open) and a household of one of them reads the right message on its Alerts page.
 * Screenshots at 390 and 1280 px go to test-results/e2e/.
 */
const A = { email: 'supplier@kilowire.demo', password: 'supplier-demo-pass' };
const B = { email: 'supplier2@kilowire.demo', password: 'supplier2-demo-pass' };
/** Credit meters (every third demo household is prepayment and may be off for lack of credit). */
const SERIALS = ['KW000001', 'KW000002', 'KW000004'];
const HOUSEHOLD = { consumerId: 'C100002', password: 'consumer-demo-pass' };

const e2e = withBrowserSystem('e2e-supply', {
  SIM_METERS: '4',
  SIM_SPEED: '60',
  SIM_BACKFILL_DAYS: '1',
  DEMO_TZ: 'Europe/London',
  NOTIFY_DISPATCH_MS: '500',
  NOTIFY_POLL_S: '0.5',
});

const waitFor: DemoSystem['waitFor'] = (fn, ms, what) => e2e.sys.waitFor(fn, ms, what);

/** Screenshot at 390 and 1280 px and run axe; returns the serious or critical violations. */
async function shoot(page: Page, name: string, source: string): Promise<string[]> {
  const out: string[] = [];
  for (const width of [390, 1280]) {
    await page.setViewportSize({ width, height: width < 600 ? 720 : 900 });
    await settle(page);
    await page.screenshot({ path: path.join(SHOTS, `${name}-${width}.png`), fullPage: true });
    const v = await runAxe(page, source);
    out.push(...v.filter(isBlocking).map((x) => `${name}@${width}: ${x.id} ${x.help} ${x.nodes.join(' ')}`));
    const overflow = await page.evaluate(
      () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
    );
    if (overflow > 1) out.push(`${name}@${width}: page scrolls sideways by ${overflow}px`);
  }
  return out;
}

describe('remote supply control end to end', () => {
  it('a bulk disconnection over the threshold waits, the requester cannot approve it, a second admin does, the household is told', async () => {
    const source = axeSource();
    const problems: string[] = [];

    // Supplier admin A: the Protection page, threshold 2.
    const ctxA = await newContext(e2e.browser, 1280);
    const a = await ctxA.newPage();
    await staffLogin(a, e2e.baseUrl, A);
    await a.getByRole('link', { name: 'Protection', exact: true }).click();
    await settle(a);
    const threshold = a.getByLabel('Bulk threshold (meters)');
    await expect.poll(() => threshold.inputValue()).toBe('10');
    await threshold.fill('2');
    await a.getByRole('button', { name: 'Save settings' }).click();
    await expect
      .poll(() => a.getByRole('status').allInnerTexts(), { timeout: 10_000 })
      .toEqual(expect.arrayContaining([expect.stringContaining('Protection settings saved.')]));
    problems.push(...(await shoot(a, 'supply-settings', source)));
    await a.setViewportSize({ width: 1280, height: 900 });

    // Three meters in one action (the fleet page that offers it is built alongside; the
    // request is the one its bulk button sends, from the signed-in page).
    const res = await a.request.post(`${e2e.baseUrl}/api/supply/actions`, {
      data: { serials: SERIALS, action: 'disconnect', reason: 'non_payment' },
    });
    expect(res.status(), await res.text()).toBe(202);
    const asked = (await res.json()) as SupplyResult;
    expect(asked.outcome).toBe('awaiting_approval');
    expect(asked.needs).toContain('bulk');
    expect(asked.commands.map((c) => c.status)).toEqual([
      'awaiting_approval',
      'awaiting_approval',
      'awaiting_approval',
    ]);

    // A sees it on /approvals without an Approve button, told why; the API refuses too.
    await a.getByRole('link', { name: 'Approvals', exact: true }).click();
    await settle(a);
    const card = a.getByRole('region', { name: /Disconnect 3 meters/ });
    await card.waitFor({ timeout: 10_000 });
    expect(await card.innerText()).toContain(
      'You asked for this, so a second supplier admin must approve it',
    );
    expect(await card.getByRole('button', { name: /^Approve/ }).count()).toBe(0);
    const self = await a.request.post(`${e2e.baseUrl}/api/approvals/${asked.requestId}/approve`, {
      data: { reason: 'I approve my own' },
    });
    expect(self.status()).toBe(403);
    expect(((await self.json()) as { error: { code: string } }).error.code).toBe('SELF_APPROVAL');
    problems.push(...(await shoot(a, 'approvals-requester', source)));
    // Nothing reached a meter meanwhile.
    for (const s of SERIALS)
      expect((await apiGet<Meter>(a, e2e.baseUrl, `/api/meters/${s}`)).relay).not.toBe('disconnected');
    await ctxA.close();

    // Supplier admin B approves with a reason.
    const ctxB = await newContext(e2e.browser, 1280);
    const b = await ctxB.newPage();
    await staffLogin(b, e2e.baseUrl, B);
    await b.getByRole('link', { name: 'Approvals', exact: true }).click();
    await settle(b);
    problems.push(...(await shoot(b, 'approvals-approver', source)));
    await b.setViewportSize({ width: 1280, height: 900 });
    await b.getByRole('button', { name: `Approve request ${asked.requestId}` }).click();
    await b.getByLabel('Your reason (kept in the audit log)').fill('Arrears confirmed; letters sent');
    await b.screenshot({ path: path.join(SHOTS, 'approvals-approve-dialog-1280.png') });
    await b.getByRole('dialog').getByRole('button', { name: 'Approve', exact: true }).click();
    await expect
      .poll(() => b.getByRole('status').allInnerTexts(), { timeout: 10_000 })
      .toEqual(
        expect.arrayContaining([expect.stringContaining('Approved: 3 commands on the way to the meters.')]),
      );
    const decided = await apiGet<ApprovalList>(b, e2e.baseUrl, '/api/approvals?status=approved');
    expect(decided.items[0]).toMatchObject({
      id: asked.requestId,
      decisionReason: 'Arrears confirmed; letters sent',
    });

    // The commands reach the meters: their relays open.
    for (const s of SERIALS) {
      await waitFor(
        async () => (await apiGet<Meter>(b, e2e.baseUrl, `/api/meters/${s}`)).relay === 'disconnected',
        60_000,
        `meter ${s} to disconnect`,
      );
    }
    await ctxB.close();

    // The household reads why, and what to do.
    const ctxH = await newContext(e2e.browser, 1280);
    const h = await ctxH.newPage();
    await login(h, e2e.baseUrl, HOUSEHOLD);
    const alert = await waitFor(
      async () => (await apiGet<AlertPage>(h, e2e.baseUrl, '/api/alerts?type=disconnected')).items[0],
      60_000,
      'the disconnection alert',
    );
    expect(alert.title).toBe('Supply disconnected: unpaid balance');
    expect(alert.message).toContain('because of an unpaid balance on your account. Call Brightvolt Energy');
    expect(alert.message).not.toContain('tamper');
    await h.goto(`${e2e.baseUrl}/alerts`);
    await settle(h);
    await expect
      .poll(() => h.locator('main').innerText(), { timeout: 10_000 })
      .toMatch(/Supply disconnected: unpaid balance/);
    problems.push(...(await shoot(h, 'household-disconnected-alert', source)));
    await ctxH.close();

    expect(problems).toEqual([]);
  }, 240_000);
});
