import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  blockCount,
  buildManifest,
  decodeDown,
  imageBlock,
  manifestText,
  publicKeyFromB64,
  sha256,
  verifyManifest,
  verifyCommand,
  type Command,
} from '../src/index.ts';
import { FIXTURES, bytesOf, codeOf, manifest, testKeys } from './support.ts';

const fwKeys = JSON.parse(readFileSync(path.join(FIXTURES, manifest.firmwareKeyFile), 'utf8')) as {
  publicKey: string;
};
const firmwareKey = publicKeyFromB64(fwKeys.publicKey);
const commandKey = publicKeyFromB64(testKeys.publicKey);

/** The firmware.offer inside a recorded command envelope. */
function offerIn(file: string): Extract<Command, { type: 'firmware.offer' }> {
  const body = verifyCommand(decodeDown('commands', bytesOf(file)), commandKey, 'KW0001');
  if (body.cmd.type !== 'firmware.offer') throw new Error(`${file} is not an offer`);
  return body.cmd;
}

describe('firmware manifests', () => {
  it('the recorded offer verifies with the firmware key only, never with the command key', () => {
    const offer = offerIn('down/commands.firmware-offer-firmware-key.json');
    const m = verifyManifest(offer.manifest, offer.signature, firmwareKey);
    expect(m).toMatchObject({ version: '1.2.0', sequence: 2, hardwareClass: 'KW-1P-A', blockSize: 1024 });
    expect(m.blockHashes).toHaveLength(blockCount(m.size, m.blockSize));
    // Signed text, never re-serialised: the manifest as the producer wrote it.
    expect(manifestText(m)).toBe(offer.manifest);
    expect(codeOf(() => verifyManifest(offer.manifest, offer.signature, commandKey))).toBe('BAD_SIGNATURE');
  });

  it('an offer signed with the command key is not a firmware signature', () => {
    const offer = offerIn('down/commands.firmware-offer.json');
    expect(codeOf(() => verifyManifest(offer.manifest, offer.signature, firmwareKey))).toBe('BAD_SIGNATURE');
  });

  it('builds one hash per block, the last block short, and the whole-image hash', () => {
    const image = Buffer.from(Array.from({ length: 2500 }, (_, i) => i % 256));
    const m = buildManifest(image, { version: '9.9.9', sequence: 1, hardwareClass: 'X', blockSize: 1024 });
    expect(m.blockHashes).toEqual([0, 1, 2].map((n) => sha256(imageBlock(image, 1024, n))));
    expect(imageBlock(image, 1024, 2)).toHaveLength(452);
    expect(m.sha256).toBe(sha256(image));
    expect(() => buildManifest(Buffer.alloc(0), { version: '1', sequence: 1, hardwareClass: 'X' })).toThrow();
  });

  it('the recorded block request and the block carry the same image, and the verified status progress', () => {
    const status = JSON.parse(bytesOf('up/status.firmware-verified.json').toString()) as {
      firmware: { pending: { image: string; blocks: number; of: number } };
    };
    const req = JSON.parse(bytesOf('up/fw.request-count.json').toString()) as {
      image: string;
      count: number;
    };
    expect(req.image).toBe(status.firmware.pending.image);
    expect(req.count).toBe(status.firmware.pending.of);
    expect(status.firmware.pending.blocks).toBe(status.firmware.pending.of);
  });
});
