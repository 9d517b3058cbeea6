import type { Pool } from '../db/pool.ts';
import type { DomainEvent, Subscriber } from '../events/types.ts';
import {
  evaluateEvents,
  evaluateLimits,
  raiseTariffChangedFor,
  raiseTariffRequestDecided,
  type RuleOptions,
} from './rules.ts';
import { alertTypeOfEvent } from './types.ts';

/**
 * The alert rules as a domain-event subscriber: committed readings and changed limits are
 * judged against the limits, meter events that raise alerts become alerts, tariff changes
 * and decisions on tariff requests are told to the household. Idempotent by
 * construction (one alert per (meter, type, dedupe key)), so a job that runs twice after a
 * crash raises nothing twice.
 */
export function alertsSubscriber(pool: Pool, opts: RuleOptions = {}): Subscriber {
  return {
    name: 'alerts',
    types: [
      'readings.committed',
      'meter.event',
      'limits.changed',
      'tariff.changed',
      'tariff.request_decided',
    ],
    async handle(events: DomainEvent[]): Promise<void> {
      const meters = new Set<number>();
      const keys = new Map<string, { meterId: number; seq: number }>();
      for (const e of events) {
        if (e.type === 'readings.committed') {
          for (const [meterId] of (e as DomainEvent<'readings.committed'>).payload.meterDays)
            meters.add(meterId);
        } else if (e.type === 'limits.changed' && e.meterId !== null) {
          meters.add(e.meterId);
        } else if (e.type === 'meter.event' && e.meterId !== null) {
          const p = (e as DomainEvent<'meter.event'>).payload;
          if (alertTypeOfEvent(p.code)) keys.set(`${e.meterId}:${p.seq}`, { meterId: e.meterId, seq: p.seq });
        }
      }
      await evaluateEvents(pool, [...keys.values()], opts);
      for (const e of events) {
        if (e.type === 'tariff.changed' && e.meterId !== null)
          await raiseTariffChangedFor(pool, e.meterId, (e as DomainEvent<'tariff.changed'>).payload, opts);
        else if (e.type === 'tariff.request_decided')
          await raiseTariffRequestDecided(
            pool,
            (e as DomainEvent<'tariff.request_decided'>).payload.requestId,
            opts,
          );
      }
      await evaluateLimits(pool, [...meters], opts);
    },
  };
}
