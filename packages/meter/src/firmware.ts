import type { KeyObject } from 'node:crypto';
import {
  FW_MAX_BLOCKS_PER_REQUEST,
  ProtocolError,
  inWindow,
  localMinuteOfDay,
  sha256,
  verifyManifest,
  type FirmwareManifest,
  type FwBlockMessage,
  type FwRequestMessage,
  type StatusMessage,
} from '@kilowire/protocol';
import { readSimHeader } from './firmware-sim.ts';
import type { FirmwareSlot, FirmwareState, PendingImage, SlotImage } from './state.ts';
import type { ImageBlocks } from './store.ts';
import type { CommandOf, CommandResult, Emit } from './shared.ts';

/** How long a trial image has to confirm when the activation does not say (seconds). */
export const FW_DEFAULT_CONFIRM_S = 300;
/** Copies of one block failing its hash before the meter gives the image up (a corrupt source, not a bad link). */
export const FW_MAX_BAD_COPIES = 3;
/**
 * Pacing: no block request while more than this many readings/events messages wait for
 * their ack, or while any command reply waits for the broker. Metering data and replies
 * always go first; a transfer only uses a link that is keeping up.
 */
export const FW_PACE_MAX_UNACKED = 4;
/** How far ahead the first instant of an activation window is looked for (two days covers any daily window). */
const WINDOW_SEARCH_S = 2 * 86_400;

export interface FirmwarePacing {
  /** A request whose blocks have not all arrived after this long is sent again (doubling per retry). */
  requestTimeoutMs: number;
  maxRequestTimeoutMs: number;
  maxBadCopies: number;
}

export interface FirmwareDeps {
  hardwareClass: string;
  /** The premises' zone: activation windows are local time. */
  tz: string;
  /** The firmware key (never the command key); a meter without one refuses every offer. */
  firmwarePublicKey: KeyObject | null;
  blocks: ImageBlocks;
  emit: Emit;
  pacing?: Partial<FirmwarePacing>;
}

/** What the transport does after a firmware tick. */
export type FirmwareTickAction = 'reboot' | 'reverted' | null;

/**
 * The meter's two image slots (A/B). It runs from the active one; a new image is written to
 * the idle one, block by block, each checked against its hash from the signed manifest, then
 * verified whole. Activation boots it on trial: the meter keeps it only when it has come back
 * online with it (its status, showing the new version, accepted by the broker) within the
 * confirmation time, and otherwise goes back to the slot it came from. The active slot is
 * never the one being written, so the meter always has an image that boots.
 *
 * Durable state is the `FirmwareState` slice (saved by the facade with every change) plus the
 * slots' blocks (`ImageBlocks`, written before the slice records them). The request in flight
 * and the bad-copy counts are not durable: after a restart the meter simply asks again for the
 * first block it lacks.
 */
export class Firmware {
  private readonly pacing: FirmwarePacing;
  /** The request in flight: its first block, count, when it went out, and how many times it has been repeated. */
  private inflight: { block: number; count: number; sentMs: number; attempt: number } | null = null;
  private retries = 0;
  private badCopies = new Map<number, number>();
  /** Whether the image on trial can bring the radio up (read from its header once per trial). */
  private trialRadio: boolean | null = null;

  constructor(
    private readonly st: FirmwareState,
    private readonly deps: FirmwareDeps,
  ) {
    if (st.slots[st.active] === null) {
      throw new Error(`firmware slot ${st.active} is active but holds no image`);
    }
    this.pacing = {
      requestTimeoutMs: deps.pacing?.requestTimeoutMs ?? 10_000,
      maxRequestTimeoutMs: deps.pacing?.maxRequestTimeoutMs ?? 120_000,
      maxBadCopies: deps.pacing?.maxBadCopies ?? FW_MAX_BAD_COPIES,
    };
    st.images ??= {
      A: st.slots.A === null ? null : { version: st.slots.A, sequence: 0, sha256: null },
      B: st.slots.B === null ? null : { version: st.slots.B, sequence: 0, sha256: null },
    };
    st.pending ??= null;
    this.recheckOnBoot();
  }

