import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { isKnownFormat, type FirmwareSlot, type MeterState, type StoredMeterState } from './state.ts';

/**
 * Where a meter keeps its state. `load` may return any format this code can read (the meter
 * upgrades it); `save` always receives the current format.
 */
export interface MeterStore {
  load(): StoredMeterState | null;
  save(state: MeterState): void;
  /**
   * The firmware slots' contents, kept beside the state (a state file of a few KB must not
   * carry a 256 KB image). Optional: a store without it gets an in-memory one from the meter.
   */
  blocks?(): ImageBlocks;
}

/**
 * The two firmware slots, block by block. `put` is durable when it returns: the meter
 * records a block as held (in its state) only afterwards, so a power loss between the two
 * leaves an unrecorded block, which is simply fetched again.
 */
export interface ImageBlocks {
  put(slot: FirmwareSlot, n: number, data: Uint8Array): void;
  /** null when the slot holds no such block. */
  get(slot: FirmwareSlot, n: number): Uint8Array | null;
  /** Forget a slot's contents (a new image is about to be written there, or it was dropped). */
  clear(slot: FirmwareSlot): void;
}

/** Slots in memory, copied in and out, so a caller's buffer cannot change what was "written". */
export class MemoryImageBlocks implements ImageBlocks {
  private readonly slots: Record<FirmwareSlot, Map<number, Uint8Array>> = { A: new Map(), B: new Map() };
  put(slot: FirmwareSlot, n: number, data: Uint8Array): void {
    this.slots[slot].set(n, Uint8Array.from(data));
  }
  get(slot: FirmwareSlot, n: number): Uint8Array | null {
    const b = this.slots[slot].get(n);
    return b ? Uint8Array.from(b) : null;
  }
  clear(slot: FirmwareSlot): void {
    this.slots[slot].clear();
  }
  /** Test hook: flip one byte of a stored block, as a failing flash cell would. */
  corrupt(slot: FirmwareSlot, n: number): void {
    const b = this.slots[slot].get(n);
    if (b && b.length > 0) b[0] = b[0]! ^ 0xff;
  }
}

/**
 * One file per block under `<dir>/<slot>/`, each written to a temporary name, fsynced and
 * renamed into place (then the directory fsynced): a block file is whole or absent.
 */
export class FileImageBlocks implements ImageBlocks {
  constructor(
    readonly dir: string,
    private readonly fsync = true,
  ) {}

  private file(slot: FirmwareSlot, n: number): string {
    return join(this.dir, slot, `${String(n).padStart(6, '0')}.bin`);
  }

  put(slot: FirmwareSlot, n: number, data: Uint8Array): void {
    const path = this.file(slot, n);
    mkdirSync(dirname(path), { recursive: true });
    writeDurably(path, data, this.fsync);
  }

  get(slot: FirmwareSlot, n: number): Uint8Array | null {
    try {
      return readFileSync(this.file(slot, n));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  clear(slot: FirmwareSlot): void {
    rmSync(join(this.dir, slot), { recursive: true, force: true });
  }
}

/** Temporary file, fsync, rename, fsync of the directory: the file at `path` is the old one or the new one. */
function writeDurably(path: string, data: string | Uint8Array, fsync: boolean): void {
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    if (fsync) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  if (fsync) {
    // Make the rename itself durable.
    const dfd = openSync(dirname(path), 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  }
}

/** Keeps a private copy, so later mutation of the meter's state cannot leak into "saved" state. */
export class MemoryStore implements MeterStore {
  private data: string | null = null;
  saves = 0;
  /** Outlives any Meter built on this store, like a file next to the state would. */
  readonly imageBlocks = new MemoryImageBlocks();

  blocks(): MemoryImageBlocks {
    return this.imageBlocks;
  }

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
    writeDurably(this.path, JSON.stringify(state), this.fsync);
  }

  /** Firmware slots in `<state file without .json>.fw/`, next to the state. */
  blocks(): FileImageBlocks {
    return new FileImageBlocks(`${this.path.replace(/\.json$/, '')}.fw`, this.fsync);
  }
}
