import { randomUUID } from 'node:crypto';
import { connectAsync, type MqttClient } from 'mqtt';
import {
  encodeDown,
  generateSigningKeyPair,
  privateKeyFromB64,
  signCommand,
  type Command,
  type CommandBody,
  type EventsMessage,
  type ReadingsMessage,
} from '@kilowire/protocol';
import { Meter, type MeterOptions } from '../src/meter.ts';
import type { MeterState } from '../src/state.ts';
import { MemoryStore } from '../src/store.ts';

export const keys = generateSigningKeyPair();
export const serverKey = privateKeyFromB64(keys.privateKey);

/** 2026-01-05 00:00 UTC, a Monday; London is on GMT then, so local = UTC. */
export const T0 = Date.UTC(2026, 0, 5) / 1000;
export const HH = 1800;
export const DAY = 86_400;

export function makeMeter(over: Partial<MeterOptions> = {}): Meter {
  return new Meter({
    id: 'M1',
    tz: 'Europe/London',
    serverPublicKey: keys.publicKey,
    store: new MemoryStore(),
    seed: 42,
    startS: T0,
    ...over,
  });
}

export function signed(
  cmd: Command,
  counter: number,
  opts: {
    meter?: string;
    key?: ReturnType<typeof privateKeyFromB64>;
    id?: string;
    issuedAt?: number;
    expiresAt?: number;
  } = {},
): Buffer {
  const body: CommandBody = {
    v: 1,
    id: opts.id ?? randomUUID(),
    meter: opts.meter ?? 'M1',
    counter,
    issuedAt: opts.issuedAt ?? T0,
    cmd,
  };
  if (opts.expiresAt !== undefined) body.expiresAt = opts.expiresAt;
  return encodeDown('commands', signCommand(body, opts.key ?? serverKey));
}

export function readings(m: Meter): ReadingsMessage[] {
  return m.outbox.flatMap((e) => (e.stream === 'readings' ? [e.msg] : []));
}

export function events(m: Meter): EventsMessage['events'] {
  return m.outbox.flatMap((e) => (e.stream === 'events' ? e.msg.events : []));
}

export function eventCodes(m: Meter): string[] {
  return events(m).map((e) => e.code);
}

/** The state a command must not touch when it is refused (the outbox, where its reply or event goes, excluded). */
export function coreState(m: Meter): Omit<MeterState, 'outbox'> {
  const { outbox: _o, ...core } = m.snapshot();
  return core;
}

/** Poll `cond` every 20 ms until it holds, or fail after `ms`. */
export async function until(what: string, cond: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A head-end connection to the broker of MQTT_URL (with MQTT_USERNAME/MQTT_PASSWORD when set). */
export function connectHeadend(brokerUrl: string, id: string): Promise<MqttClient> {
  return connectAsync(brokerUrl, {
    protocolVersion: 4,
    clientId: `he-${id}`,
    username: process.env.MQTT_USERNAME,
    password: process.env.MQTT_PASSWORD,
  });
}
