import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import {
  FW_DEFAULT_BLOCK_SIZE,
  ProtocolError,
  buildManifest,
  generateSigningKeyPair,
  imageBlock,
  privateKeyFromB64,
  publicKeyB64FromPrivate,
  publicKeyFromB64,
  sha256,
  signManifest,
  verifyManifest,
} from '@kilowire/protocol';

/**
 * `npm run firmware -- <keygen | sign | verify>`: the developer's side of firmware signing.
 * The firmware key's private half lives here, offline, never on the head-end (which holds
 * only FIRMWARE_PUBLIC_KEY); `sign` writes IMAGE.manifest.json, exactly the body that
 * POST /api/firmware/uploads takes.
 */

const USAGE = `usage:
  npm run firmware -- keygen [--out KEYFILE]
      a new firmware key pair; with --out the private key goes to KEYFILE (mode 600) and only
      the public key (for FIRMWARE_PUBLIC_KEY) is printed
  npm run firmware -- sign --key KEY --version V --sequence N --hardware-class C [--block-size B] [--out FILE] IMAGE
      writes IMAGE.manifest.json ({manifest, signature}: the body of POST /api/firmware/uploads)
  npm run firmware -- verify --public-key KEY IMAGE [MANIFEST]
      checks the signature and every block of IMAGE against MANIFEST (default IMAGE.manifest.json)
KEY is base64 or a file holding it.`;

class UsageError extends Error {}

const b64Key = z
  .string()
  .trim()
  .refine((s) => /^[A-Za-z0-9+/]+={0,2}$/.test(s) && Buffer.from(s, 'base64').length === 32, {
    message: 'must be a base64 Ed25519 key (32 bytes), or a file holding one',
  });

/** A key given inline or as a file holding it. */
function keyText(value: string, what: string): string {
  const file = userPath(value);
  const text = existsSync(file) ? readFileSync(file, 'utf8') : value;
  const r = b64Key.safeParse(text);
  if (!r.success) throw new UsageError(`${what}: ${r.error.issues[0]!.message}`);
  return r.data;
}

const whole = (what: string) =>
  z
    .string(`is required (${what})`)
    .regex(/^[1-9]\d{0,8}$/, `must be a whole number (${what})`)
    .transform(Number);

const signArgs = z.strictObject({
  key: z.string('is required').min(1),
  version: z.string('is required').min(1).max(32),
  sequence: whole('the security sequence, >= 1, above every earlier image of the class'),
  'hardware-class': z.string('is required').min(1).max(32),
  'block-size': whole('bytes, 256..65536')
    .pipe(z.number().min(256, 'must be at least 256').max(65_536, 'must be at most 65536'))
    .default(FW_DEFAULT_BLOCK_SIZE),
  out: z.string().optional(),
});

/**
 * `npm run` starts scripts in the project's folder; a path the developer typed is relative to
 * where they typed it (npm passes that as INIT_CWD).
 */
function userPath(p: string): string {
  return path.resolve(process.env.INIT_CWD ?? process.cwd(), p);
}

function parse<T extends z.ZodType>(schema: T, values: Record<string, unknown>): z.infer<T> {
  const r = schema.safeParse(values);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new UsageError(`--${i.path.join('.') || '?'}: ${i.message}`);
  }
  return r.data;
}

function oneImage(positionals: string[], max = 1): string {
  if (positionals.length < 1 || positionals.length > max) throw new UsageError('give one IMAGE file');
  const image = userPath(positionals[0]!);
  if (!existsSync(image)) throw new UsageError(`${image}: no such file`);
  return image;
}

function keygen(args: string[]): void {
  const { values } = parseArgs({ args, options: { out: { type: 'string' } }, strict: true });
  const kp = generateSigningKeyPair();
  if (values.out) {
    const out = userPath(values.out);
    if (existsSync(out)) throw new UsageError(`${values.out} exists; not overwriting a key`);
    writeFileSync(out, `${kp.privateKey}\n`, { mode: 0o600, flag: 'wx' });
    process.stdout.write(`${JSON.stringify({ publicKey: kp.publicKey })}\n`);
  } else {
    process.stdout.write(`${JSON.stringify(kp)}\n`);
  }
  process.stderr.write(
    'Set FIRMWARE_PUBLIC_KEY to the publicKey on the head-end; keep the private key offline.\n',
  );
}

