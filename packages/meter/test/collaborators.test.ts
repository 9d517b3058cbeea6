import { describe, expect, it } from 'vitest';
import { decodeUp, publicKeyFromB64, type MeterEvent, type ReplyMessage } from '@kilowire/protocol';
import { CommandHandler, type CommandTargets } from '../src/commands.ts';
import { Firmware } from '../src/firmware.ts';
import { Outbox } from '../src/outbox.ts';
import { Prepayment } from '../src/prepayment.ts';
import { DEFAULT_TARIFF } from '../src/production.ts';
import { Relay } from '../src/relay.ts';
import { MemoryImageBlocks } from '../src/store.ts';
import type { CommandResult } from '../src/shared.ts';
import { T0, keys, signed } from './helpers.ts';

const uid = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

describe('CommandHandler', () => {
  function setup() {
    const calls: string[] = [];
    const events: string[] = [];
    const queued: ReplyMessage[] = [];
    const rec =
      (name: string, r: CommandResult = { result: 'ok' }) =>
      () => {
        calls.push(name);
        return r;
      };
    const targets: CommandTargets = {
      relay: { supplyOff: rec('relay.off'), supplyOn: rec('relay.on'), supplyArm: rec('relay.arm') },
      production: { setTariff: rec('production.tariff') },
      prepayment: {
        topUp: rec('prepayment.topUp', { result: 'rejected', code: 'DUPLICATE_TOPUP' }),
        setThresholds: rec('prepayment.thresholds'),
        setMode: rec('prepayment.mode'),
      },
      firmware: {
        offer: rec('firmware.offer'),
        activate: rec('firmware.activate'),
        cancel: rec('firmware.cancel'),
      },
    };
    const st = CommandHandler.initial();
    const h = new CommandHandler(st, {
      meterId: 'M1',
      serverKey: publicKeyFromB64(keys.publicKey),
      targets,
      replies: { queueReply: (r) => void queued.push(r) },
      emit: (code) => void events.push(code),
    });
    return { h, st, calls, events, queued };
  }

  it('hands each command type to the collaborator that owns it, and replies with its result', () => {
    const { h, calls, queued } = setup();
    const cmds = [
      { type: 'supply.off' },
      { type: 'supply.on' },
      { type: 'supply.arm' },
      { type: 'tariff.set', tariff: DEFAULT_TARIFF },
      { type: 'credit.add', topupId: 'T', amountMinor: 1 },
      { type: 'thresholds.set', lowCreditMinor: 1 },
      { type: 'mode.set', mode: 'credit' },
      { type: 'firmware.offer', manifest: '{}', signature: 'x' },
      { type: 'firmware.activate', sha256: 'b'.repeat(64) },
    ] as const;
    cmds.forEach((cmd, i) => h.handle(signed(cmd, i + 1), T0));
    expect(calls).toEqual([
      'relay.off',
      'relay.on',
      'relay.arm',
      'production.tariff',
      'prepayment.topUp',
      'prepayment.thresholds',
      'prepayment.mode',
      'firmware.offer',
      'firmware.activate',
    ]);
    expect(queued[4]).toMatchObject({ counter: 5, result: 'rejected', code: 'DUPLICATE_TOPUP' });
    expect(h.lastCounter).toBe(9);
  });

  it('answers a known id before looking at counter or expiry, without dispatching it again', () => {
    const { h, calls, queued } = setup();
    const env = signed({ type: 'supply.off' }, 1, { id: uid(1), expiresAt: T0 + 10 });
    expect(h.handle(env, T0).result).toBe('ok');
    const again = h.handle(env, T0 + 100); // past its expiry by now
    expect(again).toMatchObject({ result: 'ok', repeated: true });
    expect(calls).toEqual(['relay.off']);
    expect(queued).toEqual([queued[0], queued[0]]);
  });

  it('does not dispatch an expired command, but consumes and remembers it', () => {
    const { h, st, calls } = setup();
    const out = h.handle(signed({ type: 'supply.off' }, 4, { id: uid(4), expiresAt: T0 + 10 }), T0 + 11);
    expect(out).toMatchObject({ result: 'rejected', code: 'EXPIRED' });
    expect(calls).toEqual([]);
    expect(st).toEqual({
      lastCounter: 4,
      answered: [{ v: 1, id: uid(4), counter: 4, t: T0 + 11, result: 'rejected', code: 'EXPIRED' }],
    });
  });

  it('does not answer an altered copy of an answered command under its id; raises an event instead', () => {
    const { h, events, queued } = setup();
    const env = signed({ type: 'supply.off' }, 1, { id: uid(1) });
    h.handle(env, T0);
    const forged = (e: Buffer) => e.toString().replace('supply.off', 'supply.on');
    expect(h.handle(forged(env), T0)).toEqual({ result: 'unanswerable', code: 'BAD_SIGNATURE' });
    expect(events).toEqual(['command.rejected']);
    expect(queued).toHaveLength(1);
    // The same forgery under an id never answered is refused with a reply, as before.
    const other = forged(signed({ type: 'supply.off' }, 2, { id: uid(2) }));
    expect(h.handle(other, T0).reply).toMatchObject({
      id: uid(2),
      result: 'rejected',
      code: 'BAD_SIGNATURE',
    });
  });
});

