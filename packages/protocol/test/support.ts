// Shared by the protocol tests: the recorded fixtures (see fixtures/record.ts) and a way to
// assert an error's stable code rather than its wording.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  ProtocolError,
  decodeDown,
  decodeUp,
  encodeDown,
  encodeUp,
  type DownKind,
  type ProtocolErrorCode,
  type UpKind,
} from '../src/index.ts';
import type { Fixture, Manifest } from './fixtures/record.ts';

export const FIXTURES = path.join(import.meta.dirname, 'fixtures');

export const manifest = JSON.parse(readFileSync(path.join(FIXTURES, 'manifest.json'), 'utf8')) as Manifest;

/** A fixture's exact bytes. */
export function bytesOf(file: string): Buffer {
  return readFileSync(path.join(FIXTURES, file));
}

export const testKeys = JSON.parse(readFileSync(path.join(FIXTURES, manifest.testKeyFile), 'utf8')) as {
  publicKey: string;
  privateKey: string;
};

/** Decode with the codec of the fixture's direction and kind. */
export function decode(f: Pick<Fixture, 'dir' | 'kind'>, payload: Uint8Array | string): unknown {
  return f.dir === 'up' ? decodeUp(f.kind as UpKind, payload) : decodeDown(f.kind as DownKind, payload);
}

export function encode(f: Pick<Fixture, 'dir' | 'kind'>, msg: unknown): Buffer {
  // The codec is generic per kind; the fixture's kind is only known at run time.
  return f.dir === 'up'
    ? encodeUp(f.kind as UpKind, msg as never)
    : encodeDown(f.kind as DownKind, msg as never);
}

/** The ProtocolError code `fn` throws; fails the test when it returns or throws anything else. */
export function codeOf(fn: () => unknown): ProtocolErrorCode {
  try {
    fn();
  } catch (err) {
    if (err instanceof ProtocolError) return err.code;
    throw err;
  }
  throw new Error('expected a ProtocolError, nothing was thrown');
}
