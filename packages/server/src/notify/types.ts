/** One message to one person on one channel. */
export interface OutgoingMessage {
  channel: 'email' | 'sms';
  recipient: string;
  /** Email only. */
  subject: string | null;
  body: string;
  /** Stable per delivery (email Message-ID, SMS concatenation reference), so a resend can be recognised. */
  deliveryId: number;
}

export interface Sender {
  send(msg: OutgoingMessage): Promise<void>;
  close(): Promise<void>;
}

/**
 * A failed send. `permanent`: retrying cannot help (address rejected with 5xx, invalid
 * destination); the delivery is marked failed at once.
 */
export class DeliveryError extends Error {
  constructor(
    message: string,
    readonly permanent: boolean,
  ) {
    super(message);
    this.name = 'DeliveryError';
  }
}
