import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CreatedHousehold } from '../src/accounts/repo.ts';
import { tx, type Pool } from '../src/db/pool.ts';
import { emitEvent } from '../src/events/emit.ts';
import type { RunningJobs } from '../src/jobs/service.ts';
import { issueBills, READ_METHODS, recheckBill, billsToRecheck } from '../src/money/bills.ts';
import {
  billRunFailures,
  billRunProgress,
  createBillRun,
  runBillRun,
  scheduleDueRuns,
} from '../src/money/billrun.ts';
import { accountBalance, postTransaction } from '../src/money/ledger.ts';
import { renderBillPdf } from '../src/money/pdf.ts';
import { createTestDb, type TestDb } from './support/db.ts';
import { settleEvents, startTestJobs } from './support/jobs.ts';
import { seedMeters } from './support/world.ts';

/**
 * Bills to the penny. Every expected figure below is computed by hand in the comments (Wh ×
 * rate in thousandths of a penny per kWh = millionths of a penny; each line rounded once,
 * half up; VAT 5 % once on the net), never by calling the code under test.
 */
let db: TestDb;
let hh: CreatedHousehold[];
let jobs: RunningJobs;
/** Credit households (even indices of seedMeters): A two-rate March, B flat October, C interpolated October, D no tariff. */
let A: CreatedHousehold, B: CreatedHousehold, C: CreatedHousehold, D: CreatedHousehold;
let supplierId: number;
// After both months are over (the period must have ended in the meter's calendar).
const NOW = Date.UTC(2026, 10, 10, 12) / 1000;

async function read(pool: Pool, meterId: number, iso: string, imp: number, r1: number, r2: number, r3 = 0) {
  await pool.query(
    `INSERT INTO register_reads (meter_id, ts, import_wh, rate1_wh, rate2_wh, rate3_wh, export_wh) VALUES ($1, $2, $3, $4, $5, $6, 0)`,
    [meterId, iso, imp, r1, r2, r3],
  );
}

