import type { KeyObject } from 'node:crypto';
import type { Command } from '@kilowire/protocol';
import { requestCommand, type CommandTiming, type RequestedCommand } from '../commands/lifecycle.ts';
import type { PoolClient } from '../db/pool.ts';

/**
 * The three firmware commands a campaign sends, in the caller's transaction, through the one
 * command lifecycle (signed, counted, claimed, retried, expired). The campaign engine
 * (campaigns.ts) decides when; the gateway (transfer.ts) serves the blocks an offer allows.
 * Each also moves the meter's campaign row, so the row and the command commit together.
 */

export interface FwMeterRef {
  id: number;
  serial: string;
}

export interface FwImageRef {
  id: number;
  sha256: string;
  manifest: string;
  signature: string;
}

/** Offer the image (its manifest as signed). The meter checks class, sequence and signature before any block moves. */
export async function offerImage(
  c: PoolClient,
  key: KeyObject,
  campaignId: number,
  meter: FwMeterRef,
  image: FwImageRef,
  o: { actorId?: number | null; timing?: Partial<CommandTiming> } = {},
): Promise<RequestedCommand> {
  const cmd: Command = { type: 'firmware.offer', manifest: image.manifest, signature: image.signature };
  const r = await requestCommand(c, key, meter, cmd, {
    actorId: o.actorId ?? null,
    reason: `firmware campaign ${campaignId}`,
    ...(o.timing ? { timing: o.timing } : {}),
  });
  await c.query(
    `UPDATE firmware_campaign_meters
        SET state = 'offered', offer_command_id = $3, offered_at = now(), skip_reason = NULL,
            attempts = attempts + 1, updated_at = now()
      WHERE campaign_id = $1 AND meter_id = $2`,
    [campaignId, meter.id, r.id],
  );
  return r;
}

/**
 * Boot the verified image at `at` (epoch s), with `confirmS` for the new image to reconnect
 * before the meter reverts. The command expires shortly after `at`: a meter that was offline
 * then must not reboot later, outside the window the operator was told about.
 */
export async function activateImage(
  c: PoolClient,
  key: KeyObject,
  campaignId: number,
  meter: FwMeterRef,
  sha256: string,
  at: number,
  confirmS: number,
  o: { actorId?: number | null; nowS?: number; lateS?: number } = {},
): Promise<RequestedCommand> {
  const nowS = o.nowS ?? Math.floor(Date.now() / 1000);
  const cmd: Command = { type: 'firmware.activate', sha256, at, confirmS };
  const r = await requestCommand(c, key, meter, cmd, {
    actorId: o.actorId ?? null,
    reason: `firmware campaign ${campaignId}`,
    timing: { ttlS: Math.max(60, at - nowS + (o.lateS ?? 600)) },
    nowS,
  });
  await c.query(
    `UPDATE firmware_campaign_meters
        SET state = 'activating', activate_command_id = $3, activate_at = to_timestamp($4), updated_at = now()
      WHERE campaign_id = $1 AND meter_id = $2`,
    [campaignId, meter.id, r.id, at],
  );
  return r;
}

/** Tell the meter to drop the image (halted or cancelled campaign); the row becomes `cancelled`. */
export async function cancelImage(
  c: PoolClient,
  key: KeyObject,
  campaignId: number,
  meter: FwMeterRef,
  sha256: string,
  reason: string,
  o: { actorId?: number | null } = {},
): Promise<RequestedCommand> {
  const r = await requestCommand(
    c,
    key,
    meter,
    { type: 'firmware.cancel', sha256 },
    {
      actorId: o.actorId ?? null,
      reason: `firmware campaign ${campaignId}: ${reason}`.slice(0, 200),
    },
  );
  await c.query(
    `UPDATE firmware_campaign_meters
        SET state = 'cancelled', reason = $3, finished_at = now(), updated_at = now()
      WHERE campaign_id = $1 AND meter_id = $2`,
    [campaignId, meter.id, reason.slice(0, 256)],
  );
  return r;
}
