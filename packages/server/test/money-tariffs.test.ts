import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedDemo, type FleetFile } from '../src/demo/seed.ts';
import { demoTariffs } from '../src/demo/tariffs.ts';
import { generateSigningKeyPair, localMidnight, privateKeyFromB64, type Command } from '@kilowire/protocol';
import type { CreatedHousehold } from '../src/accounts/repo.ts';
import { alertsSubscriber } from '../src/alerts/handlers.ts';
import { tx } from '../src/db/pool.ts';
import { loadEvents } from '../src/events/emit.ts';
import { compareVersions, meterDailyCost, moneyOfDays } from '../src/money/cost.ts';
import { meterPriceSpans, tariffVersions } from '../src/money/prices.ts';
import {
  addVersion,
  assignTariff,
  createTariff,
  initialTariffSpecs,
  syncAllMeterTariffs,
  syncMeterTariff,
  tariffSpecOf,
  type VersionInput,
} from '../src/money/tariffs.ts';
import { createTestDb, type TestDb } from './support/db.ts';
import { rollupFromIntervals, seedMeters } from './support/world.ts';

/**
 * Tariffs in Europe/London across both clock changes of 2026, priced by hand: versions from
 * local midnights, tariff.set active from the meter's local midnight, the cost of a 23-hour
 * and a 25-hour day to the penny, comparisons over the household's own days, and the
 * "tariff changed" alert with old and new prices through the durable event.
 */
const TZ = 'Europe/London';
const key = privateKeyFromB64(generateSigningKeyPair().privateKey);
const at = (iso: string) => Math.floor(Date.parse(iso) / 1000);
let db: TestDb;
let hh: CreatedHousehold[];
let supplierId: number;
let tariffId: number;

const v = (over: Partial<VersionInput> & { effectiveFrom: string }): VersionInput => ({
  dayRate: 20_000,
  nightRate: 10_000,
  peakRate: null,
  nightWindows: [{ from: '00:30', to: '07:30' }],
  peakWindows: [],
  exportRate: null,
  standingMilliPerDay: 50_000,
  vatBp: 500,
  ...over,
});

async function meterRef(h: CreatedHousehold) {
  const { rows } = await db.pool.query<{ id: number; serial: string; tz: string; supplier_id: number }>(
    'SELECT id, serial, tz, supplier_id FROM meters WHERE id = $1',
    [h.meterId],
  );
  return rows[0]!;
}

/** Every interval of a local day at `wh` Wh. */
async function fillDay(meterId: number, day: string, next: string, wh: number): Promise<number> {
  const { rowCount } = await db.pool.query(
    `INSERT INTO interval_readings (meter_id, ts, wh)
     SELECT $1, g, $4 FROM generate_series(to_timestamp($2), to_timestamp($3) - interval '30 minutes', interval '30 minutes') g`,
    [meterId, localMidnight(day, TZ), localMidnight(next, TZ), wh],
  );
  await rollupFromIntervals(db.pool, meterId);
  return rowCount ?? 0;
}

async function tariffSets(meterId: number): Promise<Command[]> {
  const { rows } = await db.pool.query<{ cmd: Command }>(
    "SELECT cmd FROM commands WHERE meter_id = $1 AND type = 'tariff.set' ORDER BY counter",
    [meterId],
  );
  return rows.map((r) => r.cmd);
}

beforeAll(async () => {
  db = await createTestDb();
  hh = await seedMeters(db.pool, 2, { tz: TZ });
  supplierId = (await meterRef(hh[0]!)).supplier_id;
});
afterAll(async () => {
  await db?.drop();
});

