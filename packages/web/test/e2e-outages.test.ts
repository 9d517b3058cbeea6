import { describe, expect, it } from 'vitest';
import { axeClean, shoot, STAFF, staffLogin, withBrowserSystem } from './support/browser.ts';
import { tx } from '../../server/src/db/pool.ts';
import { emitEvents } from '../../server/src/events/emit.ts';
import { consoleErrors, goToNav, login as login_, newContext, settle } from '../scripts/axe-check.ts';

/**
 * The operator's console end to end, in Chromium, against the whole system as `npm start`
 * runs it: last gasps of three meters of feeder EAST-1-F1, stored as the gateway stores them
 * (the event rows and their domain events in one transaction), are grouped by the system's
 * own jobs service into an incident; the operator sees it on the network overview,
 * acknowledges it and sets an estimated restoration time, which reaches the households.
 */

const e2e = withBrowserSystem(
  'e2e-outages',
  { SIM_METERS: '3', SIM_SPEED: '60', SIM_BACKFILL_DAYS: '1', DEMO_TZ: 'Europe/London' },
  { ownDb: true },
);

describe('the operator console', () => {
  it('shows a feeder outage; the operator acknowledges it and sets an estimated restoration', async () => {
    // Three meters of feeder EAST-1-F1 lose power (the default rule: 3 meters in 120 s).
    const meters = (
      await e2e.db.pool.query<{ id: number; serial: string }>(
        `SELECT id, serial FROM meters WHERE feeder_id = 'EAST-1-F1' ORDER BY serial LIMIT 3`,
      )
    ).rows;
    expect(meters).toHaveLength(3);
    const t = Math.floor(Date.now() / 1000) - 20;
    await tx(e2e.db.pool, async (c) => {
      for (const m of meters) {
        await c.query(
          `INSERT INTO meter_events (meter_id, seq, idx, ts, code) VALUES ($1, 900000001, 0, to_timestamp($2), 'power.fail')`,
          [m.id, t],
        );
      }
      await emitEvents(
        c,
        meters.map((m) => ({
          type: 'meter.event' as const,
          meterId: m.id,
          payload: { seq: 900000001, idx: 0, code: 'power.fail', t, data: null },
        })),
      );
    });
    const incidentId = await e2e.sys.waitFor(
      async () =>
        (
          await e2e.db.pool.query<{ id: string }>(
            `SELECT id FROM outage_incidents WHERE feeder_id = 'EAST-1-F1'`,
          )
        ).rows[0]?.id,
      30_000,
      'the incident',
    );

    for (const width of [390, 1280]) {
      const ctx = await newContext(e2e.browser, width);
      const page = await ctx.newPage();
      const errors = consoleErrors(page);
      await staffLogin(page, e2e.baseUrl, STAFF.operator);
      // The network overview is the operator's home.
      await settle(page);
      const main = page.locator('main');
      await expect.poll(() => main.innerText(), { timeout: 15_000 }).toContain('Feeder EAST-1-F1');
      expect(await page.getByRole('heading', { level: 1 }).innerText()).toBe('Network');
      await shoot(page, 'network', width);
      await axeClean(page);

      await page.getByRole('link', { name: 'Feeder EAST-1-F1' }).first().click();
      await settle(page);
      await expect.poll(() => main.innerText(), { timeout: 15_000 }).toContain('Outage on feeder EAST-1-F1');
      expect(await main.innerText()).toContain(meters[0]!.serial);
      if (width === 1280) {
        await page.getByRole('button', { name: 'Acknowledge' }).click();
        await expect.poll(() => main.innerText()).toMatch(/Acknowledged\s*·\s*Olu Operator/);
        await page.getByLabel('Power back by').fill('2030-01-01T18:30');
        await page.getByRole('button', { name: 'Set estimate' }).click();
        await expect.poll(() => main.innerText()).toContain('Change estimate');
        const inc = (
          await e2e.db.pool.query<{ status: string; etr: Date | null; etr_version: number }>(
            'SELECT status, etr, etr_version FROM outage_incidents WHERE id = $1',
            [incidentId],
          )
        ).rows[0]!;
        expect(inc.status).toBe('acknowledged');
        expect(inc.etr).not.toBeNull();
        expect(inc.etr_version).toBe(1);
        // Each household of the three meters: one outage alert, one estimate update.
        const hh = await e2e.db.pool.query<{ dedupe_key: string }>(
          `SELECT dedupe_key FROM alerts WHERE type = 'outage' AND meter_id = ANY($1::int[]) ORDER BY dedupe_key`,
          [meters.map((m) => m.id)],
        );
        expect(hh.rows.map((r) => r.dedupe_key)).toEqual([
          ...Array<string>(3).fill(`incident:${incidentId}`),
          ...Array<string>(3).fill(`incident:${incidentId}:etr:1`),
        ]);
      }
      await settle(page);
      await shoot(page, 'incident', width);
      await axeClean(page);

      await goToNav(page, 'SLA');
      await settle(page);
      await expect.poll(() => main.innerText(), { timeout: 15_000 }).toContain('Time to detect');
      await shoot(page, 'sla', width);
      await axeClean(page);

      await goToNav(page, 'Outage settings');
      await settle(page);
      await expect.poll(() => main.innerText(), { timeout: 15_000 }).toContain('On call');
      await shoot(page, 'outage-settings', width);
      await axeClean(page);
      expect(errors).toEqual([]);
      await ctx.close();
    }

    // A household of the feeder: its home says the power is off and when it should be back.
    const login = (
      await e2e.db.pool.query<{ login_id: string }>(
        `SELECT u.login_id FROM meters m JOIN accounts a ON a.id = m.account_id JOIN consumers c ON c.id = a.consumer_id
           JOIN users u ON u.id = c.user_id WHERE m.id = $1`,
        [meters[0]!.id],
      )
    ).rows[0]!.login_id;
    for (const width of [390, 1280]) {
      const ctx = await newContext(e2e.browser, width);
      const page = await ctx.newPage();
      const errors = consoleErrors(page);
      await login_(page, e2e.baseUrl, { consumerId: login, password: 'consumer-demo-pass' });
      await settle(page);
      const main = page.locator('main');
      await expect.poll(() => main.innerText(), { timeout: 15_000 }).toContain('Power cut.');
      expect(await main.innerText()).toContain('they expect it back by 1 Jan 2030');
      await shoot(page, 'household-power-cut', width);
      await axeClean(page);
      expect(errors).toEqual([]);
      await ctx.close();
    }
  }, 240_000);
});
