import path from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { headendPassword, headendUsers, readFleetFile } from './cli-input.ts';
import { writeMosquittoConfig } from '../broker/mosquitto.ts';

/**
 * `npm run mosquitto-config -- --fleet FILE --out DIR [options]` writes mosquitto.conf,
 * passwd and acl for the meters of a provisioning (fleet) file: per-meter passwords, the
 * same topic rules as the embedded broker, the packet cap, no retained messages.
 */
const USAGE = `usage: npm run mosquitto-config -- --fleet FILE --out DIR [options]

  --fleet FILE                   provisioning file: { "meters": [{ "id", "password" }, ...] }
  --out DIR                      where mosquitto.conf, passwd and acl are written
  --port N                       listener port (default 1883)
  --bind ADDR                    listener address (default 127.0.0.1)
  --headend-user U               head-end login; repeat it for several gateway processes
                                 (Mosquitto uses the username as client id) (default headend)
  --headend-password P           their password (or MQTT_PASSWORD in the environment)
  --headend-password-file F      read the password from a file instead (keeps it out of ps)
  --user NAME                    OS user Mosquitto drops to when started as root
  --help                         this text
`;

const args = z.object({
  fleet: z.string().min(1),
  out: z.string().min(1),
  port: z.coerce.number().int().min(1).max(65535).default(1883),
  bind: z.string().default('127.0.0.1'),
  'headend-user': headendUsers,
  'headend-password': z.string().min(12, 'at least 12 characters'),
  user: z.string().optional(),
});

function fail(message: string): never {
  process.stderr.write(`mosquitto-config: ${message}\n\n${USAGE}`);
  process.exit(2);
}

let values: Record<string, string | string[] | boolean | undefined>;
try {
  ({ values } = parseArgs({
    options: {
      fleet: { type: 'string' },
      out: { type: 'string' },
      port: { type: 'string' },
      bind: { type: 'string' },
      'headend-user': { type: 'string', multiple: true },
      'headend-password': { type: 'string' },
      'headend-password-file': { type: 'string' },
      user: { type: 'string' },
      help: { type: 'boolean' },
    },
  }));
} catch (err) {
  fail((err as Error).message);
}
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const password = headendPassword(values, fail);
const parsed = args.safeParse({ ...values, 'headend-password': password });
if (!parsed.success) fail(parsed.error.issues.map((i) => `--${i.path.join('.')}: ${i.message}`).join('; '));
const a = parsed.data;
const fleet = readFleetFile(a.fleet, fail);
const files = writeMosquittoConfig(path.resolve(a.out), {
  port: a.port,
  bind: a.bind,
  headends: a['headend-user'].map((username) => ({ username, password: a['headend-password'] })),
  meters: fleet.meters,
  user: a.user,
});
process.stdout.write(`wrote ${files.conf}, ${files.passwd} (${fleet.meters.length} meters), ${files.acl}\n`);
