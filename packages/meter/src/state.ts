import type {
  EventsMessage,
  FirmwareManifest,
  FwPendingState,
  MeterMode,
  ReadingsMessage,
  Registers,
  RelayState,
  ReplyMessage,
  TariffSpec,
} from '@kilowire/protocol';
import type { HouseholdProfile } from './load.ts';

/**
 * The meter's durable state, as JSON on disk. The whole persisted shape lives in this one
 * file, next to its migrations, so a format change is reviewed in one place; each slice is
 * owned (read and written) by one collaborator of the `Meter` facade, named on the slice.
 */

export type RelayReason = 'credit' | 'remote' | 'tamper';
export type FirmwareSlot = 'A' | 'B';

export type OutboxEntry =
  | { stream: 'readings'; seq: number; msg: ReadingsMessage }
  | { stream: 'events'; seq: number; msg: EventsMessage };

/** Owned by `Production` (production.ts): what has been metered, and what it is billed by. */
export interface ProductionState {
  /** Start of the next interval to produce, epoch seconds. */
  cursor: number;
  /**
   * Wh since manufacture, by OBIS name; they only grow. `1.0.1.8.3` exists from the first
   * three-band tariff on. Both it and the tariff's three-band fields are optional additions
   * within format 2: a file written before them loads as it is, so they need no migration.
   */
  registers: Registers;
  /** Intervals already counted in the registers but not yet closed into a readings message. */
  openBatch: ReadingsMessage['intervals'];
  tariff: TariffSpec;
  /** A tariff received before its effectiveFrom; it becomes active at the first interval at or after it. */
  pendingTariff: TariffSpec | null;
  powerOn: boolean;
  /** Outages that overlap intervals not yet produced (epoch s); `to` is null while the power is still off. */
  outages: { from: number; to: number | null }[];
}

/** Owned by `Prepayment` (prepayment.ts). */
export interface PrepaymentState {
  /** `credit` meters are billed afterwards and never cut off for lack of credit. */
  mode: MeterMode;
  /** Balance in minor units; negative while emergency credit is being used. */
  creditMinor: number;
  /** Consumed but not yet debited, in millionths of a minor unit (wh * rate is exact there). */
  remainderMicro: number;
  /** Emergency credit granted once the balance reaches zero, minor units. */
  emergencyLimitMinor: number;
  emergencyInUse: boolean;
  /** `credit.low` is raised when the balance falls below this, minor units. */
  lowThresholdMinor: number;
  /** Local-time window in which the supply is never cut for lack of credit. */
  friendlyHours: { from: string; to: string } | null;
  /** Set when `credit.low` was raised; cleared when credit rises above the threshold again. */
  lowNotified: boolean;
  exhaustedNotified: boolean;
  /** Local date whose standing charge has been taken. */
  standingChargedFor: string | null;
  /** Most recent applied top-up ids, oldest first (bounded). */
  appliedTopups: string[];
}

/** Owned by `Relay` (relay.ts). */
export interface RelaySlice {
  state: RelayState;
  /** Why the relay is open (disconnected or armed); null while connected. */
  reason: RelayReason | null;
}

/** Owned by `CommandHandler` (commands.ts). */
export interface CommandState {
  /** Highest counter of an authenticated command the meter acted on (applied or refused after authentication). */
  lastCounter: number;
  /**
   * Replies to the most recent authenticated commands that consumed a counter, oldest first
   * (bounded), so a command the head-end resends is answered again, never applied twice.
   * Separate from the outbox's replies, which are dropped once the broker has them.
   */
  answered: ReplyMessage[];
}

/** What is known of the image in one slot. */
export interface SlotImage {
  version: string;
  /** Monotonic security sequence; an offer must be above the running image's (no rollback). */
  sequence: number;
  /** SHA-256 of the image; null for the factory image, which came with the meter and not over the air. */
  sha256: string | null;
}

/**
 * An image on its way in, written to the idle slot: nothing here ever touches the active
 * slot, so a power loss at any instant leaves a bootable image.
 */
export interface PendingImage {
  /** The manifest exactly as signed (kept for a re-check and for the record) and as parsed. */
  manifestText: string;
  manifest: FirmwareManifest;
  /** The idle slot when the offer was accepted: where the blocks go. */
  slot: FirmwareSlot;
  state: FwPendingState;
  /**
   * Blocks held and checked against their hash, one character per block ('1' held, '0' not).
   * Written only after the block itself is durable, so a set bit never points at nothing.
   */
  have: string;
  /** scheduled: when to boot it (epoch s) and how long the trial may take to confirm. */
  at?: number;
  confirmS?: number;
  /** trial: the instant by which the new image must have confirmed (meter time), and the slot to go back to. */
  deadline?: number;
  previous?: FirmwareSlot;
}

/** Owned by `Firmware` (firmware.ts): an A/B image store; the meter boots from `active`. */
export interface FirmwareState {
  active: FirmwareSlot;
  /** Version of the image in each slot; null while a slot holds none. The active slot always holds one. */
  slots: Record<FirmwareSlot, string | null>;
  /**
   * Version, sequence and hash per slot, and the image being received or tried. Optional
   * additions within format 2: a file written before firmware transfer existed loads as it
   * is (a slot without `images` counts as a factory image of sequence 0, no pending image),
   * so they need no migration.
   */
  images?: Record<FirmwareSlot, SlotImage | null>;
  pending?: PendingImage | null;
}

