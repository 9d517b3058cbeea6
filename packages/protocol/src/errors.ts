/**
 * Stable error codes of the wire contract. Tests and metrics key on the code, never on
 * the wording, so a code once published is never renamed.
 */
export const ProtocolErrorCodes = [
  'PAYLOAD_TOO_LARGE',
  'BAD_UTF8',
  'BAD_JSON',
  'BAD_VERSION',
  'SCHEMA',
  'UNKNOWN_TOPIC',
  'BAD_SIGNATURE',
  'WRONG_METER',
  'STALE_COUNTER',
  'EXPIRED',
] as const;
export type ProtocolErrorCode = (typeof ProtocolErrorCodes)[number];

export class ProtocolError extends Error {
  constructor(
    readonly code: ProtocolErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ProtocolError';
  }
}

/**
 * Why the gateway refused an up message, beyond the codec's own codes: counted in
 * `kilowire_gateway_rejected_total{code}`. Stable, like the codec's.
 */
export const GATEWAY_REJECT_CODES = [
  /** Not `meters/{id}/up/{kind}`. */
  'UNKNOWN_TOPIC',
  /** No meter with this id is provisioned. */
  'UNKNOWN_METER',
  /** A readings message ending more than 5 minutes after the head-end's clock. */
  'FUTURE_READING',
  /** An events message with an event dated more than 5 minutes after the head-end's clock. */
  'FUTURE_EVENT',
  /** The message's interval length is not the meter's configured one. */
  'INTERVAL_SIZE',
  /** A sequence number already committed, carrying data that differs from what was stored. */
  'SEQ_CONFLICT',
  /** The retain flag is set on a meter's up topic (the head-end never reads retained data). */
  'RETAINED',
  /** A firmware block request while no firmware is offered to the meter. */
  'FW_NOT_OFFERED',
  /** A bug on the head-end's side while handling the message (logged with a stack). */
  'INTERNAL',
] as const;
export type GatewayRejectCode = (typeof GATEWAY_REJECT_CODES)[number];

/** Codes a meter puts in a `rejected` or `failed` reply. */
export const METER_REPLY_CODES = [
  'BAD_SIGNATURE',
  'WRONG_METER',
  'STALE_COUNTER',
  'SCHEMA',
  'BAD_JSON',
  'EXPIRED',
  'DUPLICATE_TOPUP',
  'NOT_SUPPORTED_YET',
  /** firmware.offer: the manifest's signature is not the firmware key's (the command key does not count). */
  'FW_BAD_SIGNATURE',
  /** firmware.offer: the manifest does not parse or does not add up (block count, sizes). */
  'FW_BAD_MANIFEST',
  /** firmware.offer: the image is for another hardware class. */
  'FW_WRONG_HARDWARE',
  /** firmware.offer: the image's security sequence is not above the running one's (no rollback). */
  'FW_ROLLBACK',
  /** firmware.offer: another image is being received or waits for activation; cancel it first. */
  'FW_BUSY',
  /** firmware.activate / cancel: the meter holds no verified image with that hash. */
  'FW_UNKNOWN_IMAGE',
] as const;
export type MeterReplyCode = (typeof METER_REPLY_CODES)[number];
