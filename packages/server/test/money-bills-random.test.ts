import { afterAll, beforeAll, expect, it } from 'vitest';
import { localMidnight } from '@kilowire/protocol';
import type { CreatedHousehold } from '../src/accounts/repo.ts';
import { tx } from '../src/db/pool.ts';
import { billsToRecheck, issueBills, recheckBill, type BillLine } from '../src/money/bills.ts';
import { accountBalance, postTransaction, type LedgerKind } from '../src/money/ledger.ts';
import { createTestDb, type TestDb } from './support/db.ts';
import { seedMeters } from './support/world.ts';

/**
 * A randomised run (seeded, so a failure replays): six months of bills, payments, refunds,
 * adjustments and late reads (credit/debit notes) across credit accounts. Afterwards every
 * balance equals the sum of what was posted, every bill's statement follows from the one
 * before and from what was posted between them, and the revenue books equal the bills' lines.
 */
let db: TestDb;
let credit: CreatedHousehold[];
const NOW = Date.UTC(2026, 7, 1) / 1000;
const MONTHS = [
  '2026-01-01',
  '2026-02-01',
  '2026-03-01',
  '2026-04-01',
  '2026-05-01',
  '2026-06-01',
  '2026-07-01',
];

// mulberry32: a small seeded generator.
let seed = 0x6b696c6f;
function rnd(): number {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));

beforeAll(async () => {
  db = await createTestDb();
  const hh = await seedMeters(db.pool, 12, { tz: 'Europe/London' });
  credit = hh.filter((_, i) => i % 2 === 0);
  const sup = (
    await db.pool.query<{ supplier_id: number }>('SELECT supplier_id FROM meters WHERE id = $1', [
      credit[0]!.meterId,
    ])
  ).rows[0]!.supplier_id;
  const t = await db.pool.query<{ id: number }>(
    `INSERT INTO tariffs (supplier_id, code, name, structure) VALUES ($1, 'F', 'Flat', 'flat'), ($1, 'T', 'Three band', 'three_band') RETURNING id`,
    [sup],
  );
  const [flat, three] = t.rows.map((r) => r.id);
  await db.pool.query(
    `INSERT INTO tariff_versions (tariff_id, version, effective_from, day_rate, night_rate, peak_rate, night_windows, peak_windows, standing_milli_per_day, vat_bp) VALUES
      ($1, 1, '2026-01-01', 27351, NULL, NULL, '[]', '[]', 48117, 500),
      ($1, 2, '2026-04-15', 25003, NULL, NULL, '[]', '[]', 51009, 500),
      ($2, 1, '2026-01-01', 24507, 12003, 35011, '[{"from":"00:00","to":"07:00"}]', '[{"from":"16:00","to":"19:00"}]', 53353, 500),
      ($2, 2, '2026-03-29', 26001, 13007, 36999, '[{"from":"00:00","to":"07:00"}]', '[{"from":"16:00","to":"19:00"}]', 60001, 2000)`,
    [flat, three],
  );
  for (const [i, h] of credit.entries()) {
    await db.pool.query(
      `INSERT INTO meter_tariffs (meter_id, from_day, tariff_id) VALUES ($1, '2026-01-01', $2)`,
      [h.meterId, i % 2 ? three : flat],
    );
  }
});
afterAll(async () => {
  await db?.drop();
});

