import type { FastifyInstance, InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addDays, eachDay, localMidnight } from '@kilowire/protocol';
import { collectDay } from '../src/collection/collect.ts';
import { createStaffUser } from '../src/accounts/repo.ts';
import { Gateway } from '../src/gateway/gateway.ts';
import { logger } from '../src/log.ts';
import { issueMonth } from '../src/netbilling/invoices.ts';
import { invoicePreviousMonth } from '../src/netbilling/jobs.ts';
import { invoiceCsv } from '../src/netbilling/documents.ts';
import { invoiceInScope, invoiceLines } from '../src/netbilling/queries.ts';
import type { Actor } from '../src/policies.ts';
import { startTestBroker, type TestBroker } from './support/brokers.ts';
import { startTestGateway } from './support/gateway-world.ts';
import { as, buildWorld, login, PASSWORD, testApi, type World } from './support/api.ts';
import { createTestDb, type TestDb } from './support/db.ts';
import { RawMeter, readingsMsg, waitFor } from './support/world.ts';

/**
 * Network-use invoices over the real pipeline: four households' meters (two suppliers, two
 * operators' areas) publish every half-hour of March 2026 (the spring clock change on the
 * 29th) through the broker, the gateway stores the intervals, the real daily collection
 * (collectDay) takes each local day, and the operators invoice the month through the API.
 * Expected figures are computed here independently, straight from interval_readings in SQL
 * (local time by PostgreSQL's zone rules, bands by CASE), not from the collection rows.
 */
const TZ = 'Europe/London';
const MONTH = '2026-03';
const DAYS = eachDay('2026-03-01', '2026-03-31');
const HH = 1800;
const ADMIN: Actor = { role: 'admin', userId: 0, orgId: null };
/** h1A's half-hours held back on 20 Mar (Friday, 17:00-19:00 local: red band) until after invoicing. */
const LATE_DAY = '2026-03-20';
const LATE_SLOTS = [34, 35, 36, 37];

const RED = { from: '16:00', to: '19:00' };
const V1 = {
  effectiveFrom: '2026-03-01',
  bands: [
    { code: 'red', name: 'Red', rateMilli: 9_876, windows: [RED], weekdaysOnly: true },
    {
      code: 'amber',
      name: 'Amber',
      rateMilli: 3_333,
      windows: [
        { from: '07:00', to: '16:00' },
        { from: '19:00', to: '23:00' },
      ],
      weekdaysOnly: false,
    },
    { code: 'green', name: 'Green', rateMilli: 1_111, windows: [], weekdaysOnly: false },
  ],
  fixedMilliPerDay: 12_345,
  vatBp: 2000,
};
/** New prices from the middle of the month. */
const V2 = {
  ...V1,
  effectiveFrom: '2026-03-16',
  bands: [
    { ...V1.bands[0]!, rateMilli: 11_000 },
    { ...V1.bands[1]!, rateMilli: 4_000 },
    { ...V1.bands[2]!, rateMilli: 1_500 },
  ],
  fixedMilliPerDay: 15_000,
};
const FLAT_B = {
  effectiveFrom: '2026-03-01',
  bands: [{ code: 'all', name: 'All day', rateMilli: 2_500, windows: [], weekdaysOnly: false }],
  fixedMilliPerDay: 10_000,
  vatBp: 2000,
};

let db: TestDb;
let w: World;
let broker: TestBroker;
let gw: Gateway;
let app: FastifyInstance;
const meters: RawMeter[] = [];
const cookies: Record<string, string> = {};

const halfUp = (num: bigint, den: bigint) => Number((num * 2n + den) / (2n * den));
const profile = (day: number, k: number, n: number) =>
  Array.from({ length: n }, (_, i) => 20 + ((i * 13 + day * 7 + k * 29) % 170));

async function api(who: string, opts: InjectOptions) {
  const res = await app.inject(
    as(cookies[who], {
      ...opts,
      headers: { 'content-type': 'application/json', ...(opts.headers ?? {}) },
    }),
  );
  return {
    status: res.statusCode,
    body: res.body,
    json: () => JSON.parse(res.body) as Record<string, unknown>,
  };
}

