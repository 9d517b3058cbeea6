import { afterAll, beforeAll, expect, it } from 'vitest';
import { createArea, createOrganisation } from '../src/accounts/repo.ts';
import { tx } from '../src/db/pool.ts';
import { billRunProgress, createBillRun, type RunProgress } from '../src/money/billrun.ts';
import { createTestDb, type TestDb } from './support/db.ts';
import { KilowireProcess } from './support/process.ts';

/**
 * A bill run survives the death of its process: the jobs service (a real OS process) is
 * killed with SIGKILL in the middle of a run; started again, it resumes the run from the
 * items still pending and every account ends with exactly one bill and one ledger posting.
 */
const N = 3000;
let db: TestDb;
let p: KilowireProcess;
let supplierId: number;

beforeAll(async () => {
  db = await createTestDb();
  supplierId = await createOrganisation(db.pool, 'supplier', 'sup-crash', 'Crash Energy');
  const op = await createOrganisation(db.pool, 'network_operator', 'op-crash', 'Crash Networks');
  await createArea(db.pool, 'A-CRASH', op, 'Area', ['F-CRASH']);
  const t = await db.pool.query<{ id: number }>(
    `INSERT INTO tariffs (supplier_id, code, name, structure) VALUES ($1, 'FLAT', 'Flat', 'flat') RETURNING id`,
    [supplierId],
  );
  await db.pool.query(
    `INSERT INTO tariff_versions (tariff_id, version, effective_from, day_rate, standing_milli_per_day, vat_bp)
     VALUES ($1, 1, '2026-01-01', 27350, 48110, 500)`,
    [t.rows[0]!.id],
  );
  await db.pool.query(
    `WITH u AS (
       INSERT INTO users (role, login_id, password_hash, display_name)
       SELECT 'consumer', 'CRASH' || i, 'x', 'Household ' || i FROM generate_series(1, $2::int) i RETURNING id, display_name),
     c AS (INSERT INTO consumers (user_id, supplier_id, name) SELECT id, $1, display_name FROM u RETURNING id),
     a AS (INSERT INTO accounts (consumer_id, supplier_id, mode, billing_cycle_day) SELECT id, $1, 'credit', 1 FROM c RETURNING id)
     INSERT INTO meters (serial, account_id, supplier_id, area_id, feeder_id, tz, credential_hash, mode)
     SELECT 'CRASHM' || id, id, $1, 'A-CRASH', 'F-CRASH', 'Europe/London', 'x', 'credit' FROM a`,
    [supplierId, N],
  );
  await db.pool.query(
    `INSERT INTO meter_tariffs (meter_id, from_day, tariff_id) SELECT id, '2026-01-01', $2::int FROM meters WHERE supplier_id = $1`,
    [supplierId, t.rows[0]!.id],
  );
  await db.pool.query(
    `INSERT INTO register_reads (meter_id, ts, import_wh, rate1_wh, rate2_wh, export_wh)
     SELECT id, '2026-09-30T23:00:00Z'::timestamptz, 1000, 1000, 0, 0 FROM meters WHERE supplier_id = $1
     UNION ALL
     SELECT id, '2026-11-01T00:00:00Z'::timestamptz, 1000 + id, 1000 + id, 0, 0 FROM meters WHERE supplier_id = $1`,
    [supplierId],
  );
  p = new KilowireProcess('jobs', {
    DATABASE_URL: db.url,
    // Only the jobs service runs here: no broker connection is made.
    MQTT_PASSWORD: 'unused',
    // Small chunks, one worker: the run takes long enough to be killed in the middle.
    BILL_RUN_CHUNK: '20',
    BILL_RUN_WORKERS: '1',
    EVENTS_SWEEP_MS: '200',
    NOTIFY_POLL_S: '0.5',
  });
}, 120_000);

afterAll(async () => {
  await p?.stop();
  await db?.drop();
});

async function until(pred: (r: RunProgress) => boolean, runId: number, ms: number, what: string) {
  const end = Date.now() + ms;
  for (;;) {
    const r = await billRunProgress(db.pool, runId);
    if (r && pred(r)) return r;
    if (!p.alive) throw new Error(`the jobs process exited:\n${p.output}`);
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(r)}\n${p.output}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

it('kill -9 in the middle of a bill run: after a restart it finishes, one bill per account', async () => {
  p.start();
  const { runId } = await tx(db.pool, (c) =>
    createBillRun(c, { supplierId, periodStart: '2026-10-01', trigger: 'staff' }),
  );
  await until((r) => r.processed >= 200, runId, 90_000, 'the run to start');
  await p.kill9();
  const atKill = (await billRunProgress(db.pool, runId))!;
  expect(atKill.status).toBe('running');
  expect(atKill.processed).toBeLessThan(N);

  p.start();
  const done = await until((r) => r.status === 'done', runId, 180_000, 'the run to finish after the restart');
  expect(done).toMatchObject({ total: N, processed: N, issued: N, failed: 0 });
  const check = await db.pool.query<{
    bills: number;
    accounts: number;
    txns: number;
    due: string;
    ledger: string;
  }>(
    `SELECT (SELECT count(*)::int FROM bills) AS bills, (SELECT count(DISTINCT account_id)::int FROM bills) AS accounts,
            (SELECT count(*)::int FROM ledger_transactions WHERE kind = 'bill') AS txns,
            (SELECT sum(total_minor) FROM bills) AS due,
            (SELECT sum(amount_minor) FROM ledger_entries WHERE book = 'customer') AS ledger`,
  );
  expect(check.rows[0]).toMatchObject({ bills: N, accounts: N, txns: N });
  expect(check.rows[0]!.ledger).toBe(check.rows[0]!.due);
}, 300_000);
