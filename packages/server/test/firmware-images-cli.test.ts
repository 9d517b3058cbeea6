import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createTestDb, type TestDb } from './support/db.ts';
import { as, buildWorld, login, testApi, type World } from './support/api.ts';

/**
 * #10 `npm run firmware -- keygen | sign | verify`, run as a developer runs it (a child
 * process, paths relative to where they typed them), and its output taken by the upload API
 * as is.
 */

const ROOT = path.resolve(import.meta.dirname, '../../..');
const CLI = path.join(ROOT, 'packages/server/src/firmware/cli.ts');
let work: string;

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', CLI, ...args],
      { cwd: ROOT, env: { ...process.env, INIT_CWD: work } },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

let db: TestDb;
let app: FastifyInstance;
let w: World;
let publicKey: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'kw-fw-cli-'));
  const kg = await run(['keygen', '--out', 'fw.key']);
  expect(kg.code, kg.stderr).toBe(0);
  publicKey = (JSON.parse(kg.stdout) as { publicKey: string }).publicKey;
  db = await createTestDb();
  w = await buildWorld(db.pool);
  app = await testApi(db.pool, {
    config: { firmwarePublicKey: publicKey, firmwareSigningKey: null, firmwareDir: path.join(work, 'store') },
  });
});
afterAll(async () => {
  await app?.close();
  await db?.drop();
  await rm(work, { recursive: true, force: true });
});

test('keygen keeps the private key in a mode-600 file and refuses to overwrite it', async () => {
  const st = await stat(path.join(work, 'fw.key'));
  expect(st.mode & 0o777).toBe(0o600);
  expect(Buffer.from((await readFile(path.join(work, 'fw.key'), 'utf8')).trim(), 'base64')).toHaveLength(32);
  const again = await run(['keygen', '--out', 'fw.key']);
  expect(again.code).toBe(2);
  expect(again.stderr).toContain('not overwriting');
});

test('sign writes IMAGE.manifest.json, verify accepts it, and the upload API takes it as is', async () => {
  const image = randomBytes(20_000);
  await writeFile(path.join(work, 'app.bin'), image);
  const s = await run([
    'sign',
    '--key',
    'fw.key',
    '--version',
    '2.1.0',
    '--sequence',
    '7',
    '--hardware-class',
    'KW-1',
    '--block-size',
    '4096',
    'app.bin',
  ]);
  expect(s.code, s.stderr).toBe(0);
  expect(s.stdout).toContain(`public key ${publicKey}`);
  const body = JSON.parse(await readFile(path.join(work, 'app.bin.manifest.json'), 'utf8')) as {
    manifest: string;
    signature: string;
  };
  expect(Object.keys(body).sort()).toEqual(['manifest', 'signature']);
  expect(JSON.parse(body.manifest)).toMatchObject({
    version: '2.1.0',
    sequence: 7,
    size: 20_000,
    blockSize: 4096,
  });

  const v = await run(['verify', '--public-key', publicKey, 'app.bin']);
  expect(v.code, v.stderr).toBe(0);
  expect(v.stdout).toContain('ok:');

  const sup1 = await login(app, w.login.sup1);
  const r1 = await app.inject(
    as(sup1, {
      method: 'POST',
      url: '/api/firmware/uploads',
      headers: { 'content-type': 'application/json' },
      payload: body,
    }),
  );
  expect(r1.statusCode, r1.body).toBe(201);
  const { uploadId } = JSON.parse(r1.body) as { uploadId: string };
  const r2 = await app.inject(
    as(sup1, {
      method: 'PUT',
      url: `/api/firmware/uploads/${uploadId}`,
      headers: { 'content-type': 'application/octet-stream' },
      payload: image,
    }),
  );
  expect(r2.statusCode, r2.body).toBe(201);
  expect(JSON.parse(r2.body)).toMatchObject({ version: '2.1.0', sequence: 7, blocks: 5 });
});

test('verify refuses a changed image, a wrong key and a changed manifest (exit 1)', async () => {
  const image = randomBytes(5_000);
  await writeFile(path.join(work, 'b.bin'), image);
  const args = ['--key', 'fw.key', '--version', '1', '--sequence', '1', '--hardware-class', 'KW-1'];
  expect((await run(['sign', ...args, '--block-size', '1024', 'b.bin'])).code).toBe(0);
  const bad = Buffer.from(image);
  bad[4_000] = bad[4_000]! ^ 0xff;
  await writeFile(path.join(work, 'b2.bin'), bad);
  const changed = await run(['verify', '--public-key', publicKey, 'b2.bin', 'b.bin.manifest.json']);
  expect(changed.code).toBe(1);
  expect(changed.stderr).toContain('block 3 ');
  const otherKey = JSON.parse((await run(['keygen'])).stdout) as { publicKey: string };
  const wrong = await run(['verify', '--public-key', otherKey.publicKey, 'b.bin']);
  expect(wrong.code).toBe(1);
  expect(wrong.stderr).toContain('signature');
  const m = JSON.parse(await readFile(path.join(work, 'b.bin.manifest.json'), 'utf8')) as {
    manifest: string;
  };
  await writeFile(
    path.join(work, 'b3.json'),
    JSON.stringify({ ...m, manifest: m.manifest.replace('"KW-1"', '"KW-9"') }),
  );
  expect((await run(['verify', '--public-key', publicKey, 'b.bin', 'b3.json'])).code).toBe(1);
});

test('bad arguments are refused with a clear message (exit 2) and nothing is written', async () => {
  await writeFile(path.join(work, 'c.bin'), randomBytes(1_000));
  const cases: [string[], string][] = [
    [
      ['sign', '--key', 'fw.key', '--version', '1', '--hardware-class', 'K', 'c.bin'],
      '--sequence: is required',
    ],
    [
      ['sign', '--key', 'fw.key', '--version', '1', '--sequence', '0', '--hardware-class', 'K', 'c.bin'],
      '--sequence',
    ],
    [
      ['sign', '--key', 'nonsense', '--version', '1', '--sequence', '1', '--hardware-class', 'K', 'c.bin'],
      '--key',
    ],
    [
      [
        'sign',
        '--key',
        'fw.key',
        '--version',
        '1',
        '--sequence',
        '1',
        '--hardware-class',
        'K',
        '--block-size',
        '100',
        'c.bin',
      ],
      '--block-size',
    ],
    [
      [
        'sign',
        '--key',
        'fw.key',
        '--version',
        '1',
        '--sequence',
        '1',
        '--hardware-class',
        'K',
        'missing.bin',
      ],
      'no such file',
    ],
    [['sign', '--key', 'fw.key', '--bogus', 'c.bin'], 'bogus'],
    [['explode'], 'unknown command'],
  ];
  for (const [args, msg] of cases) {
    const r = await run(args);
    expect(r.code, args.join(' ')).toBe(2);
    expect(r.stderr).toContain(msg);
  }
  await expect(stat(path.join(work, 'c.bin.manifest.json'))).rejects.toThrow();
});
