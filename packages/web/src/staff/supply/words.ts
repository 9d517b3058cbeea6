// Words the supply pages show for the contract's supply enums (a Record per enum, so a new
// value fails type-checking here until it has its words).
import type { ActionRequestStatus, ApprovalNeed, SupplyReason } from '@kilowire/contract';
import type { ApiError } from '../../api.ts';

export const REASON_LABELS: Record<SupplyReason, string> = {
  non_payment: 'Non-payment',
  tamper: 'Tampering suspected',
  safety: 'Safety',
  household_request: "The household's request",
  other: 'Other (say why)',
};

export const NEED_LABELS: Record<ApprovalNeed, string> = {
  vulnerable: 'vulnerable household',
  protected_hours: 'protected hours',
  bulk: 'many meters at once',
  firmware: 'firmware campaign start',
};

export const REQUEST_STATUS: Record<ActionRequestStatus, string> = {
  awaiting_approval: 'Awaiting approval',
  approved: 'Approved',
  rejected: 'Rejected',
  expired: 'Expired',
  cancelled: 'Withdrawn',
};

/** #10 D: the approval kind of a firmware campaign's start (a second supplier admin approves it). */
export const FIRMWARE_CAMPAIGN_KIND = 'firmware.campaign';

/** "supply.disconnect" with 12 meters -> "Disconnect 12 meters". */
export function kindLabel(kind: string, meters: number): string {
  const n = meters === 1 ? '1 meter' : `${meters} meters`;
  if (kind === 'supply.disconnect') return `Disconnect ${n}`;
  if (kind === 'supply.reconnect') return `Reconnect ${n}`;
  // #10 D
  if (kind === FIRMWARE_CAMPAIGN_KIND) return `Start a firmware campaign on ${n}`;
  return `${kind} (${n})`;
}

export function needsText(needs: readonly ApprovalNeed[]): string {
  return needs.map((n) => NEED_LABELS[n]).join(', ');
}

export function reasonLabel(r: string): string {
  if (r === 'firmware_campaign') return 'Firmware campaign'; // #10 D: the campaign's own reason follows
  return (REASON_LABELS as Record<string, string>)[r] ?? r;
}

/** An error from a supply action, in words for staff (the API's message is already specific). */
export function supplyErrorText(e: ApiError): string {
  if (e.code === 'SELF_APPROVAL')
    return 'You asked for this action, so you cannot approve it: another supplier admin must.';
  if (e.code === 'QUOTA_EXCEEDED')
    return `Hourly limit reached: ${e.message}. Try again later or ask a colleague.`;
  if (e.code === 'FORBIDDEN') return 'Your role may not do this.';
  return e.message;
}

export function shortTime(iso: string): string {
  return new Date(iso).toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'short' });
}
