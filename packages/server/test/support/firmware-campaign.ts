import { randomBytes, type KeyObject } from 'node:crypto';
import {
  buildManifest,
  generateSigningKeyPair,
  privateKeyFromB64,
  signManifest,
  type EventCode,
  type ReplyMessage,
} from '@kilowire/protocol';
import { applyReplies, expireCommands } from '../../src/commands/lifecycle.ts';
import { tx, type Pool } from '../../src/db/pool.ts';
import { loadEvents } from '../../src/events/emit.ts';
import type { Subscriber } from '../../src/events/types.ts';
import { ingest } from '../../src/readings/ingest.ts';
import type { Actor } from '../../src/policies.ts';

/**
 * #10 C test support: a fleet of meters written with SQL (fast for a thousand), an image row
 * as the upload would store it (a real manifest signed with a firmware key), and a driver
 * that answers for the meters the way the gateway stores their answers — replies through
 * the command lifecycle, events through readings ingest — and hands the resulting domain
 * events to a subscriber as the dispatcher does.
 */

export const HW = 'KW-1P-100A';

export async function seedFleet(
  pool: Pool,
  o: {
    supplierId: number;
    areaId: string;
    feeders: string[];
    n: number;
    prefix: string;
    tz?: string;
    hardwareClass?: string;
    sequence?: number | null;
  },
): Promise<{ id: number; serial: string; feeder: string }[]> {
  for (const f of o.feeders) {
    await pool.query(`INSERT INTO feeders (id, area_id, name) VALUES ($1, $2, $1) ON CONFLICT DO NOTHING`, [
      f,
      o.areaId,
    ]);
  }
  const { rows } = await pool.query<{ id: number; serial: string; feeder: string }>(
    `INSERT INTO meters (serial, supplier_id, area_id, feeder_id, tz, hardware_class, firmware_sequence,
                         firmware_version, credential_hash, last_seen_at, relay)
     SELECT $1 || lpad(i::text, 4, '0'), $2, $3, ($4::text[])[1 + i % cardinality($4::text[])], $5, $6, $7,
            '1.0.0', 'x', now(), 'connected'
       FROM generate_series(0, $8 - 1) AS i
     RETURNING id, serial, feeder_id AS feeder`,
    [
      o.prefix,
      o.supplierId,
      o.areaId,
      o.feeders,
      o.tz ?? 'Europe/London',
      o.hardwareClass ?? HW,
      o.sequence ?? 1,
      o.n,
    ],
  );
  return rows.sort((a, b) => a.id - b.id);
}

export interface TestImage {
  id: number;
  sha256: string;
  version: string;
  sequence: number;
}

export async function insertImage(
  pool: Pool,
  supplierId: number,
  o: { version: string; sequence: number; hardwareClass?: string; size?: number },
): Promise<TestImage> {
  const bytes = randomBytes(o.size ?? 10_000);
  const m = buildManifest(bytes, {
    version: o.version,
    sequence: o.sequence,
    hardwareClass: o.hardwareClass ?? HW,
    blockSize: 1024,
  });
  const fw = privateKeyFromB64(generateSigningKeyPair().privateKey);
  const s = signManifest(m, fw);
  const { rows } = await pool.query<{ id: number }>(
    `INSERT INTO firmware_images (supplier_id, version, sequence, hardware_class, size, sha256, block_size,
                                  block_hashes, manifest, signature, storage_key)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id::int`,
    [
      supplierId,
      m.version,
      m.sequence,
      m.hardwareClass,
      m.size,
      m.sha256,
      m.blockSize,
      m.blockHashes,
      s.manifest,
      s.signature,
      `test/${m.sha256}`,
    ],
  );
  return { id: rows[0]!.id, sha256: m.sha256, version: m.version, sequence: m.sequence };
}

export async function actorOf(pool: Pool, email: string): Promise<Actor> {
  const { rows } = await pool.query<{
    id: number;
    role: Actor['role'];
    org_id: number | null;
    staff_role: string;
  }>('SELECT id::int, role, org_id, staff_role FROM users WHERE email = $1', [email]);
  const u = rows[0]!;
  return {
    userId: u.id,
    role: u.role,
    orgId: u.org_id,
    ...(u.staff_role ? { staffRole: u.staff_role as 'admin' | 'agent' } : {}),
  };
}

