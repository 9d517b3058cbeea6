import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { writeMosquittoConfig } from '../broker/mosquitto.ts';

/**
 * `npm run mosquitto-config -- --fleet data/fleet.json --out DIR [--port 1883] [--headend-password-file F]`
 * writes mosquitto.conf, passwd and acl for the meters of a provisioning (fleet) file.
 */
const args = z.object({
  fleet: z.string().min(1),
  out: z.string().min(1),
  port: z.coerce.number().int().min(1).max(65535).default(1883),
  bind: z.string().default('127.0.0.1'),
  'headend-user': z.string().regex(/^[A-Za-z0-9_-]+$/).default('headend'),
  'headend-password': z.string().min(12),
  user: z.string().optional(),
});
const fleetFile = z.object({ meters: z.array(z.object({ id: z.string(), password: z.string() })) });

const { values } = parseArgs({
  options: {
    fleet: { type: 'string' },
    out: { type: 'string' },
    port: { type: 'string' },
    bind: { type: 'string' },
    'headend-user': { type: 'string' },
    'headend-password': { type: 'string' },
    user: { type: 'string' },
  },
});
const parsed = args.safeParse({ ...values, 'headend-password': values['headend-password'] ?? process.env.MQTT_PASSWORD });
if (!parsed.success) {
  process.stderr.write(
    `mosquitto-config: ${parsed.error.issues.map((i) => `--${i.path.join('.')}: ${i.message}`).join('; ')}\n` +
      'usage: --fleet FILE --out DIR [--port N] [--bind ADDR] [--headend-user U] --headend-password P (or MQTT_PASSWORD)\n',
  );
  process.exit(2);
}
const a = parsed.data;
const fleet = fleetFile.parse(JSON.parse(readFileSync(a.fleet, 'utf8')));
const files = writeMosquittoConfig(path.resolve(a.out), {
  port: a.port,
  bind: a.bind,
  headends: [{ username: a['headend-user'], password: a['headend-password'] }],
  meters: fleet.meters,
  user: a.user,
});
process.stdout.write(`wrote ${files.conf}, ${files.passwd} (${fleet.meters.length} meters), ${files.acl}\n`);
