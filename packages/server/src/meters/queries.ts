import type { MeterMode, RelayState } from '@kilowire/contract/enums';
import type { Q } from '../db/pool.ts';
import { AppError } from '../errors.ts';
import { authorise, scopeSql, type Action, type Actor } from '../policies.ts';

/** A meter as the API reads it: identity, state, and what policies need. */
export interface MeterRow {
  id: number;
  serial: string;
  supplier_id: number;
  supplier_name: string;
  area_id: string;
  area_name: string;
  operator_id: number;
  consumer_id: number | null;
  account_id: number | null;
  tz: string;
  interval_s: number;
  mode: MeterMode | null;
  relay: RelayState | null;
  credit_minor: number | null;
  firmware_version: string | null;
  last_seen_at: Date | null;
}

const SELECT_METER = `
  SELECT m.id, m.serial, m.supplier_id, s.name AS supplier_name, m.area_id, na.name AS area_name,
         na.operator_id, a.consumer_id, m.account_id, m.tz, m.interval_s, m.mode, m.relay,
         m.credit_minor, m.firmware_version,
         -- Seen = the newest of a status message and a committed readings/events batch.
         greatest(m.last_seen_at, st.last_data_at) AS last_seen_at
    FROM meters m
    LEFT JOIN meter_ingest_state st ON st.meter_id = m.id
    JOIN organisations s ON s.id = m.supplier_id
    JOIN network_areas na ON na.id = m.area_id
    LEFT JOIN accounts a ON a.id = m.account_id`;

/** The meter with `serial` if the actor may see it; otherwise 404, exactly as for a meter that does not exist. */
export async function findVisibleMeter(q: Q, actor: Actor, serial: string): Promise<MeterRow> {
  const scope = scopeSql(actor, 'meters', 'm', 2);
  // Named per scope shape (role, and whether it has a parameter): each has one text.
  const { rows } = await q.query<MeterRow>({
    name: `find-visible-meter-${actor.role}-${scope.params.length}`,
    text: `${SELECT_METER} WHERE m.serial = $1 AND (${scope.sql})`,
    values: [serial, ...scope.params],
  });
  const m = rows[0];
  if (!m) throw new AppError('NOT_FOUND', 'meter not found');
  return m;
}

/** One page of the meters the actor may see, in serial order, after `afterSerial`. */
export async function listVisibleMeters(
  q: Q,
  actor: Actor,
  page: { limit: number; afterSerial: string | null },
): Promise<{ items: MeterRow[]; nextAfter: string | null }> {
  const scope = scopeSql(actor, 'meters', 'm', 3);
  const { rows } = await q.query<MeterRow>(
    `${SELECT_METER} WHERE ($1::text IS NULL OR m.serial > $1) AND (${scope.sql}) ORDER BY m.serial LIMIT $2`,
    [page.afterSerial, page.limit + 1, ...scope.params],
  );
  const more = rows.length > page.limit;
  const items = more ? rows.slice(0, page.limit) : rows;
  return { items, nextAfter: more ? items[items.length - 1]!.serial : null };
}

export interface MeterEventRow {
  seq: number;
  idx: number;
  ts: Date;
  code: string;
  data: unknown;
  received_at: Date;
}

/** Events of one meter, newest first, optionally within [from, to). */
export async function meterEvents(
  q: Q,
  meterId: number,
  f: { from: Date | null; to: Date | null; limit: number },
): Promise<MeterEventRow[]> {
  const { rows } = await q.query<MeterEventRow>(
    `SELECT seq, idx, ts, code, data, received_at FROM meter_events
      WHERE meter_id = $1 AND ($2::timestamptz IS NULL OR ts >= $2) AND ($3::timestamptz IS NULL OR ts < $3)
      ORDER BY ts DESC, seq DESC, idx DESC LIMIT $4`,
    [meterId, f.from, f.to, f.limit],
  );
  return rows;
}

/**
 * How a route reaches a meter: a role that may never do `action` gets 403 before any lookup
 * (nothing about the serial is revealed), a meter outside the actor's scope is 404, and the
 * policy decides the rest.
 */
export async function authorisedMeter(q: Q, actor: Actor, serial: string, action: Action): Promise<MeterRow> {
  authorise(actor, action);
  return findVisibleMeter(q, actor, serial);
}