  static initial(version: string, sequence = 0): FirmwareState {
    return {
      active: 'A',
      slots: { A: version, B: null },
      images: { A: { version, sequence, sha256: null }, B: null },
      pending: null,
    };
  }

  get activeSlot(): FirmwareSlot {
    return this.st.active;
  }
  get activeVersion(): string {
    // The constructor checked it, and nothing here empties the active slot.
    return this.st.slots[this.st.active]!;
  }
  /** Where the next image goes. */
  get idleSlot(): FirmwareSlot {
    return this.st.active === 'A' ? 'B' : 'A';
  }
  /** Version in the idle slot; null while it holds no image. */
  get idleVersion(): string | null {
    return this.st.slots[this.idleSlot];
  }
  get pending(): Readonly<PendingImage> | null {
    return this.st.pending ?? null;
  }

  /** The image the meter falls back on: the one it ran before a trial, else the running one. */
  private baseline(): SlotImage {
    const p = this.st.pending;
    const slot = p?.state === 'trial' && p.previous ? p.previous : this.st.active;
    return this.images[slot] ?? { version: this.st.slots[slot]!, sequence: 0, sha256: null };
  }

  private get images(): Record<FirmwareSlot, SlotImage | null> {
    return this.st.images!;
  }

  status(): StatusMessage['firmware'] {
    const running = this.images[this.st.active];
    const out: StatusMessage['firmware'] = {
      slot: this.activeSlot,
      version: this.activeVersion,
      sequence: running?.sequence ?? 0,
    };
    const p = this.st.pending;
    if (p) {
      out.pending = {
        image: p.manifest.sha256,
        version: p.manifest.version,
        state: p.state,
        blocks: held(p),
        of: p.manifest.blockHashes.length,
      };
      if (p.state === 'scheduled' && p.at !== undefined) out.pending.at = p.at;
    }
    return out;
  }

  // ------------------------------------------------------------------ commands

  /**
   * Accept or refuse an image before a single block moves: the signature (firmware key),
   * then the manifest, hardware class, sequence (strictly above the running image's), and
   * whether another image is already under way. The same image again is accepted as it is:
   * the download resumes from the first block the meter lacks.
   */
  offer(cmd: CommandOf<'firmware.offer'>): CommandResult {
    const key = this.deps.firmwarePublicKey;
    if (!key) return refuse('FW_BAD_SIGNATURE', 'this meter has no firmware key');
    let m: FirmwareManifest;
    try {
      m = verifyManifest(cmd.manifest, cmd.signature, key);
    } catch (err) {
      if (err instanceof ProtocolError && err.code === 'BAD_SIGNATURE')
        return refuse('FW_BAD_SIGNATURE', 'manifest not signed by the firmware key');
      return refuse('FW_BAD_MANIFEST', err instanceof Error ? err.message.slice(0, 120) : 'invalid manifest');
    }
    if (m.hardwareClass !== this.deps.hardwareClass)
      return refuse(
        'FW_WRONG_HARDWARE',
        `image is for ${m.hardwareClass}, meter is ${this.deps.hardwareClass}`,
      );
    const base = this.baseline();
    if (m.sequence <= base.sequence)
      return refuse('FW_ROLLBACK', `sequence ${m.sequence} is not above the running ${base.sequence}`);
    const p = this.st.pending;
    if (p) {
      if (p.manifest.sha256 === m.sha256)
        return { result: 'ok', detail: `resume: ${held(p)} of ${p.have.length}` };
      return refuse('FW_BUSY', `image ${p.manifest.sha256.slice(0, 12)} is ${p.state}`);
    }
    const slot = this.idleSlot;
    // The idle slot is about to be overwritten: from now on it holds no bootable image.
    this.deps.blocks.clear(slot);
    this.st.slots[slot] = null;
    this.images[slot] = null;
    this.st.pending = {
      manifestText: cmd.manifest,
      manifest: m,
      slot,
      state: 'downloading',
      have: '0'.repeat(m.blockHashes.length),
    };
    this.resetTransfer();
    return { result: 'ok' };
  }