beforeAll(async () => {
  db = await createTestDb();
  hh = await seedMeters(db.pool, 10, { tz: 'Europe/London' });
  [A, B, C, D] = [hh[0]!, hh[2]!, hh[4]!, hh[6]!];
  supplierId = (
    await db.pool.query<{ supplier_id: number }>('SELECT supplier_id FROM meters WHERE id = $1', [A.meterId])
  ).rows[0]!.supplier_id;
  // hh[8] is a credit account on another cycle day: never part of these runs.
  await db.pool.query('UPDATE accounts SET billing_cycle_day = 15 WHERE id = $1', [hh[8]!.accountId]);
  const t = await db.pool.query<{ id: number }>(
    `INSERT INTO tariffs (supplier_id, code, name, structure) VALUES ($1, 'E7', 'Economy 7', 'two_rate'), ($1, 'FLAT', 'Flat', 'flat') RETURNING id`,
    [supplierId],
  );
  const [e7, flat] = t.rows.map((r) => r.id);
  await db.pool.query(
    `INSERT INTO tariff_versions (tariff_id, version, effective_from, day_rate, night_rate, night_windows, standing_milli_per_day, vat_bp) VALUES
      ($1, 1, '2026-01-01', 24500, 12000, '[{"from":"00:30","to":"07:30"}]', 53350, 500),
      -- A price change on the clock-change day itself.
      ($1, 2, '2026-03-29', 26000, 13000, '[{"from":"00:30","to":"07:30"}]', 60000, 500)`,
    [e7],
  );
  await db.pool.query(
    `INSERT INTO tariff_versions (tariff_id, version, effective_from, day_rate, standing_milli_per_day, vat_bp)
     VALUES ($1, 1, '2026-01-01', 27350, 48110, 500)`,
    [flat],
  );
  await db.pool.query(
    `INSERT INTO meter_tariffs (meter_id, from_day, tariff_id) VALUES ($1, '2026-01-01', $3), ($2, '2026-01-01', $4), ($5, '2026-01-01', $4)`,
    [A.meterId, B.meterId, e7, flat, C.meterId],
  );

  // A, March 2026 (clocks go forward 29 March 01:00 UTC). Local midnights: 1 Mar = 00:00Z,
  // 29 Mar = 00:00Z (still GMT), 1 Apr = 31 Mar 23:00Z (BST).
  await read(db.pool, A.meterId, '2026-03-01T00:00:00Z', 10_000_000, 6_000_000, 4_000_000);
  await read(db.pool, A.meterId, '2026-03-29T00:00:00Z', 10_250_123, 6_150_100, 4_100_023);
  await read(db.pool, A.meterId, '2026-03-31T23:00:00Z', 10_280_523, 6_170_000, 4_110_523);
  // A decoy at UTC midnight (01:00 BST): not the boundary.
  await read(db.pool, A.meterId, '2026-04-01T00:00:00Z', 10_281_000, 6_170_477, 4_110_523);

  // B, October 2026 (clocks go back 25 Oct 01:00 UTC). Local midnights: 1 Oct = 30 Sep 23:00Z
  // (BST), 1 Nov = 00:00Z (GMT). No read at the opening boundary: the previous read at 22:00Z
  // plus the two half-hours 22:00 and 22:30 (400 + 350 Wh) = 5,000,750.
  await read(db.pool, B.meterId, '2026-09-30T22:00:00Z', 5_000_000, 5_000_000, 0);
  await db.pool.query(
    `INSERT INTO interval_readings (meter_id, ts, wh) VALUES ($1, '2026-09-30T22:00:00Z', 400), ($1, '2026-09-30T22:30:00Z', 350)`,
    [B.meterId],
  );
  await read(db.pool, B.meterId, '2026-10-01T01:00:00Z', 5_002_000, 5_002_000, 0);
  // A decoy an hour before the closing boundary (local midnight if the 25-hour day were ignored).
  await read(db.pool, B.meterId, '2026-10-31T23:00:00Z', 5_300_000, 5_300_000, 0);
  await read(db.pool, B.meterId, '2026-11-01T00:00:00Z', 5_301_234, 5_301_234, 0);

  // C, October: reads 12 h either side of the opening boundary and no interval data:
  // interpolated 1,000,000 + 2,400 × 12/24 = 1,001,200.
  await read(db.pool, C.meterId, '2026-09-30T11:00:00Z', 1_000_000, 1_000_000, 0);
  await read(db.pool, C.meterId, '2026-10-01T11:00:00Z', 1_002_400, 1_002_400, 0);
  await read(db.pool, C.meterId, '2026-11-01T00:00:00Z', 1_101_200, 1_101_200, 0);
  // D has reads but no tariff.
  await read(db.pool, D.meterId, '2026-10-01T00:00:00Z', 1, 1, 0);

  jobs = await startTestJobs(db.pool);
});
afterAll(async () => {
  await jobs?.stop();
  await db?.drop();
});

async function bill(accountId: number, start: string) {
  const { rows } = await db.pool.query(
    `SELECT id::int, reads, lines, energy_minor::int AS energy, standing_minor::int AS standing, vat_minor::int AS vat,
            total_minor::int AS total, previous_balance_minor::int AS prev, payments_minor::int AS pay,
            other_minor::int AS other, amount_due_minor::int AS due, to_char(due_date, 'YYYY-MM-DD') AS due_date
       FROM bills WHERE account_id = $1 AND period_start = $2`,
    [accountId, start],
  );
  return rows[0] as Record<string, unknown> & { id: number };
}

