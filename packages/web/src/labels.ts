// Words the portal shows for the contract's enums. Each map is a Record over the enum, so a
// value added to the contract fails type-checking here until it has its words.
import type { AlertType, Channel, MeterMode, Severity } from '@kilowire/contract';

export const ALERT_LABELS: Record<AlertType, string> = {
  daily_limit: 'Daily limit reached',
  hourly_limit: 'Hourly limit reached',
  tamper: 'Tampering detected',
  disconnected: 'Supply disconnected',
  credit_low: 'Credit running low',
  tariff_changed: 'Tariff changed',
  bill_ready: 'Bill ready',
  tariff_request: 'Tariff request decided',
  payment: 'Payments and top-ups',
  supply_armed: 'Supply ready to switch on',
  credit_drift: 'Credit drift (staff)',
  supply_restored: 'Supply back on',
  outage: 'Power cut in your area',
  incident_opened: 'Outage incident opened',
  sla_at_risk: 'Restoration target at risk',
  sla_breached: 'Restoration target missed',
  collection_incomplete: 'Daily collection incomplete',
  campaign_halted: 'Firmware campaign halted',
  firmware_window: 'Planned firmware activations',
};

export const CHANNEL_LABELS: Record<Channel, string> = { email: 'Email', sms: 'SMS', web: 'Web' };

export const SEVERITY_LABELS: Record<Severity, string> = {
  info: 'Info',
  warning: 'Warning',
  critical: 'Critical',
};

export const METER_MODE_LABELS: Record<MeterMode, string> = {
  prepayment: 'Prepayment (pay as you go)',
  credit: 'Credit (pay monthly)',
};
