import { localParts } from '@kilowire/protocol';

/** What makes one household's consumption differ from the next. */
export interface HouseholdProfile {
  /** Always-on load at night (fridge, standby), in W. */
  baseLoadW: number;
  /** Multiplies the activity peaks: 0.5 = a single flat, 2 = a large family house. */
  sizeFactor: number;
  hasSolar: boolean;
  /** Inverter peak on a clear summer noon, in W. */
  solarPeakW?: number;
}

/**
 * Deterministic noise in [0, 1) keyed by (seed, instant, channel). Keying by instant rather
 * than drawing from a stream means an interval's value never depends on how the run was
 * split into calls or restarts, so a rebuilt meter produces the very same readings.
 */
export function noise(seed: number, t: number, channel: number): number {
  let h = (seed ^ Math.imul(t | 0, 0x9e3779b1) ^ Math.imul(channel + 1, 0x85ebca77)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  h ^= h >>> 16;
  return (h >>> 0) / 4_294_967_296;
}

/** A stable 32-bit hash of a string (FNV-1a), used to give each meter its own default seed. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** A plausible household for a given seed: most small, some large, about one in six with solar. */
export function defaultProfile(seed: number): HouseholdProfile {
  return {
    baseLoadW: 110 + Math.round(noise(seed, 1, 101) * 140),
    sizeFactor: Math.round((0.6 + noise(seed, 2, 102) * 1.0) * 100) / 100,
    hasSolar: noise(seed, 3, 103) < 0.17,
    solarPeakW: 2500 + Math.round(noise(seed, 4, 104) * 1500),
  };
}

const gauss = (x: number, mu: number, sigma: number) => Math.exp(-0.5 * ((x - mu) / sigma) ** 2);

export interface IntervalEnergy {
  /** Energy drawn from the grid, Wh. */
  importWh: number;
  /** Energy fed into the grid, Wh. */
  exportWh: number;
}

/**
 * Energy for the interval [t, t + intervalS), from the household's power at the interval's
 * local midpoint. Shapes follow typical UK domestic load profiles: a flat night base, a
 * morning peak around 07:00-09:00 (later and broader at weekends), daytime activity that
 * is higher at weekends, and the main peak at 17:00-21:00; everything is higher in winter
 * (lighting, heating pumps) than in summer.
 */
export function intervalEnergy(
  profile: HouseholdProfile,
  seed: number,
  tz: string,
  t: number,
  intervalS: number,
): IntervalEnergy {
  const mid = t + intervalS / 2;
  const p = localParts(mid, tz);
  const h = p.hour + p.minute / 60;
  const weekend = p.weekday === 0 || p.weekday === 6;
  // Peak in mid-January, trough in mid-July.
  const yearPhase = (2 * Math.PI * (p.month - 1 + (p.day - 15) / 30)) / 12;
  const season = 1 + 0.25 * Math.cos(yearPhase);
  const s = profile.sizeFactor;

  let loadW = profile.baseLoadW;
  loadW += s * (weekend ? 450 : 550) * gauss(h, weekend ? 9 : 7.75, weekend ? 1.3 : 0.8);
  loadW += s * ((weekend ? 320 : 120) * gauss(h, 13, 2.2) + (h >= 7 && h < 23 ? 60 : 0));
  loadW += s * 800 * gauss(h, 19, 1.5);
  loadW += s * 200 * gauss(h, 22.5, 0.7);
  loadW *= season;
  loadW *= 0.8 + 0.4 * noise(seed, t, 1);
  // Kettle, oven, washing machine: short bursts that make real profiles spiky.
  if (noise(seed, t, 2) < 0.05) loadW += s * (600 + 1800 * noise(seed, t, 3));

  let genW = 0;
  if (profile.hasSolar) {
    const summer = (1 - Math.cos(yearPhase)) / 2; // 0 in January, 1 in July
    const dayLen = 7.5 + 9 * summer;
    const noon = 12.5 + (p.month >= 4 && p.month <= 10 ? 0.5 : 0);
    const x = (h - (noon - dayLen / 2)) / dayLen;
    if (x > 0 && x < 1) {
      const cloud = 0.25 + 0.75 * noise(seed, Math.floor(t / 7200), 4);
      genW = (profile.solarPeakW ?? 3000) * (0.3 + 0.7 * summer) * Math.sin(Math.PI * x) * cloud;
    }
  }

  const toWh = (w: number) => Math.max(0, Math.round((w * intervalS) / 3600));
  return { importWh: toWh(loadW - genW), exportWh: toWh(genW - loadW) };
}
