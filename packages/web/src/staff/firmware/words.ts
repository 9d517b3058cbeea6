// Words and tones the firmware pages show for the contract's firmware enums (a Record per enum,
// so a state added to the contract fails type-checking here until it has its words).
import type { FwCampaignStatus, FwMeterState, FwSkipReason } from '@kilowire/contract';
import type { ApiError } from '../../api.ts';
import type { Tone } from '../../ui/index.ts';

export const CAMPAIGN_STATUS: Record<FwCampaignStatus, { label: string; tone: Tone }> = {
  draft: { label: 'Draft', tone: 'neutral' },
  awaiting_approval: { label: 'Awaiting approval', tone: 'warn' },
  rejected: { label: 'Rejected', tone: 'neutral' },
  running: { label: 'Running', tone: 'info' },
  paused: { label: 'Paused', tone: 'warn' },
  halted: { label: 'Halted', tone: 'bad' },
  cancelled: { label: 'Cancelled', tone: 'neutral' },
  completed: { label: 'Completed', tone: 'good' },
};

export const METER_STATE: Record<FwMeterState, { label: string; tone: Tone; help: string }> = {
  pending: { label: 'Waiting', tone: 'neutral', help: 'Not offered yet: its stage has not started' },
  skipped: {
    label: 'Skipped for now',
    tone: 'neutral',
    help: 'Passed over (offline, disconnected, in an outage); offered again while the campaign runs',
  },
  offered: { label: 'Offered', tone: 'info', help: 'The signed offer is on its way or being checked' },
  downloading: { label: 'Downloading', tone: 'info', help: 'Fetching blocks' },
  verified: { label: 'Verified', tone: 'info', help: 'Whole image checked; waiting for its activation time' },
  activating: { label: 'Activating', tone: 'info', help: 'Booting the new image on trial' },
  confirmed: { label: 'Confirmed', tone: 'good', help: 'Reconnected and reported the new version' },
  refused: { label: 'Refused', tone: 'bad', help: 'The meter declined the offer' },
  verify_failed: {
    label: 'Verification failed',
    tone: 'bad',
    help: 'The downloaded image did not check out',
  },
  reverted: { label: 'Reverted', tone: 'bad', help: 'Went back to its old image after the trial boot' },
  not_returned: {
    label: 'Did not return',
    tone: 'bad',
    help: 'No confirmation within the confirmation time',
  },
  failed: { label: 'Failed', tone: 'bad', help: 'Any other failure (see the reason)' },
  cancelled: { label: 'Cancelled', tone: 'neutral', help: 'Not taken further: the campaign stopped' },
};

export const SKIP_REASON: Record<FwSkipReason, string> = {
  offline: 'meter offline',
  disconnected: 'supply disconnected',
  outage: 'in a power cut',
  feeder_limit: 'feeder activation limit reached',
  window: 'outside the activation window',
};

/**
 * The states grouped as the compact progress bar shows them (the five failures as one), in the order a meter moves
 * through them. Each group has its own fill pattern as well as a colour (never colour alone).
 */
export const STATE_GROUPS = [
  { key: 'waiting', label: 'Waiting', states: ['pending', 'skipped'] },
  { key: 'transfer', label: 'Downloading', states: ['offered', 'downloading'] },
  { key: 'verified', label: 'Verified', states: ['verified'] },
  { key: 'activating', label: 'Activating', states: ['activating'] },
  { key: 'confirmed', label: 'Confirmed', states: ['confirmed'] },
  {
    key: 'failed',
    label: 'Failed',
    states: ['refused', 'verify_failed', 'reverted', 'not_returned', 'failed'],
  },
  { key: 'cancelled', label: 'Cancelled', states: ['cancelled'] },
] as const satisfies readonly { key: string; label: string; states: readonly FwMeterState[] }[];

/** Meter states in the order the detail page lists them (the lifecycle, then the ends). */
export const STATE_ORDER: readonly FwMeterState[] = [
  'pending',
  'skipped',
  'offered',
  'downloading',
  'verified',
  'activating',
  'confirmed',
  'reverted',
  'verify_failed',
  'refused',
  'not_returned',
  'failed',
  'cancelled',
];

/** Stage 0 is the canary. */
export function stageLabel(stage: number): string {
  return stage === 0 ? 'Canary' : `Wave ${stage}`;
}

/** The first 12 hex digits: enough to tell images apart at a glance, the full hash on hover. */
export function shortSha(sha: string): string {
  return sha.slice(0, 12);
}

/** Bytes as "256 KB", "1.5 MB" (binary units, as image sizes are quoted). */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${Math.round((n / 1024) * 10) / 10} KB`;
  return `${Math.round((n / 1024 / 1024) * 10) / 10} MB`;
}

/** Seconds as "10 min", "90 s", "2 h". */
export function formatSeconds(s: number): string {
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.round((s / 3600) * 10) / 10} h`;
}

/** A timeline entry's kind in words (unknown kinds are shown readably, not hidden). */
const EVENT_LABEL: Record<string, string> = {
  created: 'Created, waiting for approval',
  started: 'Approved and started',
  stage_started: 'Stage started',
  carried_over: 'Skipped meters carried over',
  paused: 'Paused',
  resumed: 'Resumed',
  halted: 'Halted itself',
  cancelled: 'Cancelled',
  completed: 'Completed',
  rejected: 'Rejected',
  withdrawn: 'Request withdrawn',
  expired: 'Approval lapsed',
};
export function eventLabel(kind: string): string {
  const s = EVENT_LABEL[kind];
  if (s) return s;
  const t = kind.replace(/_/g, ' ');
  return t.charAt(0).toUpperCase() + t.slice(1);
}

/**
 * The API's firmware refusals in plain words for a supplier's operations team. The codes come
 * from the upload and campaign routes; anything unknown falls back to the API's own message,
 * which already names what is wrong.
 */
const ERROR_WORDS: Record<string, string> = {
  FW_BAD_SIGNATURE:
    'The signature does not match the firmware key this system trusts. Sign the image again with the firmware key (not the command key) and pick the new manifest.',
  FW_BAD_MANIFEST: 'The manifest file is not a valid Kilowire firmware manifest',
  FW_DUPLICATE:
    'This image (or another with the same hardware class and security sequence) is already uploaded',
  FW_HASH_MISMATCH:
    'The image file does not match its manifest: it is not the file that was signed, or it was damaged on the way. Nothing was stored',
  FW_SIZE_MISMATCH:
    'The image file is not the size its manifest names (truncated or extended). Nothing was stored',
  PAYLOAD_TOO_LARGE:
    'The image file is larger than its manifest says, or than this system accepts. Nothing was stored',
  SELF_APPROVAL: 'You asked for this, so a second supplier admin must approve it',
  FORBIDDEN: 'Your role may not do this',
  NETWORK: 'Could not reach Kilowire. Check your connection and try again',
};
export function firmwareErrorText(e: ApiError): string {
  const words = ERROR_WORDS[e.code];
  if (!words) return e.message;
  // The API's message carries the specifics (which block, which size) the words leave out.
  return e.code === 'FORBIDDEN' || e.code === 'NETWORK' || e.message === words
    ? `${words}.`
    : `${words}. (${e.message})`;
}