describe('versions and effective dates (Europe/London)', () => {
  const march = at('2026-03-20T12:00:00Z');

  it('creates a tariff, assigns it from the next local midnight, and refuses past or out-of-order versions', async () => {
    tariffId = await tx(db.pool, (c) =>
      createTariff(
        c,
        supplierId,
        {
          code: 'E7',
          name: 'Economy 7',
          currency: 'GBP',
          structure: 'two_rate',
          open: true,
          version: v({ effectiveFrom: '2026-03-21' }),
        },
        null,
        { nowS: march },
      ),
    );
    const m = await meterRef(hh[0]!);
    const a = await tx(db.pool, (c) => assignTariff(c, key, m, tariffId, undefined, null, { nowS: march }));
    expect(a.from).toBe('2026-03-21');
    const sets = await tariffSets(m.id);
    expect(sets).toHaveLength(1);
    const spec = (sets[0] as Extract<Command, { type: 'tariff.set' }>).tariff;
    // The meter's prices include VAT (5%): 20.000p -> 21.000p, 10.000p -> 10.500p.
    expect(spec).toMatchObject({ id: 'E7', version: 1, rates: { '1': 21_000, '2': 10_500 } });
    expect(spec.effectiveFrom).toBe(at('2026-03-21T00:00:00Z'));

    // Past days and today are history; a version before an existing one is refused.
    await expect(
      tx(db.pool, (c) =>
        addVersion(c, key, supplierId, tariffId, v({ effectiveFrom: '2026-03-20' }), null, { nowS: march }),
      ),
    ).rejects.toMatchObject({ code: 'VALIDATION' });
    await expect(
      tx(db.pool, (c) => assignTariff(c, key, m, tariffId, '2026-03-20', null, { nowS: march })),
    ).rejects.toMatchObject({ code: 'VALIDATION' });
    // A flat tariff with a night rate is refused.
    await expect(
      tx(db.pool, (c) =>
        createTariff(
          c,
          supplierId,
          {
            code: 'F',
            name: 'Flat',
            currency: 'GBP',
            structure: 'flat',
            open: true,
            version: v({ effectiveFrom: '2026-04-01' }),
          },
          null,
          { nowS: march },
        ),
      ),
    ).rejects.toMatchObject({ code: 'VALIDATION' });
  });

  it('versions from the spring and autumn clock-change days reach the meter at its local midnight', async () => {
    const m = await meterRef(hh[0]!);
    const r2 = await tx(db.pool, (c) =>
      addVersion(
        c,
        key,
        supplierId,
        tariffId,
        v({ effectiveFrom: '2026-03-29', dayRate: 24_500, nightRate: 12_000, standingMilliPerDay: 53_350 }),
        null,
        { nowS: march },
      ),
    );
    // Version 1 (from 21 March) is still waiting on the meter: a meter keeps one pending
    // tariff and a new one would replace it, so version 2 is not sent yet...
    expect(r2).toMatchObject({
      version: 2,
      pushed: [{ serial: m.serial, from: '2026-03-29', commandId: null }],
    });
    expect(await tx(db.pool, (c) => syncMeterTariff(c, key, m, at('2026-03-20T23:00:00Z')))).toBeNull();
    // ...but once 21 March has begun (version 1 active), the periodic pass sends it.
    expect(await syncAllMeterTariffs(db.pool, key, at('2026-03-21T00:10:00Z'))).toBe(1);
    expect(await syncAllMeterTariffs(db.pool, key, at('2026-03-21T01:10:00Z'))).toBe(0);
    await expect(
      tx(db.pool, (c) =>
        addVersion(c, key, supplierId, tariffId, v({ effectiveFrom: '2026-03-25' }), null, { nowS: march }),
      ),
    ).rejects.toMatchObject({ code: 'CONFLICT' });
    const r3 = await tx(db.pool, (c) =>
      addVersion(
        c,
        key,
        supplierId,
        tariffId,
        v({ effectiveFrom: '2026-10-25', dayRate: 26_000, nightRate: 13_000, standingMilliPerDay: 55_000 }),
        null,
        {
          nowS: at('2026-10-01T12:00:00Z'),
        },
      ),
    );
    // Version 2 is active by October: version 3 is the next change and goes at once.
    expect(r3).toMatchObject({ version: 3, pushed: [{ commandId: expect.any(String) as string }] });
    const sets = (await tariffSets(m.id)).map((c) => (c as Extract<Command, { type: 'tariff.set' }>).tariff);
    // GMT midnight for 29 March; BST midnight (23:00 UTC the day before) for 25 October.
    expect(sets.map((s) => [s.version, s.effectiveFrom])).toEqual([
      [1, at('2026-03-21T00:00:00Z')],
      [2, at('2026-03-29T00:00:00Z')],
      [3, at('2026-10-24T23:00:00Z')],
    ]);
    const spans = await meterPriceSpans(db.pool, m.id, '2026-03-01', '2026-12-01');
    expect(spans.map((s) => [s.fromDay, s.toDay, s.version.version])).toEqual([
      ['2026-03-21', '2026-03-29', 1],
      ['2026-03-29', '2026-10-25', 2],
      ['2026-10-25', '2026-12-01', 3],
    ]);
    // The spec a simulated meter starts on (demo fleet file): the version in force then.
    const initial = await initialTariffSpecs(db.pool, [m.serial], at('2026-06-01T12:00:00Z'));
    expect(initial.get(m.serial)).toMatchObject({ version: 2, effectiveFrom: at('2026-03-29T00:00:00Z') });
  });

  it('tariffSpecOf sends VAT-inclusive prices, the exact standing charge and its whole-penny fallback', async () => {
    const [v1] = await tariffVersions(db.pool, tariffId);
    expect(tariffSpecOf(v1!, 100)).toEqual({
      id: 'E7',
      version: 1,
      currency: 'GBP',
      // Net 20p/10p per kWh and 50p a day, plus 5% VAT.
      rates: { '1': 21_000, '2': 10_500 },
      band2Windows: [{ from: '00:30', to: '07:30' }],
      standingChargeMinorPerDay: 53, // 52.5p rounded half up
      standingChargeMilliPerDay: 52_500,
      effectiveFrom: 100,
    });
    // A three-band version sends rate 3 and the peak windows; rounding is half up per price.
    expect(
      tariffSpecOf(
        {
          ...v1!,
          structure: 'three_band',
          dayRate: 24_501,
          peakRate: 35_000,
          peakWindows: [{ from: '16:00', to: '19:00' }],
        },
        100,
      ),
    ).toMatchObject({
      rates: { '1': 25_726, '2': 10_500, '3': 36_750 }, // 24.501 x 1.05 = 25.72605 -> 25.726
      band3Windows: [{ from: '16:00', to: '19:00' }],
    });
  });
});

