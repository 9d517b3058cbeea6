import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { FastifyInstance } from 'fastify';
// saxes (jsdom's XML parser) is a strict, namespace-aware parser: a malformed feed throws.
import { SaxesParser } from 'saxes';
import { localMidnight } from '@kilowire/protocol';
import { localTimeParameters } from '../src/extracts/green-button.ts';
import { as, buildWorld, login, testApi, type World } from './support/api.ts';
import { createTestDb, type TestDb } from './support/db.ts';

/**
 * Green Button (ESPI Atom XML) for one meter: a well-formed feed whose interval values
 * are the stored readings, one IntervalBlock per local day (25 hours on the day the
 * clocks go back), and only for the household itself and its supplier.
 */
let db: TestDb;
let app: FastifyInstance;
let w: World;
const c: Record<string, string> = {};
const ESPI = 'http://naesb.org/espi';

/** A parsed element: namespace URI, local name, children and text. */
interface El {
  uri: string;
  name: string;
  children: El[];
  text: string;
}

function parseXml(xml: string): El {
  const parser = new SaxesParser({ xmlns: true });
  const root: El = { uri: '', name: '#document', children: [], text: '' };
  const stack: El[] = [root];
  parser.on('opentag', (t) => {
    const el: El = { uri: t.uri ?? '', name: t.local ?? t.name, children: [], text: '' };
    stack[stack.length - 1]!.children.push(el);
    stack.push(el);
  });
  parser.on('text', (t) => {
    stack[stack.length - 1]!.text += t;
  });
  parser.on('closetag', () => void stack.pop());
  parser.on('error', (e) => {
    throw e;
  });
  parser.write(xml).close();
  return root.children[0]!;
}

/** Every descendant of `el` named `name` in the ESPI namespace, in document order. */
function all(el: El, name: string): El[] {
  const out: El[] = [];
  const walk = (e: El) => {
    for (const ch of e.children) {
      if (ch.uri === ESPI && ch.name === name) out.push(ch);
      walk(ch);
    }
  };
  walk(el);
  return out;
}
const field = (el: El, n: string) => all(el, n)[0]?.text;

beforeAll(async () => {
  db = await createTestDb();
  w = await buildWorld(db.pool);
  // KW1A: every half-hour from local 2026-10-24 to 2026-10-26 inclusive (the clocks go back
  // on the 25th): wh = 10 + the interval's index; one estimated interval. And a reading the
  // day after, which must not appear.
  const from = localMidnight('2026-10-24', 'Europe/London');
  const to = localMidnight('2026-10-27', 'Europe/London');
  await db.pool.query(
    `INSERT INTO interval_readings (meter_id, ts, wh, flags)
     SELECT $1::int, to_timestamp(t), 10 + ((t - $2::bigint) / 1800)::int, CASE WHEN t = $2::bigint + 1800 THEN 1 ELSE 0 END
       FROM generate_series($2::bigint, $3::bigint - 1800, 1800) t
     UNION ALL SELECT $1::int, to_timestamp($3::bigint), 99999, 0`,
    [w.h1A.meterId, from, to],
  );
  app = await testApi(db.pool);
  for (const k of ['h1A', 'h2A', 'h1B', 'sup1', 'agent1', 'sup2', 'opA', 'admin'] as const)
    c[k] = await login(app, w.login[k]);
}, 60_000);
afterAll(async () => {
  await app?.close();
  await db?.drop();
});

const get = (cookie: string, url: string) => app.inject(as(cookie, { method: 'GET', url }));
const URL = '/api/meters/KW1A/green-button?from=2026-10-24&to=2026-10-26';

