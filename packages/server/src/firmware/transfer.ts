import {
  blockCount,
  encodeDown,
  imageBlock,
  type FwBlockMessage,
  type FwRequestMessage,
} from '@kilowire/protocol';
import type { Pool } from '../db/pool.ts';
import { RateLimitedLog, type Logger } from '../log.ts';
import { readImage } from './storage.ts';

/**
 * The gateway's half of a firmware transfer: answering a meter's block requests with blocks
 * of the image it was offered. The meter drives the transfer (it asks for the first block it
 * does not hold, so a resume after a power loss or a dropped link is just its next request);
 * the head-end only serves, and only what `firmware_offers` says the meter may have.
 *
 * Blocks are the gateway's lowest priority: they wait in a bounded queue and go out at a
 * capped rate with a capped number unacknowledged by the broker, so the acks that let meters
 * forget their readings never queue behind a few megabytes of firmware in the MQTT client.
 * A request that finds the queue full is dropped: the meter asks again.
 */

/** The longest a published block counts against the in-flight cap without its PUBACK. */
const IN_FLIGHT_LIMIT_MS = 10_000;

export interface FwTransferOptions {
  pool: Pool;
  log: Logger;
  /** Where the images are (config.firmwareDir). */
  dir: string;
  /** Most image bytes held in memory (whole images, least recently used dropped). Default 64 MiB. */
  cacheBytes?: number;
  /** Most blocks sent per second, all meters together. Default 2,000. */
  blocksPerSecond?: number;
  /** Most blocks published and not yet acknowledged by the broker. Default 64. */
  maxInFlight?: number;
  /** Most blocks waiting to be sent; requests beyond it are dropped (the meter asks again). Default 20,000. */
  maxQueued?: number;
  /** How long a meter's offer (or its absence) is remembered, ms. Default 3,000 (absence: 1,000). */
  offerTtlMs?: number;
  /** How often progress goes to firmware_campaign_meters, ms. Default 2,000. */
  progressMs?: number;
}

/** A meter as the gateway knows it. */
export interface FwMeter {
  id: number;
  serial: string;
}

interface Offer {
  campaignId: number;
  sha256: string;
  size: number;
  blockSize: number;
  storageKey: string;
  blocks: number;
}

interface Task {
  serial: string;
  offer: Offer;
  block: number;
}

/** Publishes one block message; `done` is called when the broker has it (QoS 1 PUBACK) or it failed. */
export type PublishBlock = (serial: string, payload: Buffer, done: () => void) => boolean;

export class FwTransfer {
  private readonly offers = new Map<number, { at: number; offer: Offer | null }>();
  private readonly lookups = new Map<number, Promise<Offer | null>>();
  private readonly images = new Map<string, Buffer>();
  private readonly loading = new Map<string, Promise<Buffer>>();
  private imageBytes = 0;
  private readonly queue: Task[] = [];
  /** `serial:block` of queued blocks: a repeated request does not queue a block twice. */
  private readonly queued = new Set<string>();
  private inFlight = 0;
  private tokens = 0;
  private lastRefill = Date.now();
  private pumpTimer: NodeJS.Timeout | undefined;
  /** Highest block count known held per `campaign:meter`, not yet written. */
  private readonly progress = new Map<string, { campaignId: number; meterId: number; done: number }>();
  private progressTimer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private stopped = false;
  private readonly errLog: RateLimitedLog;
  readonly stats = { requests: 0, notOffered: 0, blocksSent: 0, dropped: 0 };

  constructor(
    private readonly o: FwTransferOptions,
    private readonly publish: PublishBlock,
    /** Called for a request the meter may not make (nothing offered, another image, a block past the end). */
    private readonly refuse: (serial: string, detail: string) => void,
  ) {
    this.errLog = new RateLimitedLog(o.log, 10_000);
  }

