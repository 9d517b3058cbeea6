import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStaffUser } from '../src/accounts/repo.ts';
import { withTx } from '../src/db/pool.ts';
import { createCampaign } from '../src/firmware/campaigns.ts';
import type { RunningJobs } from '../src/jobs/service.ts';
import { approveRequest } from '../src/supply/actions.ts';
import { buildWorld, PASSWORD, type World } from './support/api.ts';
import { createTestDb, type TestDb } from './support/db.ts';
import {
  actorOf,
  campaignRows,
  commandKey,
  insertImage,
  MeterAnswers,
  seedFleet,
} from './support/firmware-campaign.ts';
import { settleEvents, startTestJobs } from './support/jobs.ts';
import { waitFor } from './support/world.ts';

/**
 * The engine inside the real jobs service: its tick runs from the pg-boss queue on its own
 * (nobody calls it here), and the meters' answers reach it through the domain event
 * dispatcher.
 */
let db: TestDb;
let w: World;
let jobs: RunningJobs;

beforeAll(async () => {
  db = await createTestDb();
  w = await buildWorld(db.pool);
  await createStaffUser(db.pool, {
    role: 'supplier',
    email: 'second@sup1.test',
    password: PASSWORD,
    orgId: w.sup1,
    name: 'Sup1 Second Admin',
  });
  jobs = await startTestJobs(db.pool);
});

afterAll(async () => {
  await jobs?.stop();
  await db?.drop();
});

describe('the campaign engine in the jobs service', () => {
  it('offers after approval on its own and records the meters’ replies', async () => {
    const admin1 = await actorOf(db.pool, w.login.sup1);
    const admin2 = await actorOf(db.pool, 'second@sup1.test');
    const image = await insertImage(db.pool, w.sup1, { version: '2.0.0', sequence: 2 });
    const fleet = await seedFleet(db.pool, {
      supplierId: w.sup1,
      areaId: 'A',
      feeders: ['A-F1'],
      n: 2,
      prefix: 'JOB',
    });
    const s = await withTx(db.pool, { actorId: admin1.userId }, (t) =>
      createCampaign(t, admin1, {
        name: 'Jobs',
        imageId: image.id,
        target: { serials: fleet.map((m) => m.serial) },
        canaryCount: 2,
        waveSize: 1,
        failureThresholdPct: 50,
        windowFrom: '01:00',
        windowTo: '03:00',
        feederMax: 5,
        feederSpacingS: 300,
        confirmS: 600,
        reason: 'jobs wiring',
      }),
    );
    // Approving a campaign queues no command of its own: the key is not used.
    const key = commandKey();
    await withTx(db.pool, { actorId: admin2.userId }, (t) =>
      approveRequest(t, key, admin2, s.requestId!, 'go ahead'),
    );
    const offered = await waitFor(
      async () => {
        const rows = await campaignRows(db.pool, s.id);
        return rows.every((r) => r.state === 'offered') && rows;
      },
      30_000,
      'the tick to offer the image',
    );
    const answers = new MeterAnswers(db.pool, { name: 'none', types: [], handle: () => Promise.resolve() });
    for (const r of offered) await answers.reply(r.meter_id, r.offer_command_id!, 'rejected', 'FW_ROLLBACK');
    await settleEvents(db.pool, jobs);
    const rows = await campaignRows(db.pool, s.id);
    expect(rows.map((r) => [r.state, r.reason])).toEqual([
      ['refused', 'offer rejected: FW_ROLLBACK'],
      ['refused', 'offer rejected: FW_ROLLBACK'],
    ]);
    // Two of two refused, over the 50% threshold (1): halted by the subscriber.
    const c = await db.pool.query<{ status: string }>('SELECT status FROM firmware_campaigns WHERE id = $1', [
      s.id,
    ]);
    expect(c.rows[0]!.status).toBe('halted');
  });
});
