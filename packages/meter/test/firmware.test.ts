import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  decodeUp,
  encodeDown,
  generateSigningKeyPair,
  imageBlock,
  privateKeyFromB64,
  sha256,
  signBytes,
  signManifest,
} from '@kilowire/protocol';
import { makeSimImage, readSimHeader } from '../src/firmware-sim.ts';
import { Meter, type MeterOptions } from '../src/meter.ts';
import { FileStore, MemoryStore, type MeterStore } from '../src/store.ts';
import { T0, eventCodes, events, keys, serverKey, signed } from './helpers.ts';
import { BS, HW, drain, flipped, fwKeys, serve, testImage, type TestImage } from './fw-support.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function fileStore(): FileStore {
  const d = mkdtempSync(join(tmpdir(), 'kw-fw-'));
  dirs.push(d);
  return new FileStore(join(d, 'M1.json'), { fsync: false });
}

function meterOn(store: MeterStore, over: Partial<MeterOptions> = {}): Meter {
  return new Meter({
    id: 'M1',
    tz: 'Europe/London',
    serverPublicKey: keys.publicKey,
    firmwarePublicKey: fwKeys.publicKey,
    store,
    seed: 42,
    startS: T0,
    hardwareClass: HW,
    firmwareSequence: 3,
    ...over,
  });
}

let counter = 0;
function command(m: Meter, cmd: Parameters<typeof signed>[0], nowS = T0 + 60) {
  const out = m.handleCommand(signed(cmd, ++counter), nowS);
  drain(m);
  return out;
}

/** The invariant of every step: the active slot holds a whole image the meter can boot. */
function bootable(m: Meter, store: MeterStore, img: TestImage): 'old' | 'new' {
  const s = m.snapshot().firmware;
  expect(s.slots[s.active]).not.toBeNull();
  if (s.slots[s.active] === '1.0.0') return 'old';
  expect(s.slots[s.active]).toBe(img.manifest.version);
  // The new image, when active, is whole in its slot.
  const blocks = store.blocks!();
  const parts = img.manifest.blockHashes.map((_, n) => blocks.get(s.active, n)!);
  expect(sha256(Buffer.concat(parts))).toBe(img.sha);
  return 'new';
}

describe('firmware offer', () => {
  it('accepts a signed image for its hardware with a higher sequence, and asks for the first blocks', () => {
    const m = meterOn(new MemoryStore());
    const img = testImage();
    expect(command(m, img.offer)).toMatchObject({ result: 'ok' });
    expect(m.status().firmware).toEqual({
      slot: 'A',
      version: '1.0.0',
      sequence: 3,
      pending: { image: img.sha, version: '2.0.0', state: 'downloading', blocks: 0, of: 11 },
    });
    const req = decodeUp('fw', m.firmwareDue(0)!);
    expect(req).toEqual({ v: 1, image: img.sha, block: 0, count: 8 });
  });

  const refusals: [string, () => { offer: TestImage['offer'] }, string][] = [
    ['another hardware class', () => testImage({ hardwareClass: 'KW-3P-B' }), 'FW_WRONG_HARDWARE'],
    ['a lower sequence', () => testImage({ sequence: 2 }), 'FW_ROLLBACK'],
    ['the running sequence again', () => testImage({ sequence: 3 }), 'FW_ROLLBACK'],
    ['a manifest signed with the command key', () => testImage({ key: serverKey }), 'FW_BAD_SIGNATURE'],
    [
      'a manifest signed with some other key',
      () => testImage({ key: privateKeyFromB64(generateSigningKeyPair().privateKey) }),
      'FW_BAD_SIGNATURE',
    ],
    [
      'a manifest altered after signing',
      () => {
        const t = testImage();
        return { offer: { ...t.offer, manifest: t.offer.manifest.replace('"sequence":5', '"sequence":9') } };
      },
      'FW_BAD_SIGNATURE',
    ],
    [
      'a signed manifest whose block list does not add up',
      () => {
        const text = JSON.stringify({ ...testImage().manifest, blockHashes: [sha256('x')] });
        return {
          offer: { type: 'firmware.offer' as const, manifest: text, signature: signBytes(text, fwKeyPriv()) },
        };
      },
      'FW_BAD_MANIFEST',
    ],
  ];
  for (const [what, make, code] of refusals) {
    it(`refuses ${what} with ${code}, and never asks for a block`, () => {
      const m = meterOn(new MemoryStore());
      const before = m.snapshot().firmware;
      const out = command(m, make().offer);
      expect(out).toMatchObject({ result: 'rejected', code });
      expect(m.snapshot().firmware).toEqual(before);
      expect(m.firmwareDue(0)).toBeNull();
      expect(m.firmwareDue(10_000_000)).toBeNull();
    });
  }

  it('refuses every offer when the meter has no firmware key', () => {
    const m = meterOn(new MemoryStore(), { firmwarePublicKey: undefined });
    expect(command(m, testImage().offer)).toMatchObject({ result: 'rejected', code: 'FW_BAD_SIGNATURE' });
    expect(m.firmwareDue(0)).toBeNull();
  });

  it('takes the same image again as a resume, and refuses another one while busy', () => {
    const m = meterOn(new MemoryStore());
    const img = testImage();
    command(m, img.offer);
    serve(() => m, img.bytes, { nowS: T0, maxRequests: 1 });
    expect(m.status().firmware.pending?.blocks).toBe(8);
    expect(command(m, img.offer)).toMatchObject({ result: 'ok' });
    expect(m.status().firmware.pending?.blocks).toBe(8);
    const other = testImage({ version: '2.1.0', sequence: 6, seed: 9 });
    expect(command(m, other.offer)).toMatchObject({ result: 'rejected', code: 'FW_BUSY' });
    expect(decodeUp('fw', m.firmwareDue(0)!)).toMatchObject({ image: img.sha, block: 8, count: 3 });
  });
});

