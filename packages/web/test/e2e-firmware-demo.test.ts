import { describe, expect, it } from 'vitest';
import type { FwCampaignDetail, FwCampaignsResponse, FwImagesResponse } from '@kilowire/contract';
import { generateSigningKeyPair, publicKeyFromB64, verifyManifest } from '@kilowire/protocol';
import { apiGet, axeClean, shoot, STAFF, staffLogin, withBrowserSystem } from './support/browser.ts';
import { goToNav, newContext, settle } from '../scripts/axe-check.ts';
import { DEMO_FW_SEQUENCE, DEMO_FW_VERSION } from '../../server/src/demo/firmware.ts';

/**
 * The demo's firmware, as a newcomer meets it after `npm start`: once the simulated history is
 * in, one image signed with the firmware key and a four-meter campaign (a canary, then a wave),
 * asked for by one supplier admin and approved by the other, which the live system — the
 * campaign engine, the gateway's block serving and the simulated meters — runs to the end:
 * every meter downloads, verifies, activates, reconnects on the new image and is confirmed.
 */
const FW = generateSigningKeyPair();
const e2e = withBrowserSystem(
  'e2e-firmware-demo',
  {
    // Every demo household simulated: the demo waits for all of them to catch up.
    SIM_METERS: '25',
    // The default speed: the day of history is in within seconds, then the meters run on real time.
    SIM_BACKFILL_DAYS: '1',
    DEMO_TZ: 'Europe/London',
    DEMO_FIRMWARE: 'true',
    FIRMWARE_SIGNING_KEY: FW.privateKey,
  },
  { ownDb: true },
);

describe('the demo firmware', () => {
  it('seeds a signed image and a small campaign that the simulated meters take to the end', async () => {
    const ctx = await newContext(e2e.browser, 1280);
    const page = await ctx.newPage();
    await staffLogin(page, e2e.baseUrl, STAFF.supplier);

    const campaign = await e2e.sys.waitFor(
      async () => (await apiGet<FwCampaignsResponse>(page, e2e.baseUrl, '/api/firmware/campaigns')).items[0],
      180_000,
      'the demo campaign',
    );
    expect(campaign).toMatchObject({
      image: { version: DEMO_FW_VERSION },
      meters: 4,
      stages: 2,
      createdBy: 'Sam Supplier',
    });

    // The image is signed with the system's firmware key (the meters check the file against it).
    const image = (await apiGet<FwImagesResponse>(page, e2e.baseUrl, '/api/firmware/images')).items[0]!;
    expect(image).toMatchObject({
      version: DEMO_FW_VERSION,
      sequence: DEMO_FW_SEQUENCE,
      hardwareClass: 'KW-1P-100A',
    });
    const row = (
      await e2e.db.pool.query<{ manifest: string; signature: string; storage_key: string }>(
        'SELECT manifest, signature, storage_key FROM firmware_images WHERE id = $1',
        [image.id],
      )
    ).rows[0]!;
    const manifest = verifyManifest(row.manifest, row.signature, publicKeyFromB64(FW.publicKey));
    expect(manifest).toMatchObject({ version: DEMO_FW_VERSION, sha256: image.sha256, size: image.size });
    expect(row.storage_key).toBe(`${image.sha256}.bin`);

    // The approval: asked by one admin, decided by the other.
    const req = (
      await e2e.db.pool.query<{ requested_by: string; decided_by: string; status: string }>(
        `SELECT r.requested_by, r.decided_by, r.status FROM action_requests r
           JOIN firmware_campaigns c ON c.request_id = r.id WHERE c.id = $1`,
        [campaign.id],
      )
    ).rows[0]!;
    expect(req.status).toBe('approved');
    expect(req.decided_by).not.toBe(req.requested_by);

    // The live system takes it to the end: every meter confirmed on the new image.
    const done = await e2e.sys.waitFor(
      async () => {
        const d = await apiGet<FwCampaignDetail>(page, e2e.baseUrl, `/api/firmware/campaigns/${campaign.id}`);
        return d.status === 'completed' || d.status === 'halted' ? d : undefined;
      },
      300_000,
      'the demo campaign to finish',
    );
    expect(done.status).toBe('completed');
    expect(done.counts.confirmed).toBe(4);
    const running = (
      await e2e.db.pool.query<{ serial: string; firmware_version: string; firmware_sequence: number }>(
        `SELECT m.serial, m.firmware_version, m.firmware_sequence FROM firmware_campaign_meters cm
           JOIN meters m ON m.id = cm.meter_id WHERE cm.campaign_id = $1 ORDER BY m.serial`,
        [campaign.id],
      )
    ).rows;
    expect(running).toHaveLength(4);
    for (const m of running)
      expect(m).toMatchObject({ firmware_version: DEMO_FW_VERSION, firmware_sequence: DEMO_FW_SEQUENCE });

    // What the newcomer sees: the finished campaign, every meter confirmed.
    await goToNav(page, 'Firmware campaigns');
    await settle(page);
    await page.getByRole('link', { name: campaign.name }).click();
    await settle(page);
    const main = page.locator('main');
    await expect.poll(() => main.innerText(), { timeout: 15_000 }).toContain('Completed');
    expect(await main.innerText()).toContain('No meter has failed.');
    for (const width of [390, 1280]) {
      await page.setViewportSize({ width, height: width < 600 ? 720 : 900 });
      await settle(page);
      await shoot(page, 'firmware-demo-campaign', width);
      await axeClean(page);
    }
    await ctx.close();
  }, 600_000);
});