/** Answers for meters, through the real storing functions, then to the subscriber. */
export class MeterAnswers {
  private lastEvent = 0;
  private readonly seqs = new Map<number, number>();
  constructor(
    readonly pool: Pool,
    readonly sub: Subscriber,
  ) {}

  /** Start after the events already there (so a test sees only its own). */
  async init(): Promise<this> {
    const { rows } = await this.pool.query<{ id: string | null }>('SELECT max(id) AS id FROM domain_events');
    this.lastEvent = Number(rows[0]!.id ?? 0);
    return this;
  }

  /** Hand every new domain event of the subscriber's types to it (as the dispatcher would). */
  async pump(): Promise<number> {
    const { rows } = await this.pool.query<{ id: string }>(
      'SELECT id FROM domain_events WHERE id > $1 AND type = ANY($2::text[]) ORDER BY id',
      [this.lastEvent, this.sub.types],
    );
    const ids = rows.map((r) => Number(r.id));
    if (!ids.length) return 0;
    this.lastEvent = ids[ids.length - 1]!;
    // In chunks, like the dispatcher's jobs.
    for (let i = 0; i < ids.length; i += 100) {
      await this.sub.handle(await loadEvents(this.pool, ids.slice(i, i + 100)));
    }
    return ids.length;
  }

  async reply(
    meterId: number,
    commandId: string,
    result: ReplyMessage['result'] = 'ok',
    code?: string,
  ): Promise<void> {
    const reply: ReplyMessage = {
      v: 1,
      id: commandId,
      counter: 0,
      t: Math.floor(Date.now() / 1000),
      result,
      ...(code ? { code } : {}),
    };
    await tx(this.pool, (c) => applyReplies(c, [{ meterId, reply }]));
  }

  async event(
    meter: { id: number; serial: string },
    code: EventCode,
    data: Record<string, string | number | boolean> = {},
  ): Promise<void> {
    const seq = (this.seqs.get(meter.id) ?? 0) + 1;
    this.seqs.set(meter.id, seq);
    await tx(this.pool, (c) =>
      ingest(
        c,
        [],
        [
          {
            meterId: meter.id,
            serial: meter.serial,
            msg: { v: 1, seq, events: [{ code, t: Math.floor(Date.now() / 1000), data }] },
          },
        ],
      ),
    );
  }

  /** The lifecycle's expiry sweep, after pretending the commands' time is up. */
  async expire(commandIds: string[]): Promise<void> {
    await this.pool.query(
      `UPDATE commands SET expires_at = now() - interval '1 hour' WHERE id = ANY($1::uuid[])`,
      [commandIds],
    );
    await tx(this.pool, (c) => expireCommands(c));
  }
}

export interface CampaignMeterRow {
  meter_id: number;
  stage: number;
  state: string;
  skip_reason: string | null;
  reason: string | null;
  offer_command_id: string | null;
  activate_command_id: string | null;
  activate_at: Date | null;
  attempts: number;
}

export async function campaignRows(pool: Pool, campaignId: number): Promise<CampaignMeterRow[]> {
  const { rows } = await pool.query<CampaignMeterRow>(
    `SELECT meter_id, stage, state, skip_reason, reason, offer_command_id, activate_command_id, activate_at, attempts
       FROM firmware_campaign_meters WHERE campaign_id = $1 ORDER BY meter_id`,
    [campaignId],
  );
  return rows;
}

/** Commands of a type sent to these meters (or to any meter when `meterIds` is null). */
export async function commandsOf(
  pool: Pool,
  type: string,
  meterIds: number[] | null = null,
): Promise<{ id: string; meter_id: number; cmd: { at?: number; confirmS?: number } }[]> {
  const { rows } = await pool.query<{ id: string; meter_id: number; cmd: { at?: number } }>(
    `SELECT id, meter_id, cmd FROM commands WHERE type = $1 AND ($2::int[] IS NULL OR meter_id = ANY($2::int[]))
      ORDER BY created_at, id`,
    [type, meterIds],
  );
  return rows;
}

export const commandKey = (): KeyObject => privateKeyFromB64(generateSigningKeyPair().privateKey);
