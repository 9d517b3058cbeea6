import { ALERT_TYPES, type AlertType, type Channel, type Severity } from '@kilowire/contract/enums';

/** Alert types (from the contract), their severity, and the default channel choices of a consumer. */
export { ALERT_TYPES, type AlertType, type Channel, type Severity };
export type ChannelPrefs = Record<Channel, boolean>;
export type Preferences = Record<AlertType, ChannelPrefs>;

export const SEVERITY: Record<AlertType, Severity> = {
  daily_limit: 'warning',
  hourly_limit: 'warning',
  tamper: 'critical',
  disconnected: 'critical',
  credit_low: 'warning',
  tariff_changed: 'info',
  bill_ready: 'info',
  tariff_request: 'info',
  payment: 'info',
  supply_armed: 'warning',
  credit_drift: 'warning',
  supply_restored: 'info',
  // Power off is not a safety matter of the meter: a warning (quiet hours hold it, the
  // supplier's staff are not copied on every household of an outage).
  outage: 'warning',
  incident_opened: 'critical',
  sla_at_risk: 'warning',
  sla_breached: 'critical',
  collection_incomplete: 'warning',
  // #10 a halted campaign is the fleet's biggest risk caught in time: critical, so every staff
  // user of the supplier is emailed at once, not only shown it in the portal.
  campaign_halted: 'critical',
  firmware_window: 'info',
};

/** Critical alerts ignore quiet hours and are also sent to the supplier's staff. */
export function isCritical(type: AlertType): boolean {
  return SEVERITY[type] === 'critical';
}

/**
 * Web on for every type; email on for what a household must not miss (safety, money, tariff
 * and bill notices, the daily limit); sms on for tamper, disconnection, an armed supply and
 * the supply back on (whoever had it cut off wants to know at once).
 */
export function defaultPreferences(): Preferences {
  const email = new Set<AlertType>([
    'tamper',
    'disconnected',
    'credit_low',
    'daily_limit',
    'tariff_changed',
    'bill_ready',
    'tariff_request',
    'payment',
    'supply_armed',
    'supply_restored',
    'outage',
  ]);
  // An outage by SMS: the household may have no power for its router, but a phone works.
  const sms = new Set<AlertType>(['tamper', 'disconnected', 'supply_armed', 'supply_restored', 'outage']);
  return Object.fromEntries(
    ALERT_TYPES.map((t) => [t, { email: email.has(t), sms: sms.has(t), web: true }]),
  ) as Preferences;
}

/** Meter event codes that raise an alert, and the alert type they raise. */
export function alertTypeOfEvent(code: string): AlertType | null {
  if (code.startsWith('tamper.')) return 'tamper';
  if (code === 'relay.disconnected') return 'disconnected';
  if (code === 'credit.low') return 'credit_low';
  // Armed after a top-up (or by the supplier): the household must press the button.
  if (code === 'relay.armed') return 'supply_armed';
  // Closed again (the button after arming, or supply.on): the household hears it is back.
  if (code === 'relay.connected') return 'supply_restored';
  return null;
}
