import type { Pool } from '../db/pool.ts';
import { tx } from '../db/pool.ts';
import { compose, type DeliveryView } from './compose.ts';
import { DeliveryError, type Sender } from './types.ts';

export interface Senders {
  /** Unset: the built-in outbox table. */
  email?: Sender;
  sms?: Sender;
}

export type DeliveryOutcome = 'sent' | 'skipped' | 'failed' | 'retry';

/**
 * Deliver one row. Under a row lock: skip unless still pending (never twice to the person);
 * send; mark sent in the same transaction once the channel accepted it. The outbox sink
 * writes its row in that transaction, so it is exactly once. A failure is recorded
 * (attempts, last_error); permanent ones and the last attempt mark the row failed, others
 * are thrown so pg-boss retries with backoff.
 */
export async function deliver(
  pool: Pool,
  senders: Senders,
  deliveryId: number,
  finalAttempt: boolean,
): Promise<DeliveryOutcome> {
  // The failure to retry is recorded in the transaction, then thrown after its COMMIT (so
  // pg-boss retries with backoff, and the attempt count survives).
  const { outcome, retryErr } = await tx(pool, async (c) => {
    const d = (
      await c.query<DeliveryView & { status: string; alert_id: number }>(
        `SELECT d.id, d.channel, d.recipient, d.audience, d.status, d.alert_id, a.type, a.title, a.message, m.serial,
                cu.name AS consumer_name, op.name AS operator_name
           FROM deliveries d
           JOIN alerts a ON a.id = d.alert_id
           LEFT JOIN meters m ON m.id = a.meter_id
           LEFT JOIN organisations op ON op.id = a.operator_id
           LEFT JOIN consumers cu ON cu.id = a.consumer_id
          WHERE d.id = $1
          FOR UPDATE OF d`,
        [deliveryId],
      )
    ).rows[0];
    if (!d || d.status !== 'pending') return { outcome: 'skipped' as const, retryErr: undefined };
    const msg = compose(d);
    const sender = senders[d.channel];
    try {
      if (sender) await sender.send(msg);
      else
        await c.query(
          'INSERT INTO outbox (channel, recipient, subject, body, alert_id) VALUES ($1, $2, $3, $4, $5)',
          [msg.channel, msg.recipient, msg.subject, msg.body, d.alert_id],
        );
      await c.query(
        `UPDATE deliveries SET status = 'sent', attempts = attempts + 1, sent_at = now(), last_error = NULL WHERE id = $1`,
        [d.id],
      );
      return { outcome: 'sent' as const, retryErr: undefined };
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      const permanent = (e instanceof DeliveryError && e.permanent) || finalAttempt;
      await c.query(
        `UPDATE deliveries SET attempts = attempts + 1, last_error = $2,
                status = CASE WHEN $3 THEN 'failed' ELSE status END
          WHERE id = $1`,
        [d.id, e.message.slice(0, 1000), permanent],
      );
      return permanent
        ? { outcome: 'failed' as const, retryErr: undefined }
        : { outcome: 'retry' as const, retryErr: e };
    }
  });
  if (retryErr) throw retryErr;
  return outcome;
}