function fwKeyPriv() {
  return privateKeyFromB64(fwKeys.privateKey);
}

describe('firmware download and verification', () => {
  it('stores each good block, verifies the whole image and reports it verified', () => {
    const m = meterOn(new MemoryStore());
    const img = testImage();
    command(m, img.offer);
    const reqs = serve(() => m, img.bytes, { nowS: T0 + 100 });
    expect(reqs).toEqual([
      { block: 0, count: 8 },
      { block: 8, count: 3 },
    ]);
    expect(m.firmwarePending?.state).toBe('verified');
    expect(m.status().firmware.pending).toMatchObject({ state: 'verified', blocks: 11, of: 11 });
    expect(events(m)).toEqual([
      { code: 'firmware.verified', t: T0 + 100, data: { image: img.sha, version: '2.0.0' } },
    ]);
    expect(m.firmwareDue(10_000_000)).toBeNull();
  });

  const corruptions: [string, (b: Uint8Array) => Uint8Array][] = [
    ['one changed byte in the first block', (b) => flipped(b, 0)],
    ['one changed byte in a middle block', (b) => flipped(b, 5 * BS + 17)],
    ['one changed byte in the last block', (b) => flipped(b, b.length - 1)],
    ['a truncated image', (b) => b.subarray(0, b.length - 1)],
    ['an image truncated by whole blocks', (b) => b.subarray(0, 9 * BS)],
    ['an extended image', (b) => Buffer.concat([b, Buffer.from([1, 2, 3])])],
  ];
  for (const [what, corrupt] of corruptions) {
    it(`refuses ${what}: verify_failed, slot dropped, never activatable`, () => {
      const store = new MemoryStore();
      const m = meterOn(store);
      const img = testImage();
      command(m, img.offer);
      for (let i = 0; i < 20 && m.firmwarePending; i++) {
        // The meter asks again at once for a block that failed; the head-end keeps serving the bad copy.
        const payload = m.firmwareDue(i * 1_000_000);
        if (!payload) break;
        const req = decodeUp('fw', payload);
        for (let n = req.block; n < req.block + (req.count ?? 1); n++) {
          const data = Buffer.from(imageBlock(corrupt(img.bytes), BS, n)).toString('base64');
          m.handleBlock(encodeDown('fw', { v: 1, image: img.sha, block: n, data }), T0 + 100);
        }
        drain(m);
      }
      expect(eventCodes(m)).toEqual(['firmware.verify_failed']);
      expect(events(m)[0]?.data).toMatchObject({ image: img.sha, reason: 'block_hash' });
      expect(m.firmwarePending).toBeNull();
      expect(m.snapshot().firmware).toMatchObject({ active: 'A', slots: { A: '1.0.0', B: null } });
      expect(store.blocks().get('B', 0)).toBeNull();
      expect(command(m, { type: 'firmware.activate', sha256: img.sha })).toMatchObject({
        result: 'rejected',
        code: 'FW_UNKNOWN_IMAGE',
      });
      expect(m.firmwareTick(T0 + 10_000)).toBeNull();
      expect(m.firmwareVersion).toBe('1.0.0');
    });
  }

  it('refuses an image whose blocks match but whose whole hash does not (a mis-built manifest)', () => {
    const m = meterOn(new MemoryStore());
    const img = testImage();
    const lying = signManifest({ ...img.manifest, sha256: sha256('something else') }, fwKeyPriv());
    command(m, { type: 'firmware.offer', ...lying });
    serve(() => m, img.bytes, { nowS: T0 + 100 });
    expect(events(m)).toEqual([
      {
        code: 'firmware.verify_failed',
        t: T0 + 100,
        data: { image: sha256('something else'), version: '2.0.0', reason: 'image_hash' },
      },
    ]);
    expect(m.firmwarePending).toBeNull();
  });

  it('gives up on an image only after repeated bad copies of one block; one bad copy is asked again', () => {
    const m = meterOn(new MemoryStore());
    const img = testImage();
    command(m, img.offer);
    const bad = Buffer.from(imageBlock(flipped(img.bytes, 3), BS, 0)).toString('base64');
    const good = Buffer.from(imageBlock(img.bytes, BS, 0)).toString('base64');
    m.firmwareDue(0);
    expect(m.handleBlock(encodeDown('fw', { v: 1, image: img.sha, block: 0, data: bad }), T0)).toEqual({
      changed: false,
      bad: true,
    });
    // Asked again at once, from the bad block on.
    expect(decodeUp('fw', m.firmwareDue(1)!)).toMatchObject({ block: 0, count: 8 });
    m.handleBlock(encodeDown('fw', { v: 1, image: img.sha, block: 0, data: good }), T0);
    expect(m.status().firmware.pending?.blocks).toBe(1);
    // A block of another image, or out of range, is ignored.
    expect(
      m.handleBlock(encodeDown('fw', { v: 1, image: sha256('x'), block: 1, data: good }), T0).changed,
    ).toBe(false);
    expect(m.handleBlock(encodeDown('fw', { v: 1, image: img.sha, block: 99, data: good }), T0).changed).toBe(
      false,
    );
  });

  it('repeats an unanswered request after a timeout that doubles, from the first missing block', () => {
    const m = meterOn(new MemoryStore(), {
      firmwarePacing: { requestTimeoutMs: 1000, maxRequestTimeoutMs: 3000 },
    });
    const img = testImage();
    command(m, img.offer);
    expect(m.firmwareDue(0)).not.toBeNull();
    expect(m.firmwareDue(999)).toBeNull();
    expect(decodeUp('fw', m.firmwareDue(1000)!)).toMatchObject({ block: 0 });
    expect(m.firmwareDue(2999)).toBeNull(); // 2 s after the retry
    expect(m.firmwareDue(3000)).not.toBeNull();
    expect(m.firmwareDue(5999)).toBeNull(); // capped at 3 s
    expect(m.firmwareDue(6000)).not.toBeNull();
    // A reconnect: nothing is in flight any more.
    m.resetSendState();
    expect(m.firmwareDue(6001)).not.toBeNull();
  });

  it('paces the transfer behind readings and replies', () => {
    const m = meterOn(new MemoryStore(), { batchIntervals: 1 });
    const img = testImage();
    m.handleCommand(signed(img.offer, ++counter), T0 + 60);
    // The reply to the offer has not reached the broker: no request yet.
    expect(m.firmwareDue(0)).toBeNull();
    drain(m);
    // Five readings messages wait for their ack: the link is not keeping up, no request.
    for (let i = 1; i <= 5; i++) m.advanceTo(T0 + i * 1800);
    expect(m.outbox.length).toBe(5);
    expect(m.firmwareDue(0)).toBeNull();
    m.handleAck({ v: 1, kind: 'ack', stream: 'readings', upTo: 1 });
    expect(m.outbox.length).toBe(4);
    expect(m.firmwareDue(0)).not.toBeNull();
    // No mains, no requests.
    const m2 = meterOn(new MemoryStore());
    command(m2, img.offer);
    m2.powerFail(T0 + 100);
    expect(m2.firmwareDue(0)).toBeNull();
  });

  it('cancel drops a download or a scheduled image; unknown images are refused', () => {
    const store = new MemoryStore();
    const m = meterOn(store);
    const img = testImage();
    expect(command(m, { type: 'firmware.cancel', sha256: img.sha })).toMatchObject({
      code: 'FW_UNKNOWN_IMAGE',
    });
    command(m, img.offer);
    serve(() => m, img.bytes, { nowS: T0, maxRequests: 1 });
    expect(command(m, { type: 'firmware.cancel', sha256: img.sha })).toMatchObject({ result: 'ok' });
    expect(m.firmwarePending).toBeNull();
    expect(store.blocks().get('B', 0)).toBeNull();
    command(m, img.offer);
    serve(() => m, img.bytes, { nowS: T0 });
    command(m, { type: 'firmware.activate', sha256: img.sha, at: T0 + 3600 });
    expect(command(m, { type: 'firmware.cancel', sha256: img.sha })).toMatchObject({ result: 'ok' });
    expect(m.firmwareTick(T0 + 7200)).toBeNull();
    expect(m.firmwareVersion).toBe('1.0.0');
  });
});