describe('the feed', () => {
  test('parses, and its values are the stored readings, day by day', async () => {
    const r = await get(c.h1A!, URL);
    expect(r.statusCode, r.body).toBe(200);
    expect(r.headers['content-type']).toBe('application/atom+xml; charset=utf-8');
    expect(r.headers['content-disposition']).toBe(
      'attachment; filename="green-button-KW1A-2026-10-24-2026-10-26.xml"',
    );
    const doc = parseXml(r.body);
    expect([doc.uri, doc.name]).toEqual(['http://www.w3.org/2005/Atom', 'feed']);
    expect(all(doc, 'UsagePoint')).toHaveLength(1);
    expect(all(doc, 'MeterReading')).toHaveLength(1);
    const rt = all(doc, 'ReadingType')[0]!;
    expect(field(rt, 'uom')).toBe('72');
    expect(field(rt, 'powerOfTenMultiplier')).toBe('0');
    expect(field(rt, 'intervalLength')).toBe('1800');
    const ltp = all(doc, 'LocalTimeParameters')[0]!;
    expect(field(ltp, 'tzOffset')).toBe('0');
    expect(field(ltp, 'dstOffset')).toBe('3600');

    const blocks = all(doc, 'IntervalBlock');
    expect(blocks).toHaveLength(3);
    // 48, 50 (clocks back) and 48 intervals; durations 24, 25 and 24 hours.
    expect(blocks.map((b) => all(b, 'IntervalReading').length)).toEqual([48, 50, 48]);
    expect(blocks.map((b) => Number(field(all(b, 'interval')[0]!, 'duration')))).toEqual([
      86_400, 90_000, 86_400,
    ]);

    const readings = all(doc, 'IntervalReading').map((ir) => ({
      start: Number(field(ir, 'start')),
      value: Number(field(ir, 'value')),
      quality: field(ir, 'quality') ?? null,
    }));
    const stored = await db.pool.query<{ t: number; wh: number; flags: number }>(
      `SELECT extract(epoch FROM ts)::bigint AS t, wh, flags FROM interval_readings
        WHERE meter_id = $1 AND ts < to_timestamp($2) ORDER BY ts`,
      [w.h1A.meterId, localMidnight('2026-10-27', 'Europe/London')],
    );
    expect(readings.map((x) => [x.start, x.value])).toEqual(stored.rows.map((s) => [s.t, s.wh]));
    expect(readings.reduce((a, x) => a + x.value, 0)).toBe(stored.rows.reduce((a, s) => a + s.wh, 0));
    expect(readings.filter((x) => x.quality !== null)).toEqual([
      { start: localMidnight('2026-10-24', 'Europe/London') + 1800, value: 11, quality: '9' },
    ]);
    expect(r.body).not.toContain('99999');
  });

  test('the supplier gets the same file; the range is bounded and checked', async () => {
    const s = await get(c.agent1!, URL);
    expect(s.statusCode).toBe(200);
    expect(s.body.length).toBeGreaterThan(1000);
    expect(
      (await get(c.h1A!, '/api/meters/KW1A/green-button?from=2025-01-01&to=2026-03-01')).statusCode,
    ).toBe(400);
    expect(
      (await get(c.h1A!, '/api/meters/KW1A/green-button?from=2026-10-02&to=2026-10-01')).statusCode,
    ).toBe(400);
    expect((await get(c.h1A!, '/api/meters/KW1A/green-button?from=2026-10-02')).statusCode).toBe(400);
  });

  test('ESPI DST rules for London and New York', () => {
    const t = Date.UTC(2026, 0, 1) / 1000;
    // Last Sunday of March / October at 01:00 standard time: on or before the 31st.
    expect(localTimeParameters('Europe/London', t)).toEqual({
      tzOffset: 0,
      dstOffset: 3600,
      dstStartRule: '35FE1000',
      dstEndRule: 'A5FE1000',
    });
    // Second Sunday of March at 02:00, first Sunday of November at 01:00 standard time.
    expect(localTimeParameters('America/New_York', t)).toMatchObject({
      tzOffset: -18_000,
      dstOffset: 3600,
      dstStartRule: '328E2000',
      dstEndRule: 'B21E1000',
    });
    expect(localTimeParameters('Asia/Tokyo', t)).toMatchObject({ tzOffset: 32_400, dstOffset: 0 });
  });
});

describe('scope', () => {
  test("another household gets 404 for household A's meter", async () => {
    for (const who of [c.h2A!, c.h1B!]) {
      const r = await get(who, URL);
      expect(r.statusCode).toBe(404);
      expect(r.body).not.toContain('IntervalReading');
    }
  });
  test('supplier 2 gets 404; operators and administrators 403', async () => {
    expect((await get(c.sup2!, URL)).statusCode).toBe(404);
    expect((await get(c.opA!, URL)).statusCode).toBe(403);
    expect((await get(c.admin!, URL)).statusCode).toBe(403);
  });
});
