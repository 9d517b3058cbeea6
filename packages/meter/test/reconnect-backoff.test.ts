import { describe, expect, it } from 'vitest';
import { Backoff, reconnectDelayMs } from '../src/client.ts';
import { seeded } from './fault-broker.ts';

const B = { baseMs: 1000, capMs: 60_000, stableMs: 30_000 };

describe('reconnect backoff (exponential, full jitter)', () => {
  it('stays within [0, min(cap, base * 2^attempt)) at both ends of the random range', () => {
    for (let attempt = 0; attempt < 12; attempt++) {
      const ceiling = Math.min(B.capMs, B.baseMs * 2 ** attempt);
      expect(reconnectDelayMs(attempt, B, () => 0)).toBe(0);
      const top = reconnectDelayMs(attempt, B, () => 0.999_999);
      expect(top).toBeLessThan(ceiling);
      expect(top).toBeGreaterThanOrEqual(ceiling - 1);
    }
    // Far past the cap it neither overflows nor exceeds it.
    expect(reconnectDelayMs(10_000, B, () => 0.999_999)).toBeLessThan(B.capMs);
    expect(Number.isFinite(reconnectDelayMs(10_000, B, () => 0.5))).toBe(true);
  });

  it('spreads a fleet over the whole window instead of bunching it', () => {
    const rnd = seeded(7);
    // 2,000 meters at their 4th attempt: window [0, 16 s); each 1 s slot gets its share.
    const slots = new Array<number>(16).fill(0);
    for (let i = 0; i < 2000; i++) slots[Math.floor(reconnectDelayMs(4, B, rnd) / 1000)]!++;
    expect(Math.min(...slots)).toBeGreaterThan(2000 / 16 / 2);
    expect(Math.max(...slots)).toBeLessThan((2000 / 16) * 1.5);
  });

  it('doubles per failed attempt and starts again only after a stable connection', () => {
    const top = () => 0.999_999;
    const b = new Backoff(B, top);
    const t = 1_000_000;
    // The broker is away: each failed attempt doubles the ceiling up to the cap.
    const waits = Array.from({ length: 8 }, () => b.lost(t));
    expect(waits.map((w) => Math.round(w / 1000))).toEqual([1, 2, 4, 8, 16, 32, 60, 60]);
    // Accepted, then dropped before the connection counted as stable: keep backing off.
    b.connected(t);
    expect(b.lost(t + B.stableMs - 1)).toBeGreaterThan(59_000);
    // Held for stableMs: the next loss starts from the base again.
    b.connected(t);
    expect(b.lost(t + B.stableMs)).toBeLessThan(B.baseMs);
    expect(b.attempts).toBe(1);
  });
});
