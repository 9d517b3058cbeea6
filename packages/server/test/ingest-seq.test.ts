import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { advanceSeq } from '../src/readings/ingest.ts';
import { createTestDb, type TestDb } from './support/db.ts';

/**
 * The gateway folds committed sequence numbers into each meter's watermark in JS (one plain
 * UPDATE per batch); kw_advance_seq is the same rule in SQL (the stored function the schema
 * keeps). Both must agree on every shape: no gap, gaps, duplicates, numbers at or below upTo.
 */
let db: TestDb;
beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => {
  await db?.drop();
});

/** A small deterministic generator, so a failure can be replayed. */
function rng(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1_103_515_245 + 12_345) % 2_147_483_648;
    return x / 2_147_483_648;
  };
}

describe('advanceSeq', () => {
  it('agrees with kw_advance_seq on 500 random watermarks and batches', async () => {
    const r = rng(11);
    const cases: { upto: number; above: number[]; seqs: number[] }[] = [
      { upto: 0, above: [], seqs: [1, 2, 3] },
      { upto: 5, above: [], seqs: [6, 8] },
      { upto: 5, above: [7, 9], seqs: [6, 8] },
      { upto: 5, above: [], seqs: [3, 5] },
      { upto: 0, above: [], seqs: [2, 2, 1] },
    ];
    while (cases.length < 500) {
      const upto = Math.floor(r() * 20);
      const above = [
        ...new Set(Array.from({ length: Math.floor(r() * 4) }, () => upto + 2 + Math.floor(r() * 10))),
      ].sort((a, b) => a - b);
      const seqs = Array.from({ length: 1 + Math.floor(r() * 6) }, () =>
        Math.max(1, upto - 3 + Math.floor(r() * 12)),
      );
      cases.push({ upto, above, seqs });
    }
    const { rows } = await db.pool.query<{ i: number; upto: number; above: number[] }>(
      `SELECT c.i, (kw_advance_seq(c.upto, c.above::bigint[], c.seqs::bigint[])).new_upto AS upto,
              (kw_advance_seq(c.upto, c.above::bigint[], c.seqs::bigint[])).new_above AS above
         FROM unnest($1::int[], $2::bigint[], $3::text[], $4::text[]) WITH ORDINALITY AS c(i0, upto, above, seqs, i)
        ORDER BY c.i`,
      [
        cases.map((_, i) => i),
        cases.map((c) => c.upto),
        cases.map((c) => `{${c.above.join(',')}}`),
        cases.map((c) => `{${c.seqs.join(',')}}`),
      ],
    );
    expect(rows).toHaveLength(cases.length);
    const js = cases.map((c) => advanceSeq(c.upto, c.above, c.seqs));
    expect(js).toEqual(rows.map((x) => ({ upto: x.upto, above: x.above })));
    // The rule itself, on the hand-written cases.
    expect(js.slice(0, 5)).toEqual([
      { upto: 3, above: [] },
      { upto: 6, above: [8] },
      { upto: 9, above: [] },
      { upto: 5, above: [] },
      { upto: 2, above: [] },
    ]);
  });
});
