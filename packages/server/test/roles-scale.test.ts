import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { generateSigningKeyPair } from '@kilowire/protocol';
import { createArea, createOrganisation, createStaffUser } from '../src/accounts/repo.ts';
import { hashPassword } from '../src/auth/passwords.ts';
import { SOURCE_FAILURES } from '../src/auth/throttle.ts';
import { startBoss } from '../src/jobs/boss.ts';
import { billRunProgress } from '../src/money/billrun.ts';
import { freePort } from '../src/net.ts';
import { createTestDb, type TestDb } from './support/db.ts';
import { startSmsc, startSmtp } from './support/notify.ts';
import { KilowireProcess } from './support/process.ts';
import { waitFor } from './support/world.ts';

/**
 * Several processes of each role on one database (#11): two API processes share nothing but
 * PostgreSQL (a session from one works on the other, a sign-out and a login throttle too), and
 * two jobs processes share the queue: a bill run, the daily collection and the bill
 * notifications happen once, and when the jobs process working the bill run is killed with
 * SIGKILL in the middle, the other one finishes it. About 50 s, most of it starting four
 * processes (the one long test of #11's API/jobs part).
 */
const N = 400;
/** Households with an email address and a mobile number (the first ones billed). */
const CONTACTS = 5;
/** The account the test holds locked so the bill run stops at it (and its holder shows). */
const BLOCK_AT = 200;
const PASSWORD = 'correct horse battery staple';
const keys = generateSigningKeyPair();

let db: TestDb;
let smtp: Awaited<ReturnType<typeof startSmtp>>;
let smsc: Awaited<ReturnType<typeof startSmsc>>;
const procs: KilowireProcess[] = [];
let api1: string;
let api2: string;
let jobs: KilowireProcess[] = [];
let supplierId: number;
let periodStart: string;

/** First day of last month and of this month (UTC: the test's meters keep UTC). */
function period(): { start: string; end: string } {
  const now = new Date();
  const end = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  const start = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1));
  return { start: start.toISOString().slice(0, 10), end: end.toISOString().slice(0, 10) };
}

