import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CreatedHousehold } from '../src/accounts/repo.ts';
import { tx } from '../src/db/pool.ts';
import { accountBalance, accountBalances, ledgerRows, postTransaction } from '../src/money/ledger.ts';
import { bandAt, meterPriceSpans, microToMinor, vatOf, type TariffVersion } from '../src/money/prices.ts';
import { createTestDb, type TestDb } from './support/db.ts';
import { seedMeters } from './support/world.ts';

/** The ledger's rules live in the database: balanced, immutable, idempotent by reference. */
let db: TestDb;
let hh: CreatedHousehold[];
beforeAll(async () => {
  db = await createTestDb();
  hh = await seedMeters(db.pool, 2);
});
afterAll(async () => {
  await db?.drop();
});

describe('ledger', () => {
  it('posts balanced transactions once per reference; the balance is the sum of the entries', async () => {
    const acct = hh[0]!.accountId;
    const bill = {
      accountId: acct,
      kind: 'bill' as const,
      ref: 'bill:test-1',
      memo: 'Bill',
      lines: [
        { book: 'customer' as const, amountMinor: 10_500 },
        { book: 'energy' as const, amountMinor: -8_000 },
        { book: 'standing' as const, amountMinor: -2_000 },
        { book: 'vat' as const, amountMinor: -500 },
      ],
    };
    const first = await tx(db.pool, (c) => postTransaction(c, bill));
    const again = await tx(db.pool, (c) => postTransaction(c, bill));
    expect(first.created).toBe(true);
    expect(again).toEqual({ txnId: first.txnId, created: false });
    await tx(db.pool, (c) =>
      postTransaction(c, {
        accountId: acct,
        kind: 'payment',
        ref: 'pay:test-1',
        memo: 'Card payment',
        lines: [
          { book: 'cash', amountMinor: 4_000 },
          { book: 'customer', amountMinor: -4_000 },
        ],
      }),
    );
    expect(await accountBalance(db.pool, acct)).toBe(6_500);
    expect((await accountBalances(db.pool, [acct, hh[1]!.accountId])).get(hh[1]!.accountId)).toBe(0);
    const rows = await ledgerRows(db.pool, acct);
    expect(rows.map((r) => [r.kind, r.amountMinor, r.balanceMinor])).toEqual([
      ['payment', -4_000, 6_500],
      ['bill', 10_500, 10_500],
    ]);
  });

  it('the database refuses an unbalanced transaction, and any update, delete or truncate', async () => {
    const acct = hh[1]!.accountId;
    const { rows } = await db.pool.query<{ id: string }>(
      `INSERT INTO ledger_transactions (account_id, kind, ref, memo) VALUES ($1, 'adjustment', 'adj:raw', 'raw') RETURNING id`,
      [acct],
    );
    await expect(
      db.pool.query(
        `INSERT INTO ledger_entries (txn_id, book, account_id, amount_minor) VALUES ($1, 'customer', $2, 100)`,
        [rows[0]!.id, acct],
      ),
    ).rejects.toThrow(/does not balance/);
    await expect(db.pool.query(`UPDATE ledger_entries SET amount_minor = amount_minor + 1`)).rejects.toThrow(
      /immutable/,
    );
    await expect(db.pool.query(`DELETE FROM ledger_entries`)).rejects.toThrow(/immutable/);
    await expect(db.pool.query(`DELETE FROM ledger_transactions WHERE ref = 'adj:raw'`)).rejects.toThrow(
      /immutable/,
    );
    await expect(db.pool.query(`TRUNCATE ledger_entries CASCADE`)).rejects.toThrow(/immutable/);
    await expect(
      tx(db.pool, (c) =>
        postTransaction(c, {
          accountId: acct,
          kind: 'adjustment',
          ref: 'adj:js',
          memo: 'x',
          lines: [{ book: 'customer', amountMinor: 1 }],
        }),
      ),
    ).rejects.toThrow(/does not balance/);
  });
});

describe('prices', () => {
  const v: TariffVersion = {
    tariffId: 1,
    code: 'T',
    name: 'T',
    currency: 'GBP',
    structure: 'three_band',
    version: 1,
    effectiveFrom: '2026-01-01',
    dayRate: 24_500,
    nightRate: 12_000,
    peakRate: 35_000,
    nightWindows: [{ from: '23:00', to: '07:00' }],
    peakWindows: [{ from: '16:00', to: '19:00' }],
    exportRate: null,
    standingMilliPerDay: 53_350,
    vatBp: 500,
  };
  it('bands follow local time, rounding is half up once', () => {
    // 2026-07-01 16:30 BST = 15:30 UTC: peak; 06:30 BST: night; 12:00 BST: day.
    expect(bandAt(v, Date.UTC(2026, 6, 1, 15, 30) / 1000, 'Europe/London')).toBe(3);
    expect(bandAt(v, Date.UTC(2026, 6, 1, 5, 30) / 1000, 'Europe/London')).toBe(2);
    expect(bandAt(v, Date.UTC(2026, 6, 1, 11, 0) / 1000, 'Europe/London')).toBe(1);
    expect(bandAt({ ...v, structure: 'flat' }, Date.UTC(2026, 6, 1, 15, 30) / 1000, 'Europe/London')).toBe(1);
    expect(microToMinor(1_500_000)).toBe(2);
    expect(microToMinor(1_499_999)).toBe(1);
    expect(microToMinor(-1_500_000)).toBe(-2);
    expect(vatOf(1_010, 500)).toBe(51); // 50.5 -> 51
    expect(vatOf(1_009, 500)).toBe(50);
  });

  it('a meter is priced by its tariff assignments and their versions, day by day', async () => {
    const sup = (
      await db.pool.query<{ supplier_id: number }>('SELECT supplier_id FROM meters WHERE id = $1', [
        hh[0]!.meterId,
      ])
    ).rows[0]!.supplier_id;
    const t = await db.pool.query<{ id: number }>(
      `INSERT INTO tariffs (supplier_id, code, name, structure) VALUES ($1, 'A', 'A', 'flat'), ($1, 'B', 'B', 'flat') RETURNING id`,
      [sup],
    );
    const [a, b] = t.rows.map((r) => r.id);
    await db.pool.query(
      `INSERT INTO tariff_versions (tariff_id, version, effective_from, day_rate, standing_milli_per_day, vat_bp) VALUES
        ($1, 1, '2026-01-01', 20000, 50000, 500), ($1, 2, '2026-03-10', 22000, 50000, 500), ($2, 1, '2026-01-01', 30000, 40000, 500)`,
      [a, b],
    );
    await db.pool.query(
      `INSERT INTO meter_tariffs (meter_id, from_day, tariff_id) VALUES ($1, '2026-02-01', $2), ($1, '2026-03-20', $3)`,
      [hh[0]!.meterId, a, b],
    );
    const spans = await meterPriceSpans(db.pool, hh[0]!.meterId, '2026-01-15', '2026-04-01');
    expect(spans.map((s) => [s.fromDay, s.toDay, s.version.code, s.version.version])).toEqual([
      ['2026-02-01', '2026-03-10', 'A', 1],
      ['2026-03-10', '2026-03-20', 'A', 2],
      ['2026-03-20', '2026-04-01', 'B', 1],
    ]);
  });
});
