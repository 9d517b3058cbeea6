import { addDays, addMonths, daysBetween, localDate, localMidnight } from '@kilowire/protocol';
import type { PoolClient, Q } from '../db/pool.ts';
import { emitEvents } from '../events/emit.ts';
import { postTransaction } from './ledger.ts';
import {
  bandAt,
  meterPriceSpansMany,
  microToMinor,
  milliToMinor,
  rateOf,
  vatOf,
  type PricedSpan,
  type TariffVersion,
} from './prices.ts';

/**
 * Bills for credit accounts (migration 005). A bill covers one account and one billing
 * period [start, end) of local days in its meter's calendar. It is computed from the
 * register reads at the period's boundaries — and at every tariff change inside it, so each
 * tariff version prices exactly the energy used while it was in force — and is issued, posted
 * to the ledger and announced (domain event `bill.issued`) in one transaction. Issued bills
 * never change: a later re-check with corrected readings issues a credit or debit note.
 *
 * Rounding: each charge line is rounded once to minor units, half up (energy: Wh × rate in
 * millionths; standing: days × rate in thousandths); VAT is one line per VAT rate, on the sum
 * of that rate's rounded net lines, rounded once, half up.
 */

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/** A local day for people: "2026-03-01" -> "1 Mar 2026". */
export function longDay(d: string): string {
  return `${Number(d.slice(8, 10))} ${MONTHS[Number(d.slice(5, 7)) - 1]} ${d.slice(0, 4)}`;
}

export const BANDS = ['all', 'day', 'night', 'peak'] as const;
export type BillBand = (typeof BANDS)[number];

/** How a boundary read was obtained. */
export const READ_METHODS = {
  actual: 'actual read at the boundary',
  intervals: 'previous read + interval data',
  interpolated: 'interpolated between the reads either side',
  carriedForward: 'last read carried forward (no later data yet)',
  carriedBack: 'first read carried back (no earlier data)',
} as const;

export interface RegisterValues {
  importWh: number;
  rate1Wh: number;
  rate2Wh: number;
  rate3Wh: number;
}

/** The registers at a boundary: local midnight starting `day`. */
export interface BoundaryRead extends RegisterValues {
  day: string;
  /** ISO 8601 UTC instant of the boundary. */
  at: string;
  estimated: boolean;
  method: string;
}

export type BillLine =
  | {
      kind: 'energy';
      fromDay: string;
      toDay: string;
      tariff: string;
      version: number;
      band: BillBand;
      wh: number;
      /** Thousandths of a minor unit per kWh. */
      rateMilli: number;
      vatBp: number;
      amountMinor: number;
    }
  | {
      kind: 'standing';
      fromDay: string;
      toDay: string;
      tariff: string;
      version: number;
      days: number;
      /** Thousandths of a minor unit per local day. */
      rateMilliPerDay: number;
      vatBp: number;
      amountMinor: number;
    }
  | { kind: 'vat'; vatBp: number; netMinor: number; amountMinor: number };

export interface BillFigures {
  lines: BillLine[];
  energyMinor: number;
  standingMinor: number;
  vatMinor: number;
  totalMinor: number;
}

/** A reason an account cannot be billed; the run lists it and goes on. */
export class BillError extends Error {
  override name = 'BillError';
}

/** The bands a tariff structure bills, with the register each one reads. */
function bandsOf(v: TariffVersion): { band: BillBand; rate: number; reg: keyof RegisterValues }[] {
  if (v.structure === 'flat') return [{ band: 'all', rate: v.dayRate, reg: 'importWh' }];
  const out: { band: BillBand; rate: number; reg: keyof RegisterValues }[] = [
    { band: 'day', rate: rateOf(v, 1), reg: 'rate1Wh' },
    { band: 'night', rate: rateOf(v, 2), reg: 'rate2Wh' },
  ];
  if (v.structure === 'three_band') out.push({ band: 'peak', rate: rateOf(v, 3), reg: 'rate3Wh' });
  return out;
}