/** Owned by `Outbox` (outbox.ts): everything promised to the head-end and not yet confirmed. */
export interface OutboxState {
  nextReadingsSeq: number;
  nextEventsSeq: number;
  /** Unacknowledged readings and events messages, oldest first. */
  entries: OutboxEntry[];
  /** Command results not yet delivered to the broker, oldest first, at most one per command id. */
  replies: ReplyMessage[];
}

/** Everything a meter must remember across a restart. Plain JSON. */
export interface MeterState {
  format: 2;
  // Identity and configuration, fixed when the meter is made.
  id: string;
  /** IANA zone of the premises. */
  tz: string;
  hardwareClass: string;
  intervalS: 900 | 1800;
  /** Seed of the consumption noise. */
  seed: number;
  profile: HouseholdProfile;
  production: ProductionState;
  prepayment: PrepaymentState;
  relay: RelaySlice;
  commands: CommandState;
  firmware: FirmwareState;
  outbox: OutboxState;
}

/** Format 1 (one flat object), as written before the meter was split into collaborators. Read only. */
export interface MeterStateV1 {
  format: 1;
  id: string;
  tz: string;
  hardwareClass: string;
  intervalS: 900 | 1800;
  seed: number;
  profile: HouseholdProfile;
  cursor: number;
  registers: Registers;
  relay: RelayState;
  relayReason: RelayReason | null;
  mode: MeterMode;
  prepay: Omit<PrepaymentState, 'mode' | 'appliedTopups'>;
  tariff: TariffSpec;
  pendingTariff: TariffSpec | null;
  appliedTopups: string[];
  lastCounter: number;
  firmware: { slot: FirmwareSlot; version: string };
  nextReadingsSeq: number;
  nextEventsSeq: number;
  openBatch: ReadingsMessage['intervals'];
  outbox: OutboxEntry[];
  replies: ReplyMessage[];
  powerOn: boolean;
  outages: { from: number; to: number | null }[];
}

/** What a store may hand back: any format this code can read. */
export type StoredMeterState = MeterState | MeterStateV1;

export function isKnownFormat(format: unknown): format is StoredMeterState['format'] {
  return format === 1 || format === 2;
}

/** Bring a stored state to the current format. Returns the same object when it already is. */
export function upgradeState(stored: StoredMeterState): MeterState {
  switch (stored.format) {
    case 2:
      return stored;
    case 1:
      return fromV1(stored);
    default:
      throw new Error(`unknown meter state format ${JSON.stringify((stored as { format: unknown }).format)}`);
  }
}

/**
 * Format 1 kept no memory of answered commands, only the queue of undelivered replies. A
 * reply in that queue that is not a refusal before authentication came from a command that
 * consumed its counter, so it seeds the memory: the head-end is still waiting for exactly
 * those replies and is the most likely to resend their commands, which must not now come
 * back as STALE_COUNTER. (Format 1 wrote `rejected` after authentication only for
 * DUPLICATE_TOPUP; everything else it rejected failed verification or the counter.)
 */
function fromV1(s: MeterStateV1): MeterState {
  const answered: ReplyMessage[] = [];
  for (const r of s.replies) {
    const consumed = r.result !== 'rejected' || r.code === 'DUPLICATE_TOPUP';
    if (consumed && !answered.some((a) => a.id === r.id)) answered.push({ ...r });
  }
  // Format 1 could queue two replies for one id (an altered copy of a pending command);
  // keep one per id, the authentic one where there is one.
  const replies: ReplyMessage[] = [];
  for (const r of s.replies) {
    if (replies.some((q) => q.id === r.id)) continue;
    replies.push({ ...(answered.find((a) => a.id === r.id) ?? r) });
  }
  return {
    format: 2,
    id: s.id,
    tz: s.tz,
    hardwareClass: s.hardwareClass,
    intervalS: s.intervalS,
    seed: s.seed,
    profile: s.profile,
    production: {
      cursor: s.cursor,
      registers: s.registers,
      openBatch: s.openBatch,
      tariff: s.tariff,
      pendingTariff: s.pendingTariff,
      powerOn: s.powerOn,
      outages: s.outages,
    },
    prepayment: { mode: s.mode, ...s.prepay, appliedTopups: s.appliedTopups },
    relay: { state: s.relay, reason: s.relayReason },
    commands: { lastCounter: s.lastCounter, answered },
    // Format 1 knew only the running image; what the other slot held is unknown, so it counts as empty.
    firmware: {
      active: s.firmware.slot,
      slots:
        s.firmware.slot === 'A' ? { A: s.firmware.version, B: null } : { A: null, B: s.firmware.version },
    },
    outbox: {
      nextReadingsSeq: s.nextReadingsSeq,
      nextEventsSeq: s.nextEventsSeq,
      entries: s.outbox,
      replies,
    },
  };
}
