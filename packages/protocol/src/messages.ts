import { z } from 'zod';
import { EVENT_CODES } from './events.ts';
import { OBIS } from './obis.ts';
import {
  FW_MAX_BLOCKS_PER_REQUEST,
  FW_PENDING_STATES,
  METER_MODES,
  RELAY_STATES,
  REPLY_RESULTS,
} from './enums.ts';
export type { MeterMode, RelayState } from './enums.ts';

/**
 * Wire contract v1. One schema per message. Unknown fields are ignored (additive changes
 * stay within v1); an incompatible change bumps `v`, and receivers refuse versions they
 * do not know. All times are UTC epoch seconds, all energy Wh as integers, all money
 * integer minor units.
 */
export const PROTOCOL_VERSION = 1 as const;

/** Largest accepted payload per topic kind, in bytes, checked before parsing. */
export const SIZE_LIMITS = {
  readings: 64 * 1024,
  events: 16 * 1024,
  status: 4 * 1024,
  replies: 4 * 1024,
  'up.fw': 1024,
  acks: 4 * 1024,
  commands: 96 * 1024,
  'down.fw': 96 * 1024,
} as const;

const v = z.literal(PROTOCOL_VERSION);
/** Epoch seconds between 2000-01-01 and 2100-01-01. */
const epoch = z.int().min(946_684_800).max(4_102_444_800);
const seq = z.int().min(1).max(Number.MAX_SAFE_INTEGER);
/** Wh in one interval: 0..1 MWh; anything bigger is not a household reading. */
const intervalWh = z.int().min(0).max(1_000_000);
/** A register value in Wh (they only grow; 2^53 Wh is far beyond any meter's life). */
const registerWh = z.int().min(0).max(Number.MAX_SAFE_INTEGER);
const minor = z.int().min(-1_000_000_000).max(1_000_000_000);
const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/);
const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/);

export const INTERVAL_SECONDS = [900, 1800] as const;

/**
 * Registers in this order on the wire (producers write schema order, so a decoded message
 * re-encodes to the same bytes). `1.0.1.8.3` (band 3, peak) was added within v1: optional,
 * because meters that never had a three-band tariff (and every meter built before it) do
 * not send it; a receiver treats it as 0 when absent.
 */
export const registersSchema = z.object({
  [OBIS.importTotal]: registerWh,
  [OBIS.importRate1]: registerWh,
  [OBIS.importRate2]: registerWh,
  [OBIS.importRate3]: registerWh.optional(),
  [OBIS.exportTotal]: registerWh,
});
export type Registers = z.infer<typeof registersSchema>;

// ---------------------------------------------------------------- up

/** `meters/{id}/up/readings`: consecutive profile intervals plus the registers at the end of the last. */
export const readingsMessage = z
  .object({
    v,
    seq,
    intervalS: z.union([z.literal(900), z.literal(1800)]),
    intervals: z
      .array(z.object({ t: epoch, wh: intervalWh, exp: intervalWh.optional() }))
      .min(1)
      .max(200),
    registers: registersSchema,
  })
  .superRefine((m, ctx) => {
    for (let i = 0; i < m.intervals.length; i++) {
      const iv = m.intervals[i]!;
      if (iv.t % m.intervalS !== 0) {
        ctx.addIssue({ code: 'custom', message: 'interval start not aligned', path: ['intervals', i, 't'] });
        return;
      }
      if (i > 0 && iv.t <= m.intervals[i - 1]!.t) {
        ctx.addIssue({
          code: 'custom',
          message: 'intervals not strictly ascending',
          path: ['intervals', i, 't'],
        });
        return;
      }
    }
  });
export type ReadingsMessage = z.infer<typeof readingsMessage>;

export const eventCode = z.enum(EVENT_CODES);
export const meterEvent = z.object({
  code: eventCode,
  t: epoch,
  /** Small free-form figures (credit, threshold, firmware version): numbers and short strings only. */
  data: z
    .record(z.string().max(32), z.union([z.number().finite(), z.string().max(128), z.boolean()]))
    .optional(),
});
export type MeterEvent = z.infer<typeof meterEvent>;

/** `meters/{id}/up/events`: one or more events under one sequence number. */
export const eventsMessage = z.object({ v, seq, events: z.array(meterEvent).min(1).max(50) });
export type EventsMessage = z.infer<typeof eventsMessage>;

export const relayState = z.enum(RELAY_STATES);
export const meterMode = z.enum(METER_MODES);

