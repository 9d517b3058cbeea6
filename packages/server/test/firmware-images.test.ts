import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import type { FastifyInstance } from 'fastify';
import {
  buildManifest,
  generateSigningKeyPair,
  privateKeyFromB64,
  signBytes,
  signManifest,
  type FirmwareManifest,
} from '@kilowire/protocol';
import { createTestDb, type TestDb } from './support/db.ts';
import { as, buildWorld, login, testApi, type World } from './support/api.ts';
import { testConfig } from './support/api.ts';
import { waitFor } from './support/world.ts';

/**
 * #10 firmware uploads through the API: a good image is stored under its SHA-256 and
 * recorded; every kind of bad one (changed byte, truncated, extended, wrong key, bad
 * manifest, too large, duplicate) is refused with its code and leaves no file and no row.
 */

const MAX = 64 * 1024;
let db: TestDb;
let app: FastifyInstance;
let w: World;
let dir: string;
let fwKey: ReturnType<typeof generateSigningKeyPair>;
let sup1: string;
let agent1: string;
let sup2: string;
let sequence = 1;

beforeAll(async () => {
  db = await createTestDb();
  w = await buildWorld(db.pool);
  dir = await mkdtemp(path.join(tmpdir(), 'kw-fw-images-'));
  const cfg = testConfig();
  fwKey = { privateKey: cfg.firmwareSigningKey!, publicKey: cfg.firmwarePublicKey };
  app = await testApi(db.pool, {
    config: {
      firmwareDir: dir,
      firmwareMaxBytes: MAX,
      firmwarePublicKey: fwKey.publicKey,
      firmwareSigningKey: fwKey.privateKey,
    },
  });
  sup1 = await login(app, w.login.sup1);
  agent1 = await login(app, w.login.agent1);
  sup2 = await login(app, w.login.sup2);
});
afterAll(async () => {
  await app?.close();
  await db?.drop();
  await rm(dir, { recursive: true, force: true });
});

interface Built {
  image: Buffer;
  manifest: FirmwareManifest;
  body: { manifest: string; signature: string; notes?: string };
}

function build(size = 10_000, blockSize = 1024, key = fwKey.privateKey, hardwareClass = 'KW-1'): Built {
  const image = randomBytes(size);
  const manifest = buildManifest(image, {
    version: `1.${sequence}.0`,
    sequence: sequence++,
    hardwareClass,
    blockSize,
  });
  return { image, manifest, body: signManifest(manifest, privateKeyFromB64(key)) };
}

async function begin(cookie: string, body: Record<string, unknown>) {
  return app.inject(
    as(cookie, {
      method: 'POST',
      url: '/api/firmware/uploads',
      headers: { 'content-type': 'application/json' },
      payload: body,
    }),
  );
}

async function put(cookie: string, uploadId: string, bytes: Buffer) {
  return app.inject(
    as(cookie, {
      method: 'PUT',
      url: `/api/firmware/uploads/${uploadId}`,
      headers: { 'content-type': 'application/octet-stream' },
      payload: bytes,
    }),
  );
}

const code = (res: { body: string }) => (JSON.parse(res.body) as { error: { code: string } }).error.code;
const message = (res: { body: string }) =>
  (JSON.parse(res.body) as { error: { message: string } }).error.message;

async function images(): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM firmware_images');
  return rows[0]!.n;
}

/** Files in the firmware folder (finished images and any leftover part files). */
async function files(): Promise<string[]> {
  return (await readdir(dir).catch(() => [])).sort();
}

