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
};

/** Critical alerts ignore quiet hours and are also sent to the supplier's staff. */
export function isCritical(type: AlertType): boolean {
  return SEVERITY[type] === 'critical';
}

/** Web on for every type; email on for tamper/disconnected/credit_low/daily_limit; sms on for tamper/disconnected. */
export function defaultPreferences(): Preferences {
  const email = new Set<AlertType>(['tamper', 'disconnected', 'credit_low', 'daily_limit']);
  const sms = new Set<AlertType>(['tamper', 'disconnected']);
  return Object.fromEntries(
    ALERT_TYPES.map((t) => [t, { email: email.has(t), sms: sms.has(t), web: true }]),
  ) as Preferences;
}

/** Meter event codes that raise an alert, and the alert type they raise. */
export function alertTypeOfEvent(code: string): AlertType | null {
  if (code.startsWith('tamper.')) return 'tamper';
  if (code === 'relay.disconnected') return 'disconnected';
  if (code === 'credit.low') return 'credit_low';
  return null;
}
