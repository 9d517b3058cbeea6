import { addDays, addMonths, localDate } from '@kilowire/protocol';
import { collectDay } from '../collection/collect.ts';
import { tx, type Pool } from '../db/pool.ts';
import { issueMonth, type IssueResult } from '../netbilling/invoices.ts';
import { assignNetworkTariff, createNetworkTariff, type NewNetworkVersion } from '../netbilling/tariffs.ts';

/**
 * The network operator's money in the demo: a DUoS-like three-band network tariff on the
 * demo's area (red weekday evenings, amber the rest of the working day, green otherwise, and
 * a fixed charge per meter per day), last month collected day by day from the simulated
 * history, and its network-use invoice issued to the supplier — so a newcomer opens the
 * operator's Network invoices and the supplier's Network charges and finds one. Safe to call
 * on every start: the tariff is created once, a day already collected is returned as it is,
 * and a month already invoiced issues nothing new.
 */
export const DEMO_NETWORK_VERSION: NewNetworkVersion = {
  effectiveFrom: '2000-01-01',
  bands: [
    {
      code: 'red',
      name: 'Red',
      rateMilli: 9_850,
      windows: [{ from: '16:00', to: '19:00' }],
      weekdaysOnly: true,
    },
    {
      code: 'amber',
      name: 'Amber',
      rateMilli: 1_420,
      windows: [
        { from: '07:00', to: '16:00' },
        { from: '19:00', to: '23:00' },
      ],
      weekdaysOnly: true,
    },
    { code: 'green', name: 'Green', rateMilli: 180, windows: [], weekdaysOnly: false },
  ],
  fixedMilliPerDay: 9_600,
  vatBp: 2000,
};

export async function demoNetworkCharges(
  pool: Pool,
  nowS = Math.floor(Date.now() / 1000),
): Promise<{ collectedDays: number; invoices: IssueResult[] }> {
  const areas = (
    await pool.query<{ id: string; tz: string; operator_id: number }>(
      'SELECT id, tz, operator_id FROM network_areas ORDER BY id',
    )
  ).rows;
  let collectedDays = 0;
  const operators = new Set<number>();
  for (const a of areas) {
    const thisMonth = `${localDate(nowS, a.tz).slice(0, 7)}-01`;
    const lastMonth = addMonths(thisMonth, -1);
    await tx(pool, async (c) => {
      const has = await c.query('SELECT 1 FROM network_tariff_areas WHERE area_id = $1', [a.id]);
      if (has.rows[0]) return;
      const own = await c.query<{ id: number }>(
        `SELECT id FROM network_tariffs WHERE operator_id = $1 AND code = 'DEMO-DUOS'`,
        [a.operator_id],
      );
      const id =
        own.rows[0]?.id ??
        (await createNetworkTariff(
          c,
          a.operator_id,
          {
            code: 'DEMO-DUOS',
            name: 'Domestic network use (demo)',
            currency: 'GBP',
            version: DEMO_NETWORK_VERSION,
          },
          null,
        ));
      await assignNetworkTariff(c, a.operator_id, id, a.id, DEMO_NETWORK_VERSION.effectiveFrom, null);
    });
    // Last month, every local day (the schedule itself only catches up the last week).
    for (let d = lastMonth; d < thisMonth; d = addDays(d, 1)) {
      await collectDay(pool, a.id, d, 'cutoff');
      collectedDays++;
    }
    operators.add(a.operator_id);
  }
  const invoices: IssueResult[] = [];
  for (const op of operators) {
    const tz = areas.find((a) => a.operator_id === op)!.tz;
    const lastMonth = addMonths(`${localDate(nowS, tz).slice(0, 7)}-01`, -1);
    invoices.push(await issueMonth(pool, op, lastMonth.slice(0, 7)));
  }
  return { collectedDays, invoices };
}