  /**
   * Schedule the boot of the verified image: at `at` (default now), or the first instant from
   * then on that lies in the local `window`. Sent again, it replaces the schedule.
   */
  activate(cmd: CommandOf<'firmware.activate'>, nowS: number): CommandResult {
    const p = this.st.pending;
    if (!p || p.manifest.sha256 !== cmd.sha256 || (p.state !== 'verified' && p.state !== 'scheduled'))
      return refuse(
        'FW_UNKNOWN_IMAGE',
        p?.manifest.sha256 === cmd.sha256 ? `image is ${p.state}` : undefined,
      );
    const from = Math.max(nowS, cmd.at ?? nowS);
    const at = cmd.window ? this.firstInWindow(from, cmd.window) : from;
    if (at === null) return refuse('SCHEMA', 'activation window is empty');
    p.state = 'scheduled';
    p.at = at;
    p.confirmS = cmd.confirmS ?? FW_DEFAULT_CONFIRM_S;
    return { result: 'ok' };
  }

  /** Drop an image being received, verified or scheduled. An image on trial confirms or reverts by itself. */
  cancel(cmd: CommandOf<'firmware.cancel'>): CommandResult {
    const p = this.st.pending;
    if (!p || p.manifest.sha256 !== cmd.sha256) return refuse('FW_UNKNOWN_IMAGE');
    if (p.state === 'trial')
      return { result: 'failed', code: 'FW_BUSY', detail: 'image is on trial: it confirms or reverts' };
    this.drop();
    return { result: 'ok' };
  }

  // ------------------------------------------------------------------ transfer

  /**
   * The next block request, if one may go now: one request in flight at most, none while
   * `backedUp` (the facade's readings/replies rule), and a request whose blocks did not all
   * come is repeated from the first missing block after a timeout that doubles per retry.
   */
  due(nowMs: number, backedUp: boolean): FwRequestMessage | null {
    const p = this.st.pending;
    if (p?.state !== 'downloading' || backedUp) return null;
    if (this.inflight) {
      const wait = Math.min(
        this.pacing.maxRequestTimeoutMs,
        this.pacing.requestTimeoutMs * 2 ** this.inflight.attempt,
      );
      if (nowMs - this.inflight.sentMs < wait) return null;
      this.retries = this.inflight.attempt + 1;
    }
    const first = p.have.indexOf('0');
    if (first < 0) return null;
    let count = 1;
    while (count < FW_MAX_BLOCKS_PER_REQUEST && p.have[first + count] === '0') count++;
    this.inflight = { block: first, count, sentMs: nowMs, attempt: this.retries };
    const req: FwRequestMessage = { v: 1, image: p.manifest.sha256, block: first };
    if (count > 1) req.count = count;
    return req;
  }

  /** After a reconnect nothing can be assumed in flight: the next request may go at once. */
  resetSendState(): void {
    this.inflight = null;
    this.retries = 0;
  }

