import type { TariffSpec } from '@kilowire/protocol';
import type { HouseholdProfile } from './load.ts';
import { Meter } from './meter.ts';
import { MemoryStore } from './store.ts';

/** More credit than any household uses in years, so the dry run never reaches emergency credit. */
const PLENTY = 1_000_000_000;

export interface DryRunMeter {
  id: string;
  tz: string;
  intervalS?: 900 | 1800;
  seed?: number;
  profile?: Partial<HouseholdProfile>;
  tariff?: TariffSpec;
}

/**
 * What a prepayment meter debits (energy at its tariff's band rates, standing charge per
 * local day) from `startS` to `untilS`, in minor units: the same meter model run in memory
 * with the same inputs, so it is the figure the real meter will reach (as long as nothing
 * else happens to it — a tariff.set, a supply.off — before `untilS`). The demo sizes a
 * household's opening credit with it, so that the credit runs out when the story needs.
 */
export function prepaymentDebit(
  m: DryRunMeter,
  serverPublicKey: string,
  startS: number,
  untilS: number,
): number {
  const meter = new Meter({
    id: m.id,
    tz: m.tz,
    intervalS: m.intervalS,
    seed: m.seed,
    profile: m.profile,
    tariff: m.tariff,
    serverPublicKey,
    store: new MemoryStore(),
    mode: 'prepayment',
    initialCreditMinor: PLENTY,
    startS,
    batchIntervals: 200,
  });
  meter.advanceTo(untilS);
  return PLENTY - meter.credit.creditMinor;
}