describe('cost to the penny', () => {
  it('a 23-hour day (29 March 2026) and a 25-hour day (25 October 2026)', async () => {
    const m = await meterRef(hh[0]!);
    expect(await fillDay(m.id, '2026-03-29', '2026-03-30', 500)).toBe(46);
    expect(await fillDay(m.id, '2026-10-25', '2026-10-26', 500)).toBe(50);
    // 29 March, version 2. Local half-hours 00:00, 00:30, then 02:00..23:30 (46). Night 00:30-07:30:
    // 00:30 and 02:00..07:00 = 12 intervals; day 34.
    // energy 34×500×24500 + 12×500×12000 = 488,500,000 µ; standing 53,350,000 µ
    // net 541,850,000 µ = 541.85p -> 542p; VAT 5% = 27.1 -> 27p; total 569p.
    const mar = await meterDailyCost(db.pool, m, '2026-03-29', '2026-03-30');
    expect(mar).toHaveLength(1);
    expect(mar[0]).toMatchObject({
      wh: 23_000,
      intervals: 46,
      energyMicro: 488_500_000,
      standingMicro: 53_350_000,
    });
    expect(mar[0]!.bandWh).toEqual({ 1: 17_000, 2: 6_000, 3: 0 });
    expect(moneyOfDays(mar)).toEqual({
      netMinor: 542,
      vatMinor: 27,
      totalMinor: 569,
      energyMinor: 489,
      standingMinor: 53,
    });
    // 25 October, version 3. 50 half-hours; night: 00:30, 01:00, 01:30 (BST), 01:00, 01:30 (GMT),
    // 02:00..07:00 = 16; day 34. energy 34×500×26000 + 16×500×13000 = 546,000,000 µ; standing 55,000,000 µ
    // net 601p; VAT 30.05 -> 30p; total 631p.
    const oct = await meterDailyCost(db.pool, m, '2026-10-25', '2026-10-26');
    expect(oct[0]).toMatchObject({
      wh: 25_000,
      intervals: 50,
      energyMicro: 546_000_000,
      standingMicro: 55_000_000,
    });
    expect(moneyOfDays(oct)).toMatchObject({ netMinor: 601, vatMinor: 30, totalMinor: 631 });
    // Both days together: one rounding per VAT rate: 1,142,850,000 µ -> 1143p + 57p VAT = 1200p.
    expect(moneyOfDays([...mar, ...oct]).totalMinor).toBe(1200);
    // A day with no readings yet still has its standing charge (the meter debits it at midnight).
    const empty = await meterDailyCost(db.pool, m, '2026-10-27', '2026-10-28');
    expect(empty[0]).toMatchObject({ wh: 0, energyMicro: 0, standingMicro: 55_000_000 });
  });

  it('comparison: the household own days, at each candidate current prices, saying how many days', async () => {
    const m = await meterRef(hh[0]!);
    const flatId = await tx(db.pool, (c) =>
      createTariff(
        c,
        supplierId,
        {
          code: 'FLAT',
          name: 'Simple',
          currency: 'GBP',
          structure: 'flat',
          open: true,
          version: v({
            effectiveFrom: '2026-10-01',
            dayRate: 22_000,
            nightRate: null,
            nightWindows: [],
            standingMilliPerDay: 40_000,
          }),
        },
        null,
        { allowPast: true },
      ),
    );
    const [flat] = await tariffVersions(db.pool, flatId);
    const e7 = (await tariffVersions(db.pool, tariffId))[2]!;
    // Today 2026-11-01: the last 30 days hold one day of readings (25 Oct, 25,000 Wh); the last 365 two.
    const figs = await compareVersions(db.pool, m, '2026-11-01', [flat!, e7]);
    // Flat, 30 days: 25,000 Wh × 22000 = 550,000,000 µ + 40,000,000 µ standing = 590p; VAT 29.5 -> 30; 620p.
    expect(figs.get(flat!)).toEqual([
      { windowDays: 30, daysUsed: 1, wh: 25_000, totalMinor: 620 },
      // 365 days: + 29 March (23,000 Wh): 48,000 × 22000 = 1,056,000,000 µ + 2 × 40,000,000 µ = 1136p;
      // VAT 56.8 -> 57p; 1193p.
      { windowDays: 365, daysUsed: 2, wh: 48_000, totalMinor: 1193 },
    ]);
    // Economy 7 at today's prices (version 3) over 25 Oct: 631p as above.
    expect(figs.get(e7)![0]).toEqual({ windowDays: 30, daysUsed: 1, wh: 25_000, totalMinor: 631 });
  });
});

