import { describe, expect, it } from 'vitest';
import { inWindow, localDate, localMinuteOfDay } from '@kilowire/protocol';
import { DAY, HH, T0, eventCodes, events, makeMeter, readings, signed } from './helpers.ts';

type M = ReturnType<typeof makeMeter>;
const step = (m: M, n: number) => {
  for (let i = 0; i < n; i++) m.advanceTo(m.cursor + HH);
};
const ivs = (m: M) => readings(m).flatMap((r) => r.intervals);
let counter = 0;
function thresholds(m: M, t: Parameters<typeof signed>[0] & { type: 'thresholds.set' }) {
  expect(m.handleCommand(signed(t, ++counter), m.cursor).result).toBe('ok');
}

describe('prepayment', () => {
  it('debits energy at the band rate and the standing charge per local day, exactly', () => {
    const m = makeMeter({ mode: 'prepayment', initialCreditMinor: 500_000, profile: { sizeFactor: 1.7 } });
    m.advanceTo(T0 + 3 * DAY + 7 * HH);
    m.flush();
    let micro = 0;
    const days = new Set<string>();
    for (const iv of ivs(m)) {
      const band2 = inWindow(localMinuteOfDay(iv.t, 'Europe/London'), '00:00', '07:00');
      micro += iv.wh * (band2 ? 12_000 : 24_500);
      days.add(localDate(iv.t, 'Europe/London'));
    }
    expect(days.size).toBe(4);
    micro += 4 * 50 * 1_000_000;
    expect(m.credit.creditMinor).toBe(500_000 - Math.floor(micro / 1_000_000));
    expect(m.credit.remainderMicro).toBe(micro % 1_000_000);
    expect(m.credit.remainderMicro).toBeGreaterThan(0); // a real fraction is being carried
  });

  it('raises credit.low once per crossing', () => {
    const m = makeMeter({ mode: 'prepayment', initialCreditMinor: 1_500 });
    thresholds(m, {
      type: 'thresholds.set',
      lowCreditMinor: 1_000,
      emergencyCreditMinor: 0,
      friendlyHours: null,
    });
    while (m.credit.creditMinor >= 1_000) step(m, 1);
    step(m, 6);
    expect(eventCodes(m).filter((c) => c === 'credit.low')).toHaveLength(1);
    expect(events(m).find((e) => e.code === 'credit.low')?.data).toMatchObject({ thresholdMinor: 1_000 });
    m.handleCommand(signed({ type: 'credit.add', topupId: 'A', amountMinor: 400 }, ++counter), m.cursor);
    // Still below the threshold after the top-up: no new crossing, no new alert.
    step(m, 1);
    expect(eventCodes(m).filter((c) => c === 'credit.low')).toHaveLength(1);
    m.handleCommand(signed({ type: 'credit.add', topupId: 'B', amountMinor: 1_000 }, ++counter), m.cursor);
    while (m.credit.creditMinor >= 1_000) step(m, 1);
    step(m, 2);
    expect(eventCodes(m).filter((c) => c === 'credit.low')).toHaveLength(2);
  });

  it('uses emergency credit, then disconnects outside friendly hours; a top-up arms', () => {
    const m = makeMeter({ mode: 'prepayment', initialCreditMinor: 300, startS: T0 + 9 * 3600 });
    thresholds(m, {
      type: 'thresholds.set',
      lowCreditMinor: 100,
      emergencyCreditMinor: 200,
      friendlyHours: null,
    });
    let guard = 0;
    while (m.relay.state === 'connected' && guard++ < 200) step(m, 1);
    expect(m.relay).toEqual({ state: 'disconnected', reason: 'credit' });
    expect(eventCodes(m)).toEqual([
      'credit.low',
      'credit.emergency_activated',
      'credit.emergency_exhausted',
      'credit.exhausted',
      'relay.disconnected',
    ]);
    expect(m.credit.creditMinor).toBeLessThanOrEqual(-200);
    expect(m.status()).toMatchObject({ relay: 'disconnected', emergencyCreditMinor: 0 });
    // No supply, no energy.
    const reg = m.registers['1.0.1.8.0'];
    step(m, 4);
    expect(m.registers['1.0.1.8.0']).toBe(reg);
    expect(
      ivs(m)
        .slice(-4)
        .map((iv) => iv.wh),
    ).toEqual([0, 0, 0, 0]);
    expect(m.pressButton(m.cursor)).toBe(false);

    // Not enough to clear the emergency debt: stays off.
    m.handleCommand(signed({ type: 'credit.add', topupId: 'small', amountMinor: 100 }, ++counter), m.cursor);
    expect(m.relay.state).toBe('disconnected');
    m.handleCommand(signed({ type: 'credit.add', topupId: 'big', amountMinor: 2_000 }, ++counter), m.cursor);
    expect(m.relay).toEqual({ state: 'armed', reason: 'credit' });
    expect(m.credit.emergencyInUse).toBe(false);
    expect(eventCodes(m).slice(-3)).toEqual(['credit.topup_applied', 'credit.topup_applied', 'relay.armed']);
    expect(m.pressButton(m.cursor)).toBe(true);
    step(m, 2);
    expect(m.registers['1.0.1.8.0']).toBeGreaterThan(reg);
    const dup = m.handleCommand(
      signed({ type: 'credit.add', topupId: 'big', amountMinor: 2_000 }, ++counter),
      m.cursor,
    );
    expect(dup.code).toBe('DUPLICATE_TOPUP');
  });

  it('does not disconnect inside friendly hours, and does when they end', () => {
    // Starts 12:00 local on a Monday; friendly 12:00-16:00; credit runs out early in the window.
    const m = makeMeter({ mode: 'prepayment', initialCreditMinor: 20, startS: T0 + 12 * 3600 });
    thresholds(m, {
      type: 'thresholds.set',
      lowCreditMinor: 0,
      emergencyCreditMinor: 0,
      friendlyHours: { from: '12:00', to: '16:00' },
    });
    step(m, 4);
    expect(eventCodes(m)).toContain('credit.exhausted');
    expect(m.relay.state).toBe('connected');
    step(m, 3); // up to 15:30
    expect(m.relay.state).toBe('connected');
    expect(ivs(m).every((iv) => iv.wh > 0)).toBe(true);
    step(m, 1); // the interval ending 16:00 is the first outside the window
    expect(m.relay).toEqual({ state: 'disconnected', reason: 'credit' });
    const off = events(m).find((e) => e.code === 'relay.disconnected');
    expect(off?.t).toBe(T0 + 16 * 3600);
    expect(eventCodes(m).filter((c) => c === 'credit.exhausted')).toHaveLength(1);
  });
});

