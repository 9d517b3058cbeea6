import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DomainEvent } from '../src/events/types.ts';
import { tx } from '../src/db/pool.ts';
import { inActivationWindow, outagesSubscriber, sweepOutages } from '../src/outages/detect.ts';
import { buildWorld, type World } from './support/api.ts';
import { createTestDb, type TestDb } from './support/db.ts';
import { insertImage, seedFleet } from './support/firmware-campaign.ts';

/**
 * A meter rebooting into a new image on purpose is no power cut: from a minute before its
 * planned activation until its confirmation time and a grace are over, its power events do
 * not open or join an incident, nor does its silence. The outage subscriber is handed the
 * domain events as the dispatcher hands them (as in outages-late.test.ts).
 */
let db: TestDb;
let w: World;
let m: { id: number; serial: string; feeder: string }[];

let nextId = 1;
const ev = (meterId: number, seq: number, code: string, t: number): DomainEvent => ({
  id: nextId++,
  type: 'meter.event',
  meterId,
  payload: { seq, idx: 0, code, t, data: null },
  createdAt: new Date(),
});

beforeAll(async () => {
  db = await createTestDb();
  w = await buildWorld(db.pool);
  await db.pool.query(`UPDATE network_settings SET outage_min_meters = 2 WHERE operator_id = $1`, [w.opA]);
  m = await seedFleet(db.pool, { supplierId: w.sup1, areaId: 'A', feeders: ['A-F1'], n: 6, prefix: 'OUT' });
  const image = await insertImage(db.pool, w.sup1, { version: '2.0.0', sequence: 2 });
  const staff = await db.pool.query<{ id: number }>(`SELECT id FROM users WHERE email = $1`, [w.login.sup1]);
  const c = await db.pool.query<{ id: number }>(
    `INSERT INTO firmware_campaigns (supplier_id, image_id, name, target, status, canary_count, wave_size,
            failure_threshold_pct, window_from, window_to, confirm_s, created_by, started_at)
     VALUES ($1, $2, 'reboots', '{"filter": {}}', 'running', 6, 6, 50, '00:00', '23:59', 600, $3, now())
     RETURNING id`,
    [w.sup1, image.id, staff.rows[0]!.id],
  );
  const row = (meterId: number, state: string, at: string, finished: string | null = null) =>
    db.pool.query(
      `INSERT INTO firmware_campaign_meters (campaign_id, meter_id, stage, state, blocks_total, activate_at, finished_at)
       VALUES ($1, $2, 0, $3, 10, now() + $4::interval, now() + $5::interval)`,
      [c.rows[0]!.id, meterId, state, at, finished],
    );
  // m0, m1: rebooting now; m2: confirmed 5 minutes after its activation (still inside
  // confirm_s + grace); m3: planned for an hour from now; m4: cancelled before its instant;
  // m5: activated 20 minutes ago (confirm 600 s + grace 300 s are over).
  await row(m[0]!.id, 'activating', '-10 seconds');
  await row(m[1]!.id, 'activating', '30 seconds');
  await row(m[2]!.id, 'confirmed', '-5 minutes', '-1 minute');
  await row(m[3]!.id, 'activating', '1 hour');
  await row(m[4]!.id, 'cancelled', '10 seconds', '-1 minute');
  await row(m[5]!.id, 'reverted', '-20 minutes', '-5 minutes');
});

afterAll(async () => {
  await db?.drop();
});

describe('planned activations and outage detection', () => {
  it('knows which meters are inside an activation window now', async () => {
    const inside = await tx(db.pool, (c) =>
      inActivationWindow(
        c,
        m.map((x) => x.id),
      ),
    );
    expect([...inside].sort((a, b) => a - b)).toEqual([m[0]!.id, m[1]!.id, m[2]!.id]);
    expect(await tx(db.pool, (c) => inActivationWindow(c, []))).toEqual(new Set());
  });

  it('rebooting meters open no incident; the same events of meters outside a window do', async () => {
    const sub = outagesSubscriber(db.pool);
    const t = Math.floor(Date.now() / 1000) - 5;
    await sub.handle([
      ev(m[0]!.id, 1, 'power.fail', t),
      ev(m[1]!.id, 1, 'power.fail', t),
      ev(m[2]!.id, 1, 'power.fail', t),
    ]);
    await sweepOutages(db.pool);
    const none = await db.pool.query(`SELECT id FROM outage_incidents`);
    expect(none.rows).toEqual([]);

    await sub.handle([ev(m[3]!.id, 1, 'power.fail', t + 1), ev(m[5]!.id, 1, 'power.fail', t + 1)]);
    const inc = await db.pool.query<{ id: string }>(`SELECT id FROM outage_incidents`);
    expect(inc.rows).toHaveLength(1);
    const members = await db.pool.query<{ meter_id: number }>(
      `SELECT meter_id FROM outage_incident_meters WHERE incident_id = $1 ORDER BY meter_id`,
      [inc.rows[0]!.id],
    );
    // The rebooting meters stay out of it even now that their feeder has an incident.
    expect(members.rows.map((r) => r.meter_id)).toEqual([m[3]!.id, m[5]!.id]);
  });
});