/**
 * What area A's tariffs charge one supplier for March, from the raw intervals: energy per
 * (version, band), fixed per version from meters × days, VAT on the rounded lines.
 */
async function expectedA(supplierId: number) {
  const { rows } = await db.pool.query<{ v: number; band: string; wh: string }>(
    `WITH x AS (SELECT r.wh, (r.ts AT TIME ZONE $2) AS lt FROM interval_readings r JOIN meters m ON m.id = r.meter_id
                 WHERE m.area_id = 'A' AND m.supplier_id = $1)
     SELECT CASE WHEN lt::date >= '2026-03-16' THEN 2 ELSE 1 END AS v,
            CASE WHEN extract(isodow FROM lt) <= 5 AND lt::time >= '16:00' AND lt::time < '19:00' THEN 'red'
                 WHEN (lt::time >= '07:00' AND lt::time < '16:00') OR (lt::time >= '19:00' AND lt::time < '23:00') THEN 'amber'
                 ELSE 'green' END AS band,
            sum(wh)::bigint AS wh
       FROM x WHERE lt >= '2026-03-01' AND lt < '2026-04-01' GROUP BY 1, 2`,
    [supplierId, TZ],
  );
  const n = (
    await db.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM meters WHERE area_id = 'A' AND supplier_id = $1`,
      [supplierId],
    )
  ).rows[0]!.n;
  let net = 0;
  let wh = 0;
  for (const r of rows) {
    const v = r.v === 1 ? V1 : V2;
    const rate = v.bands.find((b) => b.code === r.band)!.rateMilli;
    net += halfUp(BigInt(r.wh) * BigInt(rate), 1_000_000n);
    wh += Number(r.wh);
  }
  net +=
    halfUp(BigInt(n * 15 * V1.fixedMilliPerDay), 1000n) + halfUp(BigInt(n * 16 * V2.fixedMilliPerDay), 1000n);
  const vat = halfUp(BigInt(net) * 2000n, 10_000n);
  return { net, vat, gross: net + vat, wh, meterDays: n * 31 };
}

async function publishDay(i: number, day: string, k: number, skip: number[] = []) {
  const t0 = localMidnight(day, TZ);
  const n = (localMidnight(addDays(day, 1), TZ) - t0) / HH;
  const whs = profile(i, k, n);
  const msg = readingsMsg(i + 1, t0, whs, 0);
  msg.intervals = msg.intervals.filter((_, j) => !skip.includes(j));
  await meters[k]!.readings(msg);
  return msg.intervals.length;
}

async function intervalCount(): Promise<number> {
  return (await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM interval_readings')).rows[0]!.n;
}

beforeAll(async () => {
  db = await createTestDb();
  w = await buildWorld(db.pool);
  const hh = [w.h1A, w.h2A, w.h1B, w.h2B];
  broker = await startTestBroker(
    db.pool,
    hh.map((h) => ({ id: h.meterSerial, password: h.meterCredential })),
  );
  gw = await startTestGateway(db.pool, broker.url, { clientId: `kw-netbilling-${process.pid}` });
  for (const h of hh) meters.push(await RawMeter.connect(broker.url, h.meterSerial, h.meterCredential));
  // Installed before the month (the world installs them "now"), so every day of March counts.
  await db.pool.query(`UPDATE meters SET created_at = '2026-01-01Z'`);
  let sent = 0;
  for (let k = 0; k < meters.length; k++)
    for (let i = 0; i < DAYS.length; i++)
      sent += await publishDay(i, DAYS[i]!, k, k === 0 && DAYS[i] === LATE_DAY ? LATE_SLOTS : []);
  await waitFor(async () => (await intervalCount()) >= sent, 60_000, 'March stored');
  app = await testApi(db.pool);
  for (const who of ['opA', 'opB', 'sup1', 'sup2', 'agent1', 'admin'] as const)
    cookies[who] = await login(app, w.login[who]);
  // A control-room agent of operator A: reads, never prices or invoices.
  await createStaffUser(db.pool, {
    role: 'operator',
    staffRole: 'agent',
    email: 'agent@opa.test',
    password: PASSWORD,
    orgId: w.opA,
    name: 'OpA Agent',
  });
  cookies.opAgent = await login(app, 'agent@opa.test');
}, 120_000);

afterAll(async () => {
  for (const m of meters) await m.close();
  await app?.close();
  await gw?.stop();
  await broker?.close();
  await db?.drop();
});

describe('network-use invoices from the daily collection', () => {
  let invSup1 = 0;
  let invSup2 = 0;
  let invB = 0;

  it('operator admins keep tariffs: create, a mid-month price version, assign to their own area only', async () => {
    const a = await api('opA', {
      method: 'POST',
      url: '/api/network-tariffs',
      payload: { code: 'DUOS-A', name: 'Area A use of system', version: V1 },
    });
    expect(a.status, a.body).toBe(201);
    const id = a.json().id as number;
    const v2 = await api('opA', { method: 'POST', url: `/api/network-tariffs/${id}/versions`, payload: V2 });
    expect(v2.status, v2.body).toBe(201);
    expect((v2.json().versions as unknown[]).length).toBe(2);
    // Operator A cannot price operator B's area, and B cannot touch A's tariff.
    const wrongArea = await api('opA', {
      method: 'POST',
      url: `/api/network-tariffs/${id}/areas`,
      payload: { areaId: 'B', fromDay: '2026-03-01' },
    });
    expect(wrongArea.status).toBe(404);
    const wrongOp = await api('opB', {
      method: 'POST',
      url: `/api/network-tariffs/${id}/areas`,
      payload: { areaId: 'B', fromDay: '2026-03-01' },
    });
    expect(wrongOp.status).toBe(404);
    const as1 = await api('opA', {
      method: 'POST',
      url: `/api/network-tariffs/${id}/areas`,
      payload: { areaId: 'A', fromDay: '2026-03-01' },
    });
    expect(as1.status, as1.body).toBe(201);
    // Two catch-all bands: refused by the contract.
    const bad = await api('opA', {
      method: 'POST',
      url: `/api/network-tariffs/${id}/versions`,
      payload: { ...V2, effectiveFrom: '2026-05-01', bands: [V1.bands[2], { ...V1.bands[2], code: 'g2' }] },
    });
    expect(bad.status).toBe(400);
    const b = await api('opB', {
      method: 'POST',
      url: '/api/network-tariffs',
      payload: { code: 'DUOS-B', name: 'Area B flat', version: FLAT_B },
    });
    expect(b.status, b.body).toBe(201);
    expect(
      (
        await api('opB', {
          method: 'POST',
          url: `/api/network-tariffs/${b.json().id as number}/areas`,
          payload: { areaId: 'B', fromDay: '2026-02-01' },
        })
      ).status,
    ).toBe(201);
    const list = await api('opA', { method: 'GET', url: '/api/network-tariffs' });
    const body = list.json() as {
      items: { code: string }[];
      areas: { id: string; tariffCode: string | null }[];
    };
    expect(body.items.map((t) => t.code)).toEqual(['DUOS-A']);
    expect(body.areas.map((x) => x.id)).toEqual(['A']);
  });

  it('refuses a month with days not collected yet, naming them', async () => {
    for (const day of DAYS.slice(0, 30)) {
      await collectDay(db.pool, 'A', day, 'cutoff');
      await collectDay(db.pool, 'B', day, 'cutoff');
    }
    const r = await api('opA', {
      method: 'POST',
      url: '/api/network-invoices/issue',
      payload: { month: MONTH },
    });
    expect(r.status).toBe(409);
    expect(r.body).toContain('A 2026-03-31');
    expect((await db.pool.query('SELECT 1 FROM network_invoices')).rowCount).toBe(0);
    await collectDay(db.pool, 'A', '2026-03-31', 'cutoff');
    await collectDay(db.pool, 'B', '2026-03-31', 'cutoff');
  });

  it('invoice totals equal the raw intervals × band rates (a DST month, prices changed mid-month) + meter-days × the fixed charge', async () => {
    const r = await api('opA', {
      method: 'POST',
      url: '/api/network-invoices/issue',
      payload: { month: MONTH },
    });
    expect(r.status, r.body).toBe(200);
    const res = r.json() as { issued: number[]; notes: number[]; unchanged: number };
    expect(res.issued).toHaveLength(2);
    expect(res.notes).toEqual([]);
    const { rows } = await db.pool.query<{
      id: string;
      supplier_id: number;
      net_minor: string;
      vat_minor: string;
      gross_minor: string;
      wh: string;
      meter_days: number;
    }>(`SELECT * FROM network_invoices WHERE operator_id = $1 ORDER BY supplier_id`, [w.opA]);
    expect(rows.map((x) => x.supplier_id)).toEqual([w.sup1, w.sup2]);
    for (const row of rows) {
      const e = await expectedA(row.supplier_id);
      expect({
        net: Number(row.net_minor),
        vat: Number(row.vat_minor),
        gross: Number(row.gross_minor),
        wh: Number(row.wh),
        meterDays: row.meter_days,
      }).toEqual(e);
      expect(e.net).toBeGreaterThan(0);
    }
    invSup1 = Number(rows[0]!.id);
    invSup2 = Number(rows[1]!.id);
    // The spring day's 46 half-hours are all in: the month holds 31 × 48 − 2 per meter.
    const { rows: d } = await db.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM interval_readings r JOIN meters m ON m.id = r.meter_id WHERE m.serial = $1`,
      [w.h2A.meterSerial],
    );
    expect(d[0]!.n).toBe(31 * 48 - 2);
    // Lines: each version's bands and fixed charge in area A, then VAT.
    const lines = await db.pool.query<{ kind: string; band: string | null; version: number | null }>(
      `SELECT kind, band, version FROM network_invoice_lines WHERE invoice_id = $1 ORDER BY line_no`,
      [invSup1],
    );
    expect(lines.rows.map((l) => `${l.kind}:${l.band ?? ''}:${l.version ?? ''}`)).toEqual([
      'energy:red:1',
      'energy:amber:1',
      'energy:green:1',
      'fixed::1',
      'energy:red:2',
      'energy:amber:2',
      'energy:green:2',
      'fixed::2',
      'vat::',
    ]);
    // The ledger: the supplier owes the gross; revenue and VAT are credited; it balances.
    const led = await db.pool.query<{ book: string; s: string }>(
      `SELECT e.book, sum(e.amount_minor)::bigint AS s FROM network_ledger_entries e
         JOIN network_ledger_transactions t ON t.id = e.txn_id WHERE t.ref = $1 GROUP BY e.book ORDER BY e.book`,
      [`netinv:${invSup1}`],
    );
    expect(Object.fromEntries(led.rows.map((x) => [x.book, Number(x.s)]))).toEqual({
      network_revenue: -Number(rows[0]!.net_minor),
      supplier: Number(rows[0]!.gross_minor),
      vat: -Number(rows[0]!.vat_minor),
    });
    // Operator B invoices its own area.
    const b = await api('opB', {
      method: 'POST',
      url: '/api/network-invoices/issue',
      payload: { month: MONTH },
    });
    expect(b.status, b.body).toBe(200);
    invB = (b.json().issued as number[])[0]!;
  });

  it('issuing the month again (by hand or by the schedule) leaves one invoice per supplier', async () => {
    const again = await api('opA', {
      method: 'POST',
      url: '/api/network-invoices/issue',
      payload: { month: MONTH },
    });
    expect(again.json()).toMatchObject({ issued: [], notes: [], unchanged: 2 });
    const both = await Promise.all([
      issueMonth(db.pool, w.opA, MONTH),
      issueMonth(db.pool, w.opA, `${MONTH}-01`, { trigger: 'schedule' }),
    ]);
    for (const x of both) expect(x).toMatchObject({ issued: [], notes: [], unchanged: 2 });
    const sched = await invoicePreviousMonth(db.pool, logger('test'), Date.parse('2026-04-03T07:00:00Z'));
    expect(sched.find((s) => s.operatorId === w.opA)?.result).toMatchObject({ issued: [], unchanged: 2 });
    const n = await db.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM network_invoices WHERE operator_id = $1`,
      [w.opA],
    );
    expect(n.rows[0]!.n).toBe(2);
    expect(
      (await db.pool.query(`SELECT 1 FROM network_ledger_transactions WHERE operator_id = $1`, [w.opA]))
        .rowCount,
    ).toBe(2);
    // Prices of an invoiced month are fixed: a version reaching back into it is refused.
    const t = await db.pool.query<{ id: number }>(`SELECT id FROM network_tariffs WHERE code = 'DUOS-A'`);
    const back = await api('opA', {
      method: 'POST',
      url: `/api/network-tariffs/${t.rows[0]!.id}/versions`,
      payload: { ...V2, effectiveFrom: '2026-03-25' },
    });
    expect(back.status).toBe(409);
  });

  it('late data revises a day (a new collection version); issuing again adds a note for the difference, the invoice stays', async () => {
    const before = await expectedA(w.sup1);
    const t0 = localMidnight(LATE_DAY, TZ);
    const idx = DAYS.indexOf(LATE_DAY);
    const whs = profile(idx, 0, 48);
    const late = readingsMsg(100, t0, whs, 0);
    late.intervals = late.intervals.filter((_, j) => LATE_SLOTS.includes(j));
    await meters[0]!.readings(late);
    await waitFor(
      async () => {
        const { rows } = await db.pool.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM interval_readings WHERE meter_id = $1 AND ts >= to_timestamp($2) AND ts < to_timestamp($3) AND flags & 1 = 0`,
          [w.h1A.meterId, t0, t0 + 48 * HH],
        );
        return rows[0]!.n === 48;
      },
      20_000,
      'late intervals stored',
    );
    const v2 = await collectDay(db.pool, 'A', LATE_DAY, 'late_data');
    expect(v2).toMatchObject({ version: 2, created: true });
    const after = await expectedA(w.sup1);
    expect(after.wh).toBeGreaterThan(before.wh);
    const r = await api('opA', {
      method: 'POST',
      url: '/api/network-invoices/issue',
      payload: { month: MONTH },
    });
    const res = r.json() as { issued: number[]; notes: number[]; unchanged: number };
    expect(res).toMatchObject({ issued: [], unchanged: 1 });
    expect(res.notes).toHaveLength(1);
    const { rows } = await db.pool.query<{
      kind: string;
      supplier_id: number;
      corrects_id: string;
      gross_minor: string;
    }>(`SELECT kind, supplier_id, corrects_id, gross_minor FROM network_invoices WHERE id = $1`, [
      res.notes[0],
    ]);
    const note = rows[0]!;
    expect({ ...note, corrects_id: Number(note.corrects_id) }).toMatchObject({
      kind: 'debit_note',
      supplier_id: w.sup1,
      corrects_id: invSup1,
    });
    const sum = await db.pool.query<{ net: string; gross: string }>(
      `SELECT sum(net_minor)::bigint AS net, sum(gross_minor)::bigint AS gross FROM network_invoices
        WHERE operator_id = $1 AND supplier_id = $2`,
      [w.opA, w.sup1],
    );
    expect({ net: Number(sum.rows[0]!.net), gross: Number(sum.rows[0]!.gross) }).toEqual({
      net: after.net,
      gross: after.gross,
    });
    // The note's PDF says what it corrects and by how much.
    const pdf = await app.inject(
      as(cookies.sup1, { method: 'GET', url: `/api/network-invoices/${res.notes[0]}/pdf` }),
    );
    expect(pdf.statusCode).toBe(200);
    const text = await pdfText(pdf.rawPayload);
    expect(text).toContain(`Debit note ${res.notes[0]}`);
    expect(text).toContain(`Corrects invoice ${invSup1}`);
    // The supplier's balance follows: invoice + note.
    const bal = await api('sup1', { method: 'GET', url: '/api/network-invoices' });
    const balances = bal.json().balances as { operatorId: number; owedMinor: number }[];
    expect(balances.find((x) => x.operatorId === w.opA)?.owedMinor).toBe(after.gross);
  });

  it('the database refuses to change or remove invoices, lines and network ledger rows, and an unbalanced transaction', async () => {
    for (const sql of [
      `UPDATE network_invoices SET gross_minor = gross_minor + 1, net_minor = net_minor + 1 WHERE id = ${invSup1}`,
      `DELETE FROM network_invoices WHERE id = ${invSup1}`,
      `UPDATE network_invoice_lines SET amount_minor = 0 WHERE invoice_id = ${invSup1}`,
      `DELETE FROM network_invoice_lines WHERE invoice_id = ${invSup1}`,
      `TRUNCATE network_invoice_lines CASCADE`,
      `UPDATE network_ledger_entries SET amount_minor = amount_minor * 2`,
      `DELETE FROM network_ledger_transactions`,
      `TRUNCATE network_ledger_entries`,
    ])
      await expect(db.pool.query(sql), sql).rejects.toThrow(/never change|immutable/);
    await expect(
      db.pool
        .query(`WITH t AS (INSERT INTO network_ledger_transactions (operator_id, supplier_id, kind, ref, memo)
                     VALUES (${w.opA}, ${w.sup1}, 'payment', 'netpay:forged', 'x') RETURNING id)
                     INSERT INTO network_ledger_entries (txn_id, book, supplier_id, amount_minor)
                     SELECT id, 'supplier', ${w.sup1}, -100 FROM t`),
    ).rejects.toThrow(/does not balance/);
    const n = await db.pool.query(`SELECT 1 FROM network_invoices WHERE id = ${invSup1}`);
    expect(n.rowCount).toBe(1);
  });

  it('a supplier sees only the invoices it owes; another operator’s or supplier’s invoice is 404', async () => {
    const s1 = (await api('sup1', { method: 'GET', url: '/api/network-invoices' })).json() as {
      items: { id: number; supplierId: number }[];
    };
    expect(s1.items.length).toBeGreaterThanOrEqual(3); // A's invoice and note, B's invoice
    expect(new Set(s1.items.map((i) => i.supplierId))).toEqual(new Set([w.sup1]));
    const s2 = (await api('sup2', { method: 'GET', url: '/api/network-invoices' })).json() as {
      items: { id: number; supplierId: number }[];
    };
    expect(s2.items.map((i) => i.id)).toContain(invSup2);
    expect(new Set(s2.items.map((i) => i.supplierId))).toEqual(new Set([w.sup2]));
    const opA = (await api('opA', { method: 'GET', url: '/api/network-invoices' })).json() as {
      items: { operatorId: number }[];
    };
    expect(new Set(opA.items.map((i) => i.operatorId))).toEqual(new Set([w.opA]));
    for (const [who, id] of [
      ['sup2', invSup1],
      ['opB', invSup1],
      ['opA', invB],
    ] as const) {
      for (const doc of ['pdf', 'lines.csv']) {
        const r = await api(who, { method: 'GET', url: `/api/network-invoices/${id}/${doc}` });
        expect(r.status, `${who} ${doc} ${id}`).toBe(404);
      }
    }
    // Households see none of it.
    const h = await app.inject({
      method: 'GET',
      url: '/api/network-invoices',
      headers: { cookie: await login(app, w.login.h1A) },
    });
    expect(h.statusCode).toBe(403);
  });

  it('the PDF is a real PDF naming the supplier and the total; the CSV lines add up and are formula-defused', async () => {
    const pdf = await app.inject(
      as(cookies.sup1, { method: 'GET', url: `/api/network-invoices/${invSup1}/pdf` }),
    );
    expect(pdf.statusCode).toBe(200);
    expect(pdf.headers['content-type']).toBe('application/pdf');
    const buf = pdf.rawPayload;
    expect(buf.subarray(0, 5).toString()).toBe('%PDF-');
    const text = await pdfText(buf);
    const inv = (
      await db.pool.query<{ gross_minor: string }>(`SELECT gross_minor FROM network_invoices WHERE id = $1`, [
        invSup1,
      ])
    ).rows[0]!;
    const g = Number(inv.gross_minor);
    const total = `£${Math.floor(g / 100)
      .toLocaleString('en-GB')
      .replace(/,/g, '')}.${String(g % 100).padStart(2, '0')}`;
    expect(text).toContain('Supplier One');
    expect(text).toContain('Operator A');
    expect(text).toContain(`Total ${total}`);
    expect(text).toContain('March 2026');
    const csv = await app.inject(
      as(cookies.opA, { method: 'GET', url: `/api/network-invoices/${invSup1}/lines.csv` }),
    );
    expect(csv.statusCode).toBe(200);
    const rows = csv.body.trim().split('\r\n');
    expect(rows[0]).toMatch(/^invoice_id,kind,month,supplier,line/);
    const amounts = rows.slice(1).map((r) => Number(r.split(',').at(-1)));
    expect(amounts.reduce((a, b) => a + b, 0)).toBe(g);
    // A name a spreadsheet would run as a formula is written as text.
    const row = await invoiceInScope(db.pool, ADMIN, invSup1);
    const lines = await invoiceLines(db.pool, invSup1);
    const hostile = invoiceCsv({ ...row!, supplier: '=HYPERLINK("http://x.test","pay")' }, lines);
    expect(hostile.split('\r\n')[1]).toContain(`"'=HYPERLINK(""http://x.test"",""pay"")"`);
  });

  it('an operator admin records a payment once per bank reference; the invoice is paid when covered', async () => {
    const inv = (
      await db.pool.query<{ gross_minor: string }>(`SELECT gross_minor FROM network_invoices WHERE id = $1`, [
        invSup2,
      ])
    ).rows[0]!;
    const amount = Number(inv.gross_minor);
    const body = { supplierId: w.sup2, amountMinor: amount, reference: 'BACS 0042', invoiceId: invSup2 };
    const first = await api('opA', { method: 'POST', url: '/api/network-invoices/payments', payload: body });
    expect(first.status, first.body).toBe(201);
    expect((first.json().balance as { owedMinor: number }).owedMinor).toBe(0);
    const again = await api('opA', { method: 'POST', url: '/api/network-invoices/payments', payload: body });
    expect(again.status).toBe(200);
    expect(again.json().created).toBe(false);
    const clash = await api('opA', {
      method: 'POST',
      url: '/api/network-invoices/payments',
      payload: { ...body, amountMinor: amount + 1 },
    });
    expect(clash.status).toBe(409);
    // Not B's to record against A's invoice; not a supplier's to record at all.
    expect(
      (
        await api('opB', {
          method: 'POST',
          url: '/api/network-invoices/payments',
          payload: { ...body, reference: 'X1' },
        })
      ).status,
    ).toBe(404);
    expect(
      (
        await api('sup2', {
          method: 'POST',
          url: '/api/network-invoices/payments',
          payload: { ...body, reference: 'X2' },
        })
      ).status,
    ).toBe(403);
    const s2 = (await api('sup2', { method: 'GET', url: '/api/network-invoices' })).json() as {
      items: { id: number; status: string; outstandingMinor: number }[];
      balances: { operatorId: number; owedMinor: number; paidMinor: number }[];
    };
    expect(s2.items.find((i) => i.id === invSup2)).toMatchObject({ status: 'paid', outstandingMinor: 0 });
    expect(s2.balances.find((b) => b.operatorId === w.opA)).toMatchObject({
      owedMinor: 0,
      paidMinor: amount,
    });
    const audit = await db.pool.query(`SELECT 1 FROM audit_log WHERE action = 'network_payment.record'`);
    expect(audit.rowCount).toBe(1);
  });

  it("an operator's agent reads tariffs and invoices but may not price, issue or record payments", async () => {
    expect((await api('opAgent', { method: 'GET', url: '/api/network-tariffs' })).status).toBe(200);
    const list = await api('opAgent', { method: 'GET', url: '/api/network-invoices' });
    expect(list.status).toBe(200);
    expect((list.json().items as unknown[]).length).toBeGreaterThan(0);
    const t = await db.pool.query<{ id: number }>(`SELECT id FROM network_tariffs WHERE code = 'DUOS-A'`);
    for (const [url, payload] of [
      [
        '/api/network-tariffs',
        { code: 'AGENT', name: 'Agent', version: { ...V1, effectiveFrom: '2031-01-01' } },
      ],
      [`/api/network-tariffs/${t.rows[0]!.id}/versions`, { ...V2, effectiveFrom: '2031-01-01' }],
      [`/api/network-tariffs/${t.rows[0]!.id}/areas`, { areaId: 'A', fromDay: '2031-01-01' }],
      ['/api/network-invoices/issue', { month: MONTH }],
      [
        '/api/network-invoices/payments',
        { supplierId: w.sup1, amountMinor: 1, reference: 'AGENT', invoiceId: null },
      ],
    ] as const) {
      const r = await api('opAgent', { method: 'POST', url, payload });
      expect(r.status, url).toBe(403);
    }
  });
});

/** The text of a PDF through pdf.js (a real parser). */
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