beforeAll(async () => {
  db = await createTestDb();
  [smtp, smsc] = await Promise.all([startSmtp(), startSmsc()]);
  supplierId = await createOrganisation(db.pool, 'supplier', 'sup-roles', 'Roles Energy');
  const op = await createOrganisation(db.pool, 'network_operator', 'op-roles', 'Roles Networks');
  await createArea(db.pool, 'A-ROLES', op, 'Area', ['F-ROLES']);
  await createStaffUser(db.pool, {
    role: 'supplier',
    email: 'staff@roles.test',
    password: PASSWORD,
    orgId: supplierId,
    name: 'Roles Staff',
  });
  const t = await db.pool.query<{ id: number }>(
    `INSERT INTO tariffs (supplier_id, code, name, structure) VALUES ($1, 'FLAT', 'Flat', 'flat') RETURNING id`,
    [supplierId],
  );
  await db.pool.query(
    `INSERT INTO tariff_versions (tariff_id, version, effective_from, day_rate, standing_milli_per_day, vat_bp)
     VALUES ($1, 1, '2020-01-01', 27350, 48110, 500)`,
    [t.rows[0]!.id],
  );
  const hash = await hashPassword(PASSWORD);
  // Households opened long ago (so the schedule would bill them too), the first CONTACTS of
  // them with an email address and a mobile number, and bill notices by SMS as well.
  await db.pool.query(
    `WITH u AS (
       INSERT INTO users (role, login_id, password_hash, display_name)
       SELECT 'consumer', 'ROLES' || lpad(i::text, 4, '0'), $3, 'Household ' || i FROM generate_series(1, $2::int) i
       RETURNING id, display_name, login_id),
     c AS (
       INSERT INTO consumers (user_id, supplier_id, name, email, mobile)
       SELECT id, $1, display_name,
              CASE WHEN login_id <= 'ROLES' || lpad($4::text, 4, '0') THEN lower(login_id) || '@home.test' END,
              CASE WHEN login_id <= 'ROLES' || lpad($4::text, 4, '0') THEN '+4477009' || right(login_id, 4) END
         FROM u RETURNING id),
     a AS (
       INSERT INTO accounts (consumer_id, supplier_id, mode, billing_cycle_day, created_at)
       SELECT id, $1, 'credit', 1, '2020-01-01' FROM c ORDER BY id RETURNING id)
     INSERT INTO meters (serial, account_id, supplier_id, area_id, feeder_id, tz, credential_hash, mode)
     SELECT 'ROLESM' || id, id, $1, 'A-ROLES', 'F-ROLES', 'UTC', 'x', 'credit' FROM a`,
    [supplierId, N, hash, CONTACTS],
  );
  await db.pool.query(
    `INSERT INTO alert_preferences (consumer_id, type, email, sms, web)
     SELECT id, 'bill_ready', true, true, true FROM consumers WHERE email IS NOT NULL`,
  );
  const p = period();
  periodStart = p.start;
  await db.pool.query(
    `INSERT INTO meter_tariffs (meter_id, from_day, tariff_id) SELECT id, '2020-01-01', $2::int FROM meters WHERE supplier_id = $1`,
    [supplierId, t.rows[0]!.id],
  );
  await db.pool.query(
    `INSERT INTO register_reads (meter_id, ts, import_wh, rate1_wh, rate2_wh, export_wh)
     SELECT id, $2::date::timestamptz, 1000, 1000, 0, 0 FROM meters WHERE supplier_id = $1
     UNION ALL
     SELECT id, $3::date::timestamptz, 1000 + id, 1000 + id, 0, 0 FROM meters WHERE supplier_id = $1`,
    [supplierId, p.start, p.end],
  );

  const common = {
    DATABASE_URL: db.url,
    // No broker is needed by the api and jobs services alone.
    MQTT_PASSWORD: 'unused',
    // Every process signs with the same key: meters trust one head-end, not one process.
    COMMAND_SIGNING_KEY: keys.privateKey,
  };
  const [port1, port2] = [await freePort(), await freePort()];
  for (const port of [port1, port2])
    procs.push(new KilowireProcess('api', { ...common, PORT: String(port) }));
  api1 = `http://127.0.0.1:${port1}`;
  api2 = `http://127.0.0.1:${port2}`;
  jobs = [0, 1].map(
    () =>
      new KilowireProcess('jobs', {
        ...common,
        SMTP_URL: smtp.url,
        SMPP_URL: smsc.url,
        // Small chunks and one connection: the run is still going when it is stopped.
        BILL_RUN_CHUNK: '20',
        BILL_RUN_WORKERS: '1',
        BILL_RUN_STALL_S: '5',
        EVENTS_SWEEP_MS: '300',
        NOTIFY_POLL_S: '0.5',
        NOTIFY_DISPATCH_MS: '300',
        JOB_TIMEOUT_S: '5',
        JOBS_MAINTENANCE_S: '2',
      }),
  );
  procs.push(...jobs);
  for (const p of procs) p.start();
  const ready = async (base: string) => {
    try {
      return (await fetch(`${base}/readyz`)).ok;
    } catch {
      return false;
    }
  };
  await Promise.all([
    waitFor(() => ready(api1), 60_000, 'API 1 ready'),
    waitFor(() => ready(api2), 60_000, 'API 2 ready'),
    // The last thing the jobs service logs before its dispatchers start.
    ...jobs.map((j) => j.waitFor('outage detection started', 60_000)),
  ]);
}, 120_000);

afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await smtp?.close();
  await smsc?.close();
  await db?.drop();
});

async function call(
  base: string,
  method: string,
  url: string,
  o: { cookie?: string; body?: unknown } = {},
): Promise<{ status: number; body: Record<string, unknown>; cookie: string | undefined }> {
  const res = await fetch(`${base}${url}`, {
    method,
    headers: {
      'content-type': 'application/json',
      ...(o.cookie ? { cookie: o.cookie } : {}),
    },
    ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : {}),
  });
  const text = await res.text();
  const set = res.headers.getSetCookie().find((c) => c.startsWith('kw_session='));
  return {
    status: res.status,
    body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
    cookie: set?.split(';')[0],
  };
}

it('two API processes: a session, its sign-out and a login throttle hold on both', async () => {
  const login = await call(api1, 'POST', '/api/session', {
    body: { email: 'staff@roles.test', password: PASSWORD },
  });
  expect(login.status).toBe(200);
  const cookie = login.cookie!;
  expect(cookie).toBeTruthy();
  expect((await call(api2, 'GET', '/api/me', { cookie })).status).toBe(200);
  expect((await call(api2, 'GET', '/api/session', { cookie })).body.signedIn).toBe(true);
  expect((await call(api2, 'DELETE', '/api/session', { cookie })).status).toBe(204);
  expect((await call(api1, 'GET', '/api/me', { cookie })).status).toBe(401);
  expect((await call(api1, 'GET', '/api/session', { cookie })).body.signedIn).toBe(false);

  // The source address's budget of failed sign-ins (over all accounts), spent on API 1 ...
  for (let i = 0; i < SOURCE_FAILURES; i++) {
    const r = await call(api1, 'POST', '/api/session', {
      body: { consumerId: `NOBODY${i}`, password: 'wrong' },
    });
    expect(r.status).toBe(401);
  }
  // ... refuses the right password on API 2.
  const refused = await call(api2, 'POST', '/api/session', {
    body: { email: 'staff@roles.test', password: PASSWORD },
  });
  expect(refused.status).toBe(429);
  // Clear the block so the next test can sign in (the budget is per source address).
  await db.pool.query(`DELETE FROM login_throttle`);
}, 60_000);

