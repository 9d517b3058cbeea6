import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DomainEvent } from '../src/events/types.ts';
import { outagesSubscriber } from '../src/outages/detect.ts';
import { createTestDb, type TestDb } from './support/db.ts';
import { buildWorld, type World } from './support/api.ts';

/**
 * A meter whose last gasp never left reports its failure once power is back, in the same
 * message or batch as its restore. The outages subscriber (handed the domain events as the
 * dispatcher hands them, twice, as after a crash) counts the failure for the feeder and the
 * record, but does not tell that household of a cut already over; a household that was off
 * hears of the cut and of its end, each once.
 */
let db: TestDb;
let w: World;

beforeAll(async () => {
  db = await createTestDb();
  w = await buildWorld(db.pool);
  await db.pool.query(`UPDATE meters SET feeder_id = 'A-F1' WHERE area_id = 'A'`);
  await db.pool.query(`UPDATE network_settings SET outage_min_meters = 2 WHERE operator_id = $1`, [w.opA]);
});

afterAll(async () => {
  await db?.drop();
});

let nextId = 1;
const ev = (meterId: number, seq: number, code: string, t: number): DomainEvent => ({
  id: nextId++,
  type: 'meter.event',
  meterId,
  payload: { seq, idx: 0, code, t, data: null },
  createdAt: new Date(),
});

const outageAlerts = async (meterId: number) =>
  (
    await db.pool.query<{ dedupe_key: string }>(
      `SELECT dedupe_key FROM alerts WHERE meter_id = $1 AND type = 'outage' ORDER BY id`,
      [meterId],
    )
  ).rows.map((r) => r.dedupe_key);

describe('a failure reported with its restore', () => {
  it('counts for the incident but tells no household of a cut already over', async () => {
    const sub = outagesSubscriber(db.pool);
    const t = Math.floor(Date.now() / 1000) - 30;
    // h1A's last gasp arrives; h2A's failure only with its restore, in one batch.
    const first = [ev(w.h1A.meterId, 5, 'power.fail', t)];
    const late = [ev(w.h2A.meterId, 8, 'power.fail', t + 1), ev(w.h2A.meterId, 9, 'power.restored', t + 20)];
    for (let i = 0; i < 2; i++) {
      await sub.handle(first);
      await sub.handle(late);
    }
    const inc = await db.pool.query<{ id: string; meters: number; meters_off: number; status: string }>(
      `SELECT id, meters, meters_off, status FROM outage_incidents`,
    );
    expect(inc.rows).toHaveLength(1);
    const id = inc.rows[0]!.id;
    expect(inc.rows[0]).toMatchObject({ meters: 2, meters_off: 1, status: 'detected' });
    expect(await outageAlerts(w.h1A.meterId)).toEqual([`incident:${id}`]);
    expect(await outageAlerts(w.h2A.meterId)).toEqual([]);

    await sub.handle([ev(w.h1A.meterId, 6, 'power.restored_long', t + 600)]);
    expect(await outageAlerts(w.h1A.meterId)).toEqual([`incident:${id}`, `incident:${id}:restored`]);
    expect(await outageAlerts(w.h2A.meterId)).toEqual([]);
    expect(
      (await db.pool.query<{ status: string }>('SELECT status FROM outage_incidents WHERE id = $1', [id]))
        .rows[0]!.status,
    ).toBe('restored');
    // Others may react: one domain event when it opened and one when it was restored.
    const evs = await db.pool.query<{ type: string; incident: number }>(
      `SELECT type, (payload->>'incidentId')::int AS incident FROM domain_events WHERE type LIKE 'incident.%' ORDER BY id`,
    );
    expect(evs.rows).toEqual([
      { type: 'incident.opened', incident: Number(id) },
      { type: 'incident.restored', incident: Number(id) },
    ]);
  });
});