describe('a good upload', () => {
  test('is stored under its SHA-256, recorded, audited, listed, and reads back byte for byte', async () => {
    const b = build(10_000, 1024);
    const r1 = await begin(sup1, { ...b.body, notes: 'first build' });
    expect(r1.statusCode, r1.body).toBe(201);
    const up = JSON.parse(r1.body) as { uploadId: string; blocks: number; size: number };
    expect(up).toMatchObject({
      blocks: 10,
      size: 10_000,
      version: b.manifest.version,
      hardwareClass: 'KW-1',
    });
    const r2 = await put(sup1, up.uploadId, b.image);
    expect(r2.statusCode, r2.body).toBe(201);
    const img = JSON.parse(r2.body) as { id: number; sha256: string; blocks: number; uploadedBy: string };
    expect(img).toMatchObject({
      sha256: b.manifest.sha256,
      blocks: 10,
      size: 10_000,
      notes: 'first build',
      uploadedBy: 'Sup1 Staff',
      campaigns: 0,
    });
    expect(await readFile(path.join(dir, `${b.manifest.sha256}.bin`))).toEqual(b.image);
    expect(await files()).toEqual([`${b.manifest.sha256}.bin`]);
    const row = await db.pool.query<{ manifest: string; signature: string; storage_key: string }>(
      'SELECT manifest, signature, storage_key FROM firmware_images WHERE id = $1',
      [img.id],
    );
    // Kept exactly as signed: it goes to meters as is.
    expect(row.rows[0]).toEqual({
      manifest: b.body.manifest,
      signature: b.body.signature,
      storage_key: `${b.manifest.sha256}.bin`,
    });
    const audit = await db.pool.query<{ action: string }>(
      `SELECT action FROM audit_log WHERE action LIKE 'firmware.%' ORDER BY id`,
    );
    expect(audit.rows.map((r) => r.action)).toEqual(['firmware.upload_begin', 'firmware.upload']);
    // The upload is used up.
    expect((await put(sup1, up.uploadId, b.image)).statusCode).toBe(404);

    const list = await app.inject(as(agent1, { method: 'GET', url: '/api/firmware/images' }));
    expect(list.statusCode).toBe(200);
    expect((JSON.parse(list.body) as { items: { id: number }[] }).items.map((i) => i.id)).toEqual([img.id]);
    const one = await app.inject(as(agent1, { method: 'GET', url: `/api/firmware/images/${img.id}` }));
    expect(JSON.parse(one.body)).toMatchObject({ id: img.id, sha256: b.manifest.sha256 });

    // Another supplier sees nothing of it.
    const other = await app.inject(as(sup2, { method: 'GET', url: '/api/firmware/images' }));
    expect(JSON.parse(other.body)).toEqual({ items: [] });
    const otherOne = await app.inject(as(sup2, { method: 'GET', url: `/api/firmware/images/${img.id}` }));
    expect(otherOne.statusCode).toBe(404);
    expect(otherOne.body).not.toContain(b.manifest.sha256);
  });

  test('an image whose size is not a whole number of blocks (short last block) is accepted', async () => {
    const b = build(4097, 4096);
    const up = JSON.parse((await begin(sup1, b.body)).body) as { uploadId: string };
    const r = await put(sup1, up.uploadId, b.image);
    expect(r.statusCode, r.body).toBe(201);
    expect(await readFile(path.join(dir, `${b.manifest.sha256}.bin`))).toEqual(b.image);
  });
});

