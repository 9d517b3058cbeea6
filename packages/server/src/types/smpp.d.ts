// Minimal types for the `smpp` package (no @types/smpp exists): the parts Kilowire uses.
declare module 'smpp' {
  import type { EventEmitter } from 'node:events';
  import type { Server as NetServer } from 'node:net';

  export interface PDU {
    command: string;
    command_id: number;
    command_status: number;
    sequence_number: number;
    [field: string]: unknown;
    isResponse(): boolean;
    response(options?: Record<string, unknown>): PDU;
  }

  export type PduCallback = (pdu: PDU) => void;

  export class Session extends EventEmitter {
    constructor(options: Record<string, unknown>);
    send(pdu: PDU, responseCallback?: PduCallback, sendCallback?: PduCallback): boolean;
    close(callback?: () => void): void;
    destroy(callback?: () => void): void;
    pause(): void;
    resume(): void;
    bind_transceiver(options: Record<string, unknown>, callback?: PduCallback): boolean;
    submit_sm(options: Record<string, unknown>, callback?: PduCallback): boolean;
    enquire_link(options?: Record<string, unknown>, callback?: PduCallback): boolean;
    unbind(options?: Record<string, unknown>, callback?: PduCallback): boolean;
    readonly socket: import('node:net').Socket;
  }

  export class Server extends NetServer {
    readonly sessions: Session[];
  }

  export interface ConnectOptions {
    url?: string;
    host?: string;
    port?: number;
    auto_enquire_link_period?: number;
    [option: string]: unknown;
  }

  export function connect(options: ConnectOptions | string, listener?: () => void): Session;
  export function createServer(
    options: Record<string, unknown>,
    listener?: (session: Session) => void,
  ): Server;
  export function createServer(listener?: (session: Session) => void): Server;

  export const encodings: {
    ASCII: { match(value: string): boolean; encode(value: string): Buffer; decode(value: Buffer): string };
    UCS2: { match(value: string): boolean; encode(value: string): Buffer; decode(value: Buffer): string };
  };

  export const errors: Record<string, number>;
  export const ESME_ROK: number;
  export const ESME_RSYSERR: number;
  export const ESME_RMSGQFUL: number;
  export const ESME_RTHROTTLED: number;

  const smpp: {
    connect: typeof connect;
    createServer: typeof createServer;
    encodings: typeof encodings;
    errors: typeof errors;
    Session: typeof Session;
  };
  export default smpp;
}