function sign(args: string[]): void {
  const { values, positionals } = parseArgs({
    args,
    options: {
      key: { type: 'string' },
      version: { type: 'string' },
      sequence: { type: 'string' },
      'hardware-class': { type: 'string' },
      'block-size': { type: 'string' },
      out: { type: 'string' },
    },
    allowPositionals: true,
    strict: true,
  });
  const a = parse(signArgs, values);
  const image = oneImage(positionals);
  const key = keyText(a.key, '--key');
  const bytes = readFileSync(image);
  if (bytes.length === 0) throw new UsageError(`${image} is empty`);
  let manifest;
  try {
    manifest = buildManifest(bytes, {
      version: a.version,
      sequence: a.sequence,
      hardwareClass: a['hardware-class'],
      blockSize: a['block-size'],
    });
  } catch (err) {
    // The manifest's own limits (size, at most 1024 blocks): say which.
    const issue = err instanceof z.ZodError ? err.issues[0] : undefined;
    throw new UsageError(
      issue
        ? `cannot sign this image: ${issue.path.join('.')} ${issue.message} (try a larger --block-size)`
        : String(err),
    );
  }
  const signed = signManifest(manifest, privateKeyFromB64(key));
  const out = a.out ? userPath(a.out) : `${image}.manifest.json`;
  writeFileSync(out, `${JSON.stringify(signed)}\n`);
  process.stdout.write(
    `${out}: version ${manifest.version}, sequence ${manifest.sequence}, class ${manifest.hardwareClass}, ` +
      `${manifest.size} bytes in ${manifest.blockHashes.length} blocks, sha256 ${manifest.sha256}\n` +
      `public key ${publicKeyB64FromPrivate(key)}\n`,
  );
}

function verify(args: string[]): boolean {
  const { values, positionals } = parseArgs({
    args,
    options: { 'public-key': { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  if (!values['public-key']) throw new UsageError('--public-key: is required');
  const key = keyText(values['public-key'], '--public-key');
  const image = oneImage(positionals, 2);
  const file = positionals[1] ? userPath(positionals[1]) : `${image}.manifest.json`;
  if (!existsSync(file)) throw new UsageError(`${file}: no such file`);
  const body = z
    .object({ manifest: z.string(), signature: z.string() })
    .safeParse(JSON.parse(readFileSync(file, 'utf8')));
  if (!body.success) throw new UsageError(`${file}: not a {manifest, signature} file`);
  let m;
  try {
    m = verifyManifest(body.data.manifest, body.data.signature, publicKeyFromB64(key));
  } catch (err) {
    if (err instanceof ProtocolError) {
      process.stderr.write(`firmware: ${file}: ${err.message}\n`);
      return false;
    }
    throw err;
  }
  const bytes = readFileSync(image);
  if (bytes.length !== m.size) {
    process.stderr.write(`firmware: ${image} is ${bytes.length} bytes; the manifest says ${m.size}\n`);
    return false;
  }
  for (let n = 0; n < m.blockHashes.length; n++) {
    if (sha256(imageBlock(bytes, m.blockSize, n)) !== m.blockHashes[n]) {
      process.stderr.write(`firmware: block ${n} of ${image} does not match the manifest\n`);
      return false;
    }
  }
  if (sha256(bytes) !== m.sha256) {
    process.stderr.write(`firmware: ${image} does not match the manifest's sha256\n`);
    return false;
  }
  process.stdout.write(
    `ok: ${image} is version ${m.version} (sequence ${m.sequence}, class ${m.hardwareClass})\n`,
  );
  return true;
}

export function main(argv: string[]): number {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'keygen':
        keygen(rest);
        return 0;
      case 'sign':
        sign(rest);
        return 0;
      case 'verify':
        return verify(rest) ? 0 : 1;
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        process.stdout.write(`${USAGE}\n`);
        return cmd === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command ${cmd}`);
    }
  } catch (err) {
    // parseArgs throws TypeErrors with an ERR_PARSE_ARGS_* code for unknown or missing options.
    const usage = err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    if (!usage) throw err;
    process.stderr.write(`firmware: ${(err as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href)
  process.exitCode = main(process.argv.slice(2));
