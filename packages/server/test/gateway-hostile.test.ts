import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Gateway } from '../src/gateway/gateway.ts';
import type { TestDb } from './support/db.ts';
import type { TestBroker } from './support/brokers.ts';
import { startGatewayWorld, type GatewayWorld } from './support/gateway-world.ts';
import { RawMeter, readingsMsg, waitFor } from './support/world.ts';
import type { CreatedHousehold } from '../src/accounts/repo.ts';
import { SIZE_LIMITS, localMidnight } from '@kilowire/protocol';

let world: GatewayWorld;
let db: TestDb;
let broker: TestBroker;
let gw: Gateway;
let hh: CreatedHousehold[];

beforeAll(async () => {
  // Production batching (no short flush): the flood is what batches are for.
  world = await startGatewayWorld(1, { gateway: { flushMs: 5 } });
  ({ db, broker, gw, hh } = world);
});

afterAll(async () => {
  await world?.close();
});

type Kind = 'readings' | 'events' | 'status' | 'replies' | 'fw';

/** The codec's size limit for an up kind (bytes). */
const limitOf = (kind: Kind) => (kind === 'fw' ? SIZE_LIMITS['up.fw'] : SIZE_LIMITS[kind]);

/**
 * What each variant must be refused with, when its size is within the kind's limit: the
 * codec checks size, UTF-8, JSON, version, schema in that order, so the first failing check
 * names the code.
 */
const VARIANT_CODE: Record<number, string> = {
  0: 'SCHEMA',
  1: 'SCHEMA',
  2: 'SCHEMA',
  3: 'SCHEMA',
  4: 'SCHEMA',
  5: 'SCHEMA',
  6: 'BAD_VERSION',
  7: 'SCHEMA',
  8: 'SCHEMA',
  9: 'SCHEMA',
  10: 'BAD_VERSION',
  11: 'BAD_VERSION',
  12: 'SCHEMA',
  13: 'SCHEMA',
  14: 'BAD_UTF8',
  15: 'PAYLOAD_TOO_LARGE',
  16: 'BAD_JSON',
  17: 'BAD_JSON',
  18: 'BAD_VERSION',
  19: 'BAD_JSON',
};

/** A deterministic generator of hostile payloads: every one must be refused, with a known code. */
function hostile(i: number, nowS: number): { kind: Kind; payload: Buffer; code: string } {
  const { kind, payload } = hostilePayload(i, nowS);
  const code = payload.length > limitOf(kind) ? 'PAYLOAD_TOO_LARGE' : VARIANT_CODE[i % 20]!;
  return { kind, payload, code };
}

function hostilePayload(i: number, nowS: number): { kind: Kind; payload: Buffer } {
  const kinds = ['readings', 'events', 'status', 'replies', 'fw'] as const;
  const kind = kinds[i % kinds.length]!;
  const good = readingsMsg(1000 + i, localMidnight('2026-06-01', 'Europe/London'), [100], 0);
  const variants: (() => unknown)[] = [
    () => ({ ...good, seq: 'one' }), // wrong type
    () => ({ ...good, seq: -5 }), // negative
    () => ({ ...good, intervals: [{ t: good.intervals[0]!.t, wh: -1 }] }), // negative energy
    () => ({ ...good, intervals: [{ t: good.intervals[0]!.t, wh: 'NaN' }] }), // NaN as text
    () => ({ ...good, intervals: [{ t: good.intervals[0]!.t, wh: 1.5 }] }), // fractional Wh
    () => ({ ...good, intervals: [{ t: good.intervals[0]!.t + 7, wh: 1 }] }), // misaligned
    () => ({ ...good, v: 2 }), // unknown version
    () => ({ ...good, intervals: [] }), // empty
    () => ({ ...good, registers: { '1.0.1.8.0': 1e300 } }), // absurd register
    () => ({ __proto__: { polluted: true }, v: 1, constructor: { prototype: { x: 1 } } }),
    () => [1, 2, 3],
    () => null,
    () => ({ v: 1, seq: 1, events: [{ code: 'made.up', t: nowS }] }),
    () => ({
      v: 1,
      seq: 1,
      intervalS: 1800,
      intervals: Array.from({ length: 201 }, (_, k) => ({ t: k * 1800 + 946_684_800, wh: 1 })),
    }),
  ];
  const r = i % 20;
  if (r === 14) return { kind, payload: Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0x7b]) }; // bad UTF-8
  if (r === 15) return { kind, payload: Buffer.alloc(70 * 1024 + (i % 1000), 0x7b) }; // huge
  if (r === 16) return { kind, payload: Buffer.from('{"v":1,"seq":') }; // truncated JSON
  if (r === 17) return { kind, payload: Buffer.from('{"v":1,"seq":NaN}') }; // NaN literal
  if (r === 18) return { kind, payload: Buffer.from('['.repeat(5000) + ']'.repeat(5000)) }; // deep nesting
  if (r === 19) return { kind, payload: Buffer.alloc(0) }; // empty
  return { kind, payload: Buffer.from(JSON.stringify(variants[r % variants.length]!())) };
}

it('rejects and counts 10,000 malformed and hostile payloads, each with its stable code, without crashing, then still ingests', async () => {
  const h = hh[0]!;
  const meter = await RawMeter.connect(broker.url, h.meterSerial, h.meterCredential);
  const before = gw.stats.rejected;
  const codesBefore = new Map(gw.rejectedByCode);
  const expected = new Map<string, number>();
  const expect1 = (code: string) => expected.set(code, (expected.get(code) ?? 0) + 1);
  const nowS = Math.floor(Date.now() / 1000);
  const N = 10_000;
  // Future readings are schema-valid but impossible: refused too (and acknowledged).
  const future = Math.floor(nowS / 1800) * 1800 + 30 * 86_400;
  const sends: Promise<void>[] = [];
  for (let i = 0; i < N; i++) {
    if (i % 50 === 49) {
      sends.push(meter.raw('readings', JSON.stringify(readingsMsg(5000 + i, future + i * 1800, [5], 0))));
      expect1('FUTURE_READING');
    } else {
      const { kind, payload, code } = hostile(i, nowS);
      sends.push(meter.raw(kind, payload));
      expect1(code);
    }
    if (sends.length >= 500) await Promise.all(sends.splice(0));
  }
  await Promise.all(sends);
  await waitFor(() => gw.stats.rejected - before >= N, 60_000, `${N} rejections`);
  expect(gw.stats.rejected - before).toBe(N);
  // Every payload kind was refused for its own reason: a decoder that failed everything with
  // one code (or INTERNAL) would not pass.
  const got = new Map(
    [...gw.rejectedByCode]
      .map(([c, n]): [string, number] => [c, n - (codesBefore.get(c) ?? 0)])
      .filter(([, n]) => n !== 0),
  );
  expect(Object.fromEntries(got)).toEqual(Object.fromEntries(expected));
  expect(expected.size).toBeGreaterThanOrEqual(6);
  // The gateway is alive and still stores a valid reading.
  await meter.readings(readingsMsg(1, localMidnight('2026-06-01', 'Europe/London'), [123], 0));
  await meter.waitAck((a) => a.kind === 'ack' && a.upTo >= 1);
  const { rows } = await db.pool.query<{ wh: number }>(
    'SELECT wh FROM interval_readings WHERE meter_id = $1',
    [h.meterId],
  );
  expect(rows).toEqual([{ wh: 123 }]);
  expect(gw.stats.rejected - before).toBe(N);
  await meter.close();
});
