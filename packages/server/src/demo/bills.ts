import type { Pool } from '../db/pool.ts';
import { billRunProgress, runBillRun, scheduleDueRuns } from '../money/billrun.ts';

export interface DemoBills {
  runs: number[];
  /** Bills this call issued. */
  issued: number;
  alreadyBilled: number;
  failed: number;
}

/**
 * Issue last month's bills for the demo's credit households: for each credit account, the
 * latest billing period that has ended in its meter's local calendar. Call it once the demo
 * history covers that period (register reads at both boundaries, or enough to estimate
 * them). Safe to call again and again: the runs are unique per supplier, cycle day and
 * period, bills per account and period; a repeat bills only what failed before (e.g. reads
 * that were not in yet) and issues nothing twice. Works the runs in this process, so the
 * bills exist when it returns (the jobs service announces them to the households).
 */
export async function issueDemoBills(
  pool: Pool,
  o: { supplierId?: number; dueDays?: number } = {},
): Promise<DemoBills> {
  const runs = await scheduleDueRuns(pool, {
    trigger: 'demo',
    ...(o.supplierId !== undefined ? { supplierId: o.supplierId } : {}),
  });
  const out: DemoBills = { runs, issued: 0, alreadyBilled: 0, failed: 0 };
  for (const id of runs) {
    const before = (await billRunProgress(pool, id))?.issued ?? 0;
    const p = await runBillRun(pool, id, { chunk: 200, workers: 1, dueDays: o.dueDays ?? 14 });
    if (!p) continue;
    out.issued += p.issued - before;
    out.alreadyBilled += p.alreadyBilled;
    out.failed += p.failed;
  }
  return out;
}
