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
  /** The supply is back on (after any disconnection: remote, credit, safety). */
  'supply_restored',
  /** #9: the household's power is off in a network outage: once with the estimated restoration, on each change, and when it is back. */
  'outage',
  /** #9 operator: an outage incident opened (within the SLA's 3 minutes of its first last gasp). */
  'incident_opened',
  /** #9 operator: an open incident passed the at-risk share of its restoration target. */
  'sla_at_risk',
  /** #9 operator: an open incident passed its restoration target. */
  'sla_breached',
  /** #9 operator: a day's collection in an area is below the completeness threshold. */
  'collection_incomplete',
  /** #10 supplier staff: a firmware campaign halted itself (failures over its threshold in a stage). */
  'campaign_halted',
  /** #10 operator: firmware activations are planned on its feeders (reboots, not outages). */
  'firmware_window',
] as const;
export type AlertType = (typeof ALERT_TYPES)[number];
/** Alerts addressed to a network operator (its staff and on-call contacts), never to a household. */
export const OPERATOR_ALERT_TYPES = [
  'incident_opened',
  'sla_at_risk',
  'sla_breached',
  'collection_incomplete',
  'firmware_window',
] as const;
export type OperatorAlertType = (typeof OPERATOR_ALERT_TYPES)[number];
/** Alert types a household can receive and choose channels for (the rest are for staff). */
export type HouseholdAlertType = Exclude<AlertType, 'credit_drift' | 'campaign_halted' | OperatorAlertType>;
export const HOUSEHOLD_ALERT_TYPES: readonly HouseholdAlertType[] = ALERT_TYPES.filter(
  (t): t is HouseholdAlertType =>
    t !== 'credit_drift' &&
    t !== 'campaign_halted' &&
    !(OPERATOR_ALERT_TYPES as readonly string[]).includes(t),
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
  /** An Idempotency-Key used again with a different request body (422). */
  'IDEMPOTENCY_KEY_REUSED',
  /** A top-up below the minimum, above the maximum, or over the daily total (422). */
  'TOPUP_LIMIT',
  /** A webhook whose signature or timestamp does not verify (400); nothing was changed. */
  'BAD_SIGNATURE',
  /** A sandbox card the sandbox does not know (422): use 4242 4242 4242 4242 or 4000 0000 0000 0002. */
  'CARD_UNKNOWN',
  /** The payment provider did not answer or refused the request (502); try again. */
  'PROVIDER_ERROR',
  /** A second person must approve this action first (202 with the request, or 409 when asked to skip it). */
  'APPROVAL_REQUIRED',
  /** The requester tried to approve their own request (403). */
  'SELF_APPROVAL',
  /** A per-user quota (disconnections per hour) is used up (429). */
  'QUOTA_EXCEEDED',
  /** The user must choose a new password before anything else (403). */
  'PASSWORD_CHANGE_REQUIRED',
  // #10 B firmware uploads
  /** A firmware manifest whose signature is not the firmware key's (422); nothing was stored. */
  'FW_BAD_SIGNATURE',
  /** A firmware manifest that does not parse or does not add up (422). */
  'FW_BAD_MANIFEST',
  /** An image with this SHA-256, or this hardware class and security sequence, is already uploaded (409). */
  'FW_DUPLICATE',
  /** An uploaded image whose bytes do not match its manifest's block or image hash (422); the message names the first bad block. */
  'FW_HASH_MISMATCH',
  /** An uploaded image shorter or longer than its manifest says (422). */
  'FW_SIZE_MISMATCH',
  // #10 B end
] as const;
export type ApiErrorCode = (typeof API_ERROR_CODES)[number];

/**
 * A top-up's status: pending (waiting for payment) -> paid (money received) -> applied (the
 * meter added the credit); or declined, expired (abandoned at the payment page), refunded.
 */
export const TOPUP_STATUSES = ['pending', 'declined', 'expired', 'paid', 'applied', 'refunded'] as const;
export type TopupStatus = (typeof TOPUP_STATUSES)[number];

/** topup: credit for a prepayment meter; payment: a credit account paying toward its balance. */
export const TOPUP_KINDS = ['topup', 'payment'] as const;
export type TopupKind = (typeof TOPUP_KINDS)[number];

export const PAYMENT_PROVIDERS = ['sandbox', 'stripe'] as const;
export type PaymentProviderName = (typeof PAYMENT_PROVIDERS)[number];
/** Kinds of ledger transaction (the server's ledger posts exactly these). */
export const LEDGER_KINDS = [
  'bill',
  'payment',
  'topup',
  'refund',
  'adjustment',
  'credit_note',
  'debit_note',
  /** A prepayment meter's debits for one local day, as the head-end prices them from readings. */
  'usage',
  /** What an account came with (credit on a prepayment meter, a balance from a previous system). */
  'opening',
] as const;
export type LedgerKind = (typeof LEDGER_KINDS)[number];

