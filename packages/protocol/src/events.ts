/**
 * The meter event catalogue. Each event has a stable dotted code (what the system keys on)
 * and, where one exists, the GB SMETS2/GBCS alert code it mirrors, so that a gateway for
 * real GB meters can map alerts one to one.
 */
export const EVENT_CATALOGUE = {
  'tamper.cover': { gb: 0x8f74, severity: 'critical', text: 'Meter cover opened' },
  'tamper.terminal': { gb: 0x8f76, severity: 'critical', text: 'Terminal cover removed' },
  'tamper.magnetic': { gb: 0x8f75, severity: 'critical', text: 'Magnetic field detected' },
  'power.fail': { gb: 0x8f57, severity: 'warning', text: 'Supply interrupted (last gasp)' },
  'power.restored': { gb: 0x8f35, severity: 'info', text: 'Supply restored' },
  'power.restored_long': {
    gb: 0x8f36,
    severity: 'warning',
    text: 'Supply restored after an outage of 3 minutes or more',
  },
  'relay.disconnected': { gb: null, severity: 'warning', text: 'Supply disconnected' },
  'relay.armed': {
    gb: 0x8f32,
    severity: 'info',
    text: 'Supply armed: press the button on the meter to reconnect',
  },
  'relay.connected': { gb: null, severity: 'info', text: 'Supply connected' },
  'credit.low': { gb: 0x810d, severity: 'warning', text: 'Credit below the low-credit threshold' },
  'credit.emergency_activated': { gb: 0x81ab, severity: 'warning', text: 'Emergency credit activated' },
  'credit.emergency_exhausted': { gb: 0x81aa, severity: 'critical', text: 'Emergency credit exhausted' },
  'credit.exhausted': { gb: 0x8f0f, severity: 'critical', text: 'Credit below the disconnection threshold' },
  'credit.topup_applied': { gb: null, severity: 'info', text: 'Top-up applied' },
  'credit.topup_duplicate': { gb: 0x8f51, severity: 'warning', text: 'Duplicate top-up refused' },
  'tariff.applied': { gb: 0x8f66, severity: 'info', text: 'Tariff activated' },
  'firmware.verified': { gb: 0x8f72, severity: 'info', text: 'Firmware image verified' },
  'firmware.verify_failed': { gb: 0x8f1c, severity: 'warning', text: 'Firmware verification failed' },
  'firmware.boot_failed': { gb: 0x8f1b, severity: 'critical', text: 'Firmware failed at power-on, reverted' },
  'firmware.changed': { gb: 0x8f43, severity: 'info', text: 'Running firmware version changed' },
  'clock.invalid': {
    gb: null,
    severity: 'warning',
    text: 'Meter clock invalid or adjusted by more than the tolerance',
  },
  'command.rejected': { gb: 0x8f63, severity: 'warning', text: 'Command not authentic or replayed' },
  'load.limit_exceeded': { gb: 0x8f01, severity: 'warning', text: 'Active power above load limit' },
} as const satisfies Record<
  string,
  { gb: number | null; severity: 'info' | 'warning' | 'critical'; text: string }
>;

export type EventCode = keyof typeof EVENT_CATALOGUE;
export const EVENT_CODES = Object.keys(EVENT_CATALOGUE) as [EventCode, ...EventCode[]];
