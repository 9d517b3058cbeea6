import type { z } from 'zod';
import { ProtocolError } from './errors.ts';
import { isPlainReadings } from './fast-readings.ts';
import {
  PROTOCOL_VERSION,
  SIZE_LIMITS,
  ackMessage,
  commandEnvelope,
  eventsMessage,
  fwBlockMessage,
  fwRequestMessage,
  readingsMessage,
  replyMessage,
  statusMessage,
} from './messages.ts';
import type { DownKind, UpKind } from './topics.ts';

/**
 * The one codec both sides use: size limit, strict UTF-8, JSON, version, schema — in that
 * order, so the cheapest check rejects first and a hostile payload never reaches JSON.parse
 * when it is oversized.
 */
const utf8 = new TextDecoder('utf-8', { fatal: true });

export const upSchemas = {
  readings: readingsMessage,
  events: eventsMessage,
  status: statusMessage,
  replies: replyMessage,
  fw: fwRequestMessage,
} as const;
export const downSchemas = { acks: ackMessage, commands: commandEnvelope, fw: fwBlockMessage } as const;

export type UpMessage<K extends UpKind> = z.infer<(typeof upSchemas)[K]>;
export type DownMessage<K extends DownKind> = z.infer<(typeof downSchemas)[K]>;

function sizeLimit(dir: 'up' | 'down', kind: string): number {
  if (kind === 'fw') return dir === 'up' ? SIZE_LIMITS['up.fw'] : SIZE_LIMITS['down.fw'];
  return SIZE_LIMITS[kind as keyof typeof SIZE_LIMITS];
}

function decode<T>(schema: z.ZodType<T>, limit: number, payload: Uint8Array | string): T {
  const size = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.byteLength;
  if (size > limit) throw new ProtocolError('PAYLOAD_TOO_LARGE', `payload of ${size} bytes exceeds ${limit}`);
  let text: string;
  if (typeof payload === 'string') text = payload;
  else {
    try {
      text = utf8.decode(payload);
    } catch {
      throw new ProtocolError('BAD_UTF8', 'payload is not valid UTF-8');
    }
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new ProtocolError('BAD_JSON', 'payload is not JSON');
  }
  if (typeof raw !== 'object' || raw === null || (raw as { v?: unknown }).v !== PROTOCOL_VERSION) {
    throw new ProtocolError('BAD_VERSION', `unsupported protocol version`);
  }
  // The gateway's hottest message, in its plain form, skips zod (see fast-readings.ts).
  if (schema === (readingsMessage as unknown) && isPlainReadings(raw)) return raw as T;
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw new ProtocolError('SCHEMA', `${first?.path.join('.') ?? ''}: ${first?.message ?? 'invalid'}`);
  }
  return parsed.data;
}

/** Decode a meter -> head-end message. Throws ProtocolError with a stable code. */
export function decodeUp<K extends UpKind>(kind: K, payload: Uint8Array | string): UpMessage<K> {
  return decode(upSchemas[kind] as unknown as z.ZodType<UpMessage<K>>, sizeLimit('up', kind), payload);
}

/** Decode a head-end -> meter message. Throws ProtocolError with a stable code. */
export function decodeDown<K extends DownKind>(kind: K, payload: Uint8Array | string): DownMessage<K> {
  return decode(downSchemas[kind] as unknown as z.ZodType<DownMessage<K>>, sizeLimit('down', kind), payload);
}

/** Encode any message. Senders validate too, so a bug on our side never reaches the wire. */
export function encodeUp<K extends UpKind>(kind: K, msg: UpMessage<K>): Buffer {
  const buf = Buffer.from(JSON.stringify(msg));
  decodeUp(kind, buf);
  return buf;
}

export function encodeDown<K extends DownKind>(kind: K, msg: DownMessage<K>): Buffer {
  const buf = Buffer.from(JSON.stringify(msg));
  decodeDown(kind, buf);
  return buf;
}
