import { randomUUID } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { signCommand, type Command } from '@kilowire/protocol';
import type { Pool } from '../db/pool.ts';
import { tx } from '../db/pool.ts';

export interface IssuedCommand {
  id: string;
  counter: number;
}

/**
 * Sign and queue a command. The counter comes from the meter row under its row lock, so
 * concurrent issuers never reuse one; the gateway's sender delivers 'pending' rows and
 * retries until the meter replies.
 */
export async function issueCommand(
  pool: Pool,
  key: KeyObject,
  meter: { id: number; serial: string },
  cmd: Command,
  actorId: number | null,
): Promise<IssuedCommand> {
  return tx(pool, async (c) => {
    const { rows } = await c.query<{ last_counter: number }>(
      'UPDATE meters SET last_counter = last_counter + 1 WHERE id = $1 RETURNING last_counter',
      [meter.id],
    );
    const counter = rows[0]!.last_counter;
    const id = randomUUID();
    const body = { v: 1 as const, id, meter: meter.serial, counter, issuedAt: Math.floor(Date.now() / 1000), cmd };
    const env = signCommand(body, key);
    await c.query(
      `INSERT INTO commands (id, meter_id, counter, type, body, envelope, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [id, meter.id, counter, cmd.type, JSON.stringify(body), JSON.stringify(env), actorId],
    );
    await c.query("SELECT pg_notify('kw_commands', $1)", [String(meter.id)]);
    return { id, counter };
  });
}