  start(): void {
    this.progressTimer = setInterval(() => void this.flushProgress(), this.o.progressMs ?? 2_000);
    this.progressTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.progressTimer);
    clearTimeout(this.pumpTimer);
    await this.flushProgress();
  }

  /** A block request from a meter (already decoded). Answered asynchronously; never throws. */
  request(meter: FwMeter, req: FwRequestMessage): void {
    this.stats.requests++;
    this.offerOf(meter.id)
      .then(async (offer) => {
        if (!offer || offer.sha256 !== req.image) {
          this.stats.notOffered++;
          this.refuse(meter.serial, offer ? 'another image is offered' : 'no firmware offered');
          return;
        }
        if (req.block >= offer.blocks) {
          this.stats.notOffered++;
          this.refuse(meter.serial, `block ${req.block} is past the image's ${offer.blocks} blocks`);
          return;
        }
        // The meter asks for the first block it lacks: it holds every block before it.
        this.noteProgress(offer.campaignId, meter.id, Math.min(req.block, offer.blocks));
        await this.image(offer); // loaded before queueing, so the pump never waits on the disk
        const last = Math.min(offer.blocks, req.block + (req.count ?? 1));
        for (let b = req.block; b < last; b++) {
          const k = `${meter.serial}:${b}`;
          if (this.queued.has(k)) continue;
          if (this.queue.length >= (this.o.maxQueued ?? 20_000)) {
            this.stats.dropped++;
            break;
          }
          this.queued.add(k);
          this.queue.push({ serial: meter.serial, offer, block: b });
        }
        this.pump();
      })
      // A lookup or a read that failed (database away, image file missing): the meter asks
      // again after its timeout. Caught here, so nothing can reject unhandled.
      .catch((err: unknown) =>
        this.errLog.error('fw-request', { err, meter: meter.serial }, 'firmware request failed'),
      );
  }

  /** The meter's live offer, remembered a few seconds (a transfer asks many times a second). */
  private offerOf(meterId: number): Promise<Offer | null> {
    const c = this.offers.get(meterId);
    const ttl = this.o.offerTtlMs ?? 3_000;
    if (c && Date.now() - c.at < (c.offer ? ttl : Math.min(ttl, 1_000))) return Promise.resolve(c.offer);
    let p = this.lookups.get(meterId);
    if (!p) {
      p = this.loadOffer(meterId).finally(() => this.lookups.delete(meterId));
      this.lookups.set(meterId, p);
    }
    return p;
  }

  private async loadOffer(meterId: number): Promise<Offer | null> {
    const { rows } = await this.o.pool.query<{
      campaign_id: string;
      sha256: string;
      size: number;
      block_size: number;
      storage_key: string;
    }>(
      `SELECT campaign_id, sha256, size, block_size, storage_key FROM firmware_offers
        WHERE meter_id = $1 ORDER BY campaign_id DESC LIMIT 1`,
      [meterId],
    );
    const r = rows[0];
    const offer: Offer | null = r
      ? {
          campaignId: Number(r.campaign_id),
          sha256: r.sha256,
          size: r.size,
          blockSize: r.block_size,
          storageKey: r.storage_key,
          blocks: blockCount(r.size, r.block_size),
        }
      : null;
    if (this.offers.size > 100_000) this.offers.clear();
    this.offers.set(meterId, { at: Date.now(), offer });
    return offer;
  }

  /** The whole image, from the cache or the disk (one read per image however many meters ask). */
  private image(offer: Offer): Promise<Buffer> {
    const hit = this.images.get(offer.storageKey);
    if (hit) {
      // Most recently used last.
      this.images.delete(offer.storageKey);
      this.images.set(offer.storageKey, hit);
      return Promise.resolve(hit);
    }
    let p = this.loading.get(offer.storageKey);
    if (!p) {
      p = readImage(this.o.dir, offer.storageKey)
        .then((buf) => {
          // Served as stored: the meter checks every block and the whole image against the
          // signed manifest, and it is the one that must refuse a damaged file.
          if (buf.length !== offer.size)
            this.o.log.warn(
              { image: offer.sha256, size: buf.length, expected: offer.size },
              'firmware file is not the size of its manifest',
            );
          const max = this.o.cacheBytes ?? 64 * 1024 * 1024;
          for (const [k, v] of this.images) {
            if (this.imageBytes + buf.length <= max) break;
            this.images.delete(k);
            this.imageBytes -= v.length;
          }
          this.images.set(offer.storageKey, buf);
          this.imageBytes += buf.length;
          return buf;
        })
        .finally(() => this.loading.delete(offer.storageKey));
      this.loading.set(offer.storageKey, p);
    }
    return p;
  }

  /** Send what the rate and in-flight caps allow now; come back when they allow more. */
  private pump(): void {
    if (this.stopped) return;
    const rate = this.o.blocksPerSecond ?? 2_000;
    const now = Date.now();
    // A token bucket holding at most a tenth of a second's worth: no bursts after a pause.
    this.tokens = Math.min(rate / 10, this.tokens + ((now - this.lastRefill) / 1000) * rate);
    this.lastRefill = now;
    const maxInFlight = this.o.maxInFlight ?? 64;
    while (this.queue.length && this.tokens >= 1 && this.inFlight < maxInFlight) {
      const t = this.queue.shift()!;
      this.queued.delete(`${t.serial}:${t.block}`);
      const buf = this.images.get(t.offer.storageKey);
      if (!buf) {
        // Dropped from the cache meanwhile: load it again, then retry this block.
        void this.image(t.offer).then(
          () => {
            this.queue.unshift(t);
            this.queued.add(`${t.serial}:${t.block}`);
            this.pump();
          },
          (err: unknown) => this.errLog.error('fw-read', { err, image: t.offer.sha256 }, 'cannot read image'),
        );
        continue;
      }
      const msg: FwBlockMessage = {
        v: 1,
        image: t.offer.sha256,
        block: t.block,
        data: Buffer.from(imageBlock(buf, t.offer.blockSize, t.block)).toString('base64'),
      };
      this.tokens--;
      this.inFlight++;
      // Counted as in flight until the broker acknowledges it, or for IN_FLIGHT_LIMIT_MS at
      // most: a PUBACK lost with a connection must not keep the slot (and the pump) forever.
      let settled = false;
      const settle = () => {
        if (settled) return;
        settled = true;
        clearTimeout(limit);
        this.inFlight--;
        this.pump();
      };
      const limit = setTimeout(settle, IN_FLIGHT_LIMIT_MS);
      limit.unref();
      const sent = this.publish(t.serial, encodeDown('fw', msg), settle);
      if (!sent) {
        // Not connected: the meter asks again once we are back.
        settled = true;
        clearTimeout(limit);
        this.inFlight--;
        this.stats.dropped++;
        continue;
      }
      this.stats.blocksSent++;
    }
    if (this.queue.length && !this.pumpTimer && this.inFlight < maxInFlight) {
      this.pumpTimer = setTimeout(
        () => {
          this.pumpTimer = undefined;
          this.pump();
        },
        Math.max(1, Math.ceil(1000 / rate)),
      );
    }
  }

  private noteProgress(campaignId: number, meterId: number, done: number): void {
    const k = `${campaignId}:${meterId}`;
    const p = this.progress.get(k);
    if (!p || done > p.done) this.progress.set(k, { campaignId, meterId, done });
  }

  /**
   * Write the progress gathered since the last flush, in one statement. Progress only: a lost
   * flush costs a stale percentage, never a transfer (the meter's own status corrects it).
   */
  async flushProgress(): Promise<void> {
    if (this.flushing) return this.flushing;
    if (!this.progress.size) return;
    // In key order, like every other writer of these rows, so two writers never deadlock.
    const items = [...this.progress.values()].sort(
      (a, b) => a.campaignId - b.campaignId || a.meterId - b.meterId,
    );
    this.progress.clear();
    this.flushing = this.o.pool
      .query(
        `UPDATE firmware_campaign_meters cm
            SET blocks_done = GREATEST(cm.blocks_done, LEAST(u.done, cm.blocks_total)),
                state = CASE WHEN cm.state = 'offered' THEN 'downloading' ELSE cm.state END,
                updated_at = now()
           FROM unnest($1::bigint[], $2::int[], $3::int[]) AS u(campaign_id, meter_id, done)
          WHERE cm.campaign_id = u.campaign_id AND cm.meter_id = u.meter_id
            AND cm.state IN ('offered', 'downloading')
            AND (cm.state = 'offered' OR cm.blocks_done < LEAST(u.done, cm.blocks_total))`,
        [items.map((i) => i.campaignId), items.map((i) => i.meterId), items.map((i) => i.done)],
      )
      .then(
        () => undefined,
        (err: unknown) => this.errLog.warn('fw-progress', { err }, 'firmware progress not written'),
      )
      .finally(() => {
        this.flushing = undefined;
      });
    return this.flushing;
  }
}