  /**
   * One block from the head-end. Checked against its hash and length before anything is
   * written; a good one is written durably, then recorded. Returns whether the durable state
   * changed (the facade then saves it).
   */
  receive(msg: FwBlockMessage, nowS: number): { changed: boolean; bad: boolean } {
    const p = this.st.pending;
    const m = p?.manifest;
    if (!p || !m || p.state !== 'downloading' || msg.image !== m.sha256)
      return { changed: false, bad: false };
    const n = msg.block;
    if (n >= m.blockHashes.length || p.have[n] === '1') return { changed: false, bad: false };
    const data = Buffer.from(msg.data, 'base64');
    const expectedLen = n === m.blockHashes.length - 1 ? m.size - n * m.blockSize : m.blockSize;
    if (data.length !== expectedLen || sha256(data) !== m.blockHashes[n]) {
      const copies = (this.badCopies.get(n) ?? 0) + 1;
      this.badCopies.set(n, copies);
      // Let the next request for this block go at once rather than after the timeout.
      if (this.inflight && n >= this.inflight.block && n < this.inflight.block + this.inflight.count)
        this.inflight = null;
      if (copies >= this.pacing.maxBadCopies) {
        this.fail(nowS, 'block_hash', n);
        return { changed: true, bad: true };
      }
      return { changed: false, bad: true };
    }
    this.deps.blocks.put(p.slot, n, data);
    p.have = `${p.have.slice(0, n)}1${p.have.slice(n + 1)}`;
    this.badCopies.delete(n);
    const f = this.inflight;
    if (f && n >= f.block && n < f.block + f.count) {
      // Progress: retries start over, and a request fully answered frees the way for the next.
      this.retries = 0;
      if (!p.have.slice(f.block, f.block + f.count).includes('0')) this.inflight = null;
    }
    if (!p.have.includes('0')) this.verifyWhole(nowS);
    return { changed: true, bad: false };
  }

  /** Size and SHA-256 of the blocks as held: the last word before an image may ever be activated. */
  private verifyWhole(nowS: number): void {
    const p = this.st.pending!;
    const bytes = this.readImage(p);
    if (!bytes || bytes.length !== p.manifest.size) return this.fail(nowS, 'size');
    if (sha256(bytes) !== p.manifest.sha256) return this.fail(nowS, 'image_hash');
    p.state = 'verified';
    this.inflight = null;
    this.deps.emit('firmware.verified', nowS, { image: p.manifest.sha256, version: p.manifest.version });
  }

  private readImage(p: PendingImage): Buffer | null {
    const parts: Uint8Array[] = [];
    for (let n = 0; n < p.manifest.blockHashes.length; n++) {
      const b = this.deps.blocks.get(p.slot, n);
      if (!b) return null;
      parts.push(b);
    }
    return Buffer.concat(parts);
  }

  private fail(nowS: number, reason: string, block?: number): void {
    const p = this.st.pending!;
    const data: Record<string, string | number> = {
      image: p.manifest.sha256,
      version: p.manifest.version,
      reason,
    };
    if (block !== undefined) data.block = block;
    this.deps.emit('firmware.verify_failed', nowS, data);
    this.drop();
  }

  /** Forget the pending image and whatever of it the idle slot holds; the running image is untouched. */
  private drop(): void {
    const p = this.st.pending;
    if (!p) return;
    this.st.pending = null;
    this.deps.blocks.clear(p.slot);
    this.resetTransfer();
  }

  private resetTransfer(): void {
    this.inflight = null;
    this.retries = 0;
    this.badCopies = new Map();
    this.trialRadio = null;
  }

  // ------------------------------------------------------------------ activation and trial

  /**
   * What the transport must do at meter time `nowS`: `reboot` when a scheduled activation is
   * due (it then calls `bootTrial`), `reverted` when a trial ran out of time and the meter has
   * just gone back to its old image (it may connect again).
   */
  tick(nowS: number): FirmwareTickAction {
    const p = this.st.pending;
    if (p?.state === 'scheduled' && p.at !== undefined && nowS >= p.at) return 'reboot';
    if (p?.state === 'trial' && p.deadline !== undefined && nowS >= p.deadline) {
      this.revert(nowS, 'no_reconnect');
      return 'reverted';
    }
    return null;
  }

