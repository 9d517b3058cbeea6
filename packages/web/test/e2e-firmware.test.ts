import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { FwCampaignDetail, FwCampaignsResponse, FwImagesResponse } from '@kilowire/contract';
import {
  buildManifest,
  generateSigningKeyPair,
  privateKeyFromB64,
  signManifest,
  type FirmwareManifest,
} from '@kilowire/protocol';
import { apiGet, SHOTS, STAFF, staffLogin, withBrowserSystem } from './support/browser.ts';
import { tx } from '../../server/src/db/pool.ts';
import {
  axeSource,
  consoleErrors,
  goToNav,
  isBlocking,
  newContext,
  runAxe,
  settle,
} from '../scripts/axe-check.ts';

/**
 * The firmware console end to end in Chromium, against the whole system as `npm start` runs
 * it (demo seed, real PostgreSQL, the system's own API, jobs and gateway):
 * - a supplier admin uploads a signed image through the upload panel (manifest, then the image
 *   with progress); the same manifest with an image of one changed byte is refused in words;
 * - campaigns in several states (running with meters in every stage of the transfer, halted
 *   by its canary's failures, awaiting approval, completed), written as the campaign engine
 *   writes them, are shown on the list and on their own pages;
 * - a new campaign is asked for through the form (with its live count of meters) and waits
 *   for a second admin, who finds it on Approvals, linked to the campaign, and approves it;
 * - the network operator sees the planned activations on its home page.
 * Every page at 390 and 1280 px: screenshots in test-results/e2e/, axe clean, no sideways scroll.
 */

const FW = generateSigningKeyPair();
const e2e = withBrowserSystem(
  'e2e-firmware',
  {
    SIM_METERS: '2',
    SIM_SPEED: '60',
    SIM_BACKFILL_DAYS: '1',
    DEMO_TZ: 'Europe/London',
    FIRMWARE_SIGNING_KEY: FW.privateKey,
  },
  { ownDb: true },
);

const HW = 'KW-1P-100A';
const BLOCK = 4096;

/** A signed image as the CLI writes it: the image file and its .manifest.json beside it. */
function signedImage(
  dir: string,
  name: string,
  m: { version: string; sequence: number; size: number },
): { image: string; manifestFile: string; bytes: Buffer; manifest: FirmwareManifest } {
  const bytes = Buffer.alloc(m.size);
  for (let i = 0; i < m.size; i++) bytes[i] = (i * 31 + m.sequence * 7) & 0xff;
  const manifest = buildManifest(bytes, {
    version: m.version,
    sequence: m.sequence,
    hardwareClass: HW,
    blockSize: BLOCK,
  });
  const signed = signManifest(manifest, privateKeyFromB64(FW.privateKey));
  const image = path.join(dir, `${name}.bin`);
  writeFileSync(image, bytes);
  const manifestFile = `${image}.manifest.json`;
  writeFileSync(manifestFile, JSON.stringify(signed, null, 2));
  return { image, manifestFile, bytes, manifest };
}

/** Screenshot at 390 and 1280 px and run axe; returns the serious or critical problems found. */
async function check(page: Page, name: string, source: string): Promise<string[]> {
  const out: string[] = [];
  for (const width of [390, 1280]) {
    await page.setViewportSize({ width, height: width < 600 ? 720 : 900 });
    await settle(page);
    // From the top: a page scrolled to a focused field would show the sticky header mid-page.
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: path.join(SHOTS, `${name}-${width}.png`), fullPage: true });
    const v = await runAxe(page, source);
    out.push(...v.filter(isBlocking).map((x) => `${name}@${width}: ${x.id} ${x.help} ${x.nodes.join(' ')}`));
    const overflow = await page.evaluate(
      () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
    );
    if (overflow > 1) out.push(`${name}@${width}: page scrolls sideways by ${overflow}px`);
  }
  await page.setViewportSize({ width: 1280, height: 900 });
  return out;
}

interface Seeded {
  running: number;
  halted: number;
  awaiting: number;
  completed: number;
}

