import type { PoolClient, Q } from '../db/pool.ts';
import { EVENTS_CHANNEL, type DomainEvent, type EventType, type NewEvent } from './types.ts';

/**
 * Record events in the caller's transaction: they exist if and only if the change commits.
 * One statement for any number of events; the NOTIFY is delivered at COMMIT.
 */
export async function emitEvents(c: PoolClient, events: readonly NewEvent[]): Promise<void> {
  if (!events.length) return;
  await c.query(
    `INSERT INTO domain_events (type, meter_id, payload)
     SELECT * FROM unnest($1::text[], $2::int[], $3::jsonb[])`,
    [events.map((e) => e.type), events.map((e) => e.meterId), events.map((e) => JSON.stringify(e.payload))],
  );
  await c.query(`SELECT pg_notify('${EVENTS_CHANNEL}', '')`);
}

export function emitEvent<T extends EventType>(c: PoolClient, e: NewEvent<T>): Promise<void> {
  return emitEvents(c, [e]);
}

/** The events with these ids, in id order (what a subscriber's job carries). */
export async function loadEvents(q: Q, ids: readonly number[]): Promise<DomainEvent[]> {
  if (!ids.length) return [];
  const { rows } = await q.query<{
    id: number;
    type: EventType;
    meter_id: number | null;
    payload: unknown;
    created_at: Date;
  }>(
    'SELECT id, type, meter_id, payload, created_at FROM domain_events WHERE id = ANY($1::bigint[]) ORDER BY id',
    [ids],
  );
  return rows.map(
    (r) =>
      ({
        id: r.id,
        type: r.type,
        meterId: r.meter_id,
        payload: r.payload,
        createdAt: r.created_at,
      }) as DomainEvent,
  );
}