describe('Relay', () => {
  function setup() {
    const events: string[] = [];
    let forbid = false;
    const r = new Relay(
      Relay.initial(),
      (code) => void events.push(code),
      () => forbid,
    );
    return { r, events, forbid: (v: boolean) => (forbid = v) };
  }

  it('arms only a disconnected relay and keeps the reason; credit rules touch only credit cuts', () => {
    const { r, events } = setup();
    r.supplyArm(T0);
    expect([r.state, events]).toEqual(['connected', []]);
    r.supplyOff('tamper', T0);
    r.creditRestored(T0); // a top-up does not undo a tamper cut
    expect([r.state, r.reason]).toEqual(['disconnected', 'tamper']);
    r.supplyArm(T0);
    r.cutForCredit(T0); // an open relay keeps its own reason
    expect([r.state, r.reason]).toEqual(['armed', 'tamper']);
    r.supplyOn(T0);
    r.cutForCredit(T0);
    expect([r.state, r.reason]).toEqual(['disconnected', 'credit']);
    r.creditRestored(T0);
    expect([r.state, r.reason]).toEqual(['armed', 'credit']);
    expect(events).toEqual([
      'relay.disconnected',
      'relay.armed',
      'relay.connected',
      'relay.disconnected',
      'relay.armed',
    ]);
  });

  it('a remote cut over a credit cut is not lifted by credit', () => {
    const { r, events } = setup();
    r.cutForCredit(T0);
    r.supplyOff(undefined, T0);
    r.creditRestored(T0);
    expect([r.state, r.reason]).toEqual(['disconnected', 'remote']);
    expect(events).toEqual(['relay.disconnected']);
  });

  it('lets the button close only an armed relay, and not while credit forbids supply', () => {
    const { r, forbid } = setup();
    expect(r.buttonWouldClose(T0)).toBe(false); // connected
    r.cutForCredit(T0);
    expect(r.buttonWouldClose(T0)).toBe(false); // disconnected, not armed
    r.creditRestored(T0);
    forbid(true);
    expect(r.buttonWouldClose(T0)).toBe(false);
    forbid(false);
    expect(r.buttonWouldClose(T0)).toBe(true);
  });
});

describe('Prepayment', () => {
  function setup(mode: 'credit' | 'prepayment', creditMinor: number) {
    const relay: string[] = [];
    const events: MeterEvent[] = [];
    const st = Prepayment.initial(mode, creditMinor);
    const p = new Prepayment(
      st,
      'Europe/London',
      (code, t, data) => void events.push({ code, t, ...(data && { data }) }),
      {
        cutForCredit: () => void relay.push('cut'),
        creditRestored: () => void relay.push('restored'),
      },
    );
    return { p, st, relay, events };
  }

  it('forbids supply when exhausted outside friendly hours (18:00-08:00 by default), and never in credit mode', () => {
    const { p, st } = setup('prepayment', -600);
    st.emergencyInUse = true; // -600 is past the 500 of emergency credit
    expect(p.forbidsSupply(T0 + 12 * 3600)).toBe(true);
    expect(p.forbidsSupply(T0 + 20 * 3600)).toBe(false);
    st.mode = 'credit';
    expect(p.forbidsSupply(T0 + 12 * 3600)).toBe(false);
  });

  it('repays emergency credit first; only a positive balance lifts a credit cut', () => {
    const { p, st, relay } = setup('prepayment', -400);
    st.emergencyInUse = true;
    expect(p.topUp('a', 300, T0)).toEqual({ result: 'ok' });
    expect([st.creditMinor, st.emergencyInUse, relay]).toEqual([-100, true, []]);
    p.topUp('b', 150, T0);
    expect([st.creditMinor, st.emergencyInUse, relay]).toEqual([50, false, ['restored']]);
    expect(p.topUp('a', 300, T0)).toEqual({ result: 'rejected', code: 'DUPLICATE_TOPUP' });
    expect(st.creditMinor).toBe(50);
  });

  it('debits nothing in credit mode, and marks the day so a switch later that day does not charge it again', () => {
    const { p, st, relay } = setup('credit', 1_000);
    p.startInterval(T0 + 3600, DEFAULT_TARIFF);
    p.chargeInterval(500, 1, DEFAULT_TARIFF, T0 + 5400);
    expect([st.creditMinor, st.remainderMicro, st.standingChargedFor]).toEqual([1_000, 0, '2026-01-05']);
    p.setMode('prepayment', T0 + 7200);
    p.startInterval(T0 + 7200, DEFAULT_TARIFF);
    p.chargeInterval(100, 2, DEFAULT_TARIFF, T0 + 9000); // 100 Wh x 12,000 = 1,200,000 micro = 1.2 minor
    expect([st.creditMinor, st.remainderMicro]).toEqual([999, 200_000]);
    p.setMode('credit', T0 + 9000);
    p.setMode('credit', T0 + 9000);
    expect(relay).toEqual(['restored']);
  });
});