/** The local days at which reads are needed: the period's ends and every span change inside. */
export function boundaryDays(spans: readonly PricedSpan[], start: string, end: string): string[] {
  if (!spans.length) throw new BillError('no tariff in the period');
  if (spans[0]!.fromDay !== start) throw new BillError(`no tariff from ${start} to ${spans[0]!.fromDay}`);
  const days = [start];
  for (let i = 0; i < spans.length; i++) {
    const s = spans[i]!;
    const next = spans[i + 1];
    if (next && next.fromDay !== s.toDay) throw new BillError(`no tariff from ${s.toDay} to ${next.fromDay}`);
    days.push(s.toDay);
  }
  if (days[days.length - 1] !== end) throw new BillError(`no tariff from ${days[days.length - 1]} to ${end}`);
  return days;
}

/**
 * Price a period from its spans and the reads at its boundary days (exact integers; each
 * line rounded once). Pure: the hand-computed fixtures in the tests check exactly this.
 */
export function priceBill(
  spans: readonly PricedSpan[],
  reads: ReadonlyMap<string, RegisterValues>,
): BillFigures {
  const lines: BillLine[] = [];
  const netByVat = new Map<number, number>();
  let energyMinor = 0;
  let standingMinor = 0;
  for (const s of spans) {
    const v = s.version;
    const a = reads.get(s.fromDay);
    const b = reads.get(s.toDay);
    if (!a || !b) throw new BillError(`no read for ${a ? s.toDay : s.fromDay}`);
    for (const { band, rate, reg } of bandsOf(v)) {
      const wh = b[reg] - a[reg];
      if (wh < 0) throw new BillError(`register ${reg} went backwards between ${s.fromDay} and ${s.toDay}`);
      const amountMinor = microToMinor(wh * rate);
      lines.push({
        kind: 'energy',
        fromDay: s.fromDay,
        toDay: s.toDay,
        tariff: v.name,
        version: v.version,
        band,
        wh,
        rateMilli: rate,
        vatBp: v.vatBp,
        amountMinor,
      });
      energyMinor += amountMinor;
      netByVat.set(v.vatBp, (netByVat.get(v.vatBp) ?? 0) + amountMinor);
    }
    const days = daysBetween(s.fromDay, s.toDay);
    const standing = milliToMinor(days * v.standingMilliPerDay);
    lines.push({
      kind: 'standing',
      fromDay: s.fromDay,
      toDay: s.toDay,
      tariff: v.name,
      version: v.version,
      days,
      rateMilliPerDay: v.standingMilliPerDay,
      vatBp: v.vatBp,
      amountMinor: standing,
    });
    standingMinor += standing;
    netByVat.set(v.vatBp, (netByVat.get(v.vatBp) ?? 0) + standing);
  }
  let vatMinor = 0;
  for (const [vatBp, netMinor] of [...netByVat].sort((x, y) => x[0] - y[0])) {
    const amountMinor = vatOf(netMinor, vatBp);
    lines.push({ kind: 'vat', vatBp, netMinor, amountMinor });
    vatMinor += amountMinor;
  }
  return { lines, energyMinor, standingMinor, vatMinor, totalMinor: energyMinor + standingMinor + vatMinor };
}

// ------------------------------------------------------------------------------ reads

export interface BillMeter {
  accountId: number;
  meterId: number;
  tz: string;
  intervalS: number;
}

interface ReadRow {
  meter_id: number;
  epoch: number;
  import_wh: string;
  rate1_wh: string;
  rate2_wh: string;
  rate3_wh: string;
}
const toValues = (r: ReadRow): RegisterValues => ({
  importWh: Number(r.import_wh),
  rate1Wh: Number(r.rate1_wh),
  rate2Wh: Number(r.rate2_wh),
  rate3Wh: Number(r.rate3_wh),
});
const REGS = ['importWh', 'rate1Wh', 'rate2Wh', 'rate3Wh'] as const;
/** How far from a boundary a read may be and still be used to estimate it. */
const LOOK_S = 35 * 86_400;
/** Interval data fills the gap after the previous read only over this span (else interpolate). */
const INTERVAL_FILL_S = 7 * 86_400;

