import { SUPPLY_REASONS, type SupplyReason } from '@kilowire/contract/enums';

/**
 * What a household is told when its supply goes off or comes back: plain words, the actual
 * reason (never "after a tamper alert" when there was none), and what to do next.
 *
 * The meter reports only 'credit' (it cut the supply itself), 'tamper' or 'remote' with
 * its relay event; why the supplier asked is the reason of the supply.off command that the
 * event follows, which the alert rule looks up.
 */
export interface DisconnectContext {
  serial: string;
  supplier: string;
  /** "at 14:05 on 26 Nov" */
  when: string;
  /** The relay event's own reason: credit, tamper, remote (or none). */
  meterReason: string | null;
  /** The supplier's reason from the command that opened the relay, if any. */
  commandReason: string | null;
}

const isReason = (r: string | null): r is SupplyReason =>
  r !== null && (SUPPLY_REASONS as readonly string[]).includes(r);

export function disconnectedText(x: DisconnectContext): { title: string; message: string } {
  const { serial, supplier, when } = x;
  if (x.meterReason === 'credit') {
    return {
      title: 'Supply off: no credit left',
      message: `The supply at meter ${serial} was disconnected because the credit ran out (${when}). Top up to get it back: when the meter is ready, press the button on the meter to switch the power back on.`,
    };
  }
  const reason = isReason(x.commandReason) ? x.commandReason : 'other';
  const call = `Call ${supplier}`;
  switch (reason) {
    case 'non_payment':
      return {
        title: 'Supply disconnected: unpaid balance',
        message: `${supplier} disconnected the supply at meter ${serial} ${when} because of an unpaid balance on your account. ${call} to agree a way to pay. Once they allow reconnection you will get a message asking you to press the button on the meter.`,
      };
    case 'tamper':
      return {
        title: 'Supply disconnected: meter interference suspected',
        message: `${supplier} disconnected the supply at meter ${serial} ${when} because they believe the meter may have been interfered with. ${call} to arrange a check of the meter; the supply can come back once it has been checked.`,
      };
    case 'safety':
      return {
        title: 'Supply disconnected for safety',
        message: `${supplier} disconnected the supply at meter ${serial} ${when} for safety reasons. Do not try to reconnect it yourself. ${call} to find out what happens next.`,
      };
    case 'household_request':
      return {
        title: 'Supply disconnected at your request',
        message: `${supplier} disconnected the supply at meter ${serial} ${when}, as you asked. ${call} when you want it back on.`,
      };
    case 'other':
      return {
        title: 'Supply disconnected',
        message: `${supplier} disconnected the supply at meter ${serial} ${when}. ${call} to find out why and how to get it back on.`,
      };
  }
}

export function restoredText(x: { serial: string; when: string }): { title: string; message: string } {
  return {
    title: 'Supply back on',
    message: `The supply at meter ${x.serial} is back on (${x.when}). If something that was on before does not work, check its switch and your fuse box.`,
  };
}
