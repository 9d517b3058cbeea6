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