/** Reads at many (meter, instant) pairs in one statement: the common case, all actual. */
async function exactReads(
  q: Q,
  pairs: { meterId: number; at: number }[],
): Promise<Map<string, RegisterValues>> {
  const out = new Map<string, RegisterValues>();
  if (!pairs.length) return out;
  // One primary-key probe per pair (LIMIT keeps the subquery from being flattened into a
  // join that the planner would answer by hashing the whole table).
  const wanted = new Set(pairs.map((p) => `${p.meterId}:${p.at}`));
  const { rows } = await q.query<ReadRow>(
    `SELECT p.meter_id, p.epoch, r.import_wh, r.rate1_wh, r.rate2_wh, r.rate3_wh
       FROM unnest($1::int[], $2::float8[]) AS p(meter_id, epoch)
       CROSS JOIN LATERAL (
         SELECT import_wh, rate1_wh, rate2_wh, rate3_wh FROM register_reads
          WHERE meter_id = p.meter_id AND ts = to_timestamp(p.epoch) LIMIT 1) r`,
    [pairs.map((p) => p.meterId), pairs.map((p) => p.at)],
  );
  for (const r of rows) {
    const k = `${r.meter_id}:${r.epoch}`;
    if (wanted.has(k)) out.set(k, toValues(r));
  }
  return out;
}

/**
 * A boundary without a read of its own: from the previous read plus the interval energy
 * since (when the intervals are complete), else interpolated between the reads either side,
 * else the nearest read carried. Band registers follow the interval energy by the band each
 * interval falls in under the tariff then in force.
 */
async function estimateRead(
  q: Q,
  m: BillMeter,
  at: number,
  spans: readonly PricedSpan[],
): Promise<{ values: RegisterValues; method: string }> {
  const cols = `extract(epoch FROM ts)::float8 AS epoch, meter_id, import_wh, rate1_wh, rate2_wh, rate3_wh`;
  const prev = (
    await q.query<ReadRow>(
      `SELECT ${cols} FROM register_reads WHERE meter_id = $1 AND ts < to_timestamp($2) AND ts >= to_timestamp($3)
        ORDER BY ts DESC LIMIT 1`,
      [m.meterId, at, at - LOOK_S],
    )
  ).rows[0];
  const next = (
    await q.query<ReadRow>(
      `SELECT ${cols} FROM register_reads WHERE meter_id = $1 AND ts > to_timestamp($2) AND ts <= to_timestamp($3)
        ORDER BY ts LIMIT 1`,
      [m.meterId, at, at + LOOK_S],
    )
  ).rows[0];
  if (prev && at - prev.epoch <= INTERVAL_FILL_S) {
    const { rows } = await q.query<{ epoch: number; wh: number }>(
      `SELECT extract(epoch FROM ts)::float8 AS epoch, wh FROM interval_readings
        WHERE meter_id = $1 AND ts >= to_timestamp($2) AND ts < to_timestamp($3) ORDER BY ts`,
      [m.meterId, prev.epoch, at],
    );
    if (rows.length === Math.round((at - prev.epoch) / m.intervalS) && rows.length > 0) {
      const v = toValues(prev);
      for (const r of rows) {
        v.importWh += r.wh;
        const day = localDate(r.epoch, m.tz);
        const span = spans.find((s) => s.fromDay <= day && day < s.toDay) ?? spans[0];
        const band = span ? bandAt(span.version, r.epoch, m.tz) : 1;
        if (band === 1) v.rate1Wh += r.wh;
        else if (band === 2) v.rate2Wh += r.wh;
        else v.rate3Wh += r.wh;
      }
      return { values: v, method: READ_METHODS.intervals };
    }
  }
  if (prev && next) {
    const a = toValues(prev);
    const b = toValues(next);
    const num = BigInt(Math.round(at - prev.epoch));
    const den = BigInt(Math.round(next.epoch - prev.epoch));
    const v = { ...a };
    for (const k of REGS) {
      // Half up on an exact rational: a + (b - a) * num / den.
      const d = BigInt(b[k] - a[k]);
      v[k] = a[k] + Number((2n * d * num + den) / (2n * den));
    }
    return { values: v, method: READ_METHODS.interpolated };
  }
  if (prev) return { values: toValues(prev), method: READ_METHODS.carriedForward };
  if (next) return { values: toValues(next), method: READ_METHODS.carriedBack };
  throw new BillError('no register reads near the period');
}

export interface ComputedBill {
  meter: BillMeter;
  spans: PricedSpan[];
  reads: BoundaryRead[];
  figures: BillFigures;
}