it('two jobs processes: the bill run, the collection and the notices happen once; kill -9 of the one billing, the other finishes', async () => {
  const login = await call(api2, 'POST', '/api/session', {
    body: { email: 'staff@roles.test', password: PASSWORD },
  });
  expect(login.status).toBe(200);
  // The test holds one account locked (not its key: the run may still reference it) and the
  // process billing it waits there, in plain sight.
  const blocker = new pg.Client({ connectionString: db.url });
  await blocker.connect();
  try {
    await blocker.query('BEGIN');
    const blocked = await blocker.query<{ id: string }>(
      // (FOR UPDATE with OFFSET would lock every row it skips as well.)
      `SELECT id FROM accounts WHERE id = (SELECT id FROM accounts WHERE supplier_id = $1 ORDER BY id OFFSET $2 LIMIT 1)
          FOR NO KEY UPDATE`,
      [supplierId, BLOCK_AT],
    );
    expect(blocked.rowCount).toBe(1);

    const started = await call(api2, 'POST', '/api/bill-runs', {
      cookie: login.cookie!,
      body: { periodStart },
    });
    expect(started.status).toBe(202);
    const runId = Number(started.body.id);

    // The bills before the locked account are issued and their notices sent (email and SMS)
    // before anything is killed: a delivery job of a killed process waits out its expiry.
    await waitFor(
      () => smtp.received.length >= CONTACTS && smsc.submits.length >= CONTACTS,
      30_000,
      "the first bills' notices",
    ).catch(async (err: Error) => {
      const state = await db.pool.query(
        `SELECT (SELECT count(*) FROM bills) AS bills, (SELECT count(*) FROM alerts) AS alerts,
                (SELECT json_agg(json_build_object('s', status, 'ch', channel)) FROM deliveries) AS deliveries,
                (SELECT count(*) FROM domain_events WHERE dispatched_at IS NULL) AS undispatched,
                (SELECT json_agg(json_build_object('st', status, 'n', n)) FROM (SELECT status, count(*) n FROM bill_run_items GROUP BY 1) x) AS items,
                (SELECT json_agg(json_build_object('st', state, 'n', n, 'out', o)) FROM (SELECT state, count(*) n, max(output::text) o FROM pgboss.job WHERE name = 'bill-run' GROUP BY 1) x) AS jobs,
                (SELECT json_agg(json_build_object('pid', pid, 'app', application_name, 'w', wait_event, 'b', pg_blocking_pids(pid), 'st', state, 'q', left(query, 80))) FROM pg_stat_activity WHERE datname = current_database() AND state <> 'idle') AS activity,
                (SELECT json_agg(json_build_object('pid', pid, 't', locktype, 'm', mode, 'g', granted, 'rel', relation::regclass::text, 'tup', tuple, 'page', page)) FROM pg_locks WHERE locktype IN ('tuple', 'transactionid') OR NOT granted) AS locks`,
      );
      throw new Error(
        `${err.message}: ${smtp.received.length} mails, ${smsc.submits.length} SMS, ${JSON.stringify(state.rows[0])}\n` +
          jobs.map((j) => j.output.slice(-3000)).join('\n----\n'),
      );
    });
    // Which jobs process is billing: its connection waits for the test's lock.
    const holder = await waitFor(
      async () => {
        const { rows } = await db.pool.query<{ app: string }>(
          `SELECT application_name AS app FROM pg_stat_activity
            WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%FOR UPDATE OF a%'`,
        );
        const pid = Number(rows[0]?.app.split('/').at(-1));
        return jobs.find((j) => j.proc?.pid === pid);
      },
      20_000,
      'a jobs process waiting on the locked account',
    );
    const before = (await billRunProgress(db.pool, runId))!;
    expect(before.status).toBe('running');
    expect(before.processed).toBeGreaterThanOrEqual(BLOCK_AT - 20);
    expect(before.processed).toBeLessThan(N);

    await holder.kill9();
    await blocker.query('ROLLBACK');
    const survivor = jobs.find((j) => j !== holder)!;
    const done = await waitFor(
      async () => {
        const r = (await billRunProgress(db.pool, runId))!;
        if (!survivor.alive) throw new Error(`the other jobs process exited:\n${survivor.output}`);
        return r.status === 'done' ? r : undefined;
      },
      30_000,
      'the other jobs process to finish the run',
    );
    expect(done).toMatchObject({ total: N, processed: N, failed: 0 });
    // Handed over by the stalled-run check (logged by whichever process ran it; the survivor
    // may already have joined before the kill if the holder sat on the lock long enough).
    expect(jobs.flatMap((j) => j.logLines(/bill run stalled/)).length).toBeGreaterThanOrEqual(1);
  } finally {
    await blocker.end();
  }

  // One bill per account and period, one ledger posting per bill, whatever the schedule did.
  const bills = await db.pool.query<{ bills: number; accounts: number; txns: number }>(
    `SELECT (SELECT count(*)::int FROM bills) AS bills,
            (SELECT count(DISTINCT (account_id, period_start))::int FROM bills) AS accounts,
            (SELECT count(*)::int FROM ledger_transactions WHERE kind = 'bill') AS txns`,
  );
  expect(bills.rows[0]).toEqual({ bills: N, accounts: N, txns: N });

  // One notice per bill and channel for the households with contacts, each sent once.
  await waitFor(
    async () => {
      const { rows } = await db.pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM deliveries WHERE status = 'sent'`,
      );
      return rows[0]!.n >= 2 * CONTACTS;
    },
    20_000,
    'every notice sent',
  );
  const deliveries = await db.pool.query<{ channel: string; n: number; recipients: number }>(
    `SELECT d.channel, count(*)::int AS n, count(DISTINCT d.recipient)::int AS recipients
       FROM deliveries d JOIN alerts a ON a.id = d.alert_id WHERE a.type = 'bill_ready' GROUP BY 1 ORDER BY 1`,
  );
  expect(deliveries.rows).toEqual([
    { channel: 'email', n: CONTACTS, recipients: CONTACTS },
    { channel: 'sms', n: CONTACTS, recipients: CONTACTS },
  ]);
  const mailed = smtp.received.map((m) => m.to.join(','));
  expect(new Set(mailed).size).toBe(CONTACTS);
  expect(mailed).toHaveLength(CONTACTS);
  const texted = smsc.submits.map((s) => s.destination);
  expect(new Set(texted).size).toBe(CONTACTS);
  expect(texted).toHaveLength(CONTACTS);

  // The daily collection: both processes asked for a pass at start (a singleton queue runs
  // them one after the other); one version per area and day.
  await waitFor(
    async () =>
      (
        await db.pool.query(
          `SELECT 1 FROM pgboss.job WHERE name = 'collection.schedule' AND state = 'completed'`,
        )
      ).rowCount,
    20_000,
    'a collection pass',
  );
  const collection = await db.pool.query<{ days: number; runs: number; versions: number }>(
    `SELECT count(DISTINCT day)::int AS days, count(*)::int AS runs, max(version)::int AS versions
       FROM collection_runs WHERE area_id = 'A-ROLES'`,
  );
  expect(collection.rows[0]!.days).toBeGreaterThanOrEqual(1);
  expect(collection.rows[0]!.runs).toBe(collection.rows[0]!.days);
  expect(collection.rows[0]!.versions).toBe(1);

  // The tickers ran (in whichever process): stately queues, one job queued and one running.
  const ticked = await db.pool.query<{ name: string }>(
    `SELECT DISTINCT name FROM pgboss.job WHERE name = ANY($1::text[]) AND state = 'completed' ORDER BY 1`,
    [['bill-runs.resume', 'collection.schedule', 'firmware.tick', 'outages.sweep']],
  );
  expect(ticked.rows.map((r) => r.name)).toEqual([
    'bill-runs.resume',
    'collection.schedule',
    'firmware.tick',
    'outages.sweep',
  ]);
}, 90_000);

it('jobs processes starting together create new pg-boss queues without a deadlock', async () => {
  const fresh = await createTestDb();
  try {
    const a = await startBoss(fresh.pool, { supervise: false, schedule: false });
    const b = await startBoss(fresh.pool, { supervise: false, schedule: false });
    const names = Array.from({ length: 20 }, (_, i) => `roles.q${i}`);
    // What two processes do at their first start (or a release that adds queues): pg-boss's
    // create_queue alone deadlocks here within a few queues.
    const both = await Promise.allSettled(
      [a, b].map(async (s) => {
        for (const name of names) await s.boss.createQueue(name, { name, policy: 'stately' });
      }),
    );
    expect(both.map((r) => (r.status === 'rejected' ? (r.reason as Error).message : 'ok'))).toEqual([
      'ok',
      'ok',
    ]);
    expect((await a.boss.getQueues()).filter((q) => q.name.startsWith('roles.q'))).toHaveLength(names.length);
    await a.stop(5_000);
    await b.stop(5_000);
  } finally {
    await fresh.drop();
  }
}, 60_000);
