import net from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import { Aedes, type AuthenticateError, type Client } from 'aedes';
import { BROKER_RULES, METER_ID_RE, filterWithin, parseTopic } from '@kilowire/protocol';
import { credentialHash } from '../accounts/repo.ts';
import type { Pool } from '../db/pool.ts';
import { Listener } from '../db/listener.ts';
import { CREDENTIALS_CHANNEL } from '../meters/provision.ts';
import { assertPortFree } from '../net.ts';
import { RateLimitedLog, type Logger } from '../log.ts';
import { PacketCap } from './packet-cap.ts';

/**
 * The embedded MQTT broker (aedes, MQTT 3.1.1) with the same isolation the documented
 * Mosquitto configuration gives: each meter logs in with its own credential, may publish
 * only to `meters/{self}/up/*`, subscribe only to `meters/{self}/down/*`, and must use its
 * id as client id (so it cannot take over another meter's persistent session).
 * The head-end logs in as one privileged user.
 */
export interface BrokerOptions {
  port: number;
  host?: string;
  pool: Pool;
  headendUsername: string;
  headendPassword: string;
  log: Logger;
  /**
   * The database to LISTEN on for credential changes (provisioned, rotated, decommissioned
   * meters): the cached hash is dropped and a connected meter whose credential changed is
   * disconnected at once. Without it a change takes effect within the cache's minute.
   */
  databaseUrl?: string;
}

export interface EmbeddedBroker {
  port: number;
  aedes: Aedes;
  /** Whether credential changes reach this broker at once (LISTEN connected). */
  listening(): boolean;
  close(): Promise<void>;
}

const HEADEND = Symbol('headend');
type Authed = Client & {
  [HEADEND]?: boolean;
  meterId?: string;
  /** Hash of the credential this connection signed in with: a change notice drops it only if that is no longer valid. */
  credHash?: string;
};

function authError(): AuthenticateError {
  const err = new Error('bad username or password') as AuthenticateError;
  err.returnCode = 4;
  return err;
}

function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

export async function startEmbeddedBroker(opts: BrokerOptions): Promise<EmbeddedBroker> {
  const { pool, log } = opts;
  await assertPortFree(opts.port, 'embedded MQTT broker', 'EMBEDDED_MQTT_PORT');
  // Credential hashes are cached briefly: 10k meters reconnecting must not mean 10k queries each time.
  const cache = new Map<string, { hash: string | null; at: number }>();
  async function meterHash(serial: string): Promise<string | null> {
    const hit = cache.get(serial);
    if (hit && Date.now() - hit.at < 60_000) return hit.hash;
    const { rows } = await pool.query<{ credential_hash: string }>(
      // A decommissioned meter keeps its row (and readings) but may not connect.
      "SELECT credential_hash FROM meters WHERE serial = $1 AND status = 'active'",
      [serial],
    );
    const hash = rows[0]?.credential_hash ?? null;
    cache.set(serial, { hash, at: Date.now() });
    return hash;
  }

  // Refusals are logged per kind at most every 10 s: a misbehaving client cannot flood the log.
  const refused = new RateLimitedLog(log, 10_000);
  const aedes = await Aedes.createBroker({
    authenticate(client: Authed, username, password, done) {
      const pw = password?.toString('utf8') ?? '';
      if (username === opts.headendUsername) {
        if (safeEqual(pw, opts.headendPassword) && client.id.startsWith('kw-')) {
          client[HEADEND] = true;
          done(null, true);
        } else done(authError(), false);
        return;
      }
      if (!username || !METER_ID_RE.test(username) || client.id !== username) {
        done(authError(), false);
        return;
      }
      meterHash(username).then(
        (hash) => {
          const presented = credentialHash(pw);
          if (hash && safeEqual(hash, presented)) {
            client.meterId = username;
            client.credHash = presented;
            done(null, true);
          } else done(authError(), false);
        },
        (err: unknown) => {
          log.error({ err }, 'credential lookup failed');
          const e = new Error('server unavailable') as AuthenticateError;
          e.returnCode = 3;
          done(e, false);
        },
      );
    },
    authorizePublish(client: Authed | null, packet, cb) {
      if (!client) return cb(); // broker-internal publishes
      const t = parseTopic(packet.topic);
      // Retained data on a meter's topics would be replayed to every new subscriber as if new.
      if (packet.retain && !client[HEADEND]) {
        refused.warn(
          'retain',
          { meter: client.meterId, topic: packet.topic.slice(0, 120) },
          'retained publish refused',
        );
        return cb(new Error('retained messages are not accepted'));
      }
      if (client[HEADEND]) return t?.dir === 'down' ? cb() : cb(new Error('headend publishes only down'));
      if (t?.dir === 'up' && t.meterId === client.meterId) return cb();
      refused.warn(
        'publish',
        { meter: client.meterId, topic: packet.topic.slice(0, 120) },
        'publish refused',
      );
      cb(new Error('not authorised'));
    },
    authorizeSubscribe(client: Authed, sub, cb) {
      if (client[HEADEND]) {
        // The embedded broker has no shared subscriptions: one gateway process per broker.
        return cb(null, filterWithin(sub.topic, BROKER_RULES.headendReads) ? sub : null);
      }
      const ok =
        client.meterId !== undefined && filterWithin(sub.topic, BROKER_RULES.meterReads(client.meterId));
      if (!ok)
        refused.warn(
          'subscribe',
          { meter: client.meterId, topic: sub.topic.slice(0, 120) },
          'subscribe refused',
        );
      cb(null, ok ? sub : null);
    },
  });
  // Provisioning, rotation and decommissioning notify the serial: forget its cached hash and
  // drop its live connection, so an old credential stops working now, not in a minute.
  const listener = opts.databaseUrl
    ? new Listener(
        opts.databaseUrl,
        [CREDENTIALS_CHANNEL],
        (_ch, serial) => {
          cache.delete(serial);
          // aedes keeps connected clients by id (untyped); a meter's client id is its serial.
          const clients = (aedes as unknown as { clients: Record<string, Authed | undefined> }).clients;
          const c = clients[serial];
          if (!c) return;
          // The notice may arrive after the meter signed in with what it announces (a meter
          // provisioned and connected at once): drop the connection only when the credential
          // it used is no longer the meter's (rotated) or the meter may no longer connect.
          meterHash(serial).then(
            (hash) => {
              if (clients[serial] === c && (!hash || !c.credHash || !safeEqual(hash, c.credHash))) c.close();
            },
            () => c.close(),
          );
        },
        log,
        // Whatever changed while not listening: start from the database again.
        () => cache.clear(),
      )
    : undefined;
  listener?.start();

  aedes.on('clientError', (client, err) =>
    log.debug({ client: client.id, err: err.message }, 'client error'),
  );

  const server = net.createServer((sock) => {
    aedes.handle(
      new PacketCap(sock, undefined, undefined, (bytes) =>
        refused.warn('size', { bytes, from: sock.remoteAddress }, 'oversized MQTT packet: connection closed'),
      ),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '127.0.0.1', () => resolve());
  });
  log.info({ port: opts.port }, 'embedded MQTT broker listening');
  return {
    port: opts.port,
    aedes,
    listening: () => listener?.connected ?? false,
    close: () =>
      new Promise<void>((resolve) => {
        void listener?.stop();
        aedes.close(() => server.close(() => resolve()));
        // Open client sockets keep server.close waiting; aedes.close ends them.
      }),
  };
}
