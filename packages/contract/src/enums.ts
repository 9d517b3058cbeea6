/**
 * Every enum the HTTP contract uses, as plain constant lists (no zod): the server's domains,
 * the route schemas and the portal all take them from here, so a value exists in one place.
 */
export {
  METER_MODES,
  RELAY_STATES,
  REPLY_RESULTS,
  type MeterMode,
  type RelayState,
  type ReplyResult,
} from '@kilowire/protocol/enums';

export const ROLES = ['consumer', 'supplier', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export const ORG_KINDS = ['supplier', 'network_operator', 'platform'] as const;
export type OrgKind = (typeof ORG_KINDS)[number];

export const ALERT_TYPES = [
  'daily_limit',
  'hourly_limit',
  'tamper',
  'disconnected',
  'credit_low',
  'tariff_changed',
  /** A bill was issued (credit accounts). */
  'bill_ready',
  /** The supplier decided a tariff-change request. */
  'tariff_request',
  /** A top-up or payment: paid, on the meter, declined, refunded. */
  'payment',
  /** The supply is armed after a top-up: press the button on the meter. */
  'supply_armed',
  /** Staff only: the meter's reported credit drifted from what readings × tariff expect. */
  'credit_drift',
] as const;
export type AlertType = (typeof ALERT_TYPES)[number];
/** Alert types a household can receive and choose channels for (the rest are for staff). */
export type HouseholdAlertType = Exclude<AlertType, 'credit_drift'>;
export const HOUSEHOLD_ALERT_TYPES: readonly HouseholdAlertType[] = ALERT_TYPES.filter(
  (t): t is HouseholdAlertType => t !== 'credit_drift',
);

export const SEVERITIES = ['info', 'warning', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** Channels a household chooses per alert type; 'web' is the portal's alert list. */
export const CHANNELS = ['email', 'sms', 'web'] as const;
export type Channel = (typeof CHANNELS)[number];

/** Channels that send a message (and so appear in the outbox). */
export const MESSAGE_CHANNELS = ['email', 'sms'] as const;
export type MessageChannel = (typeof MESSAGE_CHANNELS)[number];

/**
 * The command lifecycle: requested -> (awaiting_approval) -> queued -> sent -> ok | rejected
 * | failed, or expired | cancelled.
 */
export const COMMAND_STATUSES = [
  'requested',
  'awaiting_approval',
  'queued',
  'sent',
  'ok',
  'rejected',
  'failed',
  'expired',
  'cancelled',
] as const;
export type CommandStatus = (typeof COMMAND_STATUSES)[number];

/** flat: band 1 only; two_rate: day (1) + night (2); three_band: day (1), night (2), peak (3). */
export const TARIFF_STRUCTURES = ['flat', 'two_rate', 'three_band'] as const;
export type TariffStructureName = (typeof TARIFF_STRUCTURES)[number];

/** A household's tariff-change request: open until the supplier approves or declines it. */
export const TARIFF_REQUEST_STATUSES = ['requested', 'approved', 'declined', 'withdrawn'] as const;
export type TariffRequestStatus = (typeof TARIFF_REQUEST_STATUSES)[number];

/** Stable error codes of the HTTP API (`error.code`); clients key on these, never on the wording. */
export const API_ERROR_CODES = [
  'VALIDATION',
  'UNAUTHENTICATED',
  'INVALID_CREDENTIALS',
  'WRONG_PASSWORD',
  'FORBIDDEN',
  'FOREIGN_ORIGIN',
  'NOT_FOUND',
  'CONFLICT',
  'PAYLOAD_TOO_LARGE',
  'URI_TOO_LONG',
  'UNSUPPORTED_MEDIA_TYPE',
  'RATE_LIMITED',
  'INTERNAL',
  'UNAVAILABLE',
] as const;
export type ApiErrorCode = (typeof API_ERROR_CODES)[number];
