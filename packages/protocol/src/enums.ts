/**
 * Plain constant lists (no zod), so that the portal can import the enums the wire contract
 * and the HTTP contract are built from without pulling a schema library into its bundle.
 */
export const RELAY_STATES = ['connected', 'disconnected', 'armed'] as const;
export type RelayState = (typeof RELAY_STATES)[number];

export const METER_MODES = ['credit', 'prepayment'] as const;
export type MeterMode = (typeof METER_MODES)[number];

/** Results a meter reports for a command it received. */
export const REPLY_RESULTS = ['ok', 'rejected', 'failed'] as const;
export type ReplyResult = (typeof REPLY_RESULTS)[number];