describe('tamper and power', () => {
  it('reports tamper without touching the relay', () => {
    const m = makeMeter();
    m.injectTamper('terminal', T0 + 5);
    expect(events(m)).toEqual([{ code: 'tamper.terminal', t: T0 + 5 }]);
    expect(m.relay.state).toBe('connected');
  });

  it('sends a last gasp at once, meters nothing while off, and tells long outages from short ones', () => {
    const m = makeMeter({ resendAfterMs: 10_000 });
    step(m, 2);
    m.due(0);
    const gasp = m.powerFail(T0 + 2 * HH, 100);
    expect(gasp.map((g) => g.kind)).toEqual(['events']);
    expect(m.due(200)).toEqual([]); // dead meters send nothing more
    m.powerRestore(T0 + 6 * HH + 900); // off for 2 h 15 min: four whole intervals dark, one half
    const [, , a, b, c, d, half] = ivs(m);
    expect([a?.wh, b?.wh, c?.wh, d?.wh]).toEqual([0, 0, 0, 0]);
    expect(half).toBeUndefined(); // the interval in progress at restore is not complete yet
    step(m, 1);
    const partial = ivs(m)[6]!;
    const full = makeMeter();
    full.advanceTo(T0 + 7 * HH);
    const fullWh = ivs(full)[6]!.wh;
    expect(partial.wh).toBe(Math.round(fullWh * 0.5));
    const restore = events(m).find((e) => e.code.startsWith('power.restored'));
    expect(restore).toEqual({
      code: 'power.restored_long',
      t: T0 + 6 * HH + 900,
      data: { offS: 4 * HH + 900 },
    });

    m.powerFail(T0 + 8 * HH, 1_000);
    m.powerRestore(T0 + 8 * HH + 120);
    expect(eventCodes(m).slice(-2)).toEqual(['power.fail', 'power.restored']);
  });
});
