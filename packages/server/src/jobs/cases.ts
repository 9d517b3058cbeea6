import type PgBoss from 'pg-boss';
import { tamperCasesSubscriber } from '../cases/cases.ts';
import type { Pool } from '../db/pool.ts';
import type { Subscriber } from '../events/types.ts';
import type { Logger } from '../log.ts';
import { stableUuid } from './boss.ts';
import {
  extractsSubscriber,
  failExtract,
  runExtract,
  unfinishedExtracts,
  type ExtractRunOptions,
} from '../extracts/extracts.ts';

export const EXTRACT_QUEUE = 'extract';
const RETRY_LIMIT = 10;
/** Meters per chunk: ~60 CSV lines each, so a chunk is a few MB of text at most. */
export const EXTRACT_CHUNK = 2000;

/**
 * The jobs-service side of issue #8's cases and extracts: the extract queue and its worker,
 * and the two domain-event subscribers (tamper events -> cases, requested extracts -> the
 * queue). A job of a process that died is retried after its expiry and resumes from the
 * chunks already stored; after the last retry the extract is marked failed with the reason.
 */
export async function startCaseJobs(
  boss: PgBoss,
  pool: Pool,
  log: Logger,
  o: { pollS: number; run?: Partial<ExtractRunOptions> },
): Promise<Subscriber[]> {
  await boss.createQueue(EXTRACT_QUEUE, {
    name: EXTRACT_QUEUE,
    policy: 'standard',
    retryLimit: RETRY_LIMIT,
    retryDelay: 5,
    retryBackoff: true,
    expireInSeconds: 1800,
  });
  const run: ExtractRunOptions = { chunk: o.run?.chunk ?? EXTRACT_CHUNK, workers: o.run?.workers ?? 2 };
  await boss.work<{ extractId: number }>(
    EXTRACT_QUEUE,
    { batchSize: 1, pollingIntervalSeconds: o.pollS, includeMetadata: true },
    async (jobs) => {
      for (const job of jobs) {
        const id = job.data.extractId;
        try {
          const status = await runExtract(pool, id, run);
          log.info({ extract: id, status }, 'extract finished');
        } catch (err) {
          const message = (err as Error).message;
          log.warn({ extract: id, err: message, retry: job.retryCount }, 'extract failed; will retry');
          if (job.retryCount >= RETRY_LIMIT) await failExtract(pool, id, message);
          throw err;
        }
      }
    },
  );
  const queue = async (extractId: number): Promise<void> => {
    await boss.send(EXTRACT_QUEUE, { extractId }, { id: stableUuid(`extract:${extractId}`) });
  };
  // Extracts left unfinished (their job failed for good while the database was away): again.
  for (const id of await unfinishedExtracts(pool))
    await boss.send(EXTRACT_QUEUE, { extractId: id }, { id: stableUuid(`extract:${id}:${Date.now()}`) });
  return [tamperCasesSubscriber(pool), extractsSubscriber(queue)];
}