/**
 * Compute (not issue) the bills of many meters for one period: prices in one statement,
 * boundary reads in one statement, estimates only where a read is missing. Each entry is
 * the bill or the reason it cannot be computed.
 */
export async function computeBills(
  q: Q,
  meters: readonly BillMeter[],
  start: string,
  end: string,
  profile?: Record<string, number>,
): Promise<Map<number, ComputedBill | BillError>> {
  const out = new Map<number, ComputedBill | BillError>();
  const p = { ...(profile ? { profile } : {}), dueDays: 0 };
  let t = now();
  const spansBy = await meterPriceSpansMany(
    q,
    meters.map((m) => m.meterId),
    start,
    end,
  );
  // A run's meters share a handful of zones and boundary days: compute each midnight once.
  const midnights = new Map<string, number>();
  const midnight = (day: string, tz: string): number => {
    const k = `${day}|${tz}`;
    let v = midnights.get(k);
    if (v === undefined) midnights.set(k, (v = localMidnight(day, tz)));
    return v;
  };
  const wanted: { m: BillMeter; spans: PricedSpan[]; days: string[]; ats: number[] }[] = [];
  for (const m of meters) {
    const spans = spansBy.get(m.meterId) ?? [];
    try {
      const days = boundaryDays(spans, start, end);
      wanted.push({ m, spans, days, ats: days.map((d) => midnight(d, m.tz)) });
    } catch (err) {
      out.set(m.accountId, asBillError(err));
    }
  }
  t = lap(p, 'compute: prices', t);
  const exact = await exactReads(
    q,
    wanted.flatMap((w) => w.ats.map((at) => ({ meterId: w.m.meterId, at }))),
  );
  t = lap(p, 'compute: exact reads', t);
  for (const w of wanted) {
    try {
      const reads: BoundaryRead[] = [];
      const byDay = new Map<string, RegisterValues>();
      for (let i = 0; i < w.days.length; i++) {
        const day = w.days[i]!;
        const at = w.ats[i]!;
        const found = exact.get(`${w.m.meterId}:${at}`);
        const est = found ? null : await estimateRead(q, w.m, at, w.spans);
        const values = found ?? est!.values;
        byDay.set(day, values);
        reads.push({
          day,
          at: new Date(at * 1000).toISOString(),
          ...values,
          estimated: !found,
          method: found ? READ_METHODS.actual : est!.method,
        });
      }
      out.set(w.m.accountId, { meter: w.m, spans: w.spans, reads, figures: priceBill(w.spans, byDay) });
    } catch (err) {
      out.set(w.m.accountId, asBillError(err));
    }
  }
  lap(p, 'compute: estimates and pricing', t);
  return out;
}

function asBillError(err: unknown): BillError {
  if (err instanceof BillError) return err;
  throw err;
}

// ------------------------------------------------------------------------------ issuing

export interface IssueOptions {
  runId?: number | null;
  /** Days from the issue date (local) to the due date. */
  dueDays: number;
  /** Clock (epoch s): the issue date and whether the period is over. */
  nowS?: number;
  /** Milliseconds spent per step are added here (the bench's profile). */
  profile?: Record<string, number>;
}

const now = () => performance.now();
function lap(o: IssueOptions, step: string, t: number): number {
  const n = now();
  if (o.profile) o.profile[step] = (o.profile[step] ?? 0) + n - t;
  return n;
}

export type IssueOutcome =
  | { accountId: number; status: 'issued'; billId: number }
  | { accountId: number; status: 'already_billed'; billId: number }
  | { accountId: number; status: 'failed'; reason: string };

/** The period a bill covers: [start, start + 1 month), start's day being the cycle day. */
export function periodFrom(start: string): { start: string; end: string; cycleDay: number } {
  const cycleDay = Number(start.slice(8, 10));
  if (cycleDay < 1 || cycleDay > 28)
    throw new BillError(`a billing period starts on day 1..28, not ${start}`);
  return { start, end: addMonths(start, 1).slice(0, 8) + start.slice(8, 10), cycleDay };
}

/** Kinds of ledger transaction shown as "payments" on a bill; the rest since the last bill are "other". */
const PAYMENT_KINDS = ['payment', 'refund', 'topup'];

