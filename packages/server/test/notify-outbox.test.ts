import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localMinuteOfDay } from '@kilowire/protocol';
import { raiseAlerts, quietHoursEnd, type NewAlert } from '../src/alerts/raise.ts';
import { defaultNotifyConfig } from '../src/config.ts';
import { startJobs, type RunningJobs } from '../src/jobs/service.ts';
import { logger } from '../src/log.ts';
import type { CreatedHousehold } from '../src/accounts/repo.ts';
import { createTestDb, type TestDb } from './support/db.ts';
import { testConfig } from './support/api.ts';
import { seedMeters, sleep, waitFor } from './support/world.ts';

/** With neither SMTP nor SMPP configured, messages go to the outbox; quiet hours delay non-critical ones. */
let db: TestDb;
let jobs: RunningJobs;
let hh: CreatedHousehold[];

beforeAll(async () => {
  db = await createTestDb();
  hh = await seedMeters(db.pool, 2);
  const config = testConfig({ notify: defaultNotifyConfig({ pollS: 0.5, retryDelayS: 1, dispatchMs: 200 }) });
  jobs = await startJobs({ pool: db.pool, config, log: logger('test-jobs') });
  for (const [i, h] of hh.entries()) {
    await db.pool.query('UPDATE consumers SET email = $2, mobile = $3 WHERE id = $1', [
      h.consumerId,
      `c${i}@example.test`,
      `+4477009000${i}0`,
    ]);
  }
});

afterAll(async () => {
  await jobs?.stop();
  await db?.drop();
});

const tamper = (h: CreatedHousehold, key: string): NewAlert => ({
  meterId: h.meterId,
  type: 'tamper',
  dedupeKey: key,
  title: 'Tamper alert: Meter cover opened',
  message: `Meter ${h.meterSerial} reported "Meter cover opened" at 14:05 on 26 Nov.`,
  figures: {},
});
const daily = (h: CreatedHousehold, key: string): NewAlert => ({
  meterId: h.meterId,
  type: 'daily_limit',
  dedupeKey: key,
  title: 'Daily limit reached',
  message: 'You used 12.4 kWh on 26 Nov, above your daily limit of 10.0 kWh.',
  figures: {},
});

async function outbox(alertId: number) {
  return (
    await db.pool.query<{ channel: string; recipient: string; subject: string | null; body: string }>(
      'SELECT channel, recipient, subject, body FROM outbox WHERE alert_id = $1 ORDER BY channel',
      [alertId],
    )
  ).rows;
}

describe('outbox sink', () => {
  it('holds the email and the SMS, once each, and marks the deliveries sent', async () => {
    const [id] = await raiseAlerts(db.pool, [tamper(hh[0]!, '1:0')]);
    const rows = await waitFor(
      async () => {
        const r = await outbox(id!);
        return r.length === 2 ? r : undefined;
      },
      15_000,
      'outbox rows',
    );
    expect(rows[0]).toMatchObject({
      channel: 'email',
      recipient: 'c0@example.test',
      subject: 'Kilowire: Tamper alert: Meter cover opened',
    });
    expect(rows[0]!.body).toContain('reported "Meter cover opened" at 14:05 on 26 Nov.');
    expect(rows[1]).toMatchObject({ channel: 'sms', recipient: '+447700900000', subject: null });
    const st = await db.pool.query<{ status: string }>('SELECT status FROM deliveries WHERE alert_id = $1', [
      id,
    ]);
    expect(st.rows.map((r) => r.status)).toEqual(['sent', 'sent']);
    await sleep(800);
    expect(await outbox(id!)).toHaveLength(2);
  });
});

describe('quiet hours', () => {
  it('computes the end of a window, also across midnight', () => {
    const tz = 'Europe/London';
    const t = Date.parse('2026-11-26T23:30:00Z') / 1000; // 23:30 local (GMT)
    expect(quietHoursEnd(t, tz, '22:00', '07:00')).toBe(Date.parse('2026-11-27T07:00:00Z') / 1000);
    expect(quietHoursEnd(t, tz, '07:00', '22:00')).toBeNull();
    const summer = Date.parse('2026-07-01T05:00:00Z') / 1000; // 06:00 BST
    expect(quietHoursEnd(summer, tz, '22:00', '07:00')).toBe(Date.parse('2026-07-01T06:00:00Z') / 1000);
  });

  it('delay non-critical alerts until they end, not critical ones', async () => {
    const h = hh[1]!;
    // A window around now in the meter's zone, ending ~2 hours from now.
    const now = Math.floor(Date.now() / 1000);
    const m = localMinuteOfDay(now, 'Europe/London');
    const hm = (x: number) =>
      `${String(Math.floor((((x % 1440) + 1440) % 1440) / 60)).padStart(2, '0')}:${String((((x % 1440) + 1440) % 1440) % 60).padStart(2, '0')}`;
    await db.pool.query('UPDATE consumers SET quiet_hours_from = $2, quiet_hours_to = $3 WHERE id = $1', [
      h.consumerId,
      hm(m - 60),
      hm(m + 120),
    ]);
    const [quiet] = await raiseAlerts(db.pool, [daily(h, '2026-11-26')]);
    const [loud] = await raiseAlerts(db.pool, [tamper(h, '9:0')]);
    await waitFor(async () => (await outbox(loud!)).length === 2, 15_000, 'critical alert delivered');
    const d = await db.pool.query<{ deliver_after: Date; job_id: string | null; status: string }>(
      'SELECT deliver_after, job_id, status FROM deliveries WHERE alert_id = $1',
      [quiet],
    );
    const row = d.rows[0]!;
    expect(row.status).toBe('pending');
    const delayS = row.deliver_after.getTime() / 1000 - now;
    expect(delayS).toBeGreaterThan(100 * 60);
    expect(delayS).toBeLessThan(121 * 60);
    // The job is queued, waiting for the end of quiet hours.
    await waitFor(
      async () => {
        const r = await db.pool.query<{ job_id: string | null }>(
          'SELECT job_id FROM deliveries WHERE alert_id = $1',
          [quiet],
        );
        return r.rows[0]?.job_id ?? undefined;
      },
      5000,
      'queued',
    );
    const job = await db.pool.query<{ start_after: Date; state: string }>(
      `SELECT j.start_after, j.state FROM pgboss.job j JOIN deliveries d ON d.job_id = j.id WHERE d.alert_id = $1`,
      [quiet],
    );
    expect(job.rows[0]!.state).toBe('created');
    expect(Math.abs(job.rows[0]!.start_after.getTime() - row.deliver_after.getTime())).toBeLessThan(1000);
    await sleep(1200);
    expect(await outbox(quiet!)).toEqual([]);
  });
});
