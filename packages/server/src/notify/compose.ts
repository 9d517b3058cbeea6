import type { OutgoingMessage } from './types.ts';

export interface DeliveryView {
  id: number;
  channel: 'email' | 'sms';
  recipient: string;
  audience: 'consumer' | 'staff';
  type: string;
  title: string;
  message: string;
  serial: string;
  consumer_name: string | null;
}

/** The words of an email or SMS for one delivery of an alert. */
export function compose(d: DeliveryView): OutgoingMessage {
  if (d.channel === 'sms') {
    return {
      channel: 'sms',
      recipient: d.recipient,
      subject: null,
      body: `Kilowire: ${d.title}. ${d.message}`,
      deliveryId: d.id,
    };
  }
  const lines =
    d.audience === 'staff'
      ? [
          d.message,
          '',
          `Meter: ${d.serial}`,
          `Account holder: ${d.consumer_name ?? 'none'}`,
          '',
          'You receive this as supplier staff for tamper and disconnection alerts.',
        ]
      : [d.message, '', 'You can change which alerts reach you, and how, in your Kilowire portal profile.'];
  const subject = d.audience === 'staff' ? `[${d.serial}] ${d.title}` : `Kilowire: ${d.title}`;
  return { channel: 'email', recipient: d.recipient, subject, body: lines.join('\n'), deliveryId: d.id };
}
