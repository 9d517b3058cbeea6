import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  decodeDown,
  decodeUp,
  encodeDown,
  generateSigningKeyPair,
  privateKeyFromB64,
  signBytes,
  type TariffSpec,
} from '@kilowire/protocol';
import { FileStore } from '../src/store.ts';
import { HH, T0, coreState, eventCodes, makeMeter, readings, serverKey, signed } from './helpers.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function storePath(): string {
  const d = mkdtempSync(join(tmpdir(), 'kw-cmd-'));
  dirs.push(d);
  return join(d, 'M1.json');
}

describe('signed commands', () => {
  it('applies a valid command, persists the counter with the effect, and replies ok', () => {
    const m = makeMeter();
    const id = randomUUID();
    const out = m.handleCommand(signed({ type: 'supply.off' }, 7, { id }), T0 + 60);
    expect(out.result).toBe('ok');
    expect(m.relay).toEqual({ state: 'disconnected', reason: 'remote' });
    expect(m.lastCounter).toBe(7);
    expect(m.pendingReplies).toEqual([{ v: 1, id, counter: 7, t: T0 + 60, result: 'ok' }]);
    expect(eventCodes(m)).toEqual(['relay.disconnected']);
    expect(m.status(T0 + 60)).toMatchObject({ relay: 'disconnected', lastCounter: 7 });
    // The reply goes out first and leaves once delivered; it is never acked.
    const due = m.due(0);
    expect(due[0]?.kind).toBe('replies');
    expect(decodeUp('replies', due[0]!.payload).result).toBe('ok');
    m.delivered('replies', id);
    expect(m.pendingReplies).toEqual([]);
  });

  it('refuses stale, altered, misaddressed and foreign-key commands and answers a replay from memory, state unchanged', () => {
    const path = storePath();
    const m = makeMeter({ store: new FileStore(path) });
    const applied = signed({ type: 'supply.off' }, 5);
    const first = m.handleCommand(applied, T0);
    expect(first.result).toBe('ok');
    const before = coreState(m);

    const env = decodeDown('commands', applied);
    const altered = encodeDown('commands', { ...env, body: env.body.replace('"supply.off"', '"supply.on"') });
    const other = privateKeyFromB64(generateSigningKeyPair().privateKey);
    // A replay of the applied command is, to the meter, the head-end resending it: it gets the
    // stored reply again. An altered copy of it gets no reply under its id (that could overwrite
    // the authentic result at the head-end), only a command.rejected event.
    const attempts: [string, Buffer, { result: string; code?: string }][] = [
      ['replayed', applied, { result: 'ok' }],
      ['stale', signed({ type: 'supply.on' }, 4), { result: 'rejected', code: 'STALE_COUNTER' }],
      ['altered', altered, { result: 'unanswerable', code: 'BAD_SIGNATURE' }],
      [
        'wrong meter',
        signed({ type: 'supply.on' }, 6, { meter: 'M2' }),
        { result: 'rejected', code: 'WRONG_METER' },
      ],
      [
        'wrong key',
        signed({ type: 'supply.on' }, 6, { key: other }),
        { result: 'rejected', code: 'BAD_SIGNATURE' },
      ],
    ];
    const check = (meter: ReturnType<typeof makeMeter>) => {
      for (const [what, buf, expected] of attempts) {
        const out = meter.handleCommand(buf, T0 + 60);
        expect({ what, result: out.result, code: out.code }).toEqual({ what, ...expected });
        if (what === 'replayed') expect(out.reply).toEqual(first.reply);
        else if (expected.result === 'rejected') expect(out.reply).toMatchObject(expected);
        else expect(out.reply).toBeUndefined();
        expect(coreState(meter)).toEqual(before);
      }
    };
    check(m);
    expect(m.relay.state).toBe('disconnected');

    // A rebuilt meter remembers the counter and the reply: the same commands get the same answers.
    const rebuilt = makeMeter({ store: new FileStore(path) });
    expect(rebuilt.lastCounter).toBe(5);
    check(rebuilt);
    expect(rebuilt.handleCommand(signed({ type: 'supply.on' }, 6), T0 + 120).result).toBe('ok');
    expect(rebuilt.relay.state).toBe('connected');
  });

  it('answers an undecodable envelope with an event, not a reply', () => {
    const m = makeMeter();
    for (const junk of ['not json', '{"v":1,"body":"x","sig":"short"}', Buffer.from([0xff, 0xfe])]) {
      expect(m.handleCommand(junk, T0).result).toBe('unanswerable');
    }
    expect(m.pendingReplies).toEqual([]);
    expect(eventCodes(m)).toEqual(['command.rejected', 'command.rejected', 'command.rejected']);
    // Authentic signature around a body that is not a valid command: the id is readable, so it gets a reply.
    const id = randomUUID();
    const body = JSON.stringify({
      v: 1,
      id,
      meter: 'M1',
      counter: 9,
      issuedAt: T0,
      cmd: { type: 'self.destruct' },
    });
    const env = encodeDown('commands', { v: 1, body, sig: signBytes(body, serverKey) });
    expect(m.handleCommand(env, T0)).toMatchObject({ result: 'rejected', code: 'SCHEMA' });
    expect(m.pendingReplies).toEqual([{ v: 1, id, counter: 9, t: T0, result: 'rejected', code: 'SCHEMA' }]);
    expect(m.lastCounter).toBe(0);
  });

  it('arms after remote reconnection; the consumer closes the relay', () => {
    const m = makeMeter();
    m.handleCommand(signed({ type: 'supply.off', reason: 'tamper' }, 1), T0);
    expect(m.relay).toEqual({ state: 'disconnected', reason: 'tamper' });
    expect(m.pressButton(T0 + 10)).toBe(false);
    expect(m.handleCommand(signed({ type: 'supply.arm' }, 2), T0 + 20).result).toBe('ok');
    expect(m.relay.state).toBe('armed');
    m.advanceTo(T0 + 2 * HH);
    expect(m.registers['1.0.1.8.0']).toBe(0); // armed is still open
    expect(m.pressButton(T0 + 2 * HH)).toBe(true);
    expect(m.relay).toEqual({ state: 'connected', reason: null });
    // Arm on a connected relay is harmless.
    expect(m.handleCommand(signed({ type: 'supply.arm' }, 3), T0 + 2 * HH).result).toBe('ok');
    expect(m.relay.state).toBe('connected');
    expect(eventCodes(m)).toEqual(['relay.disconnected', 'relay.armed', 'relay.connected']);
  });

  it('applies a tariff now, or at its effectiveFrom when it is future-dated', () => {
    const m = makeMeter();
    const tariff: TariffSpec = {
      id: 'eco7',
      version: 2,
      currency: 'GBP',
      rates: { '1': 30_000, '2': 10_000 },
      band2Windows: [{ from: '22:00', to: '06:00' }],
      standingChargeMinorPerDay: 60,
      effectiveFrom: T0 + 4 * HH,
    };
    expect(m.handleCommand(signed({ type: 'tariff.set', tariff }, 1), T0).result).toBe('ok');
    expect(m.tariff.id).toBe('default');
    m.advanceTo(T0 + 4 * HH);
    expect(m.tariff.id).toBe('default');
    m.advanceTo(T0 + 5 * HH);
    expect(m.tariff).toEqual(tariff);
    expect(eventCodes(m)).toContain('tariff.applied');
    // Under the new tariff 02:30-06:00 is band 2 and 06:00-06:30 is band 1 (it was band 2 before).
    const before = m.registers;
    for (let t = m.cursor + HH; t <= T0 + 13 * HH; t += HH) m.advanceTo(t);
    const ivs = readings(m)
      .flatMap((r) => r.intervals)
      .filter((iv) => iv.t >= T0 + 5 * HH);
    expect(ivs).toHaveLength(8);
    const last = ivs.at(-1)!;
    expect(last.t).toBe(T0 + 12 * HH);
    expect(m.registers['1.0.1.8.1'] - before['1.0.1.8.1']).toBe(last.wh);
    expect(m.registers['1.0.1.8.2'] - before['1.0.1.8.2']).toBe(
      ivs.slice(0, 7).reduce((a, iv) => a + iv.wh, 0),
    );
  });

  it('consumes the counter but refuses a duplicate top-up, or activating an image it does not hold', () => {
    const m = makeMeter({ mode: 'prepayment', initialCreditMinor: 1000 });
    expect(
      m.handleCommand(signed({ type: 'credit.add', topupId: 'TU-1', amountMinor: 500 }, 1), T0).result,
    ).toBe('ok');
    expect(m.credit.creditMinor).toBe(1500);
    const dup = m.handleCommand(signed({ type: 'credit.add', topupId: 'TU-1', amountMinor: 500 }, 2), T0);
    expect(dup).toMatchObject({ result: 'rejected', code: 'DUPLICATE_TOPUP' });
    expect(m.credit.creditMinor).toBe(1500);
    expect(m.lastCounter).toBe(2);
    expect(eventCodes(m)).toEqual(['credit.topup_applied', 'credit.topup_duplicate']);
    const fw = m.handleCommand(signed({ type: 'firmware.activate', sha256: 'a'.repeat(64) }, 3), T0);
    expect(fw).toMatchObject({ result: 'rejected', code: 'FW_UNKNOWN_IMAGE' });
    expect(m.lastCounter).toBe(3);
  });

  it('switches mode and thresholds', () => {
    const m = makeMeter();
    expect(m.status().creditMinor).toBeUndefined();
    m.handleCommand(signed({ type: 'mode.set', mode: 'prepayment' }, 1), T0);
    m.handleCommand(
      signed(
        { type: 'thresholds.set', lowCreditMinor: 250, emergencyCreditMinor: 800, friendlyHours: null },
        2,
      ),
      T0,
    );
    expect(m.mode).toBe('prepayment');
    expect(m.credit).toMatchObject({ lowThresholdMinor: 250, emergencyLimitMinor: 800, friendlyHours: null });
    expect(m.status()).toMatchObject({ mode: 'prepayment', creditMinor: 0, emergencyCreditMinor: 800 });
  });
});
