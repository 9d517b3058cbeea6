/**
 * (m) Firmware transfer (#10): how many meters per minute complete a 256 KB image download
 * and verification through the real broker and gateway while the rest of the fleet reports,
 * and how much the fleet's readings ingest drops meanwhile.
 *
 * Kilowire runs as one process (`--services=gateway`) against a Mosquitto with per-meter
 * passwords. A Fleet process holds the background meters connected and catching up history
 * at speed (steady load, several readings a second per hundred meters). The transfer meters
 * are real meters (packages/meter, with the firmware key) in this process. The ingest rate is
 * the background fleet's readings stored per second (committed rows), over whole reporting
 * periods: first with no transfer, then from the offers to the end of the period in which
 * the last transfer meter verified its image.
 * `metersPerMin` is the transfer meters over the time from the offers committed to the last
 * meter holding the image verified.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MemoryStore, Meter, MeterClient, makeSimImage } from '@kilowire/meter';
import {
  blockCount,
  buildManifest,
  generateSigningKeyPair,
  privateKeyFromB64,
  signManifest,
} from '@kilowire/protocol';
import { createStaffUser, offerImage, tx, type Pool } from '@kilowire/server';
import { provision } from './db.ts';
import {
  log,
  nowMs,
  sleep,
  spawnChild,
  startMeterMosquitto,
  waitFor,
  spawnKilowire,
  fleetChildArgs,
} from './lib.ts';

const IMAGE_BYTES = 256 * 1024;
const HW = 'KW-1P-A';
/** The background fleet's speed, and the real seconds between two readings of one of its meters. */
const SPEED = 720;
const PERIOD_S = 1800 / SPEED;

export interface FirmwareResult {
  /** Background meters reporting meanwhile, and their readings stored per second without and with the transfer. */
  meters: number;
  ingestBaselinePerS: number;
  ingestDuringPerS: number;
  ingestDropPct: number;
  /** Meters given the image, and how many held it verified in the end. */
  transferMeters: number;
  verified: number;
  transferSeconds: number;
  metersPerMin: number;
}