/**
 * Campaigns as the engine leaves them, on two images inserted as an upload inserts them: the
 * meters of the demo (all in the database; only the first two are simulated) spread over
 * the states. The running campaign's live meters are in states the engine leaves alone for
 * the length of the test (activations an hour ahead, a download in progress, the next wave
 * waiting), and its canary's one failure is within its limit, so what the pages show is what
 * was written.
 */
async function seedCampaigns(): Promise<Seeded> {
  return tx(e2e.db.pool, async (c) => {
    const who = (
      await c.query<{ id: string; email: string; org_id: number }>(
        'SELECT id, email, org_id FROM users WHERE email = ANY($1::text[])',
        [[STAFF.supplier.email, STAFF.supplier2.email]],
      )
    ).rows;
    const a = who.find((r) => r.email === STAFF.supplier.email)!;
    const b = who.find((r) => r.email === STAFF.supplier2.email)!;
    const supplier = a.org_id;
    const meters = (
      await c.query<{ id: number; serial: string; feeder_id: string }>(
        `SELECT id, serial, feeder_id FROM meters WHERE supplier_id = $1 AND serial > 'KW000002' ORDER BY serial`,
        [supplier],
      )
    ).rows;
    expect(meters.length).toBeGreaterThanOrEqual(22);
    const image = async (version: string, sequence: number): Promise<number> => {
      const hashes = Array.from({ length: 16 }, (_, i) => (i + sequence).toString(16).padStart(64, '0'));
      const sha = `${sequence.toString(16).padStart(4, '0')}${'ab'.repeat(30)}`;
      const r = await c.query<{ id: string }>(
        `INSERT INTO firmware_images (supplier_id, version, sequence, hardware_class, size, sha256, block_size,
                                      block_hashes, manifest, signature, storage_key, notes, uploaded_by, created_at)
         VALUES ($1, $2, $3, $4, 65536, $5, 4096, $6, '{}', 'x', $5 || '.bin', NULL, $7, now() - interval '3 days')
         RETURNING id`,
        [supplier, version, sequence, HW, sha, hashes, a.id],
      );
      return Number(r.rows[0]!.id);
    };
    const older = await image('1.0.5', 1);
    const newer = await image('1.1.0', 2);
    const campaign = async (o: {
      name: string;
      imageId: number;
      status: string;
      stages: number;
      stage?: number;
      halted?: string;
      request?: 'approved' | 'awaiting_approval';
    }): Promise<number> => {
      const req = (
        await c.query<{ id: string }>(
          `INSERT INTO action_requests (supplier_id, kind, requested_by, reason, reason_text, needs, status,
                                        decided_by, decided_at, decision_reason, expires_at)
           VALUES ($1, 'firmware.campaign', $2, 'firmware_campaign', $3, '{firmware}', $4,
                   CASE WHEN $4 = 'approved' THEN $5::bigint END, CASE WHEN $4 = 'approved' THEN now() END,
                   CASE WHEN $4 = 'approved' THEN 'Canary plan checked' END, now() + interval '1 day')
           RETURNING id`,
          [supplier, a.id, `${o.name}: fixes the register rollover`, o.request ?? 'approved', b.id],
        )
      ).rows[0]!.id;
      const r = await c.query<{ id: string }>(
        `INSERT INTO firmware_campaigns (supplier_id, image_id, name, target, status, canary_count, wave_size,
                                         failure_threshold_pct, window_from, window_to, feeder_max,
                                         feeder_spacing_s, confirm_s, stage, stages, request_id, created_by,
                                         created_at, started_at, finished_at, halted_reason)
         VALUES ($1, $2, $3, '{"filter":{"version":"1.0.0"}}', $4, 6, 6, 20, '01:00', '05:00', 5, 300, 600,
                 $5, $6, $7, $8, now() - interval '2 days',
                 CASE WHEN $4 <> 'awaiting_approval' THEN now() - interval '1 day' END,
                 CASE WHEN $4 IN ('halted', 'completed') THEN now() - interval '20 hours' END, $9)
         RETURNING id`,
        [supplier, o.imageId, o.name, o.status, o.stage ?? 0, o.stages, req, a.id, o.halted ?? null],
      );
      const id = Number(r.rows[0]!.id);
      await c.query(
        `INSERT INTO firmware_campaign_events (campaign_id, at, kind, actor_id, detail) VALUES
           ($1, now() - interval '2 days', 'created', $2, 'fixes the register rollover')`,
        [id, a.id],
      );
      if (o.status !== 'awaiting_approval')
        await c.query(
          `INSERT INTO firmware_campaign_events (campaign_id, at, kind, actor_id, detail) VALUES
             ($1, now() - interval '1 day', 'started', $2, 'approved'),
             ($1, now() - interval '1 day', 'stage_started', NULL, 'stage 0 (canary)')`,
          [id, b.id],
        );
      return id;
    };
    const put = async (
      campaignId: number,
      serials: { id: number }[],
      stage: number,
      state: string,
      extra: { blocks?: number; reason?: string; skip?: string; activateInS?: number } = {},
    ): Promise<void> => {
      await c.query(
        `INSERT INTO firmware_campaign_meters (campaign_id, meter_id, stage, state, blocks_done, blocks_total,
                                               reason, skip_reason, activate_at, updated_at, offered_at,
                                               verified_at, finished_at)
         SELECT $1, m, $2, $3, $4, 16, $5, $6,
                CASE WHEN $7::int IS NULL THEN NULL ELSE now() + make_interval(secs => $7::int) END,
                now() - interval '10 minutes',
                CASE WHEN $3 NOT IN ('pending', 'skipped', 'cancelled') THEN now() - interval '1 day' END,
                CASE WHEN $3 IN ('verified', 'activating', 'confirmed', 'reverted') THEN now() - interval '22 hours' END,
                CASE WHEN $3 IN ('confirmed', 'refused', 'verify_failed', 'reverted', 'cancelled')
                     THEN now() - interval '20 hours' END
           FROM unnest($8::int[]) AS m`,
        [
          campaignId,
          stage,
          state,
          extra.blocks ??
            (['verified', 'activating', 'confirmed', 'reverted', 'verify_failed'].includes(state) ? 16 : 0),
          extra.reason ?? null,
          extra.skip ?? null,
          extra.activateInS ?? null,
          serials.map((m) => m.id),
        ],
      );
    };

    // Running: canary of 6 (2 confirmed, 1 downloading at 10/16, 2 activating in an hour, 1
    // reverted: within its limit of floor(20 % of 6) = 1), then a wave of 6 waiting.
    const running = await campaign({
      name: 'Rollover fix 1.1.0',
      imageId: newer,
      status: 'running',
      stages: 2,
    });
    const m = meters;
    await put(running, m.slice(0, 2), 0, 'confirmed');
    await put(running, m.slice(2, 3), 0, 'downloading', { blocks: 10 });
    await put(running, m.slice(3, 5), 0, 'activating', { activateInS: 3600 });
    await put(running, m.slice(5, 6), 0, 'reverted', {
      reason: 'did not reconnect on the new image within 600 s; back on 1.0.0',
    });
    await put(running, m.slice(6, 12), 1, 'pending');

    // Halted by its canary: 3 failures of 5 (limit 1); the rest cancelled.
    const halted = await campaign({
      name: 'Tariff engine 1.0.5',
      imageId: older,
      status: 'halted',
      stages: 2,
      halted: 'stage 0 (canary): 3 failures of 5 meters, more than the 1 its 20 % threshold allows',
    });
    await put(halted, m.slice(12, 13), 0, 'confirmed');
    await put(halted, m.slice(13, 15), 0, 'verify_failed', { reason: 'image hash mismatch at block 7' });
    await put(halted, m.slice(15, 16), 0, 'refused', { reason: 'FW_ROLLBACK: sequence 1 is not above 1' });
    await put(halted, m.slice(16, 17), 0, 'cancelled', { reason: 'campaign halted' });
    await put(halted, m.slice(17, 22), 1, 'cancelled', { reason: 'campaign halted' });
    await c.query(
      `INSERT INTO firmware_campaign_events (campaign_id, at, kind, actor_id, detail) VALUES
         ($1, now() - interval '20 hours', 'halted', NULL, $2)`,
      [halted, 'stage 0 (canary): 3 failures of 5 meters, more than the 1 its 20 % threshold allows'],
    );

    // Completed, on other meters' history (ended states do not block a meter).
    const completed = await campaign({
      name: 'Clock drift 1.0.5',
      imageId: older,
      status: 'completed',
      stages: 1,
    });
    await put(completed, m.slice(0, 3), 0, 'confirmed');

    // Waiting for the second admin.
    const awaiting = await campaign({
      name: 'Display fix 1.1.0',
      imageId: newer,
      status: 'awaiting_approval',
      stages: 1,
      request: 'awaiting_approval',
    });
    await put(awaiting, m.slice(12, 15), 0, 'pending');
    // The plan the pages show (canary and wave sizes) is the one the seeded stages really have.
    await c.query(
      `UPDATE firmware_campaigns f
          SET canary_count = (SELECT count(*) FROM firmware_campaign_meters WHERE campaign_id = f.id AND stage = 0),
              wave_size = greatest(1, (SELECT count(*) FROM firmware_campaign_meters WHERE campaign_id = f.id AND stage = 1))
        WHERE f.id = ANY($1::bigint[])`,
      [[running, halted, awaiting, completed]],
    );
    return { running, halted, awaiting, completed };
  });
}