describe('firmware activation, trial and revert', () => {
  function verified(store: MeterStore = new MemoryStore(), img = testImage()) {
    const m = meterOn(store);
    command(m, img.offer);
    serve(() => m, img.bytes, { nowS: T0 + 100 });
    expect(m.firmwarePending?.state).toBe('verified');
    return { m, img, store };
  }

  it('refuses to activate an image that is not verified', () => {
    const m = meterOn(new MemoryStore());
    const img = testImage();
    command(m, img.offer);
    expect(command(m, { type: 'firmware.activate', sha256: img.sha })).toMatchObject({
      result: 'rejected',
      code: 'FW_UNKNOWN_IMAGE',
    });
  });

  it('boots a good image on trial at its time and keeps it once its status is accepted', () => {
    const { m, img } = verified();
    expect(
      command(m, { type: 'firmware.activate', sha256: img.sha, at: T0 + 3600, confirmS: 120 }),
    ).toMatchObject({
      result: 'ok',
    });
    expect(m.status().firmware.pending).toMatchObject({ state: 'scheduled', at: T0 + 3600 });
    expect(m.firmwareTick(T0 + 3599)).toBeNull();
    expect(m.firmwareTick(T0 + 3600)).toBe('reboot');
    expect(m.bootFirmware(T0 + 3600)).toBe(true);
    expect(m.status().firmware).toMatchObject({ slot: 'B', version: '2.0.0', sequence: 5 });
    expect(m.status().firmware.pending?.state).toBe('trial');
    expect(m.radioWorks).toBe(true);
    expect(m.confirmFirmware('1.0.0', T0 + 3610)).toBe(false);
    expect(m.confirmFirmware('2.0.0', T0 + 3610)).toBe(true);
    expect(m.status().firmware).toEqual({ slot: 'B', version: '2.0.0', sequence: 5 });
    expect(events(m).at(-1)).toEqual({
      code: 'firmware.changed',
      t: T0 + 3610,
      data: { from: '1.0.0', to: '2.0.0', image: img.sha },
    });
    // No rollback to the old image, even though it is still in slot A.
    expect(command(m, testImage({ sequence: 4, seed: 3 }).offer)).toMatchObject({ code: 'FW_ROLLBACK' });
    expect(m.snapshot().firmware.slots).toEqual({ A: '1.0.0', B: '2.0.0' });
  });

  it('reverts an image whose radio never connects once confirmS has passed, and reports boot_failed', () => {
    const { m, img } = verified(new MemoryStore(), testImage({ behaviour: 'no_reconnect' }));
    command(m, { type: 'firmware.activate', sha256: img.sha, confirmS: 60 });
    expect(m.firmwareTick(T0 + 60)).toBe('reboot');
    m.bootFirmware(T0 + 60);
    expect(m.radioWorks).toBe(false);
    expect(m.firmwareTick(T0 + 119)).toBeNull();
    expect(m.firmwareTick(T0 + 120)).toBe('reverted');
    expect(m.radioWorks).toBe(true);
    expect(m.status().firmware).toEqual({ slot: 'A', version: '1.0.0', sequence: 3 });
    expect(events(m).at(-1)).toEqual({
      code: 'firmware.boot_failed',
      t: T0 + 120,
      data: { image: img.sha, version: '2.0.0', reason: 'no_reconnect' },
    });
    // The failed image is gone: it cannot be activated again without a new transfer.
    expect(command(m, { type: 'firmware.activate', sha256: img.sha })).toMatchObject({
      code: 'FW_UNKNOWN_IMAGE',
    });
  });

  it('activates at the first instant of the local window from `at` on (meter time zone)', () => {
    const store = new MemoryStore();
    const img = testImage();
    const m = meterOn(store, { tz: 'Europe/Berlin' });
    command(m, img.offer);
    serve(() => m, img.bytes, { nowS: T0 });
    // T0 is 01:00 in Berlin; the window opens at 02:30 local = 01:30 UTC.
    command(m, { type: 'firmware.activate', sha256: img.sha, window: { from: '02:30', to: '04:00' } });
    expect(m.status().firmware.pending?.at).toBe(T0 + 5400);
    // Inside the window already: at once (from `at`).
    command(m, {
      type: 'firmware.activate',
      sha256: img.sha,
      at: T0 + 6000,
      window: { from: '02:30', to: '04:00' },
    });
    expect(m.status().firmware.pending?.at).toBe(T0 + 6000);
    expect(
      command(m, { type: 'firmware.activate', sha256: img.sha, window: { from: '02:30', to: '02:30' } }),
    ).toMatchObject({
      result: 'rejected',
    });
  });
});

