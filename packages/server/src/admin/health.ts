import type { SystemHealth } from '@kilowire/contract';
import type { Q } from '../db/pool.ts';

/**
 * The platform at a glance, from the database every process shares (so any API process gives
 * the same answer): ingest rate, job queues, undispatched events, failing deliveries, open
 * commands and connected meters. Each figure is one indexed query over a recent window.
 */
export async function systemHealth(q: Q): Promise<SystemHealth> {
  // Readings stored: each gateway batch's readings.committed event carries how many it wrote.
  // The window starts after the newest event older than 15 min, found walking the primary key
  // backwards, so the scan covers the last 15 minutes only.
  const ingest = await q.query<{ n5: number; n15: number }>(
    `WITH recent AS (
       SELECT created_at, coalesce((payload->>'stored')::int, 0) AS stored FROM domain_events
        WHERE type = 'readings.committed'
          AND id > coalesce((SELECT id FROM domain_events WHERE created_at <= now() - interval '15 minutes'
                              ORDER BY id DESC LIMIT 1), 0)
          AND created_at > now() - interval '15 minutes')
     SELECT coalesce(sum(stored) FILTER (WHERE created_at > now() - interval '5 minutes'), 0)::bigint AS n5,
            coalesce(sum(stored), 0)::bigint AS n15 FROM recent`,
  );
  const events = await q.query<{ n: number; age: number | null }>(
    `SELECT count(*)::int AS n, extract(epoch FROM now() - min(created_at))::float8 AS age
       FROM domain_events WHERE dispatched_at IS NULL`,
  );
  const deliveries = await q.query<{ failed: number; retrying: number }>(
    `SELECT count(*) FILTER (WHERE status = 'failed')::int AS failed,
            count(*) FILTER (WHERE status = 'pending' AND attempts > 0)::int AS retrying
       FROM deliveries WHERE status = 'failed' OR (status = 'pending' AND attempts > 0)`,
  );
  const commands = await q.query<{ awaiting: number; queued: number; sent: number }>(
    `SELECT count(*) FILTER (WHERE status = 'awaiting_approval')::int AS awaiting,
            count(*) FILTER (WHERE status = 'queued')::int AS queued,
            count(*) FILTER (WHERE status = 'sent')::int AS sent
       FROM commands WHERE status IN ('awaiting_approval', 'queued', 'sent')`,
  );
  // Seen within two of its intervals: a meter that missed one report is still connected.
  const meters = await q.query<{ connected: number; total: number }>(
    `SELECT count(*) FILTER (WHERE greatest(m.last_seen_at, st.last_data_at)
                                    > now() - make_interval(secs => 2 * m.interval_s))::int AS connected,
            count(*)::int AS total
       FROM meters m LEFT JOIN meter_ingest_state st ON st.meter_id = m.id
      WHERE m.status = 'active'`,
  );
  // pg-boss's own table: present once the jobs service has started.
  const boss = await q.query<{ present: boolean }>(`SELECT to_regclass('pgboss.job') IS NOT NULL AS present`);
  const queues = boss.rows[0]?.present
    ? (
        await q.query<{ name: string; queued: number; active: number; retrying: number }>(
          `SELECT name, count(*) FILTER (WHERE state = 'created')::int AS queued,
                  count(*) FILTER (WHERE state = 'active')::int AS active,
                  count(*) FILTER (WHERE state = 'retry')::int AS retrying
             FROM pgboss.job WHERE state IN ('created', 'active', 'retry') GROUP BY name ORDER BY name`,
        )
      ).rows
    : [];
  const i = ingest.rows[0]!;
  const e = events.rows[0]!;
  const d = deliveries.rows[0]!;
  const c = commands.rows[0]!;
  const m = meters.rows[0]!;
  return {
    at: new Date().toISOString(),
    ingest: { perMinute5: Math.round((i.n5 / 5) * 10) / 10, perMinute15: Math.round((i.n15 / 15) * 10) / 10 },
    queues,
    events: { undispatched: e.n, oldestUndispatchedAgeS: e.age === null ? null : Math.round(e.age) },
    deliveries: { failed: d.failed, retrying: d.retrying },
    commands: { awaitingApproval: c.awaiting, queued: c.queued, sent: c.sent },
    meters: { connected: m.connected, total: m.total },
  };
}