describe('bills for months with a clock change', () => {
  it('March (two-rate, a price change on the 23-hour day) equals the hand computation', async () => {
    // A paid 20.00 before its first bill.
    await tx(db.pool, (c) =>
      postTransaction(c, {
        accountId: A.accountId,
        kind: 'payment',
        ref: 'pay:A-1',
        memo: 'Card',
        lines: [
          { book: 'cash', amountMinor: 2_000 },
          { book: 'customer', amountMinor: -2_000 },
        ],
      }),
    );
    const out = await tx(db.pool, (c) =>
      issueBills(c, [A.accountId], '2026-03-01', { dueDays: 14, nowS: NOW }),
    );
    expect(out[0]!.status).toBe('issued');
    const b = await bill(A.accountId, '2026-03-01');
    expect(b.lines).toEqual([
      // 1-29 Mar, v1: day 6,150,100 - 6,000,000 = 150,100 Wh × 24,500 = 3,677,450,000 µp = 3,677.45p -> 3,677
      {
        kind: 'energy',
        fromDay: '2026-03-01',
        toDay: '2026-03-29',
        tariff: 'Economy 7',
        version: 1,
        band: 'day',
        wh: 150_100,
        rateMilli: 24_500,
        vatBp: 500,
        amountMinor: 3_677,
      },
      // night 4,100,023 - 4,000,000 = 100,023 Wh × 12,000 = 1,200,276,000 µp -> 1,200
      {
        kind: 'energy',
        fromDay: '2026-03-01',
        toDay: '2026-03-29',
        tariff: 'Economy 7',
        version: 1,
        band: 'night',
        wh: 100_023,
        rateMilli: 12_000,
        vatBp: 500,
        amountMinor: 1_200,
      },
      // 28 days × 53,350 = 1,493,800 mp = 1,493.8p -> 1,494
      {
        kind: 'standing',
        fromDay: '2026-03-01',
        toDay: '2026-03-29',
        tariff: 'Economy 7',
        version: 1,
        days: 28,
        rateMilliPerDay: 53_350,
        vatBp: 500,
        amountMinor: 1_494,
      },
      // 29 Mar - 1 Apr, v2: day 6,170,000 - 6,150,100 = 19,900 Wh × 26,000 = 517,400,000 µp -> 517
      {
        kind: 'energy',
        fromDay: '2026-03-29',
        toDay: '2026-04-01',
        tariff: 'Economy 7',
        version: 2,
        band: 'day',
        wh: 19_900,
        rateMilli: 26_000,
        vatBp: 500,
        amountMinor: 517,
      },
      // night 4,110,523 - 4,100,023 = 10,500 Wh × 13,000 = 136,500,000 µp = 136.5p -> 137 (half up)
      {
        kind: 'energy',
        fromDay: '2026-03-29',
        toDay: '2026-04-01',
        tariff: 'Economy 7',
        version: 2,
        band: 'night',
        wh: 10_500,
        rateMilli: 13_000,
        vatBp: 500,
        amountMinor: 137,
      },
      // 3 days (29 March has 23 hours and is one day) × 60,000 = 180,000 mp -> 180
      {
        kind: 'standing',
        fromDay: '2026-03-29',
        toDay: '2026-04-01',
        tariff: 'Economy 7',
        version: 2,
        days: 3,
        rateMilliPerDay: 60_000,
        vatBp: 500,
        amountMinor: 180,
      },
      // net 3,677 + 1,200 + 1,494 + 517 + 137 + 180 = 7,205; × 5% = 360.25 -> 360
      { kind: 'vat', vatBp: 500, netMinor: 7_205, amountMinor: 360 },
    ]);
    expect(b).toMatchObject({
      energy: 5_531, // 3,677 + 1,200 + 517 + 137
      standing: 1_674, // 1,494 + 180
      vat: 360,
      total: 7_565, // 5,531 + 1,674 + 360
      prev: 0,
      pay: -2_000,
      other: 0,
      due: 5_565, // 7,565 - 2,000
      due_date: '2026-11-24', // issued 10 Nov + 14 days
    });
    const reads = b.reads as { at: string; estimated: boolean; method: string }[];
    expect(reads.map((r) => [r.at, r.estimated, r.method])).toEqual([
      ['2026-03-01T00:00:00.000Z', false, READ_METHODS.actual],
      ['2026-03-29T00:00:00.000Z', false, READ_METHODS.actual],
      ['2026-03-31T23:00:00.000Z', false, READ_METHODS.actual],
    ]);
    expect(await accountBalance(db.pool, A.accountId)).toBe(5_565);
  });

  it('October (flat, 25-hour day, opening read estimated from interval data) equals the hand computation', async () => {
    const out = await tx(db.pool, (c) =>
      issueBills(c, [B.accountId, C.accountId], '2026-10-01', { dueDays: 14, nowS: NOW }),
    );
    expect(out.map((o) => o.status)).toEqual(['issued', 'issued']);
    const b = await bill(B.accountId, '2026-10-01');
    expect(b.lines).toEqual([
      // 5,301,234 - 5,000,750 = 300,484 Wh × 27,350 = 8,218,237,400 µp -> 8,218
      {
        kind: 'energy',
        fromDay: '2026-10-01',
        toDay: '2026-11-01',
        tariff: 'Flat',
        version: 1,
        band: 'all',
        wh: 300_484,
        rateMilli: 27_350,
        vatBp: 500,
        amountMinor: 8_218,
      },
      // 31 days (25 October has 25 hours, one day) × 48,110 = 1,491,410 mp -> 1,491
      {
        kind: 'standing',
        fromDay: '2026-10-01',
        toDay: '2026-11-01',
        tariff: 'Flat',
        version: 1,
        days: 31,
        rateMilliPerDay: 48_110,
        vatBp: 500,
        amountMinor: 1_491,
      },
      // net 9,709 × 5% = 485.45 -> 485
      { kind: 'vat', vatBp: 500, netMinor: 9_709, amountMinor: 485 },
    ]);
    expect(b).toMatchObject({
      energy: 8_218,
      standing: 1_491,
      vat: 485,
      total: 10_194,
      prev: 0,
      pay: 0,
      due: 10_194,
    });
    const reads = b.reads as { at: string; importWh: number; estimated: boolean; method: string }[];
    expect(reads.map((r) => [r.at, r.importWh, r.estimated, r.method])).toEqual([
      ['2026-09-30T23:00:00.000Z', 5_000_750, true, READ_METHODS.intervals],
      ['2026-11-01T00:00:00.000Z', 5_301_234, false, READ_METHODS.actual],
    ]);

    const c = await bill(C.accountId, '2026-10-01');
    // 1,101,200 - 1,001,200 = 100,000 Wh × 27,350 = 2,735,000,000 µp -> 2,735; standing 1,491;
    // net 4,226 × 5% = 211.3 -> 211; total 4,437.
    expect(c).toMatchObject({ energy: 2_735, standing: 1_491, vat: 211, total: 4_437 });
    const cr = c.reads as { importWh: number; estimated: boolean; method: string }[];
    expect(cr[0]).toMatchObject({ importWh: 1_001_200, estimated: true, method: READ_METHODS.interpolated });
  });

  it('issuing again issues nothing new, and the database refuses to change an issued bill', async () => {
    const count = async () =>
      (
        await db.pool.query<{ b: number; t: number }>(
          `SELECT (SELECT count(*) FROM bills)::int AS b, (SELECT count(*) FROM ledger_transactions)::int AS t`,
        )
      ).rows[0]!;
    const before = await count();
    const out = await tx(db.pool, (c) =>
      issueBills(c, [A.accountId], '2026-03-01', { dueDays: 14, nowS: NOW }),
    );
    expect(out[0]!.status).toBe('already_billed');
    expect(await count()).toEqual(before);
    await expect(
      db.pool.query('UPDATE bills SET total_minor = 1 WHERE account_id = $1', [A.accountId]),
    ).rejects.toThrow(/never change/);
    await expect(db.pool.query('DELETE FROM bills')).rejects.toThrow(/never change/);
  });

  it('the household is told the bill is ready, with the amount and the due date', async () => {
    await settleEvents(db.pool, jobs);
    const { rows } = await db.pool.query<{ message: string; meter_id: number }>(
      `SELECT message, meter_id FROM alerts WHERE type = 'bill_ready' ORDER BY meter_id`,
    );
    const forA = rows.find((r) => r.meter_id === A.meterId);
    expect(forA?.message).toBe(
      'Your bill for 1 Mar to 31 Mar 2026 is £75.65. Amount due £55.65 by 24 Nov 2026.',
    );
    expect(rows.map((r) => r.meter_id).sort()).toEqual([A.meterId, B.meterId, C.meterId].sort());
  });
});

