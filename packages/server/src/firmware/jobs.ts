import type { KeyObject } from 'node:crypto';
import type PgBoss from 'pg-boss';
import type { Pool } from '../db/pool.ts';
import type { Subscriber } from '../events/types.ts';
import { startTicker } from '../jobs/boss.ts';
import type { Logger } from '../log.ts';
import { firmwareSubscriber, tickCampaigns, type EngineOptions } from './engine.ts';

/** The campaign engine's queue: offers, stages, activations, halts, meters not returned. */
export const FIRMWARE_TICK_QUEUE = 'firmware.tick';
/**
 * Every 10 s: an offer or an activation waits at most this long after a meter becomes
 * eligible, and a meter not returned is called at most this late. pg-boss cron ticks by the
 * minute, so each jobs process sends on a timer into a "stately" queue: at most one tick
 * queued and one running across all processes (and each campaign is taken with SKIP LOCKED
 * besides, see engine.ts).
 */
export const FIRMWARE_TICK_MS = 10_000;

export async function startFirmwareJobs(
  boss: PgBoss,
  pool: Pool,
  key: KeyObject,
  log: Logger,
  o: { tickMs?: number; pollS?: number; engine?: EngineOptions } = {},
): Promise<{ subscribers: Subscriber[]; stop(): void }> {
  const stop = await startTicker(
    boss,
    FIRMWARE_TICK_QUEUE,
    { everyMs: o.tickMs ?? FIRMWARE_TICK_MS, ...(o.pollS ? { pollS: o.pollS } : {}), log },
    async () => {
      const r = await tickCampaigns(pool, key, o.engine ?? {});
      if (Object.values(r).some((n) => n > 0)) log.info({ tick: r }, 'firmware campaigns moved on');
    },
  );
  log.info({ tickMs: o.tickMs ?? FIRMWARE_TICK_MS }, 'firmware campaign engine started');
  const sub = firmwareSubscriber(pool, key, log, {
    ...(o.engine?.maxOfferAttempts ? { maxOfferAttempts: o.engine.maxOfferAttempts } : {}),
  });
  return { subscribers: [sub], stop };
}
