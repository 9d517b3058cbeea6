import type { StatusMessage } from '@kilowire/protocol';
import type { PoolClient } from '../db/pool.ts';

/** Status snapshots (latest per meter) onto the meters rows, in one statement. */
const UPDATE_STATUS = `
UPDATE meters m SET relay = s.relay, mode = s.mode, credit_minor = s.credit, firmware_version = s.fw,
  last_status = s.status::jsonb, last_seen_at = now()
FROM unnest($1::int[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[]) AS s(id, relay, mode, credit, fw, status)
WHERE m.id = s.id`;

/**
 * Store the newest status snapshot of each meter (a snapshot: only the latest matters, so
 * 10,000 meters reconnecting cost one statement per batch, not 10,000).
 */
export async function storeStatuses(
  c: PoolClient,
  statuses: ReadonlyMap<number, StatusMessage>,
): Promise<void> {
  if (!statuses.size) return;
  const ids = [...statuses.keys()].sort((a, b) => a - b);
  const st = ids.map((id) => statuses.get(id)!);
  await c.query(UPDATE_STATUS, [
    ids,
    st.map((s) => s.relay),
    st.map((s) => s.mode),
    st.map((s) => s.creditMinor ?? null),
    st.map((s) => s.firmware.version),
    st.map((s) => JSON.stringify(s)),
  ]);
}