/**
 * Issue the bills of `accountIds` for the period starting `start`, in the caller's
 * transaction: one bill row, one ledger transaction ('bill:<id>') and one `bill.issued`
 * domain event per account. Idempotent: an account already billed for the period is
 * reported as such and nothing is written for it. Accounts that cannot be billed are
 * reported with the reason; the others are issued.
 */
export async function issueBills(
  c: PoolClient,
  accountIds: readonly number[],
  start: string,
  o: IssueOptions,
): Promise<IssueOutcome[]> {
  const period = periodFrom(start);
  const nowS = o.nowS ?? Date.now() / 1000;
  const outcomes = new Map<number, IssueOutcome>();
  const fail = (accountId: number, reason: string) =>
    outcomes.set(accountId, { accountId, status: 'failed', reason });

  let t = now();
  // Lock the accounts: two runs over one account serialise here, the second sees the bill.
  const { rows: accts } = await c.query<{
    id: number;
    supplier_id: number;
    mode: string;
    cycle: number;
    currency: string;
    meters: number;
    meter_id: number | null;
    tz: string | null;
    interval_s: number | null;
  }>(
    `SELECT a.id::int, a.supplier_id, a.mode, a.billing_cycle_day AS cycle, a.currency,
            (SELECT count(*)::int FROM meters m2 WHERE m2.account_id = a.id) AS meters,
            m.id AS meter_id, m.tz, m.interval_s
       FROM accounts a
       LEFT JOIN LATERAL (SELECT id, tz, interval_s FROM meters WHERE account_id = a.id ORDER BY id LIMIT 1) m ON true
      WHERE a.id = ANY($1::bigint[])
      ORDER BY a.id FOR UPDATE OF a`,
    [accountIds],
  );
  // Bills of this period or later, in one index scan over the accounts (after the lock).
  const { rows: existing } = await c.query<{ account_id: string; id: string; later: boolean }>(
    `SELECT account_id, id, period_start > $2 AS later FROM bills
      WHERE account_id = ANY($1::bigint[]) AND period_start >= $2`,
    [accountIds, period.start],
  );
  const billed = new Map<number, number>();
  const later = new Set<number>();
  for (const r of existing) {
    if (r.later) later.add(Number(r.account_id));
    else billed.set(Number(r.account_id), Number(r.id));
  }
  t = lap(o, 'lock accounts', t);
  const found = new Set(accts.map((a) => a.id));
  for (const id of accountIds) if (!found.has(id)) fail(id, 'no such account');
  const toBill: (BillMeter & { supplierId: number; currency: string })[] = [];
  for (const a of accts) {
    const billId = billed.get(a.id);
    if (billId !== undefined) outcomes.set(a.id, { accountId: a.id, status: 'already_billed', billId });
    else if (a.mode !== 'credit') fail(a.id, 'a prepayment account is not billed');
    else if (a.cycle !== period.cycleDay) fail(a.id, `the account's billing cycle day is ${a.cycle}`);
    else if (later.has(a.id)) fail(a.id, 'a later period is already billed');
    else if (a.meter_id === null || a.tz === null || a.interval_s === null)
      fail(a.id, 'the account has no meter');
    else if (a.meters > 1) fail(a.id, `the account has ${a.meters} meters; a bill covers one meter`);
    else if (nowS < localMidnight(period.end, a.tz))
      fail(a.id, `the period ends on ${period.end} (${a.tz}); it is not over yet`);
    else
      toBill.push({
        accountId: a.id,
        meterId: a.meter_id,
        tz: a.tz,
        intervalS: a.interval_s,
        supplierId: a.supplier_id,
        currency: a.currency.trim(),
      });
  }
  if (!toBill.length) return accountIds.map((id) => outcomes.get(id)!);

  t = lap(o, 'checks', t);
  const computed = await computeBills(c, toBill, period.start, period.end, o.profile);
  t = lap(o, 'compute (total)', t);
  const ready: { a: (typeof toBill)[number]; bill: ComputedBill }[] = [];
  for (const a of toBill) {
    const r = computed.get(a.accountId)!;
    if (r instanceof BillError) fail(a.accountId, r.message);
    else ready.push({ a, bill: r });
  }
  if (ready.length) await insertBills(c, ready, period, o, nowS, outcomes);
  lap(o, 'insert (total)', t);
  return accountIds.map((id) => outcomes.get(id)!);
}

