import { addDays, localDate, localMidnight, type TariffSpec } from '@kilowire/protocol';
import type { PoolClient, Q } from '../db/pool.ts';
import { createTariff, initialTariffSpecs, type TariffInput } from '../money/tariffs.ts';

/**
 * Demo tariffs with realistic UK prices (late 2026, around the Ofgem price cap; VAT 5% on
 * domestic energy): a flat tariff, a two-rate night tariff (Economy 7 style, 00:30-07:30) and
 * a three-band time-of-use tariff with an evening peak (16:00-19:00). Every demo household is
 * put on one from 400 days ago, so statistics, bills and comparisons have a year of prices.
 */
export const DEMO_TARIFFS: TariffInput[] = [
  {
    code: 'BV-FLAT',
    name: 'Brightvolt Simple',
    currency: 'GBP',
    structure: 'flat',
    open: true,
    version: {
      effectiveFrom: '',
      dayRate: 24_860,
      nightRate: null,
      peakRate: null,
      nightWindows: [],
      peakWindows: [],
      exportRate: 15_000,
      standingMilliPerDay: 53_680,
      vatBp: 500,
    },
  },
  {
    code: 'BV-NIGHT',
    name: 'Brightvolt Night Saver',
    currency: 'GBP',
    structure: 'two_rate',
    open: true,
    version: {
      effectiveFrom: '',
      dayRate: 28_420,
      nightRate: 13_950,
      peakRate: null,
      nightWindows: [{ from: '00:30', to: '07:30' }],
      peakWindows: [],
      exportRate: 15_000,
      standingMilliPerDay: 53_680,
      vatBp: 500,
    },
  },
  {
    code: 'BV-PEAK',
    name: 'Brightvolt Smart Hours',
    currency: 'GBP',
    structure: 'three_band',
    open: true,
    version: {
      effectiveFrom: '',
      dayRate: 23_500,
      nightRate: 12_500,
      peakRate: 38_900,
      nightWindows: [{ from: '00:30', to: '07:30' }],
      peakWindows: [{ from: '16:00', to: '19:00' }],
      exportRate: 15_000,
      standingMilliPerDay: 49_800,
      vatBp: 500,
    },
  },
];

/** How far back the demo's prices and assignments go (a year of comparisons, and some). */
export const DEMO_TARIFF_HISTORY_DAYS = 400;

/**
 * Create the demo tariffs of `supplierId` and put each of its meters on one (round robin) from
 * DEMO_TARIFF_HISTORY_DAYS ago. History, not a change: no tariff.set is queued (each simulated
 * meter starts on its tariff from the fleet file, see demoInitialTariffs) and no household is
 * alerted. Returns the tariff ids by code.
 */
export async function seedDemoTariffs(
  c: PoolClient,
  supplierId: number,
  tz = 'Europe/London',
  nowS = Math.floor(Date.now() / 1000),
  /** First local day of prices and assignments (default: DEMO_TARIFF_HISTORY_DAYS ago). */
  fromDay?: string,
): Promise<Map<string, number>> {
  const from = fromDay ?? addDays(localDate(nowS, tz), -DEMO_TARIFF_HISTORY_DAYS);
  const ids = new Map<string, number>();
  for (const t of DEMO_TARIFFS) {
    const id = await createTariff(
      c,
      supplierId,
      { ...t, version: { ...t.version, effectiveFrom: from } },
      null,
      {
        allowPast: true,
      },
    );
    ids.set(t.code, id);
  }
  const order = [...ids.values()];
  await c.query(
    `INSERT INTO meter_tariffs (meter_id, from_day, tariff_id)
     SELECT m.id, $2::date, ($3::int[])[1 + (row_number() OVER (ORDER BY m.id) - 1)::int % cardinality($3::int[])]
       FROM meters m WHERE m.supplier_id = $1
     ON CONFLICT DO NOTHING`,
    [supplierId, from, order],
  );
  return ids;
}

/**
 * The tariff each demo meter runs today, by serial: what the fleet file gives a simulated
 * meter as `initialTariff`, so its prepayment debits match the head-end's prices from the
 * first interval. (The same figures a tariff.set would carry; see money/tariffs.ts tariffSpecOf.)
 */
export function demoInitialTariffs(
  q: Q,
  serials: readonly string[],
  nowS = Math.floor(Date.now() / 1000),
): Promise<Map<string, TariffSpec>> {
  return initialTariffSpecs(q, serials, nowS);
}

/**
 * The demo seed's tariff hook, in the shape main's `seedDemo` expects (`DemoOptions.tariffs`:
 * called inside the seeding transaction with the demo meters and the local day their history
 * begins): creates the three tariffs of the meters' supplier from that day, puts each meter
 * on one, and returns the tariff each simulated meter must be made with, by serial (in force
 * from the start of `historyFrom`, so the meter's own debits match the head-end's prices for
 * the whole history).
 */
export async function demoTariffs(
  c: PoolClient,
  meters: readonly { serial: string; meterId: number; tz: string }[],
  historyFrom: string,
): Promise<Map<string, TariffSpec>> {
  const first = meters[0];
  if (!first) return new Map();
  const { rows } = await c.query<{ supplier_id: number }>('SELECT supplier_id FROM meters WHERE id = $1', [
    first.meterId,
  ]);
  const nowS = Math.floor(Date.now() / 1000);
  await seedDemoTariffs(c, rows[0]!.supplier_id, first.tz, nowS, historyFrom);
  // The spec in force on the first day of history (prices are constant over the demo history).
  return initialTariffSpecs(
    c,
    meters.map((m) => m.serial),
    localMidnight(historyFrom, first.tz) + 3600,
  );
}
