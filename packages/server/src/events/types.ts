/**
 * Domain events: facts that other parts of the system react to, written in the same
 * transaction as the change that caused them (see emit.ts) and handed to subscribers by the
 * dispatcher in the jobs service. Handlers must be idempotent: an event can be handled
 * again after a crash between the handler's work and the job's completion.
 */
export interface EventPayloads {
  /** A gateway batch committed readings: the (meter, local day) pairs it touched. */
  'readings.committed': { meterDays: [meterId: number, day: string][]; stored?: number };
  /** One event a meter reported (tamper, power fail, relay, credit...), as stored in meter_events. */
  'meter.event': { seq: number; idx: number; code: string; t: number; data: Record<string, unknown> | null };
  /** A meter answered a command (first answer only: later duplicates change nothing). */
  'command.replied': {
    commandId: string;
    type: string;
    result: 'ok' | 'rejected' | 'failed';
    code: string | null;
  };
  /** A household changed its consumption limits. */
  'limits.changed': Record<string, never>;
  /** The head-end gave up on a command past its expiry (the meter refuses it too). */
  'command.expired': { commandId: string; type: string };
  /** A top-up changed status (paid, applied, declined, expired, refunded): the household is told. */
  'topup.changed': { topupId: string; status: string };
  /** The sandbox provider owes the webhook endpoint this event (signed and sent by the jobs service). */
  'sandbox.webhook': { event: Record<string, unknown> };
  /** A bill was issued (the household is told it is ready). */
  'bill.issued': { billId: number };
  /** A bill run was created (the jobs service queues its work). */
  'bill_run.requested': { runId: number };
  /**
   * A meter's prices change from local day `from`: it was put on a tariff (by the supplier or
   * an approved request) or its tariff got a new price version. The household is told.
   */
  'tariff.changed': {
    tariffId: number;
    version: number;
    from: string;
    why: 'assigned' | 'request' | 'prices';
  };
  /** The supplier approved or declined a household's tariff-change request. */
  'tariff.request_decided': { requestId: number };
  /** A monthly extract was requested (the jobs service queues its work). */
  'extract.requested': { extractId: number };
  // #9 outages
  /** An outage incident opened (feeder or single household), its operator alerted in the same transaction. */
  'incident.opened': {
    incidentId: number;
    operatorId: number;
    kind: 'feeder' | 'single';
    feederId: string | null;
  };
  /** An outage incident was restored (its meters back, stragglers listed, or marked by the control room). */
  'incident.restored': { incidentId: number; operatorId: number; stragglers: number };
  // #9 outages end
}
export type EventType = keyof EventPayloads;
export const EVENT_TYPES = [
  'readings.committed',
  'meter.event',
  'command.replied',
  'limits.changed',
  'command.expired',
  'topup.changed',
  'sandbox.webhook',
  'bill.issued',
  'bill_run.requested',
  'tariff.changed',
  'tariff.request_decided',
  'extract.requested',
  // #9 outages
  'incident.opened',
  'incident.restored',
] as const satisfies readonly EventType[];

export interface DomainEvent<T extends EventType = EventType> {
  id: number;
  type: T;
  meterId: number | null;
  payload: EventPayloads[T];
  createdAt: Date;
}

export interface NewEvent<T extends EventType = EventType> {
  type: T;
  meterId: number | null;
  payload: EventPayloads[T];
}

/** NOTIFY channel that wakes the dispatcher after a transaction with events commits. */
export const EVENTS_CHANNEL = 'kw_events';

/**
 * A reaction to domain events (alert rules; later billing, outages...). Each subscriber has
 * its own queue, so one failing handler never holds up another. `handle` must be idempotent:
 * after a crash between its work and the job's completion it runs again with the same events.
 */
export interface Subscriber {
  /** Stable name: the queue is `events.<name>`. */
  name: string;
  types: readonly EventType[];
  handle(events: DomainEvent[]): Promise<void>;
}