describe('firmware power loss', () => {
  it('at every block, after verification, when scheduled and during trial: always a bootable image, and the transfer resumes', () => {
    const img = testImage();
    const n = img.manifest.blockHashes.length;
    for (let cut = 0; cut <= n + 3; cut++) {
      const store = fileStore();
      let m = meterOn(store);
      const reboot = () => {
        // No clean save: the meter object is dropped and a new one boots from the files.
        m = meterOn(store);
        drain(m);
      };
      command(m, img.offer);
      let stored = 0;
      serve(() => m, img.bytes, {
        nowS: T0 + 100,
        onBlock: () => {
          stored++;
          if (stored === cut) {
            reboot();
            expect(bootable(m, store, img)).toBe('old');
            return false;
          }
          return true;
        },
      });
      // After the loss (or none), the transfer resumes from the first missing block and completes.
      const resumed = serve(() => m, img.bytes, { nowS: T0 + 200 });
      if (cut > 0 && cut < n) expect(resumed[0]?.block).toBe(cut);
      expect(m.firmwarePending?.state).toBe('verified');
      if (cut === n + 1) reboot();
      expect(m.firmwarePending?.state).toBe('verified');
      command(m, { type: 'firmware.activate', sha256: img.sha, at: T0 + 1000, confirmS: 60 });
      if (cut === n + 2) reboot();
      expect(m.firmwarePending?.state).toBe('scheduled');
      expect(bootable(m, store, img)).toBe('old');
      expect(m.firmwareTick(T0 + 1000)).toBe('reboot');
      m.bootFirmware(T0 + 1000);
      expect(bootable(m, store, img)).toBe('new');
      if (cut === n + 3) {
        // Power lost on trial, back after the deadline: the meter goes back to the old image.
        reboot();
        expect(bootable(m, store, img)).toBe('new');
        expect(m.firmwareTick(T0 + 1060)).toBe('reverted');
        expect(bootable(m, store, img)).toBe('old');
        expect(eventCodes(m)).toContain('firmware.boot_failed');
        continue;
      }
      expect(m.confirmFirmware('2.0.0', T0 + 1010)).toBe(true);
      reboot();
      expect(bootable(m, store, img)).toBe('new');
      expect(m.firmwarePending).toBeNull();
    }
  });

  it('power lost on trial and back before the deadline: still on trial, confirms once online', () => {
    const store = fileStore();
    const img = testImage();
    let m = meterOn(store);
    command(m, img.offer);
    serve(() => m, img.bytes, { nowS: T0 });
    command(m, { type: 'firmware.activate', sha256: img.sha, confirmS: 600 });
    m.firmwareTick(T0 + 60);
    m.bootFirmware(T0 + 60);
    m = meterOn(store);
    expect(m.firmwareTick(T0 + 300)).toBeNull();
    expect(m.status().firmware.pending?.state).toBe('trial');
    expect(m.confirmFirmware('2.0.0', T0 + 300)).toBe(true);
    expect(m.firmwareVersion).toBe('2.0.0');
  });

  it('re-checks held blocks on boot: a lost or damaged block is fetched again, a verified image goes back to downloading', () => {
    const store = new MemoryStore();
    const img = testImage();
    let m = meterOn(store);
    command(m, img.offer);
    serve(() => m, img.bytes, { nowS: T0 });
    expect(m.firmwarePending?.state).toBe('verified');
    store.imageBlocks.corrupt('B', 4);
    m = meterOn(store);
    expect(m.firmwarePending).toMatchObject({ state: 'downloading', have: '11110111111' });
    expect(decodeUp('fw', m.firmwareDue(0)!)).toMatchObject({ block: 4 });
    m.resetSendState();
    serve(() => m, img.bytes, { nowS: T0 });
    expect(m.firmwarePending?.state).toBe('verified');
  });

  it('never boots a slot that rotted after verification', () => {
    const store = new MemoryStore();
    const img = testImage();
    const m = meterOn(store);
    command(m, img.offer);
    serve(() => m, img.bytes, { nowS: T0 });
    command(m, { type: 'firmware.activate', sha256: img.sha });
    store.imageBlocks.corrupt('B', 10);
    expect(m.firmwareTick(T0 + 60)).toBe('reboot');
    expect(m.bootFirmware(T0 + 60)).toBe(false);
    expect(m.firmwareVersion).toBe('1.0.0');
    expect(eventCodes(m)).toContain('firmware.verify_failed');
  });

  it('loads a format-2 state written before firmware transfer (no images, no pending)', () => {
    const store = new MemoryStore();
    const m = meterOn(store);
    const old = m.snapshot();
    delete old.firmware.images;
    delete old.firmware.pending;
    store.save(old);
    const again = meterOn(store);
    expect(again.status().firmware).toEqual({ slot: 'A', version: '1.0.0', sequence: 0 });
    expect(command(again, testImage({ sequence: 1 }).offer)).toMatchObject({ result: 'ok' });
  });
});

describe('simulated images', () => {
  it('carry their behaviour in a header, and are repeatable per seed', () => {
    const a = makeSimImage({ version: '3.1.0', size: 4096, behaviour: 'no_reconnect', seed: 1 });
    expect(readSimHeader(a)).toEqual({ version: '3.1.0', behaviour: 'no_reconnect' });
    expect(sha256(a)).toBe(
      sha256(makeSimImage({ version: '3.1.0', size: 4096, behaviour: 'no_reconnect', seed: 1 })),
    );
    expect(sha256(a)).not.toBe(
      sha256(makeSimImage({ version: '3.1.0', size: 4096, behaviour: 'no_reconnect', seed: 2 })),
    );
    expect(readSimHeader(new Uint8Array(100))).toBeNull();
    expect(() => makeSimImage({ version: '1', size: 10 })).toThrow(/at least/);
  });
});
