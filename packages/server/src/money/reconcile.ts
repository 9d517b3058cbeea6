import { addDays, localDate, localMidnight } from '@kilowire/protocol';
import { raiseAlerts } from '../alerts/raise.ts';
import { tx, type Pool, type PoolClient, type Q } from '../db/pool.ts';
import { moneyOfDays, priceDays, readingsOver } from './cost.ts';
import { accountBalance, postTransaction } from './ledger.ts';
import { meterPriceSpans, type TariffVersion } from './prices.ts';

/**
 * The head-end's mirror of a prepayment meter, and reconciliation.
 *
 * The meter is the authority on its credit: it debits locally at the (VAT-inclusive) prices
 * of its `tariff.set`. The ledger records what the head-end knows: an opening credit (what
 * the meter held when the mirror began), each top-up (topups.ts), and for every completed
 * local day whose readings are all in, a `usage` transaction pricing that day exactly as the
 * bills do (cost.ts: band by local time, standing charge per local day, VAT). So the credit
 * the ledger implies is −balance, less top-ups paid but not yet on the meter, less what the
 * readings since the last posted day cost up to the meter's report. The meter's reported
 * credit minus that figure is the drift; above `driftMinor` the supplier gets a
 * `credit_drift` alert (staff only), once per meter and local day.
 */
export interface ReconcileOptions {
  /** Alert above this absolute drift (minor units). */
  driftMinor: number;
  nowS?: number;
}

export interface Reconciled {
  meterId: number;
  /** Local days whose usage this call posted. */
  posted: number;
  reportedMinor: number;
  expectedMinor: number;
  driftMinor: number;
  alerted: boolean;
}

/**
 * Begin the mirror of a prepayment meter with `creditMinor` as its credit at the start of
 * local day `fromDay` (posted as an `opening` transaction). Idempotent per meter.
 */
export async function openMirror(
  c: PoolClient,
  m: { meterId: number; accountId: number },
  fromDay: string,
  creditMinor: number,
  memo = 'Credit on the meter when the head-end began to mirror it',
): Promise<boolean> {
  const ins = await c.query(
    `INSERT INTO prepay_mirror (meter_id, account_id, from_day) VALUES ($1, $2, $3)
     ON CONFLICT (meter_id) DO NOTHING`,
    [m.meterId, m.accountId, fromDay],
  );
  if (ins.rowCount === 0) return false;
  if (creditMinor !== 0) {
    await postTransaction(c, {
      accountId: m.accountId,
      kind: 'opening',
      ref: `opening:meter:${m.meterId}`,
      memo,
      lines: [
        { book: 'customer', amountMinor: -creditMinor },
        { book: 'adjustment', amountMinor: creditMinor },
      ],
    });
  }
  return true;
}

interface MeterRow {
  id: number;
  tz: string;
  interval_s: number;
  account_id: number;
  credit_minor: string | null;
  status_t: number | null;
  from_day: string | null;
  posted_through: string | null;
  last_ts: number | null;
}

async function meterRow(q: Q, meterId: number): Promise<MeterRow | null> {
  const { rows } = await q.query<MeterRow>(
    `SELECT m.id, m.tz, m.interval_s, m.account_id, m.credit_minor,
            (m.last_status->>'t')::bigint AS status_t,
            to_char(pm.from_day, 'YYYY-MM-DD') AS from_day,
            to_char(pm.posted_through, 'YYYY-MM-DD') AS posted_through,
            (SELECT extract(epoch FROM max(ts))::bigint FROM interval_readings r WHERE r.meter_id = m.id) AS last_ts
       FROM meters m JOIN accounts a ON a.id = m.account_id
       LEFT JOIN prepay_mirror pm ON pm.meter_id = m.id
      WHERE m.id = $1 AND a.mode = 'prepayment'`,
    [meterId],
  );
  return rows[0] ?? null;
}

/** What readings in [fromDay, toDay) before `untilS` cost, VAT included (standing per day begun). */
async function costSince(q: Q, m: MeterRow, fromDay: string, untilS: number): Promise<number> {
  const toDay = addDays(localDate(untilS, m.tz), 1);
  if (fromDay >= toDay) return 0;
  const [readings, spans] = await Promise.all([
    readingsOver(q, m.id, m.tz, fromDay, toDay),
    meterPriceSpans(q, m.id, fromDay, toDay),
  ]);
  const versionOf = (day: string): TariffVersion | null =>
    spans.find((s) => s.fromDay <= day && day < s.toDay)?.version ?? null;
  const days = priceDays(
    readings.filter((r) => r.t < untilS),
    m.tz,
    fromDay,
    toDay,
    versionOf,
    { standingOnEmptyDays: true },
  );
  return moneyOfDays(days).totalMinor;
}