describe('tariff changed alert', () => {
  it('the durable event becomes one alert per meter with old and new prices and the date', async () => {
    const m = await meterRef(hh[0]!);
    const { rows } = await db.pool.query<{ id: number }>(
      "SELECT id FROM domain_events WHERE type = 'tariff.changed' AND meter_id = $1 ORDER BY id",
      [m.id],
    );
    expect(rows).toHaveLength(3);
    const events = await loadEvents(
      db.pool,
      rows.map((r) => r.id),
    );
    const sub = alertsSubscriber(db.pool);
    await sub.handle(events);
    await sub.handle(events); // a job run twice after a crash raises nothing twice
    const alerts = await db.pool.query<{
      message: string;
      figures: { old: { dayRate: number } | null; new: { dayRate: number } };
    }>("SELECT message, figures FROM alerts WHERE meter_id = $1 AND type = 'tariff_changed' ORDER BY id", [
      m.id,
    ]);
    expect(alerts.rows).toHaveLength(3);
    const oct = alerts.rows[2]!;
    expect(oct.message).toBe(
      `Your tariff for meter ${m.serial} changes to "Economy 7" from 25 Oct. New prices: day 26p/kWh, night 13p/kWh (00:30-07:30), standing charge 55p/day, VAT 5%. Until then: day 24.5p/kWh, night 12p/kWh (00:30-07:30), standing charge 53.35p/day, VAT 5%.`,
    );
    expect(oct.figures.old?.dayRate).toBe(24_500);
    expect(oct.figures.new.dayRate).toBe(26_000);
    // The first assignment had no earlier prices: it says only the new ones.
    expect(alerts.rows[0]!.message).not.toContain('Until then');
  });
});

