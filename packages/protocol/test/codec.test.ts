import { readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  DOWN_KINDS,
  ProtocolErrorCodes,
  SIZE_LIMITS,
  UP_KINDS,
  command,
  decodeDown,
  decodeUp,
  encodeUp,
  publicKeyFromB64,
  verifyCommand,
  type CommandEnvelope,
  type ProtocolErrorCode,
  type StatusMessage,
} from '../src/index.ts';
import { FIXTURES, bytesOf, codeOf, decode, encode, manifest, testKeys } from './support.ts';

describe('recorded fixtures', () => {
  it('cover every message kind in both directions and every command type', () => {
    const has = (dir: string, kind: string): boolean =>
      manifest.valid.some((f) => f.dir === dir && f.kind === kind);
    expect(UP_KINDS.filter((k) => !has('up', k))).toEqual([]);
    expect(DOWN_KINDS.filter((k) => !has('down', k))).toEqual([]);
    const key = publicKeyFromB64(testKeys.publicKey);
    const types = manifest.valid
      .filter((f) => f.kind === 'commands')
      .map((f) => verifyCommand(decodeDown('commands', bytesOf(f.file)), key, 'KW0001').cmd.type);
    expect(new Set(types)).toEqual(new Set(command.options.map((o) => o.shape.type.value)));
  });

  it("cover every codec refusal code (the rest are signing's)", () => {
    const codec: ProtocolErrorCode[] = ['PAYLOAD_TOO_LARGE', 'BAD_UTF8', 'BAD_JSON', 'BAD_VERSION', 'SCHEMA'];
    expect(ProtocolErrorCodes).toEqual(expect.arrayContaining(codec));
    expect(new Set(manifest.invalid.map((f) => f.code))).toEqual(new Set(codec));
  });

  it('are all in the manifest, and the manifest names only files that exist', () => {
    const listed = new Set([
      ...manifest.valid.map((f) => f.file),
      ...manifest.invalid.map((f) => f.file),
      ...manifest.open.map((f) => f.file),
    ]);
    const onDisk = readdirSync(FIXTURES, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => path.relative(FIXTURES, path.join(e.parentPath, e.name)).split(path.sep).join('/'))
      .filter((f) => /^(up|down|invalid)\//.test(f));
    expect(onDisk.sort()).toEqual([...listed].sort());
  });

  it.each(manifest.valid.map((f) => [f.file, f] as const))(
    '%s: decode, encode gives the very same bytes, decode again gives the same value',
    (_, f) => {
      const bytes = bytesOf(f.file);
      const msg = decode(f, bytes);
      const again = encode(f, msg);
      // As text first, for a readable diff; then byte for byte.
      expect(again.toString('utf8')).toBe(bytes.toString('utf8'));
      expect(again.equals(bytes)).toBe(true);
      expect(decode(f, again)).toEqual(msg);
      // Strings decode like bytes (the broker hands either).
      expect(decode(f, bytes.toString('utf8'))).toEqual(msg);
    },
  );

  it.each(manifest.invalid.map((f) => [f.file, f] as const))('%s is refused: %s', (_, f) => {
    expect(codeOf(() => decode(f, bytesOf(f.file)))).toBe(f.code);
  });
});

describe('size limits', () => {
  /** `json` with an unknown field appended so that it is exactly `size` bytes. */
  function padTo(json: string, size: number, ch = 'x'): string {
    const room = size - Buffer.byteLength(json) - Buffer.byteLength(',"pad":""');
    const per = Buffer.byteLength(ch);
    const pad = ch.repeat(Math.floor(room / per)) + 'x'.repeat(room % per);
    const out = `${json.slice(0, -1)},"pad":"${pad}"}`;
    expect(Buffer.byteLength(out)).toBe(size);
    return out;
  }
  const limitOf = (dir: 'up' | 'down', kind: string): number =>
    kind === 'fw' ? SIZE_LIMITS[`${dir}.fw`] : SIZE_LIMITS[kind as keyof typeof SIZE_LIMITS];
  const kinds = [...UP_KINDS.map((k) => ['up', k] as const), ...DOWN_KINDS.map((k) => ['down', k] as const)];

  it.each(kinds)(
    '%s/%s: a valid message of exactly the limit passes, one byte more is PAYLOAD_TOO_LARGE',
    (dir, kind) => {
      const f = manifest.valid.find((v) => v.dir === dir && v.kind === kind)!;
      const base = bytesOf(f.file).toString('utf8');
      const limit = limitOf(dir, kind);
      expect(decode(f, Buffer.from(padTo(base, limit)))).toEqual(decode(f, base));
      expect(codeOf(() => decode(f, Buffer.from(padTo(base, limit + 1))))).toBe('PAYLOAD_TOO_LARGE');
    },
  );

  it('counts bytes, not characters, for strings too', () => {
    const status = bytesOf('up/status.credit.json').toString('utf8');
    const atLimit = padTo(status, SIZE_LIMITS.status, 'é');
    expect(atLimit.length).toBeLessThan(SIZE_LIMITS.status);
    expect(() => decodeUp('status', atLimit)).not.toThrow();
    expect(codeOf(() => decodeUp('status', padTo(status, SIZE_LIMITS.status + 1, 'é')))).toBe(
      'PAYLOAD_TOO_LARGE',
    );
  });
});

describe('the codec', () => {
  it("the meter writes fields in the schema's order, so decode then encode never rewrites its messages", () => {
    const bytes = bytesOf('up/status.prepayment.json');
    const msg = decodeUp('status', bytes);
    expect(Object.keys(msg).slice(4, 6)).toEqual(['creditMinor', 'emergencyCreditMinor']);
    expect(encodeUp('status', msg).equals(bytes)).toBe(true);
  });

  it('ignores unknown fields (additive changes stay within v1) and does not hand them on', () => {
    const status = JSON.parse(bytesOf('up/status.credit.json').toString('utf8')) as StatusMessage;
    const newer = { ...status, firmware: { ...status.firmware, build: 'x' }, solarInverter: { kw: 3 } };
    expect(decodeUp('status', JSON.stringify(newer))).toEqual(status);
  });

  it('checks the cheapest thing first: an oversized payload is refused before its bytes are even decoded', () => {
    const big = Buffer.alloc(SIZE_LIMITS.replies + 1, 0xff); // not UTF-8 either
    expect(codeOf(() => decodeUp('replies', big))).toBe('PAYLOAD_TOO_LARGE');
    expect(codeOf(() => decodeUp('replies', Buffer.from([0xff, 0x7b])))).toBe('BAD_UTF8');
    expect(codeOf(() => decodeUp('replies', '{"v":2,'))).toBe('BAD_JSON');
    expect(codeOf(() => decodeUp('replies', '{"v":2}'))).toBe('BAD_VERSION');
  });

  it('refuses to encode what it would refuse to decode, so a sender bug never reaches the wire', () => {
    const msg = JSON.parse(bytesOf('invalid/up/readings.unaligned.json').toString('utf8')) as never;
    expect(codeOf(() => encodeUp('readings', msg))).toBe('SCHEMA');
  });

  it('decodes a command envelope without trusting its body (that is signing.ts)', () => {
    const env: CommandEnvelope = decodeDown('commands', bytesOf('invalid/down/commands.tampered-body.json'));
    expect(env.body).toContain('customer requests');
  });
});

describe('three time-of-use bands (added within v1)', () => {
  const bodyOf = (file: string) => {
    const env: CommandEnvelope = decodeDown('commands', bytesOf(file));
    return JSON.parse(env.body) as { cmd: unknown };
  };

  it('an older two-band tariff.set still decodes, with no band 3 and no exact standing charge', () => {
    const cmd = command.parse(bodyOf('down/commands.tariff-set.json').cmd);
    if (cmd.type !== 'tariff.set') throw new Error('not a tariff.set');
    expect(cmd.tariff.rates).toEqual({ '1': 27_350, '2': 13_100 });
    expect(cmd.tariff.band3Windows).toBeUndefined();
    expect(cmd.tariff.standingChargeMilliPerDay).toBeUndefined();
  });

  it('a three-band tariff.set carries rate 3, its windows and the standing charge in thousandths', () => {
    const cmd = command.parse(bodyOf('down/commands.tariff-set-three-band.json').cmd);
    if (cmd.type !== 'tariff.set') throw new Error('not a tariff.set');
    expect(cmd.tariff.rates['3']).toBe(38_250);
    expect(cmd.tariff.band3Windows).toEqual([{ from: '16:00', to: '19:00' }]);
    expect(cmd.tariff.standingChargeMilliPerDay).toBe(53_350);
  });

  it('refuses peak windows without a peak rate (a band the meter could not price)', () => {
    const cmd = command.parse(bodyOf('down/commands.tariff-set-three-band.json').cmd) as {
      tariff: { rates: Record<string, number> };
    };
    delete cmd.tariff.rates['3'];
    expect(command.safeParse(cmd).success).toBe(false);
  });

  it('register 1.0.1.8.3 is optional: readings without it (older meters) and with it both decode', () => {
    const old = decodeUp('readings', bytesOf('up/readings.day-48.json'));
    expect(old.registers['1.0.1.8.3']).toBeUndefined();
    const bytes = bytesOf('up/readings.day-48-three-band.json');
    const peak = decodeUp('readings', bytes);
    const r = peak.registers;
    expect(r['1.0.1.8.3']).toBeGreaterThan(0);
    expect(r['1.0.1.8.1'] + r['1.0.1.8.2'] + r['1.0.1.8.3']!).toBe(r['1.0.1.8.0']);
    expect(Object.keys(r)).toEqual(['1.0.1.8.0', '1.0.1.8.1', '1.0.1.8.2', '1.0.1.8.3', '1.0.2.8.0']);
    expect(encodeUp('readings', peak).equals(bytes)).toBe(true);
    const status = decodeUp('status', bytesOf('up/status.prepayment-three-band.json'));
    expect(status.registers['1.0.1.8.3']).toBe(r['1.0.1.8.3']);
  });

  it('refuses a band-3 register that is not a whole, non-negative Wh count', () => {
    const m = JSON.parse(bytesOf('up/readings.day-48-three-band.json').toString('utf8')) as {
      registers: Record<string, number>;
    };
    m.registers['1.0.1.8.3'] = -1;
    expect(codeOf(() => decodeUp('readings', JSON.stringify(m)))).toBe('SCHEMA');
  });
});
