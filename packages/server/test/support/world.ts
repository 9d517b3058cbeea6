import { randomBytes } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { decodeDown, encodeUp, topics, type AckMessage, type ReadingsMessage } from '@kilowire/protocol';
import {
  createArea,
  createHousehold,
  createOrganisation,
  type CreatedHousehold,
} from '../../src/accounts/repo.ts';
import type { Pool, PoolClient } from '../../src/db/pool.ts';

/** A supplier, an operator area and `n` households with meters whose serials are unique to this run. */
export async function seedMeters(
  pool: Pool,
  n: number,
  opts: { tz?: string; intervalS?: 900 | 1800 } = {},
): Promise<CreatedHousehold[]> {
  const tag = randomBytes(3).toString('hex').toUpperCase();
  const sup = await createOrganisation(pool, 'supplier', `sup-${tag}`, `Supplier ${tag}`);
  const op = await createOrganisation(pool, 'network_operator', `op-${tag}`, `Operator ${tag}`);
  await createArea(pool, `A-${tag}`, op, 'Area', [`F-${tag}`]);
  const out: CreatedHousehold[] = [];
  for (let i = 0; i < n; i++) {
    out.push(
      await createHousehold(pool, {
        loginId: `T${tag}${i}`,
        password: 'not-used-here',
        passwordHash: 'x',
        name: `Household ${i}`,
        supplierId: sup,
        mode: i % 2 ? 'prepayment' : 'credit',
        meter: {
          serial: `T${tag}${i}`,
          areaId: `A-${tag}`,
          feederId: `F-${tag}`,
          tz: opts.tz,
          intervalS: opts.intervalS,
        },
      }),
    );
  }
  return out;
}

/** A hand-driven meter connection: publishes crafted messages and records what comes down. */
export class RawMeter {
  readonly acks: AckMessage[] = [];
  readonly commands: Buffer[] = [];
  private constructor(
    readonly id: string,
    readonly client: MqttClient,
  ) {}

  static async connect(url: string, id: string, password: string): Promise<RawMeter> {
    const client = await mqtt.connectAsync(url, {
      protocolVersion: 4,
      clientId: id,
      username: id,
      password,
      clean: true,
      reconnectPeriod: 0,
    });
    const m = new RawMeter(id, client);
    client.on('message', (topic, payload) => {
      if (topic.endsWith('/down/acks')) m.acks.push(decodeDown('acks', payload));
      if (topic.endsWith('/down/commands')) m.commands.push(payload);
    });
    await client.subscribeAsync(topics.meterDown(id), { qos: 1 });
    return m;
  }

  async readings(msg: ReadingsMessage): Promise<void> {
    await this.client.publishAsync(topics.up(this.id, 'readings'), encodeUp('readings', msg), { qos: 1 });
  }

  async raw(
    kind: 'readings' | 'events' | 'status' | 'replies' | 'fw',
    payload: Buffer | string,
  ): Promise<void> {
    await this.client.publishAsync(topics.up(this.id, kind), payload, { qos: 1 });
  }

  async waitAck(pred: (a: AckMessage) => boolean, ms = 10_000): Promise<AckMessage> {
    return waitFor(() => this.acks.find(pred), ms, `ack on ${this.id}`);
  }

  close(): Promise<void> {
    return this.client.endAsync();
  }
}

export async function waitFor<T>(
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  ms = 10_000,
  what = 'condition',
): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A readings message of consecutive intervals with registers that match them. */
export function readingsMsg(
  seq: number,
  startS: number,
  whs: number[],
  importBefore: number,
  intervalS: 900 | 1800 = 1800,
): ReadingsMessage {
  const total = importBefore + whs.reduce((a, b) => a + b, 0);
  return {
    v: 1,
    seq,
    intervalS,
    intervals: whs.map((wh, i) => ({ t: startS + i * intervalS, wh })),
    registers: { '1.0.1.8.0': total, '1.0.1.8.1': total, '1.0.1.8.2': 0, '1.0.2.8.0': 0 },
  };
}

/**
 * Daily rollups as ingest keeps them, for tests that write interval readings with SQL: the
 * meter's local days recomputed from its intervals (cost and statistics read the rollups).
 */
export async function rollupFromIntervals(q: Pool | PoolClient, meterId: number): Promise<void> {
  await q.query(
    `INSERT INTO daily_rollups (meter_id, day, wh, intervals, estimated)
     SELECT r.meter_id, (r.ts AT TIME ZONE m.tz)::date, sum(r.wh), count(*), count(*) FILTER (WHERE r.flags & 1 = 1)
       FROM interval_readings r JOIN meters m ON m.id = r.meter_id
      WHERE r.meter_id = $1 GROUP BY 1, 2
     ON CONFLICT (meter_id, day) DO UPDATE
       SET wh = excluded.wh, intervals = excluded.intervals, estimated = excluded.estimated`,
    [meterId],
  );
}