describe('demo tariffs', () => {
  it('demoTariffs (the seed hook): tariffs from the first day of history, one per meter, the spec each meter is made with', async () => {
    const meters = await seedMeters(db.pool, 3, { tz: TZ });
    const specs = await tx(db.pool, (c) =>
      demoTariffs(
        c,
        meters.map((h) => ({ serial: h.meterSerial, meterId: h.meterId, tz: TZ })),
        '2026-01-10',
      ),
    );
    expect(meters.map((h) => specs.get(h.meterSerial)?.id)).toEqual(['BV-FLAT', 'BV-NIGHT', 'BV-PEAK']);
    for (const sp of specs.values()) expect(sp.effectiveFrom).toBe(at('2026-01-10T00:00:00Z'));
    const spans = await meterPriceSpans(db.pool, meters[2]!.meterId, '2026-01-01', '2026-01-12');
    expect(spans.map((x) => [x.fromDay, x.version.code])).toEqual([['2026-01-10', 'BV-PEAK']]);
  });

  it('seedDemo creates flat, two-rate and three-band tariffs, puts every meter on one, and writes each initialTariff', async () => {
    const demoDb = await createTestDb();
    try {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'kw-demo-'));
      await seedDemo(demoDb.pool, dir, generateSigningKeyPair().publicKey, {
        households: 6,
        tz: TZ,
        tariffs: demoTariffs,
      });
      const t = await demoDb.pool.query<{ structure: string; meters: number }>(
        `SELECT t.structure, count(mt.meter_id)::int AS meters FROM tariffs t
           LEFT JOIN meter_tariffs mt ON mt.tariff_id = t.id GROUP BY t.structure ORDER BY t.structure`,
      );
      expect(t.rows).toEqual([
        { structure: 'flat', meters: 2 },
        { structure: 'three_band', meters: 2 },
        { structure: 'two_rate', meters: 2 },
      ]);
      const fleet = JSON.parse(readFileSync(path.join(dir, 'fleet.json'), 'utf8')) as FleetFile;
      expect(fleet.meters.every((m) => m.initialTariff?.currency === 'GBP')).toBe(true);
      expect(new Set(fleet.meters.map((m) => m.initialTariff?.id))).toEqual(
        new Set(['BV-FLAT', 'BV-NIGHT', 'BV-PEAK']),
      );
      // History, not a change: nothing sent, nobody alerted.
      const cmds = await demoDb.pool.query('SELECT 1 FROM commands');
      expect(cmds.rowCount).toBe(0);
      const ev = await demoDb.pool.query("SELECT 1 FROM domain_events WHERE type LIKE 'tariff.%'");
      expect(ev.rowCount).toBe(0);
    } finally {
      await demoDb.drop();
    }
  });
});
