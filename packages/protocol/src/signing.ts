import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import { ProtocolError } from './errors.ts';
import { commandBody, commandEnvelope, type CommandBody, type CommandEnvelope } from './messages.ts';

/**
 * Ed25519 keys travel as base64 of their raw 32 bytes: short enough for a config value
 * and a database column, and what a meter's secure element would hold.
 */
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export interface KeyPairB64 {
  publicKey: string;
  privateKey: string;
}

export function generateSigningKeyPair(): KeyPairB64 {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return {
    publicKey: publicKey
      .export({ format: 'der', type: 'spki' })
      .subarray(SPKI_PREFIX.length)
      .toString('base64'),
    privateKey: privateKey
      .export({ format: 'der', type: 'pkcs8' })
      .subarray(PKCS8_PREFIX.length)
      .toString('base64'),
  };
}

export function privateKeyFromB64(b64: string): KeyObject {
  const raw = Buffer.from(b64, 'base64');
  if (raw.length !== 32) throw new Error('Ed25519 private key must be 32 bytes');
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, raw]), format: 'der', type: 'pkcs8' });
}

export function publicKeyFromB64(b64: string): KeyObject {
  const raw = Buffer.from(b64, 'base64');
  if (raw.length !== 32) throw new Error('Ed25519 public key must be 32 bytes');
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

export function signBytes(data: Uint8Array | string, key: KeyObject): string {
  return sign(null, typeof data === 'string' ? Buffer.from(data) : data, key).toString('base64');
}

export function verifyBytes(data: Uint8Array | string, sigB64: string, key: KeyObject): boolean {
  const sig = Buffer.from(sigB64, 'base64');
  if (sig.length !== 64) return false;
  return verify(null, typeof data === 'string' ? Buffer.from(data) : data, key, sig);
}

/** Sign a command body; the envelope carries the exact signed text. */
export function signCommand(body: CommandBody, key: KeyObject): CommandEnvelope {
  const text = JSON.stringify(commandBody.parse(body));
  return commandEnvelope.parse({ v: 1, body: text, sig: signBytes(text, key) });
}

/**
 * Authenticate an envelope for one meter: the signature first (nothing unauthenticated is
 * even parsed further), then the body's schema, then that it names this meter. Counter and
 * expiry are the caller's to judge (a meter answers a duplicate of a command it already
 * applied with the stored reply, which a plain counter check could not).
 */
export function verifyCommand(env: CommandEnvelope, key: KeyObject, meterId: string): CommandBody {
  if (!verifyBytes(env.body, env.sig, key))
    throw new ProtocolError('BAD_SIGNATURE', 'command signature invalid');
  let raw: unknown;
  try {
    raw = JSON.parse(env.body);
  } catch {
    throw new ProtocolError('BAD_JSON', 'command body is not JSON');
  }
  const parsed = commandBody.safeParse(raw);
  if (!parsed.success)
    throw new ProtocolError('SCHEMA', parsed.error.issues[0]?.message ?? 'invalid command');
  const body = parsed.data;
  if (body.meter !== meterId) throw new ProtocolError('WRONG_METER', 'command is for another meter');
  return body;
}

/** Whether an authenticated body has expired at `nowS` (epoch s, the meter's clock). */
export function commandExpired(body: CommandBody, nowS: number): boolean {
  return body.expiresAt !== undefined && nowS > body.expiresAt;
}

/**
 * Verify an envelope for one meter: `verifyCommand`, then the counter (strictly above
 * `lastCounter`), then, when `nowS` is given, the expiry. Returns the body.
 */
export function openCommand(
  env: CommandEnvelope,
  key: KeyObject,
  meterId: string,
  lastCounter: number,
  nowS?: number,
): CommandBody {
  const body = verifyCommand(env, key, meterId);
  if (body.counter <= lastCounter) {
    throw new ProtocolError('STALE_COUNTER', `counter ${body.counter} <= last ${lastCounter}`);
  }
  if (nowS !== undefined && commandExpired(body, nowS)) {
    throw new ProtocolError('EXPIRED', `command expired at ${body.expiresAt}`);
  }
  return body;
}

/** The raw base64 public key that belongs to a raw base64 private key. */
export function publicKeyB64FromPrivate(privateB64: string): string {
  return createPublicKey(privateKeyFromB64(privateB64))
    .export({ format: 'der', type: 'spki' })
    .subarray(SPKI_PREFIX.length)
    .toString('base64');
}