describe('corrections', () => {
  it('a late actual read replacing an estimate produces a debit note, not an edited bill', async () => {
    const before = await bill(C.accountId, '2026-10-01');
    // The actual read at C's opening boundary arrives (the estimate said 1,001,200):
    // 1,101,200 - 1,001,000 = 100,200 Wh × 27,350 = 2,740,470,000 µp -> 2,740 (+5);
    // net 2,740 + 1,491 = 4,231 × 5% = 211.55 -> 212 (+1); the note is +6.
    await read(db.pool, C.meterId, '2026-09-30T23:00:00Z', 1_001_000, 1_001_000, 0);
    await tx(db.pool, (c) =>
      emitEvent(c, {
        type: 'readings.committed',
        meterId: null,
        payload: { meterDays: [[C.meterId, '2026-10-01']] },
      }),
    );
    await settleEvents(db.pool, jobs);
    const notes = await db.pool.query(
      `SELECT bill_id::int, kind, energy_minor::int AS energy, standing_minor::int AS standing, vat_minor::int AS vat,
              total_minor::int AS total FROM bill_notes WHERE account_id = $1`,
      [C.accountId],
    );
    expect(notes.rows).toEqual([
      { bill_id: before.id, kind: 'debit_note', energy: 5, standing: 0, vat: 1, total: 6 },
    ]);
    expect(await bill(C.accountId, '2026-10-01')).toEqual(before);
    expect(await accountBalance(db.pool, C.accountId)).toBe(4_437 + 6);
    // Checking again changes nothing.
    const ids = await billsToRecheck(db.pool, [[C.meterId, '2026-10-01']]);
    expect(ids).toEqual([before.id]);
    expect(await tx(db.pool, (c) => recheckBill(c, before.id))).toBeNull();
  });
});

