import type { EventCode } from '@kilowire/protocol';
import type { RelayReason, RelaySlice } from './state.ts';
import type { CommandResult, Emit } from './shared.ts';

/**
 * The supply relay: connected, disconnected (with why), or armed (allowed to reconnect; the
 * consumer closes it with the button, GB practice, so nobody is reconnected unaware).
 */
export class Relay {
  constructor(
    private readonly st: RelaySlice,
    private readonly emit: Emit,
    /** True while lack of credit forbids closing the relay at `t` (prepayment's rule, asked at press time). */
    private readonly creditForbidsSupply: (t: number) => boolean,
  ) {}

  static initial(): RelaySlice {
    return { state: 'connected', reason: null };
  }

  get state(): RelaySlice['state'] {
    return this.st.state;
  }
  get reason(): RelayReason | null {
    return this.st.reason;
  }
  /** Energy flows only through a connected relay; armed is still open. */
  get closed(): boolean {
    return this.st.state === 'connected';
  }

  // ---------------------------------------------------------------- commands

  supplyOff(reason: string | undefined, t: number): CommandResult {
    this.set('disconnected', reason === 'tamper' ? 'tamper' : 'remote', t);
    return { result: 'ok' };
  }

  supplyOn(t: number): CommandResult {
    this.set('connected', null, t);
    return { result: 'ok' };
  }

  /** Arming keeps the reason of the disconnection; arming a connected or armed relay changes nothing. */
  supplyArm(t: number): CommandResult {
    if (this.st.state === 'disconnected') this.set('armed', this.st.reason, t);
    return { result: 'ok' };
  }

  // ---------------------------------------------------------------- credit

  /** Credit is exhausted outside friendly hours: open a closed relay. An open one keeps its own reason. */
  cutForCredit(t: number): void {
    if (this.st.state === 'connected') this.set('disconnected', 'credit', t);
  }

  /** What cut the supply for credit is gone (top-up, switch to credit mode): arm, never close. */
  creditRestored(t: number): void {
    if (this.st.state === 'disconnected' && this.st.reason === 'credit') this.set('armed', 'credit', t);
  }

  // ---------------------------------------------------------------- the consumer's button

  /** Whether a press at `t` closes the relay: only an armed one, and not while credit forbids supply. */
  buttonWouldClose(t: number): boolean {
    return this.st.state === 'armed' && !this.creditForbidsSupply(t);
  }

  /** The press itself; the caller checked `buttonWouldClose` and brought production up to `t`. */
  pressButton(t: number): void {
    this.set('connected', null, t);
  }

  private set(state: RelaySlice['state'], reason: RelayReason | null, t: number): void {
    const changed = this.st.state !== state;
    this.st.state = state;
    this.st.reason = state === 'connected' ? null : reason;
    if (!changed) return;
    const code: EventCode =
      state === 'connected' ? 'relay.connected' : state === 'armed' ? 'relay.armed' : 'relay.disconnected';
    this.emit(code, t, reason && state !== 'connected' ? { reason } : undefined);
  }
}
