import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { FLEET_SORTS, type FleetItem, type FleetResponse, type MeterOverview } from '@kilowire/contract';
import { createHousehold } from '../src/accounts/repo.ts';
import { hashPassword } from '../src/auth/passwords.ts';
import { createTestDb, type TestDb } from './support/db.ts';
import { PASSWORD, as, buildWorld, login, testApi, type World } from './support/api.ts';

/**
 * The fleet table and the staff meter page through the API, against a small fleet whose
 * every field is known: search by each field, each filter and its count checked against a
 * direct SQL count, every sort paged to the end (nothing lost, nothing twice, in order), the
 * CSV export, and who sees what.
 */
let db: TestDb;
let app: FastifyInstance;
let w: World;
const c = {} as Record<'sup1' | 'agent1' | 'sup2' | 'opA' | 'admin' | 'h1A', string>;
let tariffA = 0;
let tariffB = 0;

const get = (cookie: string, url: string) => app.inject(as(cookie, { method: 'GET', url }));
const fleet = async (cookie: string, query: string): Promise<FleetResponse> => {
  const r = await get(cookie, `/api/fleet?${query}`);
  expect(r.statusCode, r.body).toBe(200);
  return JSON.parse(r.body) as FleetResponse;
};
const serials = (r: FleetResponse) => r.items.map((i) => i.serial).sort();
/** Every row of a query, following cursors. */
async function all(cookie: string, query: string, limit = 7): Promise<FleetItem[]> {
  const out: FleetItem[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < 100; i++) {
    const r = await fleet(cookie, `${query}&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
    out.push(...r.items);
    cursor = r.nextCursor;
    if (!cursor) return out;
  }
  throw new Error('paging did not end');
}
/** Serials of supplier 1's active meters satisfying a SQL condition over m and c (direct, no builder). */
async function sqlSerials(cond: string, params: unknown[] = []): Promise<string[]> {
  const { rows } = await db.pool.query<{ serial: string }>(
    `SELECT m.serial FROM meters m LEFT JOIN accounts a ON a.id = m.account_id LEFT JOIN consumers c ON c.id = a.consumer_id
      WHERE m.supplier_id = $1 AND m.status = 'active' AND (${cond}) ORDER BY m.serial`,
    [w.sup1, ...params],
  );
  return rows.map((r) => r.serial).sort();
}

const PEOPLE: [string, string, string, string][] = [
  // name, postcode, address, serial
  ['Alice Smith', 'SW1A 1AA', '10 Downing Street, London', 'KWF001'],
  ['Bob Smithers', 'SW1A 2BB', '1 Acacia Avenue, London', 'KWF002'],
  ['alan turing', 'M1 1AE', '2 Bletchley Road, Manchester', 'KWF003'],
  ['Carol "CJ" Jones, Jr', 'EH1 1YZ', '5 Royal Mile, Edinburgh', 'KWF004'],
  ['=HYPERLINK("x")', 'CF10 1AA', '7 Castle Street, Cardiff', 'KWF005'],
  ['Zoë Ångström', 'BT1 1AA', '9 Donegall Place, Belfast', 'KWF006'],
  ['Dave Jones', 'SW1A 3CC', '3 Acacia Avenue, London', 'KWF007'],
  ['Erin Stone', 'LS1 4AP', '8 Park Row, Leeds', 'KWF008'],
  ['Frank Smith', 'LS2 9JT', '12 Woodhouse Lane, Leeds', 'KWF009'],
  ['Grace Hopper', 'OX1 2JD', '4 Broad Street, Oxford', 'KWF010'],
  ['Hal Smith', 'OX1 3BQ', '6 High Street, Oxford', 'KWF011'],
  ['Ivy Green', 'CB2 1TN', '1 Trinity Street, Cambridge', 'KWF012'],
];

beforeAll(async () => {
  db = await createTestDb();
  w = await buildWorld(db.pool);
  app = await testApi(db.pool);
  const passwordHash = await hashPassword(PASSWORD);
  for (const [i, [name, postcode, address, serial]] of PEOPLE.entries()) {
    await createHousehold(db.pool, {
      loginId: `CF${String(i + 1).padStart(4, '0')}`,
      password: PASSWORD,
      passwordHash,
      name,
      postcode,
      address,
      vulnerable: i % 4 === 1,
      supplierId: w.sup1,
      mode: i % 3 === 0 ? 'prepayment' : 'credit',
      meter: { serial, areaId: i % 2 ? 'A' : 'B' },
    });
  }
  // Known state per meter: relay, firmware, last seen (some never), credit (some none).
  await db.pool.query(
    `UPDATE meters SET relay = (ARRAY['connected','disconnected','armed'])[1 + id % 3],
            firmware_version = CASE WHEN id % 2 = 0 THEN '1.2.0' ELSE '1.3.0' END,
            last_seen_at = CASE WHEN id % 5 = 0 THEN NULL ELSE now() - (id * interval '7 hours') END,
            credit_minor = CASE WHEN mode = 'prepayment' THEN (id * 137) % 5000 - 1000 END`,
  );
  // A provisioned meter on no account yet: in the fleet, with no household.
  await db.pool.query(
    `INSERT INTO meters (serial, supplier_id, area_id, credential_hash, relay) VALUES ('KWF099', $1, 'A', 'x', 'connected')`,
    [w.sup1],
  );
  // A decommissioned meter: not in the fleet.
  await db.pool.query(
    `INSERT INTO meters (serial, supplier_id, area_id, credential_hash, status, decommissioned_at)
     VALUES ('KWF098', $1, 'A', 'x', 'decommissioned', now())`,
    [w.sup1],
  );
  const id = async (s: string) =>
    (await db.pool.query<{ id: number }>('SELECT id FROM meters WHERE serial = $1', [s])).rows[0]!.id;
  // Tamper cases: two open (one investigating), one resolved (does not count).
  for (const [s, status] of [
    ['KWF002', 'open'],
    ['KWF005', 'investigating'],
  ] as const)
    await db.pool.query(`INSERT INTO tamper_cases (meter_id, supplier_id, status) VALUES ($1, $2, $3)`, [
      await id(s),
      w.sup1,
      status,
    ]);
  await db.pool.query(
    `INSERT INTO tamper_cases (meter_id, supplier_id, status, resolved_at) VALUES ($1, $2, 'resolved', now())`,
    [await id('KWF003'), w.sup1],
  );
  // VEE: two findings to review on one meter, one reviewed finding on another (does not count).
  await db.pool.query(
    `INSERT INTO vee_issues (meter_id, ts, rule, needs_review) VALUES
       ($1, now() - interval '1 day', 'spike', true), ($1, now() - interval '2 days', 'sum_check', true),
       ($2, now() - interval '1 day', 'spike', false), ($3, now() - interval '1 day', 'gap', true)`,
    [await id('KWF004'), await id('KWF006'), await id('KWF010')],
  );
  // Tariffs: A today for most, B today for a few, and a future move to B that is not today's.
  const t = async (code: string) =>
    (
      await db.pool.query<{ id: number }>(
        `INSERT INTO tariffs (supplier_id, code, name, structure) VALUES ($1, $2, $3, 'flat') RETURNING id`,
        [w.sup1, code, `Tariff ${code}`],
      )
    ).rows[0]!.id;
  tariffA = await t('A');
  tariffB = await t('B');
  await db.pool.query(
    `INSERT INTO meter_tariffs (meter_id, from_day, tariff_id)
     SELECT m.id, current_date - 30, CASE WHEN m.id % 4 = 0 THEN $2::int ELSE $1::int END
       FROM meters m WHERE m.supplier_id = $3 AND m.account_id IS NOT NULL`,
    [tariffA, tariffB, w.sup1],
  );
  await db.pool.query(
    `INSERT INTO meter_tariffs (meter_id, from_day, tariff_id) VALUES ($1, current_date + 5, $2)`,
    [await id('KWF001'), tariffB],
  );
  for (const k of ['sup1', 'agent1', 'sup2', 'opA', 'admin', 'h1A'] as const)
    c[k] = await login(app, w.login[k]);
}, 60_000);

afterAll(async () => {
  await app?.close();
  await db?.drop();
});

describe('search', () => {
  test.each([
    [
      'serial prefix',
      'KWF00',
      ['KWF001', 'KWF002', 'KWF003', 'KWF004', 'KWF005', 'KWF006', 'KWF007', 'KWF008', 'KWF009'],
    ],
    ['serial prefix, lower case', 'kwf01', ['KWF010', 'KWF011', 'KWF012']],
    ['consumer ID', 'CF0003', ['KWF003']],
    ['consumer ID prefix', 'cf001', ['KWF010', 'KWF011', 'KWF012']],
    ['name prefix, any case', 'ALA', ['KWF003']],
    ['name prefix over two words', 'bob smi', ['KWF002']],
    ['surname (a word of the name)', 'smith', ['KWF001', 'KWF002', 'KWF009', 'KWF011']],
    ['postcode prefix', 'sw1a', ['KWF001', 'KWF002', 'KWF007']],
    ['postcode with its space', 'OX1 3', ['KWF011']],
    ['address words', 'acacia aven', ['KWF002', 'KWF007']],
    ['town', 'leeds', ['KWF008', 'KWF009']],
    ['accents', 'zoë', ['KWF006']],
    ['LIKE wildcards are literal', '%', []],
    ['nothing', 'qqqqq', []],
  ])('%s: %s', async (_what, q, expected) => {
    const r = await fleet(c.sup1, `q=${encodeURIComponent(q)}`);
    expect(serials(r)).toEqual(expected);
    expect(r.total).toBe(expected.length);
    expect(r.counts.all).toBe(expected.length);
  });

  test('a row carries what the table shows', async () => {
    const r = await fleet(c.sup1, 'q=KWF002');
    const i = r.items[0]!;
    expect(i).toMatchObject({
      serial: 'KWF002',
      consumer: { name: 'Bob Smithers', consumerId: 'CF0002' },
      postcode: 'SW1A 2BB',
      mode: 'credit',
      vulnerable: true,
      openCase: true,
      reviewFindings: 0,
    });
    expect(i.tariff?.name).toMatch(/^Tariff [AB]$/);
    expect((await fleet(c.sup1, 'q=KWF004')).items[0]!.reviewFindings).toBe(2);
    // Today's tariff, not the one decided for next week.
    const first = (await fleet(c.sup1, 'q=KWF001')).items[0]!;
    const today = await db.pool.query<{ tariff_id: number }>(
      `SELECT tariff_id FROM meter_tariffs mt JOIN meters m ON m.id = mt.meter_id
        WHERE m.serial = 'KWF001' AND from_day <= current_date ORDER BY from_day DESC LIMIT 1`,
    );
    expect(first.tariff?.id).toBe(today.rows[0]!.tariff_id);
  });
});

describe('filters and their counts match a direct SQL count', () => {
  const stale24 = () => new Date(Date.now() - 24 * 3_600_000).toISOString();
  const cases: [string, string, () => [string, unknown[]]][] = [
    ['mode=credit', 'mode=credit', () => [`m.mode = 'credit'`, []]],
    ['mode=prepayment', 'mode=prepayment', () => [`m.mode = 'prepayment'`, []]],
    ['relay=disconnected', 'relay=disconnected', () => [`m.relay = 'disconnected'`, []]],
    ['relay=armed', 'relay=armed', () => [`m.relay = 'armed'`, []]],
    ['firmware', 'firmware=1.3.0', () => [`m.firmware_version = '1.3.0'`, []]],
    ['openCase', 'openCase=true', () => [`m.serial IN ('KWF002', 'KWF005')`, []]],
    ['no open case', 'openCase=false', () => [`m.serial NOT IN ('KWF002', 'KWF005')`, []]],
    ['veeFindings', 'veeFindings=true', () => [`m.serial IN ('KWF004', 'KWF010')`, []]],
    ['vulnerable', 'vulnerable=true', () => [`c.vulnerable`, []]],
    ['not vulnerable', 'vulnerable=false', () => [`c.vulnerable IS NOT TRUE`, []]],
    ['staleHours=24', 'staleHours=24', () => [`m.last_seen_at IS NULL OR m.last_seen_at < $2`, [stale24()]]],
    [
      'lastSeenBefore',
      `lastSeenBefore=${encodeURIComponent('2026-01-01T00:00:00Z')}`,
      () => [`m.last_seen_at IS NULL OR m.last_seen_at < '2026-01-01T00:00:00Z'`, []],
    ],
    [
      'two filters and a search',
      'q=smith&mode=credit',
      () => [`m.mode = 'credit' AND m.serial IN ('KWF001', 'KWF002', 'KWF009', 'KWF011')`, []],
    ],
  ];
  test.each(cases)('%s', async (_n, query, cond) => {
    const [sql, params] = cond();
    const expected = await sqlSerials(sql, params);
    expect(expected.length, 'the fixture exercises the filter').toBeGreaterThan(0);
    const rows = await all(c.sup1, query);
    expect(rows.map((i) => i.serial).sort()).toEqual(expected);
    expect((await fleet(c.sup1, query)).total).toBe(expected.length);
  });

  test("tariff filter: today's tariff", async () => {
    for (const t of [tariffA, tariffB]) {
      const expected = await sqlSerials(
        `(SELECT tariff_id FROM meter_tariffs mt WHERE mt.meter_id = m.id AND from_day <= current_date
           ORDER BY from_day DESC LIMIT 1) = $2`,
        [t],
      );
      const rows = await all(c.sup1, `tariffId=${t}`);
      expect(rows.map((i) => i.serial).sort()).toEqual(expected);
    }
  });

  test('counts per filter value within the search', async () => {
    for (const q of ['', 'q=smith', 'q=leeds']) {
      const search = q
        ? `AND m.serial IN (${(await fleet(c.sup1, q)).items.map((i) => `'${i.serial}'`).join(',')})`
        : '';
      const n = async (cond: string, p: unknown[] = []) =>
        (await sqlSerials(`(${cond}) ${search}`, p)).length;
      const r = await fleet(c.sup1, q);
      expect(r.counts.all).toBe(await n('TRUE'));
      expect(r.counts.mode).toEqual({
        credit: await n(`m.mode = 'credit'`),
        prepayment: await n(`m.mode = 'prepayment'`),
      });
      expect(r.counts.relay).toEqual({
        connected: await n(`m.relay = 'connected'`),
        disconnected: await n(`m.relay = 'disconnected'`),
        armed: await n(`m.relay = 'armed'`),
      });
      expect(r.counts.openCase).toBe(await n(`m.serial IN ('KWF002', 'KWF005')`));
      expect(r.counts.veeFindings).toBe(await n(`m.serial IN ('KWF004', 'KWF010')`));
      expect(r.counts.vulnerable).toBe(await n('c.vulnerable'));
      for (const f of r.counts.firmware)
        expect(f.count).toBe(await n('m.firmware_version = $2', [f.version]));
      expect(r.counts.firmware.reduce((s, f) => s + f.count, 0)).toBe(
        await n('m.firmware_version IS NOT NULL'),
      );
      for (const t of r.counts.tariffs)
        expect(t.count).toBe(
          await n(
            `(SELECT tariff_id FROM meter_tariffs mt WHERE mt.meter_id = m.id AND from_day <= current_date
               ORDER BY from_day DESC LIMIT 1) = $2`,
            [t.id],
          ),
        );
      const s24 = r.counts.stale.find((s) => s.hours === 24)!;
      expect(s24.count).toBe(
        await n(`m.last_seen_at IS NULL OR m.last_seen_at < $2`, [
          new Date(Date.now() - 24 * 3_600_000).toISOString(),
        ]),
      );
    }
  });

  test('bad filter values are refused with VALIDATION', async () => {
    for (const q of [
      'mode=other',
      'sort=balance',
      'staleHours=0',
      'openCase=yes',
      'cursor=abc',
      'firmware=a%20b',
    ]) {
      const r = await get(c.sup1, `/api/fleet?${q}`);
      expect(r.statusCode, q).toBe(400);
      expect((JSON.parse(r.body) as { error: { code: string } }).error.code).toBe('VALIDATION');
    }
    // A cursor made for one sort is refused under another.
    const first = await fleet(c.sup1, 'sort=name&limit=2');
    const r = await get(c.sup1, `/api/fleet?sort=serial&limit=2&cursor=${first.nextCursor}`);
    expect(r.statusCode).toBe(400);
  });
});

describe('sorting and paging', () => {
  const keyOf: Record<(typeof FLEET_SORTS)[number], (i: FleetItem) => string | number> = {
    serial: (i) => i.serial,
    name: (i) => (i.consumer?.name ?? '').toLowerCase(),
    postcode: (i) => i.postcode ?? '',
    lastSeen: (i) => (i.lastSeenAt ? Date.parse(i.lastSeenAt) : -Infinity),
    credit: (i) => i.creditMinor ?? -Infinity,
  };
  /** Byte order of UTF-8, as COLLATE "C" compares. */
  const cmp = (a: string | number, b: string | number) =>
    typeof a === 'number' && typeof b === 'number'
      ? a === b
        ? 0
        : a < b
          ? -1
          : 1
      : Buffer.compare(Buffer.from(String(a)), Buffer.from(String(b)));

  test.each(FLEET_SORTS.flatMap((s) => [[s, 'asc'] as const, [s, 'desc'] as const]))(
    'sort=%s dir=%s: every meter once, in order, across pages',
    async (sort, dir) => {
      const rows = await all(c.sup1, `sort=${sort}&dir=${dir}`, 4);
      const expected = await sqlSerials('TRUE');
      expect(rows.map((i) => i.serial).sort()).toEqual(expected);
      expect(new Set(rows.map((i) => i.serial)).size).toBe(rows.length);
      for (let k = 1; k < rows.length; k++) {
        const a = rows[k - 1]!;
        const b = rows[k]!;
        let d = cmp(keyOf[sort](a), keyOf[sort](b));
        if (d === 0) d = cmp(a.serial, b.serial);
        expect(dir === 'asc' ? d : -d, `${a.serial} before ${b.serial}`).toBeLessThan(0);
      }
    },
  );

  test('paging with a filter and a search stays consistent', async () => {
    const rows = await all(c.sup1, 'q=london&sort=name&dir=desc', 1);
    // dave jones, bob smithers, alice smith
    expect(rows.map((i) => i.serial)).toEqual(['KWF007', 'KWF002', 'KWF001']);
  });
});

describe('CSV export', () => {
  test('every row of the selection, escaped, as an attachment', async () => {
    const r = await get(c.sup1, '/api/fleet/export.csv?sort=name');
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/csv/);
    expect(r.headers['content-disposition']).toMatch(/^attachment; filename="fleet-\d{4}-\d{2}-\d{2}\.csv"$/);
    const lines = r.body.split('\r\n');
    expect(lines[0]).toBe(
      'serial,consumer_id,name,postcode,mode,relay,tariff,firmware,last_seen_at,credit_minor,vulnerable,open_case,review_findings',
    );
    expect(lines.at(-1)).toBe('');
    const body = lines.slice(1, -1);
    expect(body.length).toBe((await sqlSerials('TRUE')).length);
    // Quotes doubled, the field quoted because of the comma; a formula is defused.
    expect(body.find((l) => l.startsWith('KWF004,'))).toContain(',"Carol ""CJ"" Jones, Jr",EH1 1YZ,');
    expect(body.find((l) => l.startsWith('KWF005,'))).toContain(`,"'=HYPERLINK(""x"")",CF10 1AA,`);
    expect(body.find((l) => l.startsWith('KWF099,'))).toMatch(/^KWF099,,,,/);
  });

  test('the same filters as the table', async () => {
    const r = await get(c.sup1, '/api/fleet/export.csv?vulnerable=true');
    const got = r.body
      .split('\r\n')
      .slice(1, -1)
      .map((l) => l.split(',')[0])
      .sort();
    expect(got).toEqual(await sqlSerials('c.vulnerable'));
  });

  test('a search exports what the table finds (the search run in SQL, not from kept hits)', async () => {
    const r = await get(c.sup1, '/api/fleet/export.csv?q=smith&sort=postcode&dir=desc');
    const got = r.body
      .split('\r\n')
      .slice(1, -1)
      .map((l) => l.split(',')[0]);
    expect(got).toEqual((await all(c.sup1, 'q=smith&sort=postcode&dir=desc')).map((i) => i.serial));
    expect([...got].sort()).toEqual(['KWF001', 'KWF002', 'KWF009', 'KWF011']);
  });

  test('scope: supplier 2 exports only its own meters', async () => {
    const r = await get(c.sup2, '/api/fleet/export.csv');
    expect(
      r.body
        .split('\r\n')
        .slice(1, -1)
        .map((l) => l.split(',')[0])
        .sort(),
    ).toEqual(['KW2A', 'KW2B']);
  });
});

describe('who sees what', () => {
  test('supplier 2 sees none of supplier 1 meters; agent sees the fleet; admin sees all', async () => {
    expect(serials(await fleet(c.sup2, ''))).toEqual(['KW2A', 'KW2B']);
    expect((await fleet(c.sup2, 'q=KWF')).items).toEqual([]);
    expect((await fleet(c.sup2, 'q=Alice')).counts.all).toBe(0);
    const agent = await all(c.agent1, '', 50);
    expect(agent.map((i) => i.serial).sort()).toEqual(await sqlSerials('TRUE'));
    const admin = await fleet(c.admin, 'limit=200');
    expect(admin.total).toBe((await sqlSerials('TRUE')).length + 2);
  });

  test('operator and household get 403 on the fleet and its export', async () => {
    for (const who of [c.opA, c.h1A])
      for (const url of ['/api/fleet', '/api/fleet/export.csv', '/api/fleet?q=KW1A']) {
        const r = await get(who, url);
        expect(r.statusCode).toBe(403);
        expect(r.body).not.toContain('KW1');
      }
  });
});

describe('meter overview', () => {
  beforeAll(async () => {
    const m = w.h1A.meterId;
    await db.pool.query(
      `UPDATE consumers SET vulnerable = true, vulnerable_note = 'Oxygen concentrator',
      address = '1 Test Street', postcode = 'T1 1TT', email = 'c1a@example.test', mobile = '+447700900111'
      WHERE id = $1`,
      [w.h1A.consumerId],
    );
    await db.pool.query(
      `INSERT INTO daily_rollups (meter_id, day, wh, intervals) VALUES ($1, current_date - 1, 7100, 48), ($1, current_date - 40, 9999, 48)`,
      [m],
    );
    await db.pool.query(
      `INSERT INTO meter_events (meter_id, seq, idx, ts, code, data) VALUES
        ($1, 1, 0, now() - interval '2 hours', 'tamper.cover', NULL),
        ($1, 2, 0, now() - interval '1 hour', 'power.fail', NULL),
        ($1, 3, 0, now() - interval '30 minutes', 'clock.invalid', NULL)`,
      [m],
    );
    await db.pool.query(
      `INSERT INTO alerts (consumer_id, supplier_id, meter_id, type, severity, title, message, dedupe_key)
       VALUES ($1, $2, $3, 'tamper', 'critical', 'Meter cover opened', 'x', 'fleet-test')`,
      [w.h1A.consumerId, w.sup1, m],
    );
    await db.pool.query(`INSERT INTO tamper_cases (meter_id, supplier_id) VALUES ($1, $2)`, [m, w.sup1]);
    await db.pool.query(
      `INSERT INTO vee_issues (meter_id, ts, rule, needs_review) VALUES
      ($1, now() - interval '3 days', 'spike', false), ($1, now() - interval '5 days', 'gap', true)`,
      [m],
    );
    await db.pool.query(
      `UPDATE meters SET firmware_version = '1.3.0', last_status = '{"firmware":{"slot":"B","version":"1.3.0"}}' WHERE id = $1`,
      [m],
    );
    const cmd = await app.inject(
      as(c.sup1, {
        method: 'POST',
        url: `/api/meters/${w.h1A.meterSerial}/commands`,
        headers: { 'content-type': 'application/json' },
        payload: { type: 'supply.off', reason: 'fleet test' },
      }),
    );
    expect(cmd.statusCode, cmd.body).toBe(202);
  });

  test('household, account, usage, timeline, commands with who asked, alerts, VEE, firmware', async () => {
    const r = await get(c.agent1, `/api/meters/${w.h1A.meterSerial}/overview`);
    expect(r.statusCode, r.body).toBe(200);
    const o = JSON.parse(r.body) as MeterOverview;
    expect(o.household).toEqual({
      name: 'Household C1A',
      consumerId: 'C1A',
      address: '1 Test Street',
      postcode: 'T1 1TT',
      vulnerable: true,
      vulnerableNote: 'Oxygen concentrator',
      email: 'c1a@example.test',
      mobile: '+447700900111',
    });
    expect(o.account).toMatchObject({ id: w.h1A.accountId, mode: 'credit', balanceMinor: 0 });
    // The last 30 local days only.
    expect(o.usage.map((u) => u.wh)).toEqual([7100]);
    // Tamper and power in the timeline, newest first; clock chatter is not.
    expect(o.events.map((e) => e.code)).toEqual(['power.fail', 'tamper.cover']);
    expect(o.commands[0]).toMatchObject({
      type: 'supply.off',
      reason: 'fleet test',
      requestedBy: 'Sup1 Staff',
    });
    expect(o.commands[0]!.transitions.length).toBeGreaterThan(0);
    expect(o.alerts.map((a) => a.title)).toEqual(['Meter cover opened']);
    expect(o.vee.map((v) => v.rule)).toEqual(['gap', 'spike']);
    expect(o.openCase?.status).toBe('open');
    expect(o.firmware).toEqual({ version: '1.3.0', runningSlot: 'B', hardwareClass: 'KW-1P-100A' });
  });

  test('another supplier gets 404; operator and household get 403; admin sees it', async () => {
    const url = `/api/meters/${w.h1A.meterSerial}/overview`;
    const sup2 = await get(c.sup2, url);
    expect(sup2.statusCode).toBe(404);
    expect(sup2.body).not.toContain('Household');
    for (const who of [c.opA, c.h1A]) {
      const r = await get(who, url);
      expect(r.statusCode).toBe(403);
      expect(r.body).not.toContain('Household');
    }
    expect((await get(c.admin, url)).statusCode).toBe(200);
  });
});

describe('export of more rows than one batch', () => {
  test('2,502 meters of supplier 2 stream out, each once', async () => {
    await db.pool.query(
      `INSERT INTO meters (serial, supplier_id, area_id, credential_hash)
       SELECT 'KWX' || lpad(g::text, 5, '0'), $1, 'A', 'x' FROM generate_series(1, 2500) g`,
      [w.sup2],
    );
    const r = await get(c.sup2, '/api/fleet/export.csv?sort=lastSeen&dir=desc');
    expect(r.statusCode).toBe(200);
    const got = r.body
      .split('\r\n')
      .slice(1, -1)
      .map((l) => l.split(',')[0]);
    expect(got.length).toBe(2502);
    expect(new Set(got).size).toBe(2502);
  });
});
