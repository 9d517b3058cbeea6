import smpp, { type PDU, type Session } from 'smpp';
import type { Logger } from '../log.ts';
import { DeliveryError, type OutgoingMessage, type Sender } from './types.ts';

/** data_coding: GSM 03.38 default alphabet (SMSC default) and UCS-2. */
export const DC_GSM7 = 0x00;
export const DC_UCS2 = 0x08;
const ESM_UDHI = 0x40;

export interface SmsEncoding {
  dataCoding: number;
  esmClass: number;
  /** short_message of each submit_sm: [UDH +] payload. */
  parts: Buffer[];
}

/**
 * Encode a text for SMPP: GSM-7 (one octet per septet, unpacked, as SMPP carries it) when
 * every character is in the GSM default alphabet or its extension table, else UCS-2. Longer
 * than one SMS (160 septets / 70 UCS-2 units): parts of 153 / 67 with a concatenation UDH
 * (IEI 0x00, 8-bit reference), never splitting an escape sequence or a surrogate pair.
 */
export function encodeSms(text: string, ref: number): SmsEncoding {
  const gsm = smpp.encodings.ASCII.match(text);
  const payload = gsm ? smpp.encodings.ASCII.encode(text) : smpp.encodings.UCS2.encode(text);
  const dataCoding = gsm ? DC_GSM7 : DC_UCS2;
  const single = gsm ? 160 : 140;
  if (payload.length <= single) return { dataCoding, esmClass: 0, parts: [payload] };
  const per = gsm ? 153 : 134;
  const chunks: Buffer[] = [];
  let at = 0;
  while (at < payload.length) {
    let end = Math.min(at + per, payload.length);
    if (end < payload.length) {
      if (gsm && payload[end - 1] === 0x1b) end -= 1;
      if (!gsm) {
        const hi = payload.readUInt16BE(end - 2);
        if (hi >= 0xd800 && hi <= 0xdbff) end -= 2;
      }
    }
    chunks.push(payload.subarray(at, end));
    at = end;
  }
  if (chunks.length > 255) throw new DeliveryError('text too long for one concatenated SMS', true);
  const parts = chunks.map((c, i) =>
    Buffer.concat([Buffer.from([0x05, 0x00, 0x03, ref & 0xff, chunks.length, i + 1]), c]),
  );
  return { dataCoding, esmClass: ESM_UDHI, parts };
}

/** SMPP statuses worth retrying: the SMSC is busy or failing, not refusing the message. */
const TRANSIENT = new Set([
  0x08 /* SYSERR */, 0x14 /* MSGQFUL */, 0x58 /* THROTTLED */, 0x45 /* SUBMITFAIL */,
  0x64 /* RX_T_APPN: temporary app error */,
]);

function statusName(status: number): string {
  const name = Object.entries(smpp.errors).find(([, v]) => v === status)?.[0];
  return name ?? `0x${status.toString(16)}`;
}

/**
 * SMS over SMPP 3.4: one bound transceiver session, opened on first use and reopened after
 * any error. `url`: smpp://system_id:password@host:port.
 */
export class SmppSender implements Sender {
  private session: Promise<Session> | undefined;
  private readonly host: string;
  private readonly port: number;
  private readonly systemId: string;
  private readonly password: string;

  constructor(
    url: string,
    private readonly from: string,
    private readonly log: Logger,
    private readonly timeoutMs = 15_000,
  ) {
    const u = new URL(url);
    this.host = u.hostname;
    this.port = u.port ? Number(u.port) : 2775;
    this.systemId = decodeURIComponent(u.username);
    this.password = decodeURIComponent(u.password);
  }

  private open(): Promise<Session> {
    this.session ??= new Promise<Session>((resolve, reject) => {
      const s = smpp.connect({ host: this.host, port: this.port, auto_enquire_link_period: 30_000 });
      const fail = (err: Error) => {
        this.session = undefined;
        s.destroy();
        reject(new DeliveryError(`smpp: ${err.message}`, false));
      };
      const timer = setTimeout(() => fail(new Error('bind timed out')), this.timeoutMs);
      s.on('error', (err: Error) => {
        this.log.warn({ err: err.message }, 'smpp session error');
        clearTimeout(timer);
        fail(err);
      });
      s.on('close', () => {
        this.session = undefined;
      });
      // Answer what an SMSC may send us on a transceiver session.
      s.on('enquire_link', (pdu: PDU) => s.send(pdu.response()));
      s.on('deliver_sm', (pdu: PDU) => s.send(pdu.response()));
      s.on('unbind', (pdu: PDU) => {
        s.send(pdu.response());
        this.session = undefined;
        s.close();
      });
      s.on('connect', () => {
        s.bind_transceiver({ system_id: this.systemId, password: this.password }, (pdu) => {
          clearTimeout(timer);
          if (pdu.command_status === 0) resolve(s);
          else fail(new Error(`bind refused: ${statusName(pdu.command_status)}`));
        });
      });
    });
    return this.session;
  }

  private submit(s: Session, fields: Record<string, unknown>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.session = undefined;
        s.destroy();
        reject(new DeliveryError('smpp: submit_sm timed out', false));
      }, this.timeoutMs);
      const ok = s.submit_sm(fields, (pdu) => {
        clearTimeout(timer);
        if (pdu.command_status === 0) resolve();
        else
          reject(
            new DeliveryError(
              `smpp: submit_sm refused: ${statusName(pdu.command_status)}`,
              !TRANSIENT.has(pdu.command_status),
            ),
          );
      });
      if (!ok) {
        clearTimeout(timer);
        this.session = undefined;
        reject(new DeliveryError('smpp: session not writable', false));
      }
    });
  }

  async send(msg: OutgoingMessage): Promise<void> {
    if (!/^\+[1-9]\d{6,14}$/.test(msg.recipient)) throw new DeliveryError('invalid mobile number', true);
    const enc = encodeSms(msg.body, msg.deliveryId);
    const s = await this.open();
    const alpha = !/^\+?\d+$/.test(this.from);
    for (const part of enc.parts) {
      await this.submit(s, {
        source_addr_ton: alpha ? 5 : 1,
        source_addr_npi: alpha ? 0 : 1,
        source_addr: alpha ? this.from.slice(0, 11) : this.from.replace(/^\+/, ''),
        dest_addr_ton: 1,
        dest_addr_npi: 1,
        destination_addr: msg.recipient.slice(1),
        esm_class: enc.esmClass,
        data_coding: enc.dataCoding,
        short_message: part,
      });
    }
  }

  async close(): Promise<void> {
    const p = this.session;
    this.session = undefined;
    if (!p) return;
    const s = await p.catch(() => undefined);
    if (!s) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        s.destroy();
        resolve();
      }, 2000);
      s.unbind({}, () => {
        clearTimeout(t);
        s.close(() => resolve());
      });
    });
  }
}