/** `meters/{id}/up/status`: a snapshot, sent on connect and on every change; not acknowledged. */
export const statusMessage = z.object({
  v,
  t: epoch,
  relay: relayState,
  mode: meterMode,
  creditMinor: minor.optional(),
  emergencyCreditMinor: minor.optional(),
  firmware: z.object({
    slot: z.enum(['A', 'B']),
    version: z.string().max(32),
    /** Security sequence of the running image (a meter refuses any offer at or below it). */
    sequence: z.int().min(0).optional(),
    /** An image on its way in, as the meter itself knows it (durable across restarts). */
    pending: z
      .object({
        image: sha256Hex,
        version: z.string().max(32),
        state: z.enum(FW_PENDING_STATES),
        /** Blocks held and checked, of the image's total. */
        blocks: z.int().min(0),
        of: z.int().min(1),
        /** When a scheduled activation will happen (epoch s). */
        at: epoch.optional(),
      })
      .optional(),
  }),
  lastCounter: z.int().min(0),
  outbox: z.int().min(0),
  registers: registersSchema,
});
export type StatusMessage = z.infer<typeof statusMessage>;

/** `meters/{id}/up/replies`: the result of one command, keyed by the command id. */
export const replyMessage = z.object({
  v,
  id: z.uuid(),
  counter: z.int().min(0),
  t: epoch,
  result: z.enum(REPLY_RESULTS),
  code: z.string().max(64).optional(),
  detail: z.string().max(256).optional(),
});
export type ReplyMessage = z.infer<typeof replyMessage>;

/**
 * `meters/{id}/up/fw`: the meter asks for blocks of an offered image, `count` (default 1)
 * from `block` on. It asks for the first block it does not hold, so a resume after a power
 * loss or a dropped link is just the next request.
 */
export const fwRequestMessage = z.object({
  v,
  image: sha256Hex,
  block: z.int().min(0).max(100_000),
  count: z.int().min(1).max(FW_MAX_BLOCKS_PER_REQUEST).optional(),
});
export type FwRequestMessage = z.infer<typeof fwRequestMessage>;

// ---------------------------------------------------------------- down

export const stream = z.enum(['readings', 'events']);
export type Stream = z.infer<typeof stream>;

/**
 * `meters/{id}/down/acks`. `ack`: everything up to `upTo` and the listed `seqs` are
 * committed, the meter may drop them. `resend`: the head-end saw a gap and wants these now.
 */
export const ackMessage = z.discriminatedUnion('kind', [
  z.object({
    v,
    kind: z.literal('ack'),
    stream,
    upTo: z.int().min(0),
    seqs: z.array(seq).max(500).optional(),
  }),
  z.object({ v, kind: z.literal('resend'), stream, seqs: z.array(seq).min(1).max(500) }),
]);
export type AckMessage = z.infer<typeof ackMessage>;

const rate = z.int().min(0).max(100_000_000);
const timeWindows = z.array(z.object({ from: hhmm, to: hhmm })).max(8);

/**
 * The price table a meter debits prepayment credit by and sorts energy into rate registers
 * by. Bands by the meter's local time: 3 (peak) where a `band3Windows` window matches, else
 * 2 (e.g. night) where a `band2Windows` window matches, else 1 (day).
 *
 * Added within v1, all optional so that every older `tariff.set` still decodes and means
 * what it meant: rate `'3'` with `band3Windows` (a three-band tariff), and
 * `standingChargeMilliPerDay` — the standing charge in thousandths of a minor unit, which
 * the meter uses instead of `standingChargeMinorPerDay` when present (53.35 p/day = 53350
 * is exact; in whole pence it is not). Senders keep `standingChargeMinorPerDay` (rounded)
 * for meters that do not know the new field.
 */
export const tariffSpec = z
  .object({
    id: z.string().max(64),
    version: z.int().min(1),
    currency: z.string().regex(/^[A-Z]{3}$/),
    /** Price per kWh in thousandths of a minor unit (24.5 p/kWh = 24500), per band. */
    rates: z.object({ '1': rate, '2': rate, '3': rate.optional() }),
    /** Local-time windows that use band 2 (e.g. night); everything else is band 1 (or 3, see band3Windows). */
    band2Windows: timeWindows,
    /** Local-time windows that use band 3 (peak); they win over band 2 where both match. Needs rate '3'. */
    band3Windows: timeWindows.optional(),
    standingChargeMinorPerDay: z.int().min(0).max(1_000_000),
    /** Standing charge per local day in thousandths of a minor unit; when present, it is the one used. */
    standingChargeMilliPerDay: z.int().min(0).max(1_000_000_000).optional(),
    effectiveFrom: epoch,
  })
  .refine((t) => !t.band3Windows?.length || t.rates['3'] !== undefined, {
    message: "band3Windows need rate '3'",
    path: ['rates', '3'],
  });
