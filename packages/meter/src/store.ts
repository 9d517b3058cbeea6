import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type {
  EventsMessage,
  MeterMode,
  ReadingsMessage,
  Registers,
  RelayState,
  ReplyMessage,
  TariffSpec,
} from '@kilowire/protocol';
import type { HouseholdProfile } from './load.ts';

export type RelayReason = 'credit' | 'remote' | 'tamper';

export type OutboxEntry =
  | { stream: 'readings'; seq: number; msg: ReadingsMessage }
  | { stream: 'events'; seq: number; msg: EventsMessage };

export interface PrepaymentState {
  /** Balance in minor units; negative while emergency credit is being used. */
  creditMinor: number;
  /** Consumed but not yet debited, in millionths of a minor unit (wh * rate is exact there). */
  remainderMicro: number;
  emergencyLimitMinor: number;
  emergencyInUse: boolean;
  lowThresholdMinor: number;
  friendlyHours: { from: string; to: string } | null;
  /** Set when `credit.low` was raised; cleared when credit rises above the threshold again. */
  lowNotified: boolean;
  exhaustedNotified: boolean;
  /** Local date whose standing charge has been taken. */
  standingChargedFor: string | null;
}

/** Everything a meter must remember across a restart. Plain JSON. */
export interface MeterState {
  format: 1;
  id: string;
  tz: string;
  hardwareClass: string;
  intervalS: 900 | 1800;
  seed: number;
  profile: HouseholdProfile;
  /** Start of the next interval to produce, epoch seconds. */
  cursor: number;
  registers: Registers;
  relay: RelayState;
  relayReason: RelayReason | null;
  mode: MeterMode;
  prepay: PrepaymentState;
  tariff: TariffSpec;
  /** A tariff received before its effectiveFrom; it becomes active at the first interval at or after it. */
  pendingTariff: TariffSpec | null;
  /** Most recent applied top-up ids, oldest first (bounded). */
  appliedTopups: string[];
  lastCounter: number;
  firmware: { slot: 'A' | 'B'; version: string };
  nextReadingsSeq: number;
  nextEventsSeq: number;
  /** Intervals already counted in the registers but not yet closed into a readings message. */
  openBatch: ReadingsMessage['intervals'];
  outbox: OutboxEntry[];
  /** Command results not yet delivered to the broker. */
  replies: ReplyMessage[];
  powerOn: boolean;
  /** Outages that overlap intervals not yet produced; `to` is null while the power is still off. */
  outages: { from: number; to: number | null }[];
}

export interface MeterStore {
  load(): MeterState | null;
  save(state: MeterState): void;
}

/** Keeps a private copy, so later mutation of the meter's state cannot leak into "saved" state. */
export class MemoryStore implements MeterStore {
  private data: string | null = null;
  saves = 0;

  load(): MeterState | null {
    return this.data === null ? null : (JSON.parse(this.data) as MeterState);
  }

  save(state: MeterState): void {
    this.data = JSON.stringify(state);
    this.saves++;
  }
}

export interface FileStoreOptions {
  /**
   * fsync the file and its directory on every save. Rename alone already protects against a
   * killed process (the page cache outlives it); fsync is what protects against power loss.
   */
  fsync?: boolean;
}

/** One JSON file per meter, replaced atomically: a reader sees the old state or the new one, never a mix. */
export class FileStore implements MeterStore {
  private readonly fsync: boolean;

  constructor(
    readonly path: string,
    opts: FileStoreOptions = {},
  ) {
    this.fsync = opts.fsync ?? true;
    mkdirSync(dirname(path), { recursive: true });
  }

  load(): MeterState | null {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    const state = JSON.parse(text) as MeterState;
    if (state.format !== 1) throw new Error(`${this.path}: unknown meter state format`);
    return state;
  }

  save(state: MeterState): void {
    const tmp = `${this.path}.${process.pid}.tmp`;
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, JSON.stringify(state));
      if (this.fsync) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
    if (this.fsync) {
      // Make the rename itself durable.
      const dfd = openSync(dirname(this.path), 'r');
      try {
        fsyncSync(dfd);
      } finally {
        closeSync(dfd);
      }
    }
  }
}