export async function benchFirmware(
  dbUrl: string,
  pool: Pool,
  opts: { meters: number; transferMeters: number; baselineSeconds: number; passwordHash: string },
): Promise<FirmwareResult> {
  log(`  provisioning ${opts.meters} background and ${opts.transferMeters} transfer households`);
  const background = await provision(pool, opts.meters, {
    prefix: 'FB',
    passwordHash: opts.passwordHash,
    concurrency: 12,
  });
  const targets = await provision(pool, opts.transferMeters, {
    prefix: 'FT',
    passwordHash: opts.passwordHash,
    concurrency: 12,
  });

  const dir = mkdtempSync(path.join(os.tmpdir(), 'kw-bench-fw-'));
  const fwDir = path.join(dir, 'firmware');
  mkdirSync(fwDir);
  const headend = { username: 'headend', password: 'bench-headend-secret' };
  const broker = await startMeterMosquitto('mosquitto (firmware)', dir, headend, [...background, ...targets]);
  const cmdKeys = generateSigningKeyPair();
  const fwKeys = generateSigningKeyPair();

  // The image, as an upload would have stored it: its file named by its hash, its row.
  const bytes = Buffer.from(makeSimImage({ version: '9.0.0', size: IMAGE_BYTES, seed: 7 }));
  const m = buildManifest(bytes, { version: '9.0.0', sequence: 9, hardwareClass: HW });
  const signed = signManifest(m, privateKeyFromB64(fwKeys.privateKey));
  writeFileSync(path.join(fwDir, `${m.sha256}.bin`), bytes);
  const { rows: sup } = await pool.query<{ supplier_id: number }>(
    'SELECT supplier_id FROM meters WHERE id = $1',
    [targets[0]!.meterId],
  );
  const supplierId = sup[0]!.supplier_id;
  const img = await pool.query<{ id: string }>(
    `INSERT INTO firmware_images (supplier_id, version, sequence, hardware_class, size, sha256, block_size,
                                  block_hashes, manifest, signature, storage_key)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id`,
    [
      supplierId,
      m.version,
      m.sequence,
      HW,
      m.size,
      m.sha256,
      m.blockSize,
      m.blockHashes,
      signed.manifest,
      signed.signature,
      `${m.sha256}.bin`,
    ],
  );
  const imageId = Number(img.rows[0]!.id);
  const adminId = await createStaffUser(pool, {
    role: 'supplier',
    email: `fw-bench-${supplierId}@bench.test`,
    password: 'bench-firmware-admin',
    orgId: supplierId,
    name: 'Firmware admin',
  });

  const kw = spawnKilowire('kilowire (gateway)', 'gateway', {
    dbUrl,
    mqttUrl: broker.url,
    login: headend,
    dataDir: path.join(dir, 'kw-data'),
    env: {
      GATEWAY_CLIENT_ID: `kw-bench-fw-${process.pid}`,
      COMMAND_SIGNING_KEY: cmdKeys.privateKey,
      FIRMWARE_PUBLIC_KEY: fwKeys.publicKey,
      FIRMWARE_DIR: fwDir,
    },
  });
  const clients: MeterClient[] = [];
  try {
    await kw.waitFor('gateway connected to broker', 90_000);
    const jobFile = path.join(dir, 'fleet.json');
    writeFileSync(
      jobFile,
      JSON.stringify({
        brokerUrl: broker.url,
        serverPublicKey: cmdKeys.publicKey,
        meters: background.map((h) => ({ id: h.serial, password: h.credential })),
        // Catching up two days at 720x: a reading per meter every 2.5 real seconds, steady
        // for longer than this part runs.
        speed: SPEED,
        backfillDays: 2,
        connectsPerSecond: 400,
      }),
    );
    let connected = 0;
    const fleetProc = spawnChild('fleet process (firmware)', 'bash', fleetChildArgs(jobFile), {
      onLine: (l) => {
        if (!l.startsWith('STATS ')) return;
        const st = JSON.parse(l.slice(6)) as { connected: number };
        connected = st.connected;
      },
    });
    try {
      for (const h of targets) {
        const meter = new Meter({
          id: h.serial,
          tz: 'Europe/London',
          hardwareClass: HW,
          serverPublicKey: cmdKeys.publicKey,
          firmwarePublicKey: fwKeys.publicKey,
          firmwareVersion: '1.0.0',
          firmwareSequence: 1,
          store: new MemoryStore(),
        });
        const c = new MeterClient({
          meter,
          brokerUrl: broker.url,
          password: h.credential,
          reconnectPeriodMs: 1000,
        });
        c.start();
        clients.push(c);
      }
      const targetMeters = clients.map((c) => c.meter);
      await waitFor(
        () => connected >= opts.meters && clients.every((c) => c.counters.connects > 0),
        180_000,
        `${opts.meters + clients.length} meters connected`,
        250,
      );
      await sleep(5_000);
      // The ingest rate is counted where it lands: the background meters' rows in
      // interval_readings (committed, so acknowledged), over windows of whole reporting
      // periods — each meter reports once a period, so a window of whole periods holds the
      // same number of reports whatever the meters' phases, and any shortfall is ingest's.
      const ids = background.map((h) => h.meterId);
      const lo = Math.min(...ids);
      const hi = Math.max(...ids);
      const stored = async () =>
        (
          await pool.query<{ n: number }>(
            'SELECT count(*)::int AS n FROM interval_readings WHERE meter_id BETWEEN $1 AND $2',
            [lo, hi],
          )
        ).rows[0]!.n;
      const periods = (seconds: number) => Math.max(1, Math.ceil(seconds / PERIOD_S)) * PERIOD_S;
      const b0 = { at: nowMs(), n: await stored() };
      await sleep(periods(opts.baselineSeconds) * 1000);
      const b1 = { at: nowMs(), n: await stored() };
      const ingestBaselinePerS = ((b1.n - b0.n) * 1000) / (b1.at - b0.at);
      log(
        `  ${connected} background meters: ${ingestBaselinePerS.toFixed(0)} readings/s stored without a transfer`,
      );

      const campaign = await pool.query<{ id: string }>(
        `INSERT INTO firmware_campaigns (supplier_id, image_id, name, target, status, canary_count, wave_size,
                                         failure_threshold_pct, window_from, window_to, created_by, started_at)
         VALUES ($1, $2, 'bench', '{"serials": []}', 'running', $3, $3, 100, '00:00', '23:59', $4, now()) RETURNING id`,
        [supplierId, imageId, targets.length, adminId],
      );
      const campaignId = Number(campaign.rows[0]!.id);
      await pool.query(
        `INSERT INTO firmware_campaign_meters (campaign_id, meter_id, stage, blocks_total)
         SELECT $1, m, 0, $3 FROM unnest($2::int[]) AS m`,
        [campaignId, targets.map((h) => h.meterId), blockCount(m.size, m.blockSize)],
      );
      const key = privateKeyFromB64(cmdKeys.privateKey);
      const image = { id: imageId, sha256: m.sha256, manifest: signed.manifest, signature: signed.signature };
      const d0 = { at: nowMs(), n: await stored() };
      const t0 = d0.at;
      // All offers in one transaction: the transfer starts for every meter at once.
      await tx(pool, async (c) => {
        for (const h of targets)
          await offerImage(c, key, campaignId, { id: h.meterId, serial: h.serial }, image);
      });
      const done = () => targetMeters.filter((x) => x.firmwarePending?.state === 'verified').length;
      await waitFor(() => done() === targets.length, 120_000, 'every transfer meter verified', 50).catch(
        (err: unknown) => log(`  ${(err as Error).message}: ${done()} of ${targets.length}`),
      );
      const seconds = (nowMs() - t0) / 1000;
      const verified = done();
      // The window closes at the end of the period the transfer ended in.
      await sleep(Math.max(0, t0 + periods(seconds) * 1000 - nowMs()));
      const d1 = { at: nowMs(), n: await stored() };
      const ingestDuringPerS = ((d1.n - d0.n) * 1000) / (d1.at - d0.at);
      log(
        `  ${verified} of ${targets.length} meters verified a 256 KB image in ${seconds.toFixed(1)} s; ` +
          `${ingestDuringPerS.toFixed(0)} readings/s stored in the ${periods(seconds)} s around it`,
      );
      return {
        meters: opts.meters,
        ingestBaselinePerS,
        ingestDuringPerS,
        ingestDropPct: Math.max(0, ((ingestBaselinePerS - ingestDuringPerS) / ingestBaselinePerS) * 100),
        transferMeters: targets.length,
        verified,
        transferSeconds: seconds,
        metersPerMin: (verified / seconds) * 60,
      };
    } finally {
      await Promise.all(clients.map((c) => c.stop().catch(() => undefined)));
      await fleetProc.stop();
    }
  } finally {
    await kw.stop();
    await broker.stop();
  }
}