/** A bill run: queued -> running -> done (done may have failed accounts, listed with reasons). */
export const BILL_RUN_STATUSES = ['queued', 'running', 'done'] as const;
export type BillRunStatus = (typeof BILL_RUN_STATUSES)[number];
export const BILL_RUN_TRIGGERS = ['schedule', 'staff', 'demo'] as const;
export type BillRunTrigger = (typeof BILL_RUN_TRIGGERS)[number];
export const BILL_NOTE_KINDS = ['credit_note', 'debit_note'] as const;
export type BillNoteKind = (typeof BILL_NOTE_KINDS)[number];

/** A staff user's role inside their organisation: agents act on one meter at a time, admins also approve and manage. */
export const STAFF_ROLES = ['agent', 'admin'] as const;
export type StaffRole = (typeof STAFF_ROLES)[number];

/** A meter's life on the platform. */
export const METER_STATUSES = ['active', 'decommissioned'] as const;
export type MeterStatus = (typeof METER_STATUSES)[number];

/** A tamper case: opened by a tamper alert, worked, resolved. */
export const TAMPER_CASE_STATUSES = ['open', 'investigating', 'resolved'] as const;
export type TamperCaseStatus = (typeof TAMPER_CASE_STATUSES)[number];

/** Why staff disconnect (or reconnect) a supply; `other` needs a text. The household's message says which. */
export const SUPPLY_REASONS = ['non_payment', 'tamper', 'safety', 'household_request', 'other'] as const;
export type SupplyReason = (typeof SUPPLY_REASONS)[number];
/** Remote supply control: disconnect opens the relay; reconnect arms it (the household presses the button). */
export const SUPPLY_ACTIONS = ['disconnect', 'reconnect'] as const;
export type SupplyAction = (typeof SUPPLY_ACTIONS)[number];
/** Why an action waits for a second supplier admin. */
export const APPROVAL_NEEDS = ['vulnerable', 'protected_hours', 'bulk', 'firmware'] as const;
export type ApprovalNeed = (typeof APPROVAL_NEEDS)[number];
/** An action request: waits for a second person, then approved, rejected, expired, or withdrawn by its requester. */
export const ACTION_REQUEST_STATUSES = [
  'awaiting_approval',
  'approved',
  'rejected',
  'expired',
  'cancelled',
] as const;
export type ActionRequestStatus = (typeof ACTION_REQUEST_STATUSES)[number];

/** The shortest password anyone may choose (profile, invite, first sign-in): the schema and the portal's hint. */
export const MIN_PASSWORD_LENGTH = 10;

/**
 * #9 outages. feeder: several meters of one feeder lost power together; single: one
 * household's supply (alone, or a straggler that did not come back with its feeder).
 */
export const INCIDENT_KINDS = ['feeder', 'single'] as const;
export type IncidentKind = (typeof INCIDENT_KINDS)[number];
/** An incident's life: detected -> acknowledged -> dispatched (crew) -> restored -> closed. */
export const INCIDENT_STATUSES = ['detected', 'acknowledged', 'dispatched', 'restored', 'closed'] as const;
export type IncidentStatus = (typeof INCIDENT_STATUSES)[number];
/** Where an open incident stands against its restoration target. */
export const SLA_STATES = ['ok', 'at_risk', 'breached'] as const;
export type SlaState = (typeof SLA_STATES)[number];
/** How a meter joined an incident: it sent a last gasp, or it went silent. */
export const OUTAGE_SOURCES = ['last_gasp', 'silent'] as const;
export type OutageSource = (typeof OUTAGE_SOURCES)[number];

/** #9 collection: why a version of a day's collection exists. */
export const COLLECTION_REASONS = ['cutoff', 'late_data', 'manual'] as const;
export type CollectionReason = (typeof COLLECTION_REASONS)[number];
/** #9 network-use invoices from an operator to a supplier. */
export const NETWORK_INVOICE_STATUSES = ['issued', 'paid'] as const;
export type NetworkInvoiceStatus = (typeof NETWORK_INVOICE_STATUSES)[number];

/**
 * #10 firmware. A campaign: draft -> awaiting_approval (a second supplier admin) -> running
 * <-> paused -> completed; or rejected, halted (failures over the threshold in a stage),
 * cancelled.
 */
export const FW_CAMPAIGN_STATUSES = [
  'draft',
  'awaiting_approval',
  'rejected',
  'running',
  'paused',
  'halted',
  'cancelled',
  'completed',
] as const;
export type FwCampaignStatus = (typeof FW_CAMPAIGN_STATUSES)[number];
/** One meter in a campaign (see migration 017). The last six are ends; skipped is retried while the campaign runs. */
export const FW_METER_STATES = [
  'pending',
  'skipped',
  'offered',
  'downloading',
  'verified',
  'activating',
  'confirmed',
  'refused',
  'verify_failed',
  'reverted',
  'not_returned',
  'failed',
  'cancelled',
] as const;
export type FwMeterState = (typeof FW_METER_STATES)[number];
/** The states that count as a failure against a stage's threshold. */
export const FW_FAILURE_STATES = ['refused', 'verify_failed', 'reverted', 'not_returned', 'failed'] as const;
/** Why a meter was passed over for now. */
export const FW_SKIP_REASONS = ['offline', 'disconnected', 'outage', 'feeder_limit', 'window'] as const;
export type FwSkipReason = (typeof FW_SKIP_REASONS)[number];
