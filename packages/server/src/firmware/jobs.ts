import type { KeyObject } from 'node:crypto';
import type PgBoss from 'pg-boss';
import type { Pool } from '../db/pool.ts';
import type { Subscriber } from '../events/types.ts';
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
  await boss.createQueue(FIRMWARE_TICK_QUEUE, {
    name: FIRMWARE_TICK_QUEUE,
    policy: 'stately',
    retryLimit: 1,
    expireInSeconds: 300,
  });
  await boss.work(FIRMWARE_TICK_QUEUE, { pollingIntervalSeconds: o.pollS ?? 2 }, async () => {
    const r = await tickCampaigns(pool, key, o.engine ?? {});
    if (Object.values(r).some((n) => n > 0)) log.info({ tick: r }, 'firmware campaigns moved on');
  });
  const send = () =>
    void boss.send(FIRMWARE_TICK_QUEUE, {}, { singletonKey: 'tick' }).catch((err: Error) => {
      log.warn({ err: err.message }, 'firmware tick not queued');
    });
  send();
  const timer = setInterval(send, o.tickMs ?? FIRMWARE_TICK_MS);
  timer.unref();
  log.info({ tickMs: o.tickMs ?? FIRMWARE_TICK_MS }, 'firmware campaign engine started');
  const sub = firmwareSubscriber(pool, key, log, {
    ...(o.engine?.maxOfferAttempts ? { maxOfferAttempts: o.engine.maxOfferAttempts } : {}),
  });
  return { subscribers: [sub], stop: () => clearInterval(timer) };
}
