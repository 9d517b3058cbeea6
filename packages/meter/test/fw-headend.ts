import { randomUUID } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import {
  decodeUp,
  encodeDown,
  imageBlock,
  type Command,
  type EventsMessage,
  type ReplyMessage,
  type StatusMessage,
} from '@kilowire/protocol';
import { BS, type TestImage } from './fw-support.ts';
import { connectHeadend, signed, until } from './helpers.ts';

/**
 * A tiny head-end for one meter: answers its block requests from images held in memory,
 * acknowledges its events, keeps its replies and statuses, and sends it signed commands.
 */
export class TinyHeadend {
  readonly requests: { image: string; block: number; count: number }[] = [];
  readonly replies: ReplyMessage[] = [];
  readonly statuses: StatusMessage[] = [];
  readonly events: EventsMessage['events'] = [];
  /** What is served for each image hash (may differ from what was signed). */
  readonly images = new Map<string, Uint8Array>();
  /** Requests answered at most (then the head-end goes quiet, as a link that died). */
  answerAtMost = Infinity;
  private counter = 0;

  constructor(
    readonly id: string,
    private readonly head: MqttClient,
  ) {
    head.on('message', (topic, payload) => {
      const kind = topic.split('/')[3];
      if (kind === 'fw') this.onRequest(payload);
      else if (kind === 'replies') this.replies.push(decodeUp('replies', payload));
      else if (kind === 'status') this.statuses.push(decodeUp('status', payload));
      else if (kind === 'events') {
        const msg = decodeUp('events', payload);
        this.events.push(...msg.events);
        void this.head.publishAsync(
          `meters/${this.id}/down/acks`,
          encodeDown('acks', { v: 1, kind: 'ack', stream: 'events', upTo: msg.seq }),
          { qos: 1 },
        );
      }
    });
  }

  static async start(brokerUrl: string, id: string): Promise<TinyHeadend> {
    const head = await connectHeadend(brokerUrl, id);
    await head.subscribeAsync(`meters/${id}/up/#`, { qos: 1 });
    return new TinyHeadend(id, head);
  }

  private onRequest(payload: Buffer): void {
    const req = decodeUp('fw', payload);
    const count = req.count ?? 1;
    this.requests.push({ image: req.image, block: req.block, count });
    const bytes = this.images.get(req.image);
    if (!bytes || this.requests.length > this.answerAtMost) return;
    for (let n = req.block; n < req.block + count; n++) {
      const data = Buffer.from(imageBlock(bytes, BS, n)).toString('base64');
      void this.head.publishAsync(
        `meters/${this.id}/down/fw`,
        encodeDown('fw', { v: 1, image: req.image, block: n, data }),
        { qos: 1 },
      );
    }
  }

  /** Sends a signed command; resolves with its reply. */
  async command(cmd: Command): Promise<ReplyMessage> {
    const id = randomUUID();
    const buf = signed(cmd, ++this.counter, { meter: this.id, id });
    await this.head.publishAsync(`meters/${this.id}/down/commands`, buf, { qos: 1 });
    await until(`reply to ${cmd.type}`, () => this.replies.some((r) => r.id === id), 10_000);
    return this.replies.find((r) => r.id === id)!;
  }

  offer(img: TestImage, served: Uint8Array = img.bytes): Promise<ReplyMessage> {
    this.images.set(img.sha, served);
    return this.command(img.offer);
  }

  codes(): string[] {
    return this.events.map((e) => e.code);
  }

  end(): Promise<void> {
    return this.head.endAsync();
  }
}