  /**
   * The reboot into the new image: one state change (the facade saves it in one write) that
   * makes the new slot active on trial and remembers the slot to go back to. The image is
   * checked whole once more first — a slot that rotted since verification is never booted.
   */
  bootTrial(nowS: number): boolean {
    const p = this.st.pending;
    if (p?.state !== 'scheduled') return false;
    const bytes = this.readImage(p);
    if (!bytes || sha256(bytes) !== p.manifest.sha256) {
      this.fail(nowS, 'slot_corrupt');
      return false;
    }
    const m = p.manifest;
    p.previous = this.st.active;
    p.state = 'trial';
    p.deadline = nowS + (p.confirmS ?? FW_DEFAULT_CONFIRM_S);
    delete p.at;
    this.st.active = p.slot;
    this.st.slots[p.slot] = m.version;
    this.images[p.slot] = { version: m.version, sequence: m.sequence, sha256: m.sha256 };
    this.trialRadio = null;
    return true;
  }

  /** Whether the running image can bring the radio up (a simulated `no_reconnect` image on trial cannot). */
  get radioWorks(): boolean {
    const p = this.st.pending;
    if (p?.state !== 'trial') return true;
    if (this.trialRadio === null) {
      const first = this.deps.blocks.get(p.slot, 0);
      const header = first ? readSimHeader(first) : null;
      this.trialRadio = header?.behaviour !== 'no_reconnect';
    }
    return this.trialRadio;
  }

  /**
   * The broker accepted a status showing `version` while on trial: the new image works. The
   * old image stays in the other slot (it is the idle one now) until the next offer.
   */
  confirm(version: string, nowS: number): boolean {
    const p = this.st.pending;
    if (p?.state !== 'trial' || version !== p.manifest.version || p.previous === undefined) return false;
    const from = this.images[p.previous]?.version ?? this.st.slots[p.previous] ?? 'unknown';
    this.st.pending = null;
    this.resetTransfer();
    this.deps.emit('firmware.changed', nowS, { from, to: p.manifest.version, image: p.manifest.sha256 });
    return true;
  }

  /** Back to the slot the trial came from; the failed image is forgotten. */
  private revert(nowS: number, reason: string): void {
    const p = this.st.pending!;
    const bad = p.slot;
    this.st.active = p.previous ?? (bad === 'A' ? 'B' : 'A');
    this.st.slots[bad] = null;
    this.images[bad] = null;
    this.st.pending = null;
    this.deps.blocks.clear(bad);
    this.resetTransfer();
    this.deps.emit('firmware.boot_failed', nowS, {
      image: p.manifest.sha256,
      version: p.manifest.version,
      reason,
    });
  }

  /**
   * On boot, trust the record of held blocks only as far as the blocks on disk bear it out
   * (a block file lost or damaged since is fetched again; a verified image that lost one goes
   * back to downloading). A trial image is running and is judged by its confirmation instead.
   */
  private recheckOnBoot(): void {
    const p = this.st.pending;
    if (!p || p.state === 'trial') return;
    if (p.slot === this.st.active) {
      // Never write into the running slot: a record that says so is dropped.
      this.st.pending = null;
      return;
    }
    let have = '';
    for (let n = 0; n < p.have.length; n++) {
      if (p.have[n] !== '1') {
        have += '0';
        continue;
      }
      const b = this.deps.blocks.get(p.slot, n);
      have += b && sha256(b) === p.manifest.blockHashes[n] ? '1' : '0';
    }
    if (have !== p.have) {
      p.have = have;
      if (p.state !== 'downloading') {
        p.state = 'downloading';
        delete p.at;
        delete p.confirmS;
      }
    }
  }

  private firstInWindow(fromS: number, w: { from: string; to: string }): number | null {
    // Minute steps: windows are whole minutes of local time, and DST moves them by whole hours.
    let t = fromS;
    const end = fromS + WINDOW_SEARCH_S;
    while (t <= end) {
      if (inWindow(localMinuteOfDay(t, this.deps.tz), w.from, w.to)) return t;
      t = (Math.floor(t / 60) + 1) * 60;
    }
    return null;
  }
}

function held(p: PendingImage): number {
  let n = 0;
  for (const c of p.have) if (c === '1') n++;
  return n;
}

function refuse(code: CommandResult['code'], detail?: string): CommandResult {
  return detail ? { result: 'rejected', code, detail } : { result: 'rejected', code };
}
