import nodemailer, { type Transporter } from 'nodemailer';
import { DeliveryError, type OutgoingMessage, type Sender } from './types.ts';

const EMAIL = /^[^\s@<>(),;:"[\]]+@[^\s@<>(),;:"[\]]+\.[^\s@<>(),;:"[\]]+$/;

/** Email over SMTP (nodemailer). `url`: smtp://user:pass@host:port or smtps://... */
export class SmtpSender implements Sender {
  private readonly transport: Transporter;

  constructor(
    url: string,
    private readonly from: string,
  ) {
    const u = new URL(url);
    this.transport = nodemailer.createTransport({
      host: u.hostname,
      port: u.port ? Number(u.port) : u.protocol === 'smtps:' ? 465 : 587,
      secure: u.protocol === 'smtps:',
      ...(u.username
        ? { auth: { user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) } }
        : {}),
      connectionTimeout: 10_000,
      greetingTimeout: 10_000,
      socketTimeout: 30_000,
    });
  }

  async send(msg: OutgoingMessage): Promise<void> {
    if (!EMAIL.test(msg.recipient)) throw new DeliveryError(`invalid email address`, true);
    try {
      await this.transport.sendMail({
        from: this.from,
        to: msg.recipient,
        subject: msg.subject ?? '',
        text: msg.body,
        // Stable per delivery: a resend after a lost acknowledgement is recognisable.
        messageId: `<delivery-${msg.deliveryId}@kilowire>`,
      });
    } catch (err) {
      const e = err as { responseCode?: number; code?: string; response?: string; message?: string };
      const detail = (e.response ?? e.message ?? String(err)).slice(0, 500);
      // 5xx: the server refused for good (unknown mailbox, policy); 4xx and network errors: retry.
      const permanent =
        (e.responseCode !== undefined && e.responseCode >= 500) ||
        (e.code === 'EENVELOPE' && !e.responseCode);
      throw new DeliveryError(`smtp: ${e.responseCode ?? e.code ?? 'error'} ${detail}`, permanent);
    }
  }

  close(): Promise<void> {
    this.transport.close();
    return Promise.resolve();
  }
}