describe('the firmware console', () => {
  it('uploads a signed image, refuses a changed one in words, and shows campaigns in every state', async () => {
    const source = axeSource();
    const problems: string[] = [];
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kw-fw-'));

    // --- Supplier admin A: the empty Firmware page, then an upload.
    const ctx = await newContext(e2e.browser, 1280);
    const a = await ctx.newPage();
    const errors = consoleErrors(a);
    await staffLogin(a, e2e.baseUrl, STAFF.supplier);
    await goToNav(a, 'Firmware');
    await settle(a);
    const main = a.locator('main');
    await expect.poll(() => main.innerText(), { timeout: 15_000 }).toContain('No firmware images yet');
    problems.push(...(await check(a, 'firmware-empty', source)));

    // With no image yet the upload panel is open; it folds behind its button afterwards.
    expect(await a.getByRole('button', { name: 'Hide upload' }).getAttribute('aria-expanded')).toBe('true');
    const good = signedImage(dir, 'kw-1.2.0', { version: '1.2.0', sequence: 3, size: 40_000 });
    await a.getByLabel('Signed manifest (.manifest.json)').setInputFiles(good.manifestFile);
    await a.getByLabel('Image file').setInputFiles(good.image);
    // The manifest's facts are shown before anything moves.
    const facts = a.getByRole('definition').filter({ hasText: good.manifest.sha256 });
    await facts.waitFor();
    await a.getByRole('button', { name: 'Upload image' }).click();
    await expect
      .poll(() => main.innerText(), { timeout: 20_000 })
      .toContain('is uploaded and every block checked');
    const images = await apiGet<FwImagesResponse>(a, e2e.baseUrl, '/api/firmware/images');
    expect(images.items).toHaveLength(1);
    expect(images.items[0]).toMatchObject({
      version: '1.2.0',
      sequence: 3,
      hardwareClass: HW,
      size: 40_000,
      sha256: good.manifest.sha256,
      blocks: 10,
      uploadedBy: 'Sam Supplier',
    });
    const table = a.getByRole('region', { name: 'Firmware images, newest first' });
    await expect.poll(() => table.innerText()).toContain('1.2.0');
    expect(await table.innerText()).toContain(good.manifest.sha256.slice(0, 12));

    // The same build with one byte changed in its middle block: the manifest passes, the
    // image is refused, in words, and nothing is kept.
    const next = signedImage(dir, 'kw-1.3.0', { version: '1.3.0', sequence: 4, size: 40_000 });
    const tampered = Buffer.from(next.bytes);
    tampered[5 * BLOCK + 17] = tampered[5 * BLOCK + 17]! ^ 0x01;
    const bad = path.join(dir, 'kw-1.3.0-tampered.bin');
    writeFileSync(bad, tampered);
    await a
      .getByRole('button', { name: 'Upload an image' })
      .click()
      .catch(() => undefined);
    await a.getByLabel('Signed manifest (.manifest.json)').setInputFiles(next.manifestFile);
    await a.getByLabel('Image file').setInputFiles(bad);
    await a.getByRole('button', { name: 'Upload image' }).click();
    const alert = a.getByRole('alert').filter({ hasText: 'The image was refused' });
    await alert.waitFor({ timeout: 20_000 });
    expect(await alert.innerText()).toContain('does not match its manifest');
    expect((await apiGet<FwImagesResponse>(a, e2e.baseUrl, '/api/firmware/images')).items).toHaveLength(1);
    problems.push(...(await check(a, 'firmware-upload-refused', source)));

    // A truncated image is caught in the browser before anything is sent.
    const short = path.join(dir, 'kw-1.3.0-short.bin');
    writeFileSync(short, next.bytes.subarray(0, 39_000));
    await a.getByLabel('Image file').setInputFiles(short);
    await expect
      .poll(() => main.innerText())
      .toContain('The image file is 39,000 bytes but the manifest names 40,000');
    expect(await a.getByRole('button', { name: 'Upload image' }).isDisabled()).toBe(true);

    // --- Campaigns in every state.
    const ids = await seedCampaigns();
    await a.goto(`${e2e.baseUrl}/firmware`);
    await settle(a);
    // With images, the upload panel waits behind its button.
    const toggle = a.getByRole('button', { name: 'Upload an image' });
    expect(await toggle.getAttribute('aria-expanded')).toBe('false');
    expect(await a.getByRole('heading', { name: 'Upload a signed image' }).count()).toBe(0);
    await expect.poll(() => main.innerText(), { timeout: 15_000 }).toContain('1.0.5');
    problems.push(...(await check(a, 'firmware-images', source)));

    await goToNav(a, 'Firmware campaigns');
    await settle(a);
    const list = a.getByRole('region', { name: 'Firmware campaigns, newest first' });
    await expect.poll(() => list.innerText(), { timeout: 15_000 }).toContain('Rollover fix 1.1.0');
    const listText = await list.innerText();
    for (const s of ['Running', 'Halted', 'Awaiting approval', 'Completed']) expect(listText).toContain(s);
    // The compact bar says what it shows in words.
    expect(
      await list
        .getByRole('img', {
          name: '6 waiting, 1 downloading, 2 activating, 2 confirmed, 1 failed of 12 meters',
        })
        .count(),
    ).toBe(1);
    problems.push(...(await check(a, 'firmware-campaigns', source)));

    // The running campaign: per state, per stage, per meter, the timeline; pause for admins.
    await list.getByRole('link', { name: 'Rollover fix 1.1.0' }).click();
    await settle(a);
    await expect.poll(() => main.innerText(), { timeout: 15_000 }).toContain('Meters by state');
    const detail = await apiGet<FwCampaignDetail>(a, e2e.baseUrl, `/api/firmware/campaigns/${ids.running}`);
    expect(detail.counts).toMatchObject({
      confirmed: 2,
      downloading: 1,
      activating: 2,
      reverted: 1,
      pending: 6,
    });
    const tiles = a.getByRole('list', { name: 'Meters in each state' });
    expect(await tiles.getByRole('listitem').filter({ hasText: 'Activating' }).innerText()).toContain('2');
    expect(await tiles.getByRole('listitem').filter({ hasText: 'Reverted' }).innerText()).toContain('1');
    // Downloading, with how far: 10 of its 16 blocks.
    await expect
      .poll(() => tiles.getByRole('listitem').filter({ hasText: 'Downloading' }).innerText())
      .toContain('62 % of blocks');
    const stages = a.getByRole('region', { name: 'Each stage against its halt limit' });
    expect(await stages.innerText()).toMatch(/Canary[\s\S]*1 of at most 1/);
    expect(await main.innerText()).toContain('did not reconnect on the new image within 600 s');
    expect(await main.innerText()).toContain('Approved and started');
    expect(await a.getByRole('button', { name: 'Pause' }).count()).toBe(1);
    problems.push(...(await check(a, 'firmware-campaign-running', source)));

    // Filter the meters by state.
    await a.getByLabel('State', { exact: true }).selectOption('activating');
    await settle(a);
    const meterTable = a.getByRole('region', { name: /^Meters of the campaign/ });
    // The unfiltered table has activating rows too: wait for the filtered page itself (2 rows).
    await expect.poll(() => meterTable.locator('tbody tr').count()).toBe(2);
    expect(await meterTable.innerText()).toContain('Activating');

    // Pause it (the confirmation says what pausing does), then resume.
    await a.getByRole('button', { name: 'Pause' }).click();
    const dialog = a.getByRole('dialog');
    expect(await dialog.innerText()).toContain('No meter is offered the image');
    await dialog.getByLabel(/^Reason/).fill('Holding over the bank holiday');
    await dialog.getByRole('button', { name: 'Pause' }).click();
    await expect.poll(() => main.innerText(), { timeout: 15_000 }).toContain('Paused by hand');
    expect(await main.innerText()).toContain('Holding over the bank holiday');
    await a.getByRole('button', { name: 'Resume' }).click();
    await a.getByRole('dialog').getByRole('button', { name: 'Resume' }).click();
    await expect.poll(() => main.innerText(), { timeout: 15_000 }).not.toContain('Paused by hand');

    // The halted campaign: a banner that says so and why.
    await a.goto(`${e2e.baseUrl}/firmware/campaigns/${ids.halted}`);
    await settle(a);
    const banner = a.getByRole('alert').filter({ hasText: 'This campaign halted itself' });
    await banner.waitFor({ timeout: 15_000 });
    expect(await banner.innerText()).toContain('3 failures of 5 meters, more than the 1');
    expect(await main.innerText()).toContain('image hash mismatch at block 7: 2 meters');
    expect(await a.getByRole('button', { name: 'Pause' }).count()).toBe(0);
    problems.push(...(await check(a, 'firmware-campaign-halted', source)));

    // --- A new campaign through the form: the live count, then it waits for a second admin.
    await a.goto(`${e2e.baseUrl}/firmware/campaigns/new`);
    await settle(a);
    await a.getByLabel('Campaign name').fill('Meter display 1.2.0');
    await a.getByLabel('Image').selectOption({ label: `1.2.0 · ${HW} · sequence 3` });
    await a.getByLabel('A list of serials').check();
    await a.getByLabel('Meter serials').fill('KW000001, KW000002\nKW999999');
    await expect
      .poll(() => a.locator('.fw-preview').innerText(), { timeout: 15_000 })
      .toMatch(/2 meters\s+will get 1\.2\.0/);
    expect(await a.locator('.fw-preview').innerText()).toContain('1 not found (KW999999)');
    await a.getByLabel('Canary (meters)').fill('1');
    await a.getByLabel('Wave size (meters)').fill('1');
    problems.push(...(await check(a, 'firmware-campaign-new', source)));
    // Without a reason the form says what is missing, next to the field.
    await a.getByRole('button', { name: 'Ask for approval' }).click();
    await expect.poll(() => main.innerText()).toContain('Say why: the admin who approves reads it.');
    await a.getByLabel('Why').fill('Fixes the display on the first two meters');
    await a.getByRole('button', { name: 'Ask for approval' }).click();
    await expect
      .poll(() => main.innerText(), { timeout: 15_000 })
      .toContain('Waiting for a second admin’s approval');
    problems.push(...(await check(a, 'firmware-campaign-created', source)));
    await a.getByRole('link', { name: 'Open the campaign' }).click();
    await settle(a);
    await expect.poll(() => main.innerText(), { timeout: 15_000 }).toContain('Awaiting approval');
    expect(await main.innerText()).toContain('Waiting for a second supplier admin’s approval');
    problems.push(...(await check(a, 'firmware-campaign-awaiting', source)));
    expect(errors.filter((e) => !/status of 4\d\d/.test(e))).toEqual([]);
    await ctx.close();

    // --- Supplier admin B: the request on Approvals, named and linked to its campaign.
    const ctxB = await newContext(e2e.browser, 1280);
    const b = await ctxB.newPage();
    await staffLogin(b, e2e.baseUrl, STAFF.supplier2);
    await goToNav(b, 'Approvals');
    await settle(b);
    const card = b.getByRole('region', { name: /Start a firmware campaign on 2 meters/ });
    await card.waitFor({ timeout: 15_000 });
    expect(await card.innerText()).toContain('firmware campaign start');
    await expect
      .poll(() => card.getByRole('link', { name: 'Meter display 1.2.0 (1.2.0)' }).count(), {
        timeout: 15_000,
      })
      .toBe(1);
    expect(await card.getByRole('button', { name: /^Approve/ }).count()).toBe(1);
    problems.push(...(await check(b, 'firmware-approvals', source)));
    // B approves: the dialog says what starts, and the campaign runs.
    await card.getByRole('button', { name: /^Approve/ }).click();
    const approve = b.getByRole('dialog');
    expect(await approve.innerText()).toContain('The campaign starts as soon as you approve');
    await approve.getByLabel('Your reason (kept in the audit log)').fill('Two meters, display fix checked');
    await approve.getByRole('button', { name: 'Approve', exact: true }).click();
    await expect
      .poll(() => b.getByRole('status').allInnerTexts(), { timeout: 10_000 })
      .toEqual(
        expect.arrayContaining([
          expect.stringContaining('Approved: the campaign starts with its canary stage.'),
        ]),
      );
    const started = (await apiGet<FwCampaignsResponse>(b, e2e.baseUrl, '/api/firmware/campaigns')).items.find(
      (c) => c.name === 'Meter display 1.2.0',
    );
    expect(started?.status).not.toBe('awaiting_approval');
    expect(['running', 'completed', 'halted']).toContain(started?.status);
    await ctxB.close();

    // --- An agent reads, without the upload panel or the new-campaign button.
    const ctxC = await newContext(e2e.browser, 1280);
    const ag = await ctxC.newPage();
    await staffLogin(ag, e2e.baseUrl, STAFF.agent);
    await goToNav(ag, 'Firmware');
    await settle(ag);
    await expect.poll(() => ag.locator('main').innerText(), { timeout: 15_000 }).toContain('1.2.0');
    expect(await ag.getByRole('heading', { name: 'Upload a signed image' }).count()).toBe(0);
    expect(await ag.getByRole('link', { name: 'New campaign' }).count()).toBe(0);
    await ctxC.close();

    // --- The network operator: the planned activations on its home page.
    const ctxO = await newContext(e2e.browser, 1280);
    const o = await ctxO.newPage();
    await staffLogin(o, e2e.baseUrl, STAFF.operator);
    await settle(o);
    const windows = o.getByRole('region', { name: 'Planned firmware activations per feeder, soonest first' });
    await windows.waitFor({ timeout: 15_000 });
    const wText = await windows.innerText();
    expect(wText).toContain('Brightvolt Energy');
    const feeders = new Set(
      (
        await e2e.db.pool.query<{ feeder_id: string }>(
          `SELECT m.feeder_id FROM firmware_campaign_meters cm JOIN meters m ON m.id = cm.meter_id
            WHERE cm.campaign_id = $1 AND cm.state = 'activating'`,
          [ids.running],
        )
      ).rows.map((r) => r.feeder_id),
    );
    for (const f of feeders) expect(wText).toContain(f);
    problems.push(...(await check(o, 'network-activations', source)));
    await ctxO.close();

    expect(problems).toEqual([]);
  }, 300_000);
});