describe('bill runs', () => {
  it('one failing account does not stop the run; a re-run issues nothing; a stopped run resumes', async () => {
    // October for the supplier's cycle day 1: A (reads added here), B and C (billed above), D (no
    // tariff); hh[8] is on cycle day 15 and not in the run.
    await read(db.pool, A.meterId, '2026-09-30T23:00:00Z', 11_000_000, 6_500_000, 4_500_000);
    await read(db.pool, A.meterId, '2026-11-01T00:00:00Z', 11_100_000, 6_560_000, 4_540_000);
    const { runId } = await tx(db.pool, (c) =>
      createBillRun(c, { supplierId, periodStart: '2026-10-01', trigger: 'staff' }),
    );
    // The process "dies" after one chunk of one account.
    const part = await runBillRun(db.pool, runId, {
      chunk: 1,
      workers: 1,
      dueDays: 14,
      nowS: NOW,
      stopAfterChunks: 1,
    });
    expect(part).toMatchObject({ status: 'running', total: 4, processed: 1 });
    const done = await runBillRun(db.pool, runId, { chunk: 2, workers: 2, dueDays: 14, nowS: NOW });
    expect(done).toMatchObject({
      status: 'done',
      total: 4,
      processed: 4,
      issued: 1,
      alreadyBilled: 2,
      failed: 1,
    });
    const failures = await billRunFailures(db.pool, runId);
    expect(failures.map((f) => [f.accountId, f.reason])).toEqual([[D.accountId, 'no tariff in the period']]);
    // October bill of A: previous balance = A's March amount due.
    expect(await bill(A.accountId, '2026-10-01')).toMatchObject({ prev: 5_565, pay: 0 });

    const again = await tx(db.pool, (c) =>
      createBillRun(c, { supplierId, periodStart: '2026-10-01', trigger: 'staff' }),
    );
    const second = await runBillRun(db.pool, again.runId, { chunk: 10, workers: 1, dueDays: 14, nowS: NOW });
    expect(second).toMatchObject({ status: 'done', total: 4, issued: 0, alreadyBilled: 3, failed: 1 });
    expect(await billRunProgress(db.pool, again.runId, supplierId + 999)).toBeNull();
  });

  it('the daily schedule creates each due run once, and the jobs service works it to the end', async () => {
    // Accounts opened before the periods (an account opened mid-period waits for the next one).
    await db.pool.query(`UPDATE accounts SET created_at = '2026-01-01' WHERE supplier_id = $1`, [supplierId]);
    // hh[8] (cycle day 15) gets the flat tariff and reads at 15 Oct (BST) and 15 Nov (GMT) midnights.
    const e = hh[8]!;
    await db.pool.query(
      `INSERT INTO meter_tariffs (meter_id, from_day, tariff_id) SELECT $1, '2026-01-01', id FROM tariffs WHERE code = 'FLAT' AND supplier_id = $2`,
      [e.meterId, supplierId],
    );
    await read(db.pool, e.meterId, '2026-10-14T23:00:00Z', 100_000, 100_000, 0);
    await read(db.pool, e.meterId, '2026-11-15T00:00:00Z', 200_000, 200_000, 0);
    const before = await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM bills`);
    const runs = await scheduleDueRuns(db.pool);
    // Today (real clock, late November 2026) the latest ended periods: cycle day 1 (D has no
    // October bill) and cycle day 15 (hh[8]).
    expect(runs.length).toBeGreaterThanOrEqual(1);
    await settleEvents(db.pool, jobs);
    const done = async () => {
      for (;;) {
        const ps = await Promise.all(runs.map((id) => billRunProgress(db.pool, id)));
        if (ps.every((p) => p?.status === 'done')) return ps;
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    const progress = await Promise.race([
      done(),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('bill runs not done')), 30_000)),
    ]);
    for (const p of progress) {
      expect(p!.trigger).toBe('schedule');
      expect(p!.processed).toBe(p!.total);
    }
    // hh[8] billed by the job; D (no tariff) listed as failed; A, B, C were billed before.
    expect(progress.reduce((n, p) => n + p!.issued, 0)).toBe(1);
    expect(progress.reduce((n, p) => n + p!.failed, 0)).toBe(1);
    // 100,000 Wh × 27,350 = 2,735,000,000 millionths of a penny = 2,735p.
    expect(await bill(e.accountId, '2026-10-15')).toMatchObject({ energy: 2_735 });
    expect((await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM bills`)).rows[0]!.n).toBe(
      before.rows[0]!.n + 1,
    );
    // The next day's schedule re-opens the run whose account failed (tried again), creates none.
    const again = await scheduleDueRuns(db.pool);
    expect(again).toHaveLength(1);
    expect(runs).toContain(again[0]);
    const count = await db.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM bill_runs WHERE trigger = 'schedule'`,
    );
    expect(count.rows[0]!.n).toBe(runs.length);
  });
});

/** The text of a PDF, page by page, through pdf.js (a real parser: fonts, ToUnicode maps). */
async function pdfText(pdf: Buffer): Promise<string> {
  const pdfjs = await import('pdfjs-dist/legacy/build/pdf.mjs');
  const doc = await pdfjs.getDocument({ data: new Uint8Array(pdf), useSystemFonts: false }).promise;
  let out = '';
  for (let i = 1; i <= doc.numPages; i++) {
    const page = await doc.getPage(i);
    const content = await page.getTextContent();
    out += content.items.map((it) => ('str' in it ? it.str : '')).join(' ') + '\n';
  }
  await doc.destroy();
  return out.replace(/\s+/g, ' ');
}

describe('PDF', () => {
  it('has the supplier, household, meter, period, reads, charges, VAT, totals, due date and a 12-month chart, in an embedded font', async () => {
    // Some usage history for the chart.
    await db.pool.query(
      `INSERT INTO daily_rollups (meter_id, day, wh, intervals) VALUES ($1, '2026-02-10', 250000, 48), ($1, '2026-03-10', 300000, 48)`,
      [A.meterId],
    );
    const b = await bill(A.accountId, '2026-03-01');
    const pdf = (await renderBillPdf(db.pool, b.id))!;
    expect(pdf.subarray(0, 5).toString()).toBe('%PDF-');
    const raw = pdf.toString('latin1');
    // The TrueType font travels inside the file; no base-14 font is referenced.
    expect(raw).toMatch(/\/FontFile2/);
    expect(raw).toMatch(/\/BaseFont \/[A-Z]{6}\+DejaVuSans/);
    expect(raw).not.toMatch(/Helvetica/);
    const text = await pdfText(pdf);
    for (const s of [
      `Supplier`,
      'Household 0',
      A.meterSerial,
      'Period 1 Mar 2026 to 31 Mar 2026',
      'Amount due £55.65',
      'Please pay by 24 Nov 2026',
      '1 Mar 2026 00:00 — actual',
      '150.100 kWh × 24.500p per kWh',
      '£36.77',
      'Standing charge 29 Mar 2026 – 31 Mar 2026: 3 days × 60.000p',
      'VAT at 5% on £72.05',
      '£3.60',
      'Total for the period',
      '£75.65',
      'Payments received',
      '-£20.00',
      'Your usage over 12 months',
      'Feb 26',
      '250',
      'Mar 26',
      '300',
      'Apr 25',
      'no data',
    ]) {
      expect(text, s).toContain(s);
    }
    const c = await bill(C.accountId, '2026-10-01');
    expect(await pdfText((await renderBillPdf(db.pool, c.id))!)).toContain(
      `estimated: ${READ_METHODS.interpolated}`,
    );
  });
});
