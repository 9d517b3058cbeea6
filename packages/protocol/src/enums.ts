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

/**
 * Where an image stands on the meter that is receiving it: downloading (blocks arriving),
 * verified (whole image checked, waiting for activation), scheduled (activation time set),
 * trial (booted from the new slot, not yet confirmed).
 */
export const FW_PENDING_STATES = ['downloading', 'verified', 'scheduled', 'trial'] as const;
export type FwPendingState = (typeof FW_PENDING_STATES)[number];
/** At most this many blocks in one firmware request (the head-end answers each with one message). */
export const FW_MAX_BLOCKS_PER_REQUEST = 8;
/** Block size of images made by the CLI and the demo (bytes): 64 blocks for a 256 KB image. */
export const FW_DEFAULT_BLOCK_SIZE = 4096;