/** Post the usage of every completed, fully-read local day not yet posted; returns how many. */
async function postUsage(
  pool: Pool,
  m: MeterRow,
  nowS: number,
): Promise<{ posted: number; through: string | null }> {
  let through = m.posted_through;
  if (!m.from_day || m.last_ts === null) return { posted: 0, through };
  const readEnd = m.last_ts + m.interval_s;
  const today = localDate(nowS, m.tz);
  const first = through ? addDays(through, 1) : m.from_day;
  // The last day both over and wholly read: its end is covered by readings, and it is past.
  let last = addDays(localDate(readEnd, m.tz), -1);
  if (localMidnight(addDays(last, 1), m.tz) > readEnd) last = addDays(last, -1);
  if (last >= today) last = addDays(today, -1);
  if (first > last) return { posted: 0, through };
  const [readings, spans] = await Promise.all([
    readingsOver(pool, m.id, m.tz, first, addDays(last, 1)),
    meterPriceSpans(pool, m.id, first, addDays(last, 1)),
  ]);
  const versionOf = (day: string): TariffVersion | null =>
    spans.find((s) => s.fromDay <= day && day < s.toDay)?.version ?? null;
  const days = priceDays(readings, m.tz, first, addDays(last, 1), versionOf, { standingOnEmptyDays: true });
  let posted = 0;
  await tx(pool, async (c) => {
    for (const d of days) {
      const money = moneyOfDays([d]);
      if (money.totalMinor === 0) continue;
      const r = await postTransaction(c, {
        accountId: m.account_id,
        kind: 'usage',
        ref: `usage:${m.id}:${d.day}`,
        memo: `Energy used on ${d.day} (${d.wh} Wh), debited by the meter`,
        lines: [
          { book: 'customer', amountMinor: money.totalMinor },
          { book: 'energy', amountMinor: -money.energyMinor },
          { book: 'standing', amountMinor: -(money.netMinor - money.energyMinor) },
          { book: 'vat', amountMinor: -money.vatMinor },
        ],
      });
      if (r.created) posted++;
    }
    await c.query('UPDATE prepay_mirror SET posted_through = $2 WHERE meter_id = $1', [m.id, last]);
  });
  through = last;
  return { posted, through };
}

/**
 * Reconcile one prepayment meter: open its mirror from its first reported credit if it has
 * none, post completed days, compare, and alert on drift. Null when the meter is not a
 * prepayment meter on an account or has not reported its credit yet.
 */
export async function reconcileMeter(
  pool: Pool,
  meterId: number,
  o: ReconcileOptions,
): Promise<Reconciled | null> {
  const nowS = o.nowS ?? Math.floor(Date.now() / 1000);
  let m = await meterRow(pool, meterId);
  if (!m || m.credit_minor === null) return null;
  const reportedMinor = Number(m.credit_minor);
  const statusT = Math.min(m.status_t ?? nowS, nowS);
  if (!m.from_day) {
    // First sight: the credit at the start of the report's local day is what it reported
    // plus what the day cost until then.
    const day = localDate(statusT, m.tz);
    const spent = await costSince(pool, m, day, statusT);
    await tx(pool, (c) => openMirror(c, { meterId, accountId: m!.account_id }, day, reportedMinor + spent));
    m = (await meterRow(pool, meterId))!;
  }
  const { posted, through } = await postUsage(pool, m, nowS);
  const balance = await accountBalance(pool, m.account_id);
  const pending = await pool.query<{ s: string }>(
    `SELECT coalesce(sum(amount_minor), 0)::bigint AS s FROM topups
      WHERE meter_id = $1 AND kind = 'topup' AND status = 'paid'`,
    [meterId],
  );
  const sinceDay = through ? addDays(through, 1) : m.from_day!;
  const spentSince = await costSince(pool, m, sinceDay, statusT);
  const expectedMinor = -balance - Number(pending.rows[0]!.s) - spentSince;
  const driftMinor = reportedMinor - expectedMinor;
  await pool.query(
    `UPDATE prepay_mirror SET checked_at = now(), reported_minor = $2, expected_minor = $3, drift_minor = $4
      WHERE meter_id = $1`,
    [meterId, reportedMinor, expectedMinor, driftMinor],
  );
  let alerted = false;
  if (Math.abs(driftMinor) > o.driftMinor) {
    const day = localDate(nowS, m.tz);
    const pounds = (v: number) => `£${(v / 100).toFixed(2)}`;
    const created = await raiseAlerts(pool, [
      {
        meterId,
        type: 'credit_drift',
        dedupeKey: day,
        title: 'Meter credit differs from the ledger',
        message:
          `The meter reports ${pounds(reportedMinor)} of credit; top-ups and readings priced at its tariff ` +
          `imply ${pounds(expectedMinor)} (a difference of ${pounds(driftMinor)}, above the ${pounds(o.driftMinor)} threshold). ` +
          'Check the tariff on the meter, missing readings and top-ups not yet applied.',
        figures: { reportedMinor, expectedMinor, driftMinor, thresholdMinor: o.driftMinor },
      },
    ]);
    alerted = created.length > 0;
  }
  return { meterId, posted, reportedMinor, expectedMinor, driftMinor, alerted };
}

/** Reconcile every prepayment meter that has reported its credit. */
export async function reconcileAll(pool: Pool, o: ReconcileOptions): Promise<Reconciled[]> {
  const { rows } = await pool.query<{ id: number }>(
    `SELECT m.id FROM meters m JOIN accounts a ON a.id = m.account_id
      WHERE a.mode = 'prepayment' AND m.credit_minor IS NOT NULL ORDER BY m.id`,
  );
  const out: Reconciled[] = [];
  for (const r of rows) {
    const x = await reconcileMeter(pool, r.id, o);
    if (x) out.push(x);
  }
  return out;
}