export type TariffSpec = z.infer<typeof tariffSpec>;

export const firmwareManifest = z
  .object({
    version: z.string().max(32),
    sequence: z.int().min(1),
    hardwareClass: z.string().max(32),
    size: z
      .int()
      .min(1)
      .max(16 * 1024 * 1024),
    sha256: sha256Hex,
    blockSize: z
      .int()
      .min(256)
      .max(64 * 1024),
    blockHashes: z.array(sha256Hex).max(1024),
  })
  .refine((m) => m.blockHashes.length === Math.ceil(m.size / m.blockSize), {
    message: 'blockHashes must hold one hash per block (ceil(size / blockSize))',
    path: ['blockHashes'],
  });
export type FirmwareManifest = z.infer<typeof firmwareManifest>;

export const command = z.discriminatedUnion('type', [
  z.object({ type: z.literal('supply.off'), reason: z.string().max(64).optional() }),
  /** Close the relay at once; used for credit meters by supplier staff. */
  z.object({ type: z.literal('supply.on') }),
  /** Allow reconnection: the consumer closes the relay at the meter (GB practice). */
  z.object({ type: z.literal('supply.arm') }),
  z.object({ type: z.literal('tariff.set'), tariff: tariffSpec }),
  z.object({
    type: z.literal('credit.add'),
    /** Unique top-up reference; the meter refuses any it has already applied. */
    topupId: z.string().min(1).max(64),
    amountMinor: z.int().min(1).max(100_000_000),
  }),
  z.object({
    type: z.literal('thresholds.set'),
    lowCreditMinor: z.int().min(0).max(1_000_000).optional(),
    emergencyCreditMinor: z.int().min(0).max(1_000_000).optional(),
    /** Local-time window in which the supply is never cut for lack of credit. */
    friendlyHours: z.object({ from: hhmm, to: hhmm }).nullable().optional(),
  }),
  z.object({ type: z.literal('mode.set'), mode: meterMode }),
  /** Offer an image; `signature` is the firmware key's Ed25519 signature of the manifest JSON. */
  z.object({
    type: z.literal('firmware.offer'),
    manifest: z.string().max(80_000),
    signature: z.string().max(200),
  }),
  /**
   * Boot the verified image `sha256`: at `at` (epoch s; absent = at once), or, with `window`,
   * at the first instant from then on inside that local-time window. The new image runs on
   * trial: unless it reconnects and reports within `confirmS` seconds, the meter reverts to
   * the old slot and reports `firmware.boot_failed`.
   */
  z.object({
    type: z.literal('firmware.activate'),
    sha256: sha256Hex,
    at: epoch.optional(),
    window: z.object({ from: hhmm, to: hhmm }).optional(),
    confirmS: z.int().min(30).max(86_400).optional(),
  }),
  /** Drop an offered image (a halted or cancelled campaign): stop downloading, forget a scheduled activation. */
  z.object({ type: z.literal('firmware.cancel'), sha256: sha256Hex }),
]);
export type Command = z.infer<typeof command>;
export type CommandType = Command['type'];

/**
 * The signed part of a command. `meter` binds it to one meter; `counter` strictly increases.
 * `expiresAt`: the meter refuses the command (`EXPIRED`) when its clock is past this instant,
 * so a command the head-end gave up on never runs when an offline meter comes back.
 * Optional only so that bodies signed before expiry existed stay valid; the head-end always sets it.
 */
export const commandBody = z
  .object({
    v,
    id: z.uuid(),
    meter: z.string().max(32),
    counter: z.int().min(1).max(Number.MAX_SAFE_INTEGER),
    issuedAt: epoch,
    expiresAt: epoch.optional(),
    cmd: command,
  })
  .refine((b) => b.expiresAt === undefined || b.expiresAt > b.issuedAt, {
    message: 'expiresAt must be after issuedAt',
    path: ['expiresAt'],
  });
export type CommandBody = z.infer<typeof commandBody>;

/** `meters/{id}/down/commands`: body is the exact JSON text that was signed (no re-serialising). */
export const commandEnvelope = z.object({
  v,
  body: z.string().max(90_000),
  sig: z.string().regex(/^[A-Za-z0-9+/]{86}==$/),
});
export type CommandEnvelope = z.infer<typeof commandEnvelope>;

/** `meters/{id}/down/fw`: one block of an image, base64. */
export const fwBlockMessage = z.object({
  v,
  image: sha256Hex,
  block: z.int().min(0),
  data: z.string().max(90_000),
});
export type FwBlockMessage = z.infer<typeof fwBlockMessage>;