describe('Firmware', () => {
  const deps = (raised: string[] = []) => ({
    hardwareClass: 'KW-1P-A',
    tz: 'Europe/London',
    firmwarePublicKey: null,
    blocks: new MemoryImageBlocks(),
    emit: (code: string) => void raised.push(code),
  });

  it('models two slots with version and sequence, and answers firmware commands itself', () => {
    const st = Firmware.initial('1.0.0', 4);
    const raised: string[] = [];
    const fw = new Firmware(st, deps(raised));
    expect([fw.activeSlot, fw.activeVersion, fw.idleSlot, fw.idleVersion]).toEqual(['A', '1.0.0', 'B', null]);
    expect(fw.status()).toEqual({ slot: 'A', version: '1.0.0', sequence: 4 });
    // Without a firmware key every offer is refused; nothing to activate or cancel.
    expect(fw.offer({ type: 'firmware.offer', manifest: '{}', signature: 'x' })).toMatchObject({
      result: 'rejected',
      code: 'FW_BAD_SIGNATURE',
    });
    expect(fw.activate({ type: 'firmware.activate', sha256: 'a'.repeat(64) }, T0)).toEqual({
      result: 'rejected',
      code: 'FW_UNKNOWN_IMAGE',
    });
    expect(fw.cancel({ type: 'firmware.cancel', sha256: 'a'.repeat(64) })).toEqual({
      result: 'rejected',
      code: 'FW_UNKNOWN_IMAGE',
    });
    expect(st).toEqual({
      active: 'A',
      slots: { A: '1.0.0', B: null },
      images: { A: { version: '1.0.0', sequence: 4, sha256: null }, B: null },
      pending: null,
    });
    expect(raised).toEqual([]);
    expect(new Firmware({ active: 'B', slots: { A: '1.0.0', B: '1.1.0' } }, deps()).idleVersion).toBe(
      '1.0.0',
    );
  });

  it('refuses a state whose active slot holds no image', () => {
    expect(() => new Firmware({ active: 'B', slots: { A: '1.0.0', B: null } }, deps())).toThrow(
      /slot B is active/,
    );
  });
});

describe('Outbox', () => {
  const opts = { resendAfterMs: 10_000, maxResendAfterMs: 60_000 };
  const reply = (n: number, result: ReplyMessage['result'] = 'ok'): ReplyMessage => ({
    v: 1,
    id: uid(n),
    counter: n,
    t: T0,
    result,
  });
  const registers = { '1.0.1.8.0': 1, '1.0.1.8.1': 1, '1.0.1.8.2': 0, '1.0.2.8.0': 0 };

  it('sends replies, then events, then readings, whatever order they were queued in', () => {
    const o = new Outbox(Outbox.initial(), opts);
    o.addReadings(1800, [{ t: T0, wh: 1 }], registers);
    o.addEvents([{ code: 'tamper.cover', t: T0 }]);
    o.queueReply(reply(1));
    expect(o.due(0, 10).map((m) => `${m.kind}:${m.key}`)).toEqual([
      `replies:${uid(1)}`,
      'events:1',
      'readings:1',
    ]);
  });

  it('keeps one reply per command id: a new one for a queued id replaces it and is due at once', () => {
    const o = new Outbox(Outbox.initial(), opts);
    o.queueReply({ ...reply(1, 'rejected'), code: 'BAD_SIGNATURE' });
    expect(o.due(0, 10)).toHaveLength(1);
    expect(o.due(1, 10)).toEqual([]); // in flight
    o.queueReply(reply(1));
    expect(o.replies).toEqual([reply(1)]);
    const due = o.due(2, 10);
    expect(due.map((m) => decodeUp('replies', m.payload))).toEqual([reply(1)]);
    expect(o.delivered('replies', uid(1))).toBe(true);
    expect(o.delivered('replies', uid(1))).toBe(false);
    expect(o.delivered('readings', '1')).toBe(false);
  });

  it('bounds the reply queue to the newest 100, and events to 50 per message', () => {
    const o = new Outbox(Outbox.initial(), opts);
    for (let n = 1; n <= 105; n++) o.queueReply(reply(n));
    expect(o.replies.map((r) => r.counter)).toEqual(Array.from({ length: 100 }, (_, i) => i + 6));
    const events = Array.from({ length: 120 }, (_, i): MeterEvent => ({ code: 'tamper.cover', t: T0 + i }));
    expect(o.addEvents(events)).toEqual([1, 2, 3]);
    expect(o.entries.map((e) => (e.stream === 'events' ? e.msg.events.length : 0))).toEqual([50, 50, 20]);
  });
});