describe('refused uploads store nothing', () => {
  let before: { rows: number; files: string[] };
  beforeEach(async () => {
    before = { rows: await images(), files: await files() };
  });
  async function expectNothingStored(sha?: string): Promise<void> {
    expect(await images()).toBe(before.rows);
    expect(await files()).toEqual(before.files);
    if (sha) expect(before.files).not.toContain(`${sha}.bin`);
  }

  test.each([
    ['first', 0],
    ['middle', 5_000],
    ['last', 9_999],
  ])('one changed byte (%s) -> 422 FW_HASH_MISMATCH naming the block', async (_where, at) => {
    const b = build(10_000, 1024);
    const up = JSON.parse((await begin(sup1, b.body)).body) as { uploadId: string };
    const bad = Buffer.from(b.image);
    bad[at] = bad[at]! ^ 0x01;
    const r = await put(sup1, up.uploadId, bad);
    expect(r.statusCode).toBe(422);
    expect(code(r)).toBe('FW_HASH_MISMATCH');
    expect(message(r)).toContain(`block ${Math.floor(at / 1024)} `);
    await expectNothingStored(b.manifest.sha256);
    // The upload stays open: the right bytes still go through.
    expect((await put(sup1, up.uploadId, b.image)).statusCode).toBe(201);
  });

  test('truncated -> 422 FW_SIZE_MISMATCH', async () => {
    const b = build(10_000, 1024);
    const up = JSON.parse((await begin(sup1, b.body)).body) as { uploadId: string };
    // Cut at a block boundary, so every block that arrived matches: only the size tells.
    const r = await put(sup1, up.uploadId, b.image.subarray(0, 9 * 1024));
    expect(r.statusCode).toBe(422);
    expect(code(r)).toBe('FW_SIZE_MISMATCH');
    await expectNothingStored(b.manifest.sha256);
  });

  test('extended by one byte -> 422 FW_SIZE_MISMATCH', async () => {
    const b = build(10_000, 1024);
    const up = JSON.parse((await begin(sup1, b.body)).body) as { uploadId: string };
    const r = await put(sup1, up.uploadId, Buffer.concat([b.image, Buffer.from([0])]));
    expect(r.statusCode).toBe(422);
    expect(code(r)).toBe('FW_SIZE_MISMATCH');
    await expectNothingStored(b.manifest.sha256);
  });

  test('signed with another key (the command key, say) -> 422 FW_BAD_SIGNATURE before any byte moves', async () => {
    const other = generateSigningKeyPair();
    const b = build(2_000, 1024, other.privateKey);
    const r = await begin(sup1, b.body);
    expect(r.statusCode).toBe(422);
    expect(code(r)).toBe('FW_BAD_SIGNATURE');
    const open = await db.pool.query('SELECT 1 FROM firmware_uploads WHERE sha256 = $1', [b.manifest.sha256]);
    expect(open.rowCount).toBe(0);
    await expectNothingStored();
  });

  test('a manifest that was changed after signing -> 422 FW_BAD_SIGNATURE', async () => {
    const b = build(2_000, 1024);
    const r = await begin(sup1, { ...b.body, manifest: b.body.manifest.replace('"KW-1"', '"KW-2"') });
    expect(code(r)).toBe('FW_BAD_SIGNATURE');
  });

  test('a signed manifest that does not add up -> 422 FW_BAD_MANIFEST', async () => {
    const b = build(2_000, 1024);
    // One block hash missing, then signed properly: the signature is good, the manifest is not.
    const broken = JSON.stringify({ ...b.manifest, blockHashes: b.manifest.blockHashes.slice(1) });
    const r = await begin(sup1, {
      manifest: broken,
      signature: signBytes(broken, privateKeyFromB64(fwKey.privateKey)),
    });
    expect(r.statusCode).toBe(422);
    expect(code(r)).toBe('FW_BAD_MANIFEST');
    const notJson = 'not json at all';
    const r2 = await begin(sup1, {
      manifest: notJson,
      signature: signBytes(notJson, privateKeyFromB64(fwKey.privateKey)),
    });
    expect(code(r2)).toBe('FW_BAD_MANIFEST');
    await expectNothingStored();
  });

  test('larger than FIRMWARE_MAX_BYTES -> 413 PAYLOAD_TOO_LARGE at step 1', async () => {
    const b = build(MAX + 1, 4096);
    const r = await begin(sup1, b.body);
    expect(r.statusCode).toBe(413);
    expect(code(r)).toBe('PAYLOAD_TOO_LARGE');
    await expectNothingStored();
  });

  test('a body far larger than the manifest stops being read one byte past its size', async () => {
    const b = build(2_000, 1024);
    const up = JSON.parse((await begin(sup1, b.body)).body) as { uploadId: string };
    const r = await put(sup1, up.uploadId, Buffer.concat([b.image, randomBytes(MAX * 2)]));
    expect(r.statusCode).toBe(413);
    expect(code(r)).toBe('PAYLOAD_TOO_LARGE');
    await expectNothingStored(b.manifest.sha256);
  });

  test('the same image again, or the same class and sequence -> 409 FW_DUPLICATE', async () => {
    const b = build(3_000, 1024);
    const up = JSON.parse((await begin(sup1, b.body)).body) as { uploadId: string };
    expect((await put(sup1, up.uploadId, b.image)).statusCode).toBe(201);
    before = { rows: await images(), files: await files() };
    const again = await begin(sup1, b.body);
    expect(again.statusCode).toBe(409);
    expect(code(again)).toBe('FW_DUPLICATE');
    // Other bytes, same hardware class and sequence: a rollback in disguise.
    const twin = randomBytes(3_000);
    const tm = buildManifest(twin, { ...b.manifest, version: '9.9.9', blockSize: 1024 });
    const r = await begin(sup1, { ...signManifest(tm, privateKeyFromB64(fwKey.privateKey)) });
    expect(code(r)).toBe('FW_DUPLICATE');
    expect(message(r)).toContain('sequence');
    // Two uploads of one image opened before either finished: the second PUT is refused.
    const c = build(3_000, 1024);
    const u1 = JSON.parse((await begin(sup1, c.body)).body) as { uploadId: string };
    const u2 = JSON.parse((await begin(sup1, c.body)).body) as { uploadId: string };
    expect((await put(sup1, u1.uploadId, c.image)).statusCode).toBe(201);
    before = { rows: await images(), files: await files() };
    const dup = await put(sup1, u2.uploadId, c.image);
    expect(code(dup)).toBe('FW_DUPLICATE');
    // Its file is the first upload's, untouched.
    expect(await readFile(path.join(dir, `${c.manifest.sha256}.bin`))).toEqual(c.image);
    expect(await images()).toBe(before.rows);
    expect(await files()).toEqual(before.files);
  });

  test('a part file a crashed upload left behind is swept by a later upload; a fresh one is not', async () => {
    const old = path.join(dir, '.upload-crashed-0000.part');
    const fresh = path.join(dir, '.upload-running-0000.part');
    await writeFile(old, 'half an image');
    await writeFile(fresh, 'an upload under way');
    const longAgo = new Date(Date.now() - 3 * 3600_000);
    await utimes(old, longAgo, longAgo);
    const b = build(2_000, 1024);
    expect((await begin(sup1, b.body)).statusCode).toBe(201);
    const left = await files();
    expect(left).not.toContain('.upload-crashed-0000.part');
    expect(left).toContain('.upload-running-0000.part');
    await rm(fresh);
  });

  test('another supplier cannot finish my upload; an agent cannot upload; JSON is not an image', async () => {
    const b = build(2_000, 1024);
    const up = JSON.parse((await begin(sup1, b.body)).body) as { uploadId: string };
    const r = await put(sup2, up.uploadId, b.image);
    expect(r.statusCode).toBe(404);
    expect((await put(agent1, up.uploadId, b.image)).statusCode).toBe(403);
    expect((await begin(agent1, b.body)).statusCode).toBe(403);
    const asJson = await app.inject(
      as(sup1, {
        method: 'PUT',
        url: `/api/firmware/uploads/${up.uploadId}`,
        headers: { 'content-type': 'application/json' },
        payload: { bytes: 'nope' },
      }),
    );
    expect(asJson.statusCode).toBe(415);
    // Any other type is refused by the CSRF wall before the route.
    const asText = await app.inject(
      as(sup1, {
        method: 'PUT',
        url: `/api/firmware/uploads/${up.uploadId}`,
        headers: { 'content-type': 'text/plain' },
        payload: 'hello',
      }),
    );
    expect(asText.statusCode).toBe(415);
    const expired = await db.pool.query(
      `UPDATE firmware_uploads SET expires_at = now() - interval '1 second' WHERE id = $1`,
      [up.uploadId],
    );
    expect(expired.rowCount).toBe(1);
    expect((await put(sup1, up.uploadId, b.image)).statusCode).toBe(404);
    await expectNothingStored(b.manifest.sha256);
  });
});