async function insertBills(
  c: PoolClient,
  ready: { a: BillMeter & { supplierId: number; currency: string }; bill: ComputedBill }[],
  period: { start: string; end: string },
  o: IssueOptions,
  nowS: number,
  outcomes: Map<number, IssueOutcome>,
): Promise<void> {
  const ids = ready.map((r) => r.a.accountId);
  let t = now();
  // The statement: the balance after the previous bill, and what was posted since.
  // Every table restricted by the account list (a customer line's transaction is the
  // account's own), which the indexes serve. The planner's estimate for a
  // thousand-id list over a ledger that grew since its last ANALYZE (a bill run grows it by
  // thousands of rows a second) is the whole table, so it would hash the ledger on every
  // chunk; sequential scans are off for this one statement.
  await c.query('SET LOCAL enable_seqscan = off');
  const { rows: st } = await c.query<{ id: number; prev: string; pay: string; other: string }>(
    `WITH last AS (
       SELECT DISTINCT ON (b.account_id) b.account_id, t.id AS txn
         FROM bills b JOIN ledger_transactions t ON t.ref = 'bill:' || b.id AND t.account_id = ANY($1::bigint[])
        WHERE b.account_id = ANY($1::bigint[])
        ORDER BY b.account_id, b.period_start DESC),
     ent AS (
       SELECT e.account_id, e.txn_id, e.amount_minor, t.kind
         FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.txn_id AND t.account_id = ANY($1::bigint[])
        WHERE e.account_id = ANY($1::bigint[]) AND e.account_id IS NOT NULL)
     SELECT e.account_id::int AS id,
            coalesce(sum(e.amount_minor) FILTER (WHERE e.txn_id <= coalesce(l.txn, 0)), 0)::bigint AS prev,
            coalesce(sum(e.amount_minor) FILTER (WHERE e.txn_id > coalesce(l.txn, 0) AND e.kind = ANY($2::text[])), 0)::bigint AS pay,
            coalesce(sum(e.amount_minor) FILTER (WHERE e.txn_id > coalesce(l.txn, 0) AND NOT e.kind = ANY($2::text[])), 0)::bigint AS other
       FROM ent e LEFT JOIN last l ON l.account_id = e.account_id
      GROUP BY e.account_id`,
    [ids, PAYMENT_KINDS],
  );
  await c.query('SET LOCAL enable_seqscan = on');
  t = lap(o, 'insert: statement', t);
  const stmt = new Map(
    st.map((r) => [r.id, { prev: Number(r.prev), pay: Number(r.pay), other: Number(r.other) }]),
  );
  const rows = ready.map(({ a, bill }) => {
    const s = stmt.get(a.accountId) ?? { prev: 0, pay: 0, other: 0 };
    const f = bill.figures;
    return {
      a,
      bill,
      due: addDays(localDate(nowS, a.tz), o.dueDays),
      amountDue: s.prev + s.pay + s.other + f.totalMinor,
      s,
    };
  });
  const ins = await c.query<{ id: string; account_id: string }>(
    `INSERT INTO bills (account_id, supplier_id, meter_id, run_id, period_start, period_end, currency, reads, lines,
                        energy_minor, standing_minor, vat_minor, total_minor, previous_balance_minor, payments_minor,
                        other_minor, amount_due_minor, due_date, issued_at)
     SELECT account_id, supplier_id, meter_id, $1, $2, $3, currency, reads, lines, energy, standing, vat, total,
            prev, pay, other, due, due_date, to_timestamp($4)
       FROM unnest($5::bigint[], $6::int[], $7::int[], $8::text[], $9::jsonb[], $10::jsonb[], $11::bigint[], $12::bigint[],
                   $13::bigint[], $14::bigint[], $15::bigint[], $16::bigint[], $17::bigint[], $18::bigint[], $19::date[])
         AS x(account_id, supplier_id, meter_id, currency, reads, lines, energy, standing, vat, total, prev, pay, other, due, due_date)
     ON CONFLICT (account_id, period_start) DO NOTHING
     RETURNING id, account_id`,
    [
      o.runId ?? null,
      period.start,
      period.end,
      nowS,
      rows.map((r) => r.a.accountId),
      rows.map((r) => r.a.supplierId),
      rows.map((r) => r.a.meterId),
      rows.map((r) => r.a.currency),
      rows.map((r) => JSON.stringify(r.bill.reads)),
      rows.map((r) => JSON.stringify(r.bill.figures.lines)),
      rows.map((r) => r.bill.figures.energyMinor),
      rows.map((r) => r.bill.figures.standingMinor),
      rows.map((r) => r.bill.figures.vatMinor),
      rows.map((r) => r.bill.figures.totalMinor),
      rows.map((r) => r.s.prev),
      rows.map((r) => r.s.pay),
      rows.map((r) => r.s.other),
      rows.map((r) => r.amountDue),
      rows.map((r) => r.due),
    ],
  );
  t = lap(o, 'insert: bills', t);
  const billOf = new Map(ins.rows.map((r) => [Number(r.account_id), Number(r.id)]));
  const issued = rows.filter((r) => billOf.has(r.a.accountId));
  // Ledger: one balanced transaction per bill, all in two statements (a run posts thousands).
  if (issued.length) {
    const txns = await c.query<{ id: string; account_id: string }>(
      `INSERT INTO ledger_transactions (account_id, kind, ref, memo)
       SELECT account_id, 'bill', 'bill:' || bill_id, memo
         FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS x(account_id, bill_id, memo)
       RETURNING id, account_id`,
      [
        issued.map((r) => r.a.accountId),
        issued.map((r) => billOf.get(r.a.accountId)!),
        issued.map(() => `Bill for ${longDay(period.start)} to ${longDay(addDays(period.end, -1))}`),
      ],
    );
    t = lap(o, 'insert: ledger transactions', t);
    const txnOf = new Map(txns.rows.map((r) => [Number(r.account_id), Number(r.id)]));
    const e: { txn: number[]; book: string[]; acct: (number | null)[]; amt: number[] } = {
      txn: [],
      book: [],
      acct: [],
      amt: [],
    };
    for (const r of issued) {
      const f = r.bill.figures;
      const txn = txnOf.get(r.a.accountId)!;
      for (const [book, amt] of [
        ['customer', f.totalMinor],
        ['energy', -f.energyMinor],
        ['standing', -f.standingMinor],
        ['vat', -f.vatMinor],
      ] as const) {
        if (amt === 0) continue;
        e.txn.push(txn);
        e.book.push(book);
        e.acct.push(book === 'customer' ? r.a.accountId : null);
        e.amt.push(amt);
      }
    }
    await c.query(
      `INSERT INTO ledger_entries (txn_id, book, account_id, amount_minor)
       SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[])`,
      [e.txn, e.book, e.acct, e.amt],
    );
    t = lap(o, 'insert: ledger entries', t);
    await emitEvents(
      c,
      issued.map((r) => ({
        type: 'bill.issued' as const,
        meterId: r.a.meterId,
        payload: { billId: billOf.get(r.a.accountId)! },
      })),
    );
    lap(o, 'insert: events', t);
  }
  for (const r of rows) {
    const id = billOf.get(r.a.accountId);
    if (id !== undefined)
      outcomes.set(r.a.accountId, { accountId: r.a.accountId, status: 'issued', billId: id });
    else {
      // A concurrent issue won the unique (account, period): it is billed, once.
      const { rows: b } = await c.query<{ id: string }>(
        'SELECT id FROM bills WHERE account_id = $1 AND period_start = $2',
        [r.a.accountId, period.start],
      );
      outcomes.set(r.a.accountId, {
        accountId: r.a.accountId,
        status: 'already_billed',
        billId: Number(b[0]!.id),
      });
    }
  }
}

