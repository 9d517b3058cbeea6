import type { StatusMessage } from '@kilowire/protocol';
import type { PoolClient } from '../db/pool.ts';

/** Status snapshots (latest per meter) onto the meters rows, in one statement. */
const UPDATE_STATUS = `
UPDATE meters m SET relay = s.relay, mode = s.mode, credit_minor = s.credit, firmware_version = s.fw,
  last_status = s.status::jsonb, last_seen_at = now(),
  -- #10 the running image's security sequence (an older meter does not report one: keep what we knew)
  firmware_sequence = COALESCE(s.fw_seq, m.firmware_sequence)
FROM unnest($1::int[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::int[])
  AS s(id, relay, mode, credit, fw, status, fw_seq)
WHERE m.id = s.id`;

/**
 * #10 a meter receiving an image says how many blocks it holds: that is the progress of its
 * campaign row (the meter's own count, so it also corrects the gateway's lossy estimate).
 * Only for the image it was offered, while it downloads or holds it verified.
 */
const UPDATE_FW_PROGRESS = `
UPDATE firmware_campaign_meters cm
   SET blocks_done = LEAST(p.blocks, cm.blocks_total),
       state = CASE WHEN cm.state = 'offered' AND p.blocks > 0 THEN 'downloading' ELSE cm.state END,
       updated_at = now()
  FROM unnest($1::int[], $2::text[], $3::int[]) AS p(meter_id, image, blocks), firmware_offers o
 WHERE o.meter_id = p.meter_id AND o.sha256 = p.image
   AND cm.campaign_id = o.campaign_id AND cm.meter_id = p.meter_id
   AND cm.state IN ('offered', 'downloading', 'verified')
   AND (cm.blocks_done <> LEAST(p.blocks, cm.blocks_total) OR (cm.state = 'offered' AND p.blocks > 0))`;

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
    st.map((s) => s.firmware.sequence ?? null),
  ]);
  const pending = ids.flatMap((id) => {
    const p = statuses.get(id)!.firmware.pending;
    // Verified too: its status then says all blocks, the end of the progress bar.
    return p?.state === 'downloading' || p?.state === 'verified' ? [{ id, p }] : [];
  });
  if (pending.length) {
    await c.query(UPDATE_FW_PROGRESS, [
      pending.map((x) => x.id),
      pending.map((x) => x.p.image),
      pending.map((x) => x.p.blocks),
    ]);
  }
}
