import type { Pool, PoolClient } from '../db/pool.ts';

type Q = Pool | PoolClient;

export interface CommandRow {
  id: string;
  counter: number;
  type: string;
  status: 'pending' | 'sent' | 'ok' | 'rejected' | 'failed' | 'expired';
  attempts: number;
  created_by: number | null;
  created_at: Date;
  sent_at: Date | null;
  replied_at: Date | null;
  result_code: string | null;
  result_detail: string | null;
}

/** Commands of one meter, newest first (never the signed envelope: it is for the meter only). */
export async function listCommands(q: Q, meterId: number, limit: number): Promise<CommandRow[]> {
  const { rows } = await q.query<CommandRow>(
    `SELECT id, counter, type, status, attempts, created_by, created_at, sent_at, replied_at, result_code, result_detail
       FROM commands WHERE meter_id = $1 ORDER BY counter DESC LIMIT $2`,
    [meterId, limit],
  );
  return rows;
}
