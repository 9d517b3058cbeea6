import { SMTPServer } from 'smtp-server';
import smpp, { type PDU, type Server as SmppServer } from 'smpp';
import type { AddressInfo } from 'node:net';

/** What the test SMTP server accepted. */
export interface ReceivedMail {
  from: string;
  to: string[];
  raw: string;
  user: string | undefined;
}

/** Quoted-printable soft breaks and escapes undone (enough for assertions on text bodies). */
export function decodeQp(s: string): string {
  return Buffer.from(
    s
      .replace(/=\r?\n/g, '')
      .replace(/=([0-9A-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))),
    'latin1',
  ).toString('utf8');
}

/**
 * A real SMTP server in the test process. Recipients starting "bounce" are refused with
 * 550; recipients starting "flaky" get 451 for their first `flakyFailures` messages;
 * "down" always gets 451.
 */
export async function startSmtp(opts: { flakyFailures?: number } = {}) {
  const received: ReceivedMail[] = [];
  const attempts = new Map<string, number>();
  const server = new SMTPServer({
    disabledCommands: ['STARTTLS'],
    authOptional: true,
    allowInsecureAuth: true,
    logger: false,
    onAuth(auth, _session, cb) {
      cb(null, { user: auth.username });
    },
    onRcptTo(address, _session, cb) {
      if (address.address.startsWith('bounce')) {
        const err = Object.assign(new Error('5.1.1 no such mailbox'), { responseCode: 550 });
        cb(err);
        return;
      }
      cb();
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const to = session.envelope.rcptTo.map((r) => r.address);
        const key = to.join(',');
        const n = (attempts.get(key) ?? 0) + 1;
        attempts.set(key, n);
        if ((key.startsWith('flaky') && n <= (opts.flakyFailures ?? 2)) || key.startsWith('down')) {
          cb(Object.assign(new Error('4.3.0 try again later'), { responseCode: 451 }));
          return;
        }
        const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
        received.push({
          from,
          to,
          raw: Buffer.concat(chunks).toString('utf8'),
          user: session.user as string | undefined,
        });
        cb();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.server.address() as AddressInfo).port;
  return {
    url: `smtp://alerts:s3cret@127.0.0.1:${port}`,
    received,
    attempts,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export interface ReceivedSms {
  systemId: string;
  destination: string;
  source: string;
  dataCoding: number;
  esmClass: number;
  udh: Buffer[];
  text: string;
}

/** A real SMPP server (SMSC) in the test process, built on the smpp package. */
export async function startSmsc() {
  const submits: ReceivedSms[] = [];
  const binds: { systemId: string; password: string }[] = [];
  let next = 1;
  const server: SmppServer = smpp.createServer({}, (session) => {
    let systemId = '';
    session.on('error', () => undefined);
    session.on('bind_transceiver', (pdu: PDU) => {
      systemId = String(pdu.system_id);
      binds.push({ systemId, password: String(pdu.password) });
      session.send(pdu.response());
    });
    session.on('submit_sm', (pdu: PDU) => {
      const sm = pdu.short_message as { udh?: Buffer[]; message: string };
      submits.push({
        systemId,
        destination: String(pdu.destination_addr),
        source: String(pdu.source_addr),
        dataCoding: Number(pdu.data_coding),
        esmClass: Number(pdu.esm_class),
        udh: sm.udh ?? [],
        text: sm.message,
      });
      session.send(pdu.response({ message_id: String(next++) }));
    });
    session.on('enquire_link', (pdu: PDU) => session.send(pdu.response()));
    session.on('unbind', (pdu: PDU) => {
      session.send(pdu.response());
      session.close();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `smpp://kwtest:pw123@127.0.0.1:${port}`,
    submits,
    binds,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of [...server.sessions]) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Reassemble concatenated SMS parts (UDH IEI 0x00: ref, total, seq) per reference. */
export function reassemble(parts: ReceivedSms[]): string {
  const sorted = [...parts].sort((a, b) => (a.udh[0]?.[4] ?? 0) - (b.udh[0]?.[4] ?? 0));
  return sorted.map((p) => p.text).join('');
}
