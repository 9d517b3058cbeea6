/**
 * (g) A bill run over N credit accounts: one month (October 2026, with its 25-hour day),
 * register reads at both boundaries, half the meters on a flat tariff and half on a two-rate
 * one. The data set is built inside the database with set-based INSERT ... SELECT (faster
 * than COPY from here: nothing crosses the wire) in the fresh bench database; its build time
 * is reported apart from the run's. The run is the production code path: createBillRun
 * (items) + runBillRun (chunks of accounts per transaction, parallel workers). PDFs are
 * rendered lazily (on request), never in the run.
 */
import { createArea, createBillRun, createOrganisation, runBillRun, tx, type Pool } from '@kilowire/server';
import { log, nowMs } from './lib.ts';

export interface BillRunResult {
  accounts: number;
  buildS: number;
  runS: number;
  accountsPerS: number;
  issued: number;
  failed: number;
  chunk: number;
  workers: number;
  ledgerBalanced: boolean;
}

export async function benchBillRun(
  pool: Pool,
  o: { accounts: number; chunk: number; workers: number },
): Promise<BillRunResult> {
  const t0 = nowMs();
  const sup = await createOrganisation(pool, 'supplier', 'sup-bills', 'Bench Energy');
  const op = await createOrganisation(pool, 'network_operator', 'op-bills', 'Bench Networks');
  await createArea(pool, 'A-BILLS', op, 'Bench area', ['F-BILLS']);
  const t = await pool.query<{ id: number }>(
    `INSERT INTO tariffs (supplier_id, code, name, structure) VALUES ($1, 'FLAT', 'Flat', 'flat'), ($1, 'E7', 'Economy 7', 'two_rate')
     RETURNING id`,
    [sup],
  );
  const [flat, e7] = t.rows.map((r) => r.id);
  await pool.query(
    `INSERT INTO tariff_versions (tariff_id, version, effective_from, day_rate, night_rate, night_windows, standing_milli_per_day, vat_bp)
     VALUES ($1, 1, '2026-01-01', 27350, NULL, '[]', 48110, 500),
            ($2, 1, '2026-01-01', 24500, 12000, '[{"from":"00:30","to":"07:30"}]', 53350, 500)`,
    [flat, e7],
  );
  await pool.query(
    `WITH u AS (
       INSERT INTO users (role, login_id, password_hash, display_name)
       SELECT 'consumer', 'BILLC' || i, 'x', 'Household ' || i FROM generate_series(1, $2::int) i
       RETURNING id, display_name),
     c AS (
       INSERT INTO consumers (user_id, supplier_id, name) SELECT id, $1, display_name FROM u RETURNING id),
     a AS (
       INSERT INTO accounts (consumer_id, supplier_id, mode, billing_cycle_day) SELECT id, $1, 'credit', 1 FROM c RETURNING id)
     INSERT INTO meters (serial, account_id, supplier_id, area_id, feeder_id, tz, credential_hash, mode)
     SELECT 'BILLM' || id, id, $1, 'A-BILLS', 'F-BILLS', 'Europe/London', 'x', 'credit' FROM a`,
    [sup, o.accounts],
  );
  await pool.query(
    `INSERT INTO meter_tariffs (meter_id, from_day, tariff_id)
     SELECT id, '2026-01-01', CASE WHEN id % 2 = 0 THEN $2::int ELSE $3::int END FROM meters WHERE supplier_id = $1`,
    [sup, flat, e7],
  );
  // Local midnights of 1 Oct (BST) and 1 Nov (GMT) 2026.
  await pool.query(
    `INSERT INTO register_reads (meter_id, ts, import_wh, rate1_wh, rate2_wh, rate3_wh, export_wh)
     SELECT id, '2026-09-30T23:00:00Z'::timestamptz, 1000000 + id % 99991, 600000 + id % 99991, 400000, 0, 0
       FROM meters WHERE supplier_id = $1
     UNION ALL
     SELECT id, '2026-11-01T00:00:00Z'::timestamptz, 1000000 + id % 99991 + 150000 + id % 49999,
            600000 + id % 99991 + 100000 + id % 49999, 450000, 0, 0
       FROM meters WHERE supplier_id = $1`,
    [sup],
  );
  await pool.query('ANALYZE');
  const buildS = (nowMs() - t0) / 1000;
  log(
    `  data set: ${o.accounts} credit accounts, meters, tariffs and 2 reads each built in ${buildS.toFixed(1)} s`,
  );

  const t1 = nowMs();
  const { runId } = await tx(pool, (c) =>
    createBillRun(c, { supplierId: sup, periodStart: '2026-10-01', trigger: 'staff' }),
  );
  const profile: Record<string, number> = {};
  let done = 0;
  let lastLog = nowMs();
  const p = await runBillRun(pool, runId, {
    chunk: o.chunk,
    workers: o.workers,
    dueDays: 14,
    profile,
    onChunk: (n) => {
      done += n;
      if (nowMs() - lastLog > 5000) {
        lastLog = nowMs();
        log(`  ${done} accounts billed, ${(done / ((nowMs() - t1) / 1000)).toFixed(0)}/s`);
      }
    },
  });
  const runS = (nowMs() - t1) / 1000;
  log(
    `  profile (ms summed over ${o.workers} workers): ` +
      Object.entries(profile)
        .map(([k, v]) => `${k} ${v.toFixed(0)}`)
        .join(', '),
  );
  const check = await pool.query<{ bills: number; due: string; ledger: string; all: string }>(
    `SELECT (SELECT count(*)::int FROM bills WHERE run_id = $1) AS bills,
            (SELECT sum(total_minor) FROM bills WHERE run_id = $1) AS due,
            -- The run's own postings: other parts (top-ups) share this database.
            (SELECT sum(e.amount_minor) FROM ledger_entries e
               JOIN ledger_transactions t ON t.id = e.txn_id
               JOIN bills b ON t.ref = 'bill:' || b.id AND b.run_id = $1
              WHERE e.book = 'customer') AS ledger,
            (SELECT sum(amount_minor) FROM ledger_entries) AS all`,
    [runId],
  );
  const c = check.rows[0]!;
  const ledgerBalanced = c.due === c.ledger && Number(c.all) === 0;
  if (c.bills !== o.accounts || !ledgerBalanced) {
    throw new Error(
      `bill run incomplete: ${c.bills} bills of ${o.accounts}, ledger ${c.ledger} vs bills ${c.due}`,
    );
  }
  return {
    accounts: o.accounts,
    buildS,
    runS,
    accountsPerS: o.accounts / runS,
    issued: p?.issued ?? 0,
    failed: p?.failed ?? 0,
    chunk: o.chunk,
    workers: o.workers,
    ledgerBalanced,
  };
}