// ------------------------------------------------------------------------------ corrections

export interface NoteResult {
  noteId: number;
  kind: 'credit_note' | 'debit_note';
  totalMinor: number;
}

/**
 * Compute an issued bill again from the readings as they are now. When the result differs
 * from the bill plus its earlier notes, issue a credit or debit note for the difference
 * (its own row and ledger transaction 'note:<id>'); the bill itself is never edited.
 * Idempotent: a second re-check with the same readings finds no difference.
 */
export async function recheckBill(c: PoolClient, billId: number): Promise<NoteResult | null> {
  // The row lock serialises re-checks of one bill (SELECT FOR UPDATE fires no UPDATE trigger).
  const { rows } = await c.query<{
    account_id: string;
    meter_id: number;
    tz: string;
    interval_s: number;
    start: string;
    end: string;
    energy: string;
    standing: string;
    vat: string;
  }>(
    `SELECT b.account_id, b.meter_id, m.tz, m.interval_s,
            to_char(b.period_start, 'YYYY-MM-DD') AS start, to_char(b.period_end, 'YYYY-MM-DD') AS end,
            b.energy_minor + coalesce(n.energy, 0) AS energy, b.standing_minor + coalesce(n.standing, 0) AS standing,
            b.vat_minor + coalesce(n.vat, 0) AS vat
       FROM bills b JOIN meters m ON m.id = b.meter_id
       LEFT JOIN LATERAL (SELECT sum(energy_minor) AS energy, sum(standing_minor) AS standing, sum(vat_minor) AS vat
                            FROM bill_notes WHERE bill_id = b.id) n ON true
      WHERE b.id = $1 FOR UPDATE OF b`,
    [billId],
  );
  const b = rows[0];
  if (!b) return null;
  const accountId = Number(b.account_id);
  const meter: BillMeter = { accountId, meterId: b.meter_id, tz: b.tz, intervalS: b.interval_s };
  const fresh = (await computeBills(c, [meter], b.start, b.end)).get(accountId);
  if (!fresh || fresh instanceof BillError) return null;
  const f = fresh.figures;
  const d = {
    energy: f.energyMinor - Number(b.energy),
    standing: f.standingMinor - Number(b.standing),
    vat: f.vatMinor - Number(b.vat),
  };
  const total = d.energy + d.standing + d.vat;
  if (total === 0) return null;
  const kind = total < 0 ? 'credit_note' : 'debit_note';
  const estimated = fresh.reads.some((r) => r.estimated);
  const reason = estimated
    ? 'Readings for the period changed since the bill was issued'
    : 'Actual readings replaced the estimates on the bill';
  const ins = await c.query<{ id: string }>(
    `INSERT INTO bill_notes (bill_id, account_id, kind, reason, reads, lines, energy_minor, standing_minor, vat_minor, total_minor)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`,
    [
      billId,
      accountId,
      kind,
      reason,
      JSON.stringify(fresh.reads),
      JSON.stringify(f.lines),
      d.energy,
      d.standing,
      d.vat,
      total,
    ],
  );
  const noteId = Number(ins.rows[0]!.id);
  await postTransaction(c, {
    accountId,
    kind,
    ref: `note:${noteId}`,
    memo: `${kind === 'credit_note' ? 'Credit' : 'Debit'} note for bill ${billId}`,
    lines: [
      { book: 'customer', amountMinor: total },
      { book: 'energy', amountMinor: -d.energy },
      { book: 'standing', amountMinor: -d.standing },
      { book: 'vat', amountMinor: -d.vat },
    ],
  });
  return { noteId, kind, totalMinor: total };
}

/**
 * The issued bills a change of readings on these (meter, local day) pairs may affect: bills
 * of the meter that rest on an estimated read and whose period touches the day (an estimate
 * leans on the data around its boundary). Bills with actual reads at every boundary do not
 * change: register reads are never overwritten.
 */
export async function billsToRecheck(q: Q, meterDays: readonly [number, string][]): Promise<number[]> {
  if (!meterDays.length) return [];
  const { rows } = await q.query<{ id: string }>(
    `SELECT DISTINCT b.id FROM unnest($1::int[], $2::date[]) AS d(meter_id, day)
       JOIN bills b ON b.meter_id = d.meter_id
        AND d.day >= b.period_start - 35 AND d.day <= b.period_end + 35
      WHERE b.reads @> '[{"estimated": true}]'
      ORDER BY b.id`,
    [meterDays.map((m) => m[0]), meterDays.map((m) => m[1])],
  );
  return rows.map((r) => Number(r.id));
}