it('every balance equals the sum of its entries and the bills add up, after a random run', async () => {
  /** What the test itself posted per account (not read back from the code under test). */
  const posted = new Map<number, { kind: LedgerKind; amount: number; seq: number }[]>();
  let seq = 0;
  const regs = new Map<number, number[]>(credit.map((h) => [h.meterId, [int(0, 10_000_000), 0, 0, 0]]));
  // Boundary days whose read was held back (arrives late: the bill is estimated, then corrected).
  const late: { meterId: number; at: number; values: number[] }[] = [];
  const boundaries = new Set<string>();
  for (const day of MONTHS) boundaries.add(day);
  // Reads at every boundary, and at the tariff changes inside the months.
  for (const day of [...MONTHS, '2026-03-29', '2026-04-15'].sort()) {
    for (const h of credit) {
      const r = regs.get(h.meterId)!;
      const [d, n, p] = [int(50_000, 400_000), int(10_000, 200_000), int(0, 80_000)];
      r[1]! += d;
      r[2]! += n;
      r[3]! += p;
      r[0]! += d + n + p;
      const at = localMidnight(day, 'Europe/London');
      const values = [...r];
      // Hold one boundary read in ten back until the end; a read an hour later lets it be interpolated.
      if (day !== MONTHS[0] && rnd() < 0.1) {
        late.push({ meterId: h.meterId, at, values });
        const after = values.map((v) => v + int(0, 500));
        after[0] =
          values[0]! + (after[1]! - values[1]!) + (after[2]! - values[2]!) + (after[3]! - values[3]!);
        await db.pool.query(
          `INSERT INTO register_reads (meter_id, ts, import_wh, rate1_wh, rate2_wh, rate3_wh, export_wh) VALUES ($1, to_timestamp($2), $3, $4, $5, $6, 0)`,
          [h.meterId, at + 3600, ...after],
        );
        r.splice(0, 4, ...after);
        continue;
      }
      await db.pool.query(
        `INSERT INTO register_reads (meter_id, ts, import_wh, rate1_wh, rate2_wh, rate3_wh, export_wh) VALUES ($1, to_timestamp($2), $3, $4, $5, $6, 0)`,
        [h.meterId, at, ...values],
      );
    }
  }

  const post = async (h: CreatedHousehold, kind: LedgerKind, amount: number) => {
    const other = kind === 'adjustment' ? 'adjustment' : 'cash';
    await tx(db.pool, (c) =>
      postTransaction(c, {
        accountId: h.accountId,
        kind,
        ref: `${kind}:r${++seq}`,
        memo: kind,
        lines: [
          { book: 'customer', amountMinor: amount },
          { book: other, amountMinor: -amount },
        ],
      }),
    );
    const list = posted.get(h.accountId) ?? [];
    list.push({ kind, amount, seq });
    posted.set(h.accountId, list);
  };

  for (const start of MONTHS.slice(0, -1)) {
    for (const h of credit) {
      for (let k = int(0, 3); k > 0; k--) {
        const x = rnd();
        if (x < 0.6) await post(h, 'payment', -int(100, 20_000));
        else if (x < 0.8) await post(h, 'refund', int(100, 5_000));
        else await post(h, 'adjustment', int(-3_000, 3_000) || 1);
      }
    }
    const out = await tx(db.pool, (c) =>
      issueBills(
        c,
        credit.map((h) => h.accountId),
        start,
        { dueDays: 14, nowS: NOW },
      ),
    );
    expect(out.filter((o) => o.status !== 'issued')).toEqual([]);
  }
  // The held-back reads arrive; re-checks issue notes for the bills that rested on estimates.
  for (const l of late) {
    await db.pool.query(
      `INSERT INTO register_reads (meter_id, ts, import_wh, rate1_wh, rate2_wh, rate3_wh, export_wh) VALUES ($1, to_timestamp($2), $3, $4, $5, $6, 0)`,
      [l.meterId, l.at, ...l.values],
    );
  }
  const ids = await billsToRecheck(
    db.pool,
    late.map((l) => [l.meterId, new Date(l.at * 1000).toISOString().slice(0, 10)] as [number, string]),
  );
  let notes = 0;
  for (const id of ids) if (await tx(db.pool, (c) => recheckBill(c, id))) notes++;
  expect(late.length === 0 || notes > 0).toBe(true);
  // A final payment after the last bill.
  for (const h of credit) await post(h, 'payment', -int(1, 999));

  // ---------------------------------------------------------------- the checks
  const all = await db.pool.query<{ s: string }>(
    'SELECT coalesce(sum(amount_minor), 0) AS s FROM ledger_entries',
  );
  expect(Number(all.rows[0]!.s)).toBe(0);

  for (const h of credit) {
    const bills = (
      await db.pool.query<{
        id: string;
        lines: BillLine[];
        energy: number;
        standing: number;
        vat: number;
        total: number;
        prev: number;
        pay: number;
        other: number;
        due: number;
        notes: number;
      }>(
        `SELECT b.id, b.lines, b.energy_minor::int AS energy, b.standing_minor::int AS standing, b.vat_minor::int AS vat,
                b.total_minor::int AS total, b.previous_balance_minor::int AS prev, b.payments_minor::int AS pay,
                b.other_minor::int AS other, b.amount_due_minor::int AS due,
                coalesce((SELECT sum(total_minor) FROM bill_notes n WHERE n.bill_id = b.id), 0)::int AS notes
           FROM bills b WHERE b.account_id = $1 ORDER BY b.period_start`,
        [h.accountId],
      )
    ).rows;
    expect(bills).toHaveLength(MONTHS.length - 1);
    const mine = posted.get(h.accountId) ?? [];
    // The balance is what the test posted plus what the bills and notes charged.
    const expected =
      mine.reduce((s, p) => s + p.amount, 0) + bills.reduce((s, b) => s + b.total + b.notes, 0);
    expect(await accountBalance(db.pool, h.accountId)).toBe(expected);
    const sumEntries = await db.pool.query<{ s: string }>(
      'SELECT coalesce(sum(amount_minor), 0) AS s FROM ledger_entries WHERE account_id = $1',
      [h.accountId],
    );
    expect(Number(sumEntries.rows[0]!.s)).toBe(expected);

    let prevDue = 0;
    for (const b of bills) {
      // Lines add up to the bill's figures.
      const sum = (k: BillLine['kind']) =>
        b.lines.filter((l) => l.kind === k).reduce((s, l) => s + l.amountMinor, 0);
      expect([sum('energy'), sum('standing'), sum('vat')]).toEqual([b.energy, b.standing, b.vat]);
      expect(b.energy + b.standing + b.vat).toBe(b.total);
      // The statement follows from the bill before (notes were all issued after the last bill).
      expect(b.prev).toBe(prevDue);
      expect(b.prev + b.pay + b.other + b.total).toBe(b.due);
      prevDue = b.due;
    }
    // Payments shown across the bills are the payments and refunds posted before the last one.
    const beforeLastBill = mine.slice(0, mine.length - 1);
    expect(bills.reduce((s, b) => s + b.pay, 0)).toBe(
      beforeLastBill.filter((p) => p.kind !== 'adjustment').reduce((s, p) => s + p.amount, 0),
    );
    expect(bills.reduce((s, b) => s + b.other, 0)).toBe(
      beforeLastBill.filter((p) => p.kind === 'adjustment').reduce((s, p) => s + p.amount, 0),
    );
  }

  // Revenue and VAT books equal the bills' lines plus the notes.
  const books = await db.pool.query<{ book: string; s: string }>(
    `SELECT book, sum(amount_minor) AS s FROM ledger_entries WHERE book IN ('energy', 'standing', 'vat') GROUP BY book ORDER BY book`,
  );
  const figures = await db.pool.query<{ energy: string; standing: string; vat: string }>(
    `SELECT (SELECT sum(energy_minor) FROM bills) + (SELECT coalesce(sum(energy_minor), 0) FROM bill_notes) AS energy,
            (SELECT sum(standing_minor) FROM bills) + (SELECT coalesce(sum(standing_minor), 0) FROM bill_notes) AS standing,
            (SELECT sum(vat_minor) FROM bills) + (SELECT coalesce(sum(vat_minor), 0) FROM bill_notes) AS vat`,
  );
  const f = figures.rows[0]!;
  expect(Object.fromEntries(books.rows.map((r) => [r.book, -Number(r.s)]))).toEqual({
    energy: Number(f.energy),
    standing: Number(f.standing),
    vat: Number(f.vat),
  });
});