describe('over a real socket, the image is streamed, not buffered', () => {
  let base: string;
  beforeAll(async () => {
    base = await app.listen({ port: 0, host: '127.0.0.1' });
  });

  /** A PUT whose body the test writes piece by piece; `res` resolves when the answer arrives. */
  function streamingPut(uploadId: string, length: number) {
    const req = http.request(`${base}/api/firmware/uploads/${uploadId}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream', 'content-length': length, cookie: sup1 },
    });
    const res = new Promise<{ status: number; body: string }>((resolve, reject) => {
      req.on('response', (r) => {
        let body = '';
        r.on('data', (d: Buffer) => (body += d.toString()));
        r.on('end', () => resolve({ status: r.statusCode ?? 0, body }));
      });
      req.on('error', reject);
    });
    return { req, res };
  }

  const partFiles = async () => (await files()).filter((f) => f.endsWith('.part'));

  test('the first blocks are on disk before the last ones are sent', async () => {
    const b = build(40 * 1024, 1024);
    const up = JSON.parse((await begin(sup1, b.body)).body) as { uploadId: string };
    const { req, res } = streamingPut(up.uploadId, b.image.length);
    req.write(b.image.subarray(0, 8 * 1024));
    // Written through to the part file while the request is still open.
    await waitFor(async () => {
      const [part] = await partFiles();
      return part !== undefined && (await stat(path.join(dir, part))).size >= 8 * 1024;
    });
    req.end(b.image.subarray(8 * 1024));
    const r = await res;
    expect(r.status, r.body).toBe(201);
    expect(await partFiles()).toEqual([]);
    expect(await readFile(path.join(dir, `${b.manifest.sha256}.bin`))).toEqual(b.image);
  });

  test('a bad block is refused while the rest is still unsent, and its part file is gone', async () => {
    const b = build(40 * 1024, 1024);
    const up = JSON.parse((await begin(sup1, b.body)).body) as { uploadId: string };
    const bad = Buffer.from(b.image);
    bad[2 * 1024 + 5] = bad[2 * 1024 + 5]! ^ 0x80;
    const { req, res } = streamingPut(up.uploadId, bad.length);
    req.write(bad.subarray(0, 4 * 1024));
    // The answer comes before the body is complete: the server stopped at block 2.
    const r = await res;
    expect(r.status).toBe(422);
    expect(code(r)).toBe('FW_HASH_MISMATCH');
    expect(message(r)).toContain('block 2 ');
    req.destroy();
    expect(await partFiles()).toEqual([]);
    expect(await files()).not.toContain(`${b.manifest.sha256}.bin`);
  });
});
