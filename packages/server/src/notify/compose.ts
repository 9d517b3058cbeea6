import type { OutgoingMessage } from './types.ts';

export interface DeliveryView {
  id: number;
  channel: 'email' | 'sms';
  recipient: string;
  audience: 'consumer' | 'staff';
  type: string;
  title: string;
  message: string;
  /** null for an operator's alert about no single meter. */
  serial: string | null;
  consumer_name: string | null;
  /** Set for alerts addressed to a network operator (#9): the control room's wording. */
  operator_name?: string | null;
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
  if (d.operator_name) {
    const body = [
      d.message,
      '',
      ...(d.serial ? [`Meter: ${d.serial}`, ''] : []),
      `You receive this as ${d.operator_name} control-room staff or its on-call contact.`,
    ];
    return {
      channel: 'email',
      recipient: d.recipient,
      subject: `[${d.operator_name}] ${d.title}`,
      body: body.join('\n'),
      deliveryId: d.id,
    };
  }
  const lines =
    d.audience === 'staff'
      ? [
          d.message,
          '',
          `Meter: ${d.serial ?? 'none'}`,
          `Account holder: ${d.consumer_name ?? 'none'}`,
          '',
          'You receive this as supplier staff for tamper and disconnection alerts.',
        ]
      : [d.message, '', 'You can change which alerts reach you, and how, in your Kilowire portal profile.'];
  const subject = d.audience === 'staff' ? `[${d.serial ?? 'Kilowire'}] ${d.title}` : `Kilowire: ${d.title}`;
  return { channel: 'email', recipient: d.recipient, subject, body: lines.join('\n'), deliveryId: d.id };
}
