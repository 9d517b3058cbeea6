import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';

/**
 * Largest MQTT packet a client may send to the embedded broker: the protocol's largest
 * message (a 96 KiB firmware block, down) plus topic and header room. The broker parses a
 * whole packet in memory before it looks at it, so without a cap one client — even before it
 * has logged in — could make the process that also runs the API buffer 100 MB or more.
 */
export const MAX_PACKET_BYTES = 128 * 1024;
/** The first packet must be CONNECT: client id, username and password fit in far less. */
export const MAX_CONNECT_BYTES = 4 * 1024;

/**
 * A socket wrapper for aedes that reads each MQTT fixed header as the bytes pass (packet
 * type byte, then the remaining length in 1..4 bytes) and ends the connection as soon as a
 * packet announces more than the limit, before its body arrives. Bytes pass through unchanged.
 */
export class PacketCap extends Duplex {
  private state: 'type' | 'len' | 'body' = 'type';
  private len = 0;
  private mult = 1;
  private lenBytes = 0;
  private skip = 0;
  private packets = 0;

  constructor(
    private readonly sock: Socket,
    private readonly maxBytes = MAX_PACKET_BYTES,
    private readonly maxConnectBytes = MAX_CONNECT_BYTES,
    private readonly onRefused: (announced: number) => void = () => undefined,
  ) {
    super({ allowHalfOpen: false });
    sock.on('data', (chunk: Buffer) => {
      const over = this.scan(chunk);
      if (over !== null) {
        this.onRefused(over);
        sock.destroy();
        this.destroy();
        return;
      }
      if (!this.push(chunk)) sock.pause();
    });
    sock.on('end', () => this.push(null));
    sock.on('close', () => this.destroy());
    sock.on('error', (err) => this.destroy(err));
  }

  /** Advance the header parser over `chunk`; returns the announced size of an oversized packet, else null. */
  private scan(chunk: Buffer): number | null {
    let i = 0;
    while (i < chunk.length) {
      if (this.state === 'body') {
        const n = Math.min(this.skip, chunk.length - i);
        this.skip -= n;
        i += n;
        if (this.skip === 0) this.state = 'type';
        continue;
      }
      const b = chunk[i++]!;
      if (this.state === 'type') {
        this.state = 'len';
        this.len = 0;
        this.mult = 1;
        this.lenBytes = 0;
        continue;
      }
      this.len += (b & 0x7f) * this.mult;
      this.mult *= 128;
      this.lenBytes++;
      if (b & 0x80) {
        if (this.lenBytes === 4) return Number.MAX_SAFE_INTEGER; // malformed: a fifth length byte
        continue;
      }
      const limit = this.packets === 0 ? this.maxConnectBytes : this.maxBytes;
      if (this.len > limit) return this.len;
      this.packets++;
      this.skip = this.len;
      this.state = this.skip === 0 ? 'type' : 'body';
    }
    return null;
  }

  override _read(): void {
    this.sock.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.sock.write(chunk)) cb();
    else this.sock.once('drain', () => cb());
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.sock.end(() => cb());
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.sock.destroy();
    cb(err);
  }
}
