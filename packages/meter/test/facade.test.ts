import { describe, expect, it } from 'vitest';
import { decodeUp } from '@kilowire/protocol';
import { MemoryStore } from '../src/store.ts';
import { HH, T0, eventCodes, makeMeter, signed } from './helpers.ts';

describe('the facade', () => {
  it('writes its store exactly once per public mutation, and not at all for a no-op', () => {
    const store = new MemoryStore();
    const m = makeMeter({ store, mode: 'prepayment' });
    const writes = (fn: () => unknown) => {
      const before = store.saves;
      fn();
      return store.saves - before;
    };
    expect(writes(() => m.advanceTo(T0 + 2 * HH))).toBe(1);
    expect(writes(() => m.advanceTo(T0 + 2 * HH))).toBe(0);
    expect(writes(() => m.handleCommand(signed({ type: 'supply.off' }, 1), T0 + 2 * HH))).toBe(1);
    const arm = signed({ type: 'supply.arm' }, 2);
    expect(writes(() => m.handleCommand(arm, T0 + 2 * HH))).toBe(1);
    expect(writes(() => m.handleCommand(arm, T0 + 2 * HH))).toBe(1); // answered from memory: its reply is queued again
    expect(writes(() => m.handleCommand(signed({ type: 'supply.arm' }, 2), T0 + 2 * HH))).toBe(1); // STALE_COUNTER, with a reply
    expect(writes(() => m.handleCommand('junk', T0 + 2 * HH))).toBe(1); // the command.rejected event
    // Presses and power changes that also produce intervals still write once.
    expect(writes(() => m.pressButton(T0 + 5 * HH))).toBe(1);
    expect(writes(() => m.powerFail(T0 + 8 * HH, 0))).toBe(1);
    expect(writes(() => m.powerRestore(T0 + 10 * HH))).toBe(1);
    expect(writes(() => m.injectTamper('cover', T0 + 10 * HH))).toBe(1);
    expect(writes(() => m.handleAck({ v: 1, kind: 'ack', stream: 'readings', upTo: 0 }))).toBe(0);
    expect(writes(() => m.handleAck({ v: 1, kind: 'ack', stream: 'readings', upTo: 3 }))).toBe(1);
    expect(writes(() => m.delivered('replies', 'no-such-id'))).toBe(0);
    expect(m.cursor).toBe(T0 + 10 * HH);
  });

  it('sends power.fail alone in the last gasp, even when the metering before it raised events', () => {
    const m = makeMeter({ mode: 'prepayment', initialCreditMinor: 1 });
    const gasp = m.powerFail(T0 + 4 * HH, 0);
    expect(gasp).toHaveLength(1);
    expect(decodeUp('events', gasp[0]!.payload).events.map((e) => e.code)).toEqual(['power.fail']);
    expect(eventCodes(m)).toContain('credit.low'); // raised by the metering, in an earlier message
  });
});
