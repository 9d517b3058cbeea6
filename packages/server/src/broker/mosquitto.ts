import { pbkdf2Sync, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BROKER_RULES } from '@kilowire/protocol';
import { MAX_PACKET_BYTES } from './packet-cap.ts';

/**
 * Mosquitto configuration that gives the same isolation as the embedded broker:
 * per-meter passwords and a pattern ACL (`%u` = the logged-in username), so a meter may
 * write only `meters/{self}/up/#` and read only `meters/{self}/down/#`. The head-end user
 * reads every meter's up topics and writes every down topic.
 */

/** A password-file line in Mosquitto 2's own format: PBKDF2-SHA512, 101 iterations, `$7$`. */
export function mosquittoPasswordLine(username: string, password: string, iterations = 101): string {
  const salt = randomBytes(12);
  const hash = pbkdf2Sync(password, salt, iterations, 64, 'sha512');
  return `${username}:$7$${iterations}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

export function mosquittoAcl(headendUsernames: string[]): string {
  return [
    '# Kilowire: meters are confined to their own subtree; %u is the MQTT username.',
    '# Generated from BROKER_RULES (packages/protocol/src/topics.ts), the rules the embedded broker enforces.',
    ...headendUsernames.flatMap((u) => [
      `user ${u}`,
      `topic read ${BROKER_RULES.headendReads}`,
      ...BROKER_RULES.headendWrites.map((t) => `topic write ${t}`),
    ]),
    '',
    ...BROKER_RULES.meterWrites('%u').map((t) => `pattern write ${t}`),
    `pattern read ${BROKER_RULES.meterReads('%u')}`,
    '',
  ].join('\n');
}

export interface MosquittoFiles {
  conf: string;
  passwd: string;
  acl: string;
}

/** Write mosquitto.conf, passwd and acl into `dir`; returns their paths. */
export function writeMosquittoConfig(
  dir: string,
  opts: {
    port: number;
    bind?: string;
    /** One login per head-end process: Mosquitto uses the username as client id. */
    headends: { username: string; password: string }[];
    meters: { id: string; password: string }[];
    persistence?: string;
    /** OS user Mosquitto drops to when started as root; it must be able to read these files. */
    user?: string;
  },
): MosquittoFiles {
  mkdirSync(dir, { recursive: true });
  const files = {
    conf: path.join(dir, 'mosquitto.conf'),
    passwd: path.join(dir, 'passwd'),
    acl: path.join(dir, 'acl'),
  };
  const lines = opts.headends.map((h) => mosquittoPasswordLine(h.username, h.password));
  for (const m of opts.meters) lines.push(mosquittoPasswordLine(m.id, m.password));
  writeFileSync(files.passwd, lines.join('\n') + '\n', { mode: 0o600 });
  writeFileSync(files.acl, mosquittoAcl(opts.headends.map((h) => h.username)));
  writeFileSync(
    files.conf,
    [
      `listener ${opts.port} ${opts.bind ?? '127.0.0.1'}`,
      'allow_anonymous false',
      `password_file ${files.passwd}`,
      `acl_file ${files.acl}`,
      // Each meter must use its username as client id: no one can take over another meter's session.
      'use_username_as_clientid true',
      'max_queued_messages 10000',
      // The protocol's largest message is 96 KiB: anything larger is refused before it is
      // buffered, also from clients that have not logged in yet (Mosquitto checks the header).
      `max_packet_size ${MAX_PACKET_BYTES}`,
      // Retained data on a meter's topics would be replayed to every new subscriber as if new.
      'retain_available false',
      ...(opts.user ? [`user ${opts.user}`] : []),
      opts.persistence ? `persistence true\npersistence_location ${opts.persistence}/` : 'persistence false',
      '',
    ].join('\n'),
  );
  return files;
}
