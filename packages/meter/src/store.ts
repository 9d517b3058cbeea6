import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { isKnownFormat, type MeterState, type StoredMeterState } from './state.ts';

/**
 * Where a meter keeps its state. `load` may return any format this code can read (the meter
 * upgrades it); `save` always receives the current format.
 */
export interface MeterStore {
  load(): StoredMeterState | null;
  save(state: MeterState): void;
}

/** Keeps a private copy, so later mutation of the meter's state cannot leak into "saved" state. */
export class MemoryStore implements MeterStore {
  private data: string | null = null;
  saves = 0;

  load(): StoredMeterState | null {
    return this.data === null ? null : (JSON.parse(this.data) as StoredMeterState);
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

  load(): StoredMeterState | null {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    const state = JSON.parse(text) as StoredMeterState;
    // A file from a newer meter must not be half-understood and then overwritten in an older format.
    if (!isKnownFormat(state.format)) throw new Error(`${this.path}: unknown meter state format`);
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
