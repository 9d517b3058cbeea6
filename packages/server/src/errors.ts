import type { ApiErrorCode } from '@kilowire/contract/enums';

/**
 * Typed application errors with stable codes (the list lives in the HTTP contract). Routes
 * and domains throw these; one error handler turns them into `{ error: { code, message } }`
 * with the status below. Tests assert the code.
 */
export const ERROR_STATUS: Record<ApiErrorCode, number> = {
  VALIDATION: 400,
  UNAUTHENTICATED: 401,
  INVALID_CREDENTIALS: 401,
  /** A signed-in user gave the wrong current password (e.g. changing it): not a session problem. */
  WRONG_PASSWORD: 400,
  FORBIDDEN: 403,
  /** A state-changing request a browser sent from another site (CSRF). */
  FOREIGN_ORIGIN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  URI_TOO_LONG: 414,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  UNAVAILABLE: 503,
  IDEMPOTENCY_KEY_REUSED: 422,
  TOPUP_LIMIT: 422,
  BAD_SIGNATURE: 400,
  CARD_UNKNOWN: 422,
  PROVIDER_ERROR: 502,
  APPROVAL_REQUIRED: 409,
  SELF_APPROVAL: 403,
  QUOTA_EXCEEDED: 429,
  PASSWORD_CHANGE_REQUIRED: 403,
  // #10 B firmware uploads
  FW_BAD_SIGNATURE: 422,
  FW_BAD_MANIFEST: 422,
  FW_DUPLICATE: 409,
  FW_HASH_MISMATCH: 422,
  FW_SIZE_MISMATCH: 422,
};
export type AppErrorCode = ApiErrorCode;

export class AppError extends Error {
  constructor(
    readonly code: AppErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'AppError';
  }
  get status(): number {
    return ERROR_STATUS[this.code];
  }
}
