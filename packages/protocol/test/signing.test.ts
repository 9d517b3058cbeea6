import { describe, expect, it } from 'vitest';
import {
  commandExpired,
  decodeDown,
  generateSigningKeyPair,
  openCommand,
  privateKeyFromB64,
  publicKeyB64FromPrivate,
  publicKeyFromB64,
  signBytes,
  signCommand,
  verifyBytes,
  verifyCommand,
  type CommandBody,
} from '../src/index.ts';
import { bytesOf, codeOf, manifest, testKeys } from './support.ts';

const privateKey = privateKeyFromB64(testKeys.privateKey);
const publicKey = publicKeyFromB64(testKeys.publicKey);
const ISSUED = 1_767_744_000;

const body = (over: Partial<CommandBody> = {}): CommandBody => ({
  v: 1,
  id: '0b6e3f52-1d7a-4c8e-9f10-2a3b4c5d6e7f',
  meter: 'KW0001',
  counter: 7,
  issuedAt: ISSUED,
  expiresAt: ISSUED + 3600,
  cmd: { type: 'credit.add', topupId: 'TU-1', amountMinor: 1_000 },
  ...over,
});

describe('command signing', () => {
  it('round-trips: what is signed opens to the same body, whose text is the signed text', () => {
    const env = signCommand(body(), privateKey);
    expect(verifyCommand(env, publicKey, 'KW0001')).toEqual(body());
    expect(openCommand(env, publicKey, 'KW0001', 6, ISSUED)).toEqual(body());
    expect(JSON.parse(env.body)).toEqual(body());
  });

  it.each(manifest.open.map((c) => [c.file, c.code ?? 'opens', c] as const))(
    '%s with the recorded key: %s',
    (_, __, c) => {
      const env = decodeDown('commands', bytesOf(c.file));
      const open = (): CommandBody => openCommand(env, publicKey, c.meter, c.lastCounter, c.nowS);
      if (c.code === null) expect(open()).toEqual(JSON.parse(env.body));
      else expect(codeOf(open)).toBe(c.code);
    },
  );

  it('refuses a tampered body or signature, and a foreign key, with BAD_SIGNATURE', () => {
    const env = signCommand(body(), privateKey);
    const richer = env.body.replace('"amountMinor":1000', '"amountMinor":9000');
    expect(richer).not.toBe(env.body);
    expect(codeOf(() => verifyCommand({ ...env, body: richer }, publicKey, 'KW0001'))).toBe('BAD_SIGNATURE');
    const sig = Buffer.from(env.sig, 'base64');
    sig[10]! ^= 1;
    expect(codeOf(() => verifyCommand({ ...env, sig: sig.toString('base64') }, publicKey, 'KW0001'))).toBe(
      'BAD_SIGNATURE',
    );
    const other = generateSigningKeyPair();
    expect(codeOf(() => verifyCommand(env, publicKeyFromB64(other.publicKey), 'KW0001'))).toBe(
      'BAD_SIGNATURE',
    );
  });

  it('checks the signature before anything in the body: a forged command for another meter is BAD_SIGNATURE', () => {
    const env = signCommand(body({ meter: 'KW0002' }), privateKey);
    expect(codeOf(() => verifyCommand(env, publicKey, 'KW0001'))).toBe('WRONG_METER');
    const forged = { ...env, body: env.body.replace('"counter":7', '"counter":8') };
    expect(codeOf(() => verifyCommand(forged, publicKey, 'KW0001'))).toBe('BAD_SIGNATURE');
  });

  it('accepts only a counter above the last one', () => {
    const env = signCommand(body({ counter: 7 }), privateKey);
    expect(openCommand(env, publicKey, 'KW0001', 6).counter).toBe(7);
    expect(codeOf(() => openCommand(env, publicKey, 'KW0001', 7))).toBe('STALE_COUNTER');
    expect(codeOf(() => openCommand(env, publicKey, 'KW0001', 100))).toBe('STALE_COUNTER');
  });

  it('expires after expiresAt (inclusive bound), only when the caller gives its clock', () => {
    const b = body();
    expect(commandExpired(b, b.expiresAt!)).toBe(false);
    expect(commandExpired(b, b.expiresAt! + 1)).toBe(true);
    // Bodies signed before expiry existed never expire.
    const { expiresAt: _e, ...old } = b;
    expect(commandExpired(old, Number.MAX_SAFE_INTEGER)).toBe(false);
    const env = signCommand(b, privateKey);
    expect(codeOf(() => openCommand(env, publicKey, 'KW0001', 0, b.expiresAt! + 1))).toBe('EXPIRED');
    expect(openCommand(env, publicKey, 'KW0001', 0)).toEqual(b);
    // The counter is judged before the expiry: a replay stays a replay.
    expect(codeOf(() => openCommand(env, publicKey, 'KW0001', 7, b.expiresAt! + 1))).toBe('STALE_COUNTER');
  });

  it('will not sign a body whose expiry is not after its issue, and will not open one signed by hand', () => {
    expect(() => signCommand(body({ expiresAt: ISSUED }), privateKey)).toThrow();
    expect(() => signCommand(body({ expiresAt: ISSUED - 1 }), privateKey)).toThrow();
    const text = JSON.stringify(body({ expiresAt: ISSUED }));
    expect(
      codeOf(() =>
        verifyCommand({ v: 1, body: text, sig: signBytes(text, privateKey) }, publicKey, 'KW0001'),
      ),
    ).toBe('SCHEMA');
  });
});

describe('keys', () => {
  it('travel as base64 of their raw 32 bytes, and the public key follows from the private one', () => {
    const pair = generateSigningKeyPair();
    expect(Buffer.from(pair.publicKey, 'base64')).toHaveLength(32);
    expect(Buffer.from(pair.privateKey, 'base64')).toHaveLength(32);
    expect(publicKeyB64FromPrivate(pair.privateKey)).toBe(pair.publicKey);
    expect(publicKeyB64FromPrivate(testKeys.privateKey)).toBe(testKeys.publicKey);
    const sig = signBytes('hello', privateKeyFromB64(pair.privateKey));
    expect(verifyBytes('hello', sig, publicKeyFromB64(pair.publicKey))).toBe(true);
    expect(verifyBytes('hellp', sig, publicKeyFromB64(pair.publicKey))).toBe(false);
    expect(verifyBytes(Buffer.from('hello'), sig, publicKeyFromB64(pair.publicKey))).toBe(true);
  });

  it('refuses keys of the wrong length and signatures of the wrong length', () => {
    expect(() => privateKeyFromB64(Buffer.alloc(31).toString('base64'))).toThrow();
    expect(() => publicKeyFromB64(Buffer.alloc(33).toString('base64'))).toThrow();
    expect(verifyBytes('hello', Buffer.alloc(63).toString('base64'), publicKey)).toBe(false);
  });

  it('signs deterministically (Ed25519), which is what makes the command fixtures reproducible', () => {
    expect(signBytes('same', privateKey)).toBe(signBytes('same', privateKey));
  });
});
