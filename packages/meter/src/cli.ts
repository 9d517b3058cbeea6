import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { METER_ID_RE, meterMode } from '@kilowire/protocol';
import { Fleet, formatStats, type MeterDescriptor } from './fleet.ts';
import { hashString } from './load.ts';

const HELP = `Kilowire meter fleet simulator

Usage:
  node --import tsx packages/meter/src/cli.ts --fleet FILE [options]
  node --import tsx packages/meter/src/cli.ts --count N --prefix SIM --password PW --server-public-key KEY [options]

Meters:
  --fleet FILE                 JSON {brokerUrl?, serverPublicKey, meters:[{id,password,tz,mode,feederId,...}]}
  --count N --prefix P         generate ids P000001..; all share --password (load tests)
  --password PW                shared broker password for generated meters
  --server-public-key KEY      head-end command key, base64 raw Ed25519 (env KILOWIRE_SERVER_PUBLIC_KEY)
  --firmware-public-key KEY    firmware key image manifests must be signed with, base64 raw Ed25519
                               (env KILOWIRE_FIRMWARE_PUBLIC_KEY, or the fleet file's firmwarePublicKey);
                               without it the meters refuse every firmware offer
  --tz ZONE                    time zone of generated meters (default Europe/London)
  --prepay-share F             fraction of generated meters in prepayment mode (default 0.3)
  --feeders N                  spread generated meters over N feeders P-F1..P-FN (default: none)

Running:
  --broker URL                 MQTT broker (default: fleet file brokerUrl, env MQTT_URL, mqtt://127.0.0.1:1883)
  --speed N                    simulated seconds per real second until caught up with now (default 1)
  --backfill-days N            new meters start N days ago (default 0)
  --state-dir DIR              durable state, one JSON file per meter (default: in memory)
  --batch N                    intervals per readings message (default 1)
  --connects-per-second N      connection admission rate (default 200)
  --reconnect-base-ms N        a lost connection is retried after a random wait in [0, min(cap, base*2^n))
                               at the n-th attempt: exponential backoff with full jitter (default 1000)
  --reconnect-cap-ms N         the backoff's ceiling (default 60000)
  --reconnect-stable-ms N      the attempt count starts again once a connection held this long (default 30000)
  --duration-s N               stop after N real seconds (default: run until Ctrl-C)

Faults (simulated hours/minutes run at --speed while catching up, then at real time):
  --tamper-every-hours N       tamper a random meter (cover, terminal or magnetic) every N simulated hours
  --feeder-outage-every-hours N
                               all meters of a random feeder lose mains at once every N simulated hours
  --feeder-outage-minutes M    how long a feeder outage lasts, simulated minutes (default 5)
  --last-gasp-share F          share of a feeder's meters whose last gasp gets out (0-1, default 0.6);
                               the others just go silent and report the failure once back
  --stragglers N               meters that stay off longer than the rest of the feeder
                               (a count, or a share of the feeder when below 1; default 0)
  --straggler-extra-minutes M  how much longer stragglers stay off, simulated minutes (default: the outage's length)
  --household-outage-every-hours N
                               one random household loses mains (last gasp) every N simulated hours
  --household-outage-minutes M how long a household outage lasts, simulated minutes (default 20)
  --power-loss-every-hours N   power loss of a random meter for 1-30 simulated minutes every N simulated hours
  --drop-every-minutes N       network drop of a random meter every N real minutes
  --restart-every-minutes N    restart a random meter from its store every N real minutes
  --faults-when-caught-up      scheduled faults start once the fleet has caught up with real time,
                               not in the backfilled history
  --first-faults-after-s N     once caught up, N real seconds later: one tamper, and 30 s after it one
                               feeder outage (with --feeder-outage-every-hours) — a demo that shows both at once
  --fw-power-loss-share F      share of meters (0-1) that lose power once per firmware image at a random point
                               of its transfer or activation, and boot again from their durable state
  --slow-link-share F          share of meters (0-1) on a slow link: each firmware block arrives late
  --slow-link-block-delay-ms N added delay per firmware block on a slow link (default 500)

  -h, --help                   this text
`;

const posNum = z.coerce.number().positive();
const cliSchema = z
  .object({
    fleet: z.string().min(1).optional(),
    count: z.coerce.number().int().min(1).max(100_000).optional(),
    prefix: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,20}$/, 'prefix: 1-20 of A-Z a-z 0-9 _ -')
      .default('SIM'),
    password: z.string().min(1).optional(),
    'server-public-key': z.string().optional(),
    'firmware-public-key': z.string().optional(),
    tz: z.string().default('Europe/London'),
    'prepay-share': z.coerce.number().min(0).max(1).default(0.3),
    broker: z
      .string()
      .regex(/^(mqtts?|wss?|tcp):\/\//, 'broker must be an mqtt://, mqtts://, ws:// or wss:// URL')
      .optional(),
    speed: z.coerce.number().min(1).max(100_000).default(1),
    'backfill-days': z.coerce.number().min(0).max(400).default(0),
    'state-dir': z.string().min(1).optional(),
    batch: z.coerce.number().int().min(1).max(200).default(1),
    'connects-per-second': z.coerce.number().int().min(1).max(10_000).default(200),
    'reconnect-base-ms': z.coerce.number().int().min(1).max(600_000).optional(),
    'reconnect-cap-ms': z.coerce.number().int().min(1).max(3_600_000).optional(),
    'reconnect-stable-ms': z.coerce.number().int().min(0).max(3_600_000).optional(),
    'duration-s': posNum.optional(),
    'tamper-every-hours': posNum.optional(),
    'power-loss-every-hours': posNum.optional(),
    'drop-every-minutes': posNum.optional(),
    'restart-every-minutes': posNum.optional(),
    feeders: z.coerce.number().int().min(1).max(10_000).optional(),
    'feeder-outage-every-hours': posNum.optional(),
    'feeder-outage-minutes': posNum.max(7 * 24 * 60).optional(),
    'last-gasp-share': z.coerce.number().min(0).max(1).optional(),
    stragglers: z.coerce.number().min(0).max(100_000).optional(),
    'straggler-extra-minutes': posNum.max(7 * 24 * 60).optional(),
    'household-outage-every-hours': posNum.optional(),
    'household-outage-minutes': posNum.max(7 * 24 * 60).optional(),
    'faults-when-caught-up': z.boolean().optional(),
    'first-faults-after-s': z.coerce.number().min(0).max(86_400).optional(),
    'fw-power-loss-share': z.coerce.number().min(0).max(1).optional(),
    'slow-link-share': z.coerce.number().min(0).max(1).optional(),
    'slow-link-block-delay-ms': z.coerce.number().int().min(1).max(600_000).optional(),
  })
  .refine((o) => (o.fleet === undefined) !== (o.count === undefined), {
    message: 'give exactly one of --fleet FILE or --count N',
  })
  .refine((o) => o.count === undefined || o.password !== undefined, {
    message: '--count needs --password (the shared meter credential)',
  })
  .refine((o) => o.feeders === undefined || o.count !== undefined, {
    message: '--feeders spreads generated meters (--count); a fleet file gives each meter its feederId',
  })
  .refine(
    (o) =>
      o['feeder-outage-every-hours'] !== undefined ||
      (o['feeder-outage-minutes'] ?? o['last-gasp-share'] ?? o.stragglers ?? o['straggler-extra-minutes']) ===
        undefined,
    {
      message:
        '--feeder-outage-minutes, --last-gasp-share, --stragglers and --straggler-extra-minutes shape feeder outages: give --feeder-outage-every-hours too',
    },
  )
  .refine(
    (o) => o['household-outage-every-hours'] !== undefined || o['household-outage-minutes'] === undefined,
    { message: '--household-outage-minutes needs --household-outage-every-hours' },
  );

const fleetFileSchema = z.object({
  brokerUrl: z.string().optional(),
  serverPublicKey: z.string(),
  firmwarePublicKey: z.string().optional(),
  meters: z
    .array(
      z.object({
        id: z.string().regex(METER_ID_RE, 'meter id: 1-32 of A-Z a-z 0-9 _ -'),
        password: z.string().min(1),
        tz: z.string().optional(),
        mode: meterMode.optional(),
        intervalS: z.union([z.literal(900), z.literal(1800)]).optional(),
        hardwareClass: z.string().max(32).optional(),
        initialCreditMinor: z.int().min(0).max(1_000_000).optional(),
        seed: z.int().optional(),
        feederId: z.string().min(1).max(64).optional(),
        firmwareVersion: z.string().min(1).max(32).optional(),
        firmwareSequence: z.int().min(0).optional(),
        profile: z
          .object({
            baseLoadW: z.number().min(0).max(20_000).optional(),
            sizeFactor: z.number().min(0).max(20).optional(),
            hasSolar: z.boolean().optional(),
            solarPeakW: z.number().min(0).max(50_000).optional(),
          })
          .optional(),
      }),
    )
    .min(1),
});

const keySchema = z
  .string()
  .refine(
    (k) => Buffer.from(k, 'base64').length === 32,
    'server public key must be base64 of 32 raw Ed25519 bytes',
  );
const firmwareKeySchema = z
  .string()
  .refine(
    (k) => Buffer.from(k, 'base64').length === 32,
    'firmware public key must be base64 of 32 raw Ed25519 bytes',
  );

function fail(message: string): never {
  process.stderr.write(`error: ${message}\n\nRun with --help for usage.\n`);
  process.exit(2);
}

function issues(err: z.ZodError): string {
  return err.issues
    .map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message))
    .join('\n  ');
}

function validZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-GB', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

function main(): void {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      options: {
        help: { type: 'boolean', short: 'h' },
        ...Object.fromEntries(
          Object.keys(cliSchema.shape).map((k) => [
            k,
            { type: k === 'faults-when-caught-up' ? ('boolean' as const) : ('string' as const) },
          ]),
        ),
      },
      strict: true,
    }));
  } catch (err) {
    fail((err as Error).message);
  }
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  const parsed = cliSchema.safeParse(values);
  if (!parsed.success) fail(issues(parsed.error));
  const o = parsed.data;

  let meters: MeterDescriptor[];
  let serverPublicKey = o['server-public-key'] ?? process.env.KILOWIRE_SERVER_PUBLIC_KEY;
  let firmwarePublicKey = o['firmware-public-key'] ?? process.env.KILOWIRE_FIRMWARE_PUBLIC_KEY;
  let brokerUrl = o.broker;
  if (o.fleet !== undefined) {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(o.fleet, 'utf8'));
    } catch (err) {
      fail(`cannot read fleet file ${o.fleet}: ${(err as Error).message}`);
    }
    const f = fleetFileSchema.safeParse(raw);
    if (!f.success) fail(`fleet file ${o.fleet}:\n  ${issues(f.error)}`);
    meters = f.data.meters;
    serverPublicKey ??= f.data.serverPublicKey;
    firmwarePublicKey ??= f.data.firmwarePublicKey;
    brokerUrl ??= f.data.brokerUrl;
    const ids = new Set<string>();
    for (const m of meters) {
      if (ids.has(m.id)) fail(`fleet file: meter id ${m.id} appears twice`);
      ids.add(m.id);
      if (m.tz && !validZone(m.tz)) fail(`fleet file: meter ${m.id}: unknown time zone ${m.tz}`);
    }
  } else {
    const count = o.count ?? 0;
    const width = Math.max(6, String(count).length);
    if (o.prefix.length + width > 32) fail('prefix too long for the meter count');
    meters = Array.from({ length: count }, (_, i) => {
      const id = `${o.prefix}${String(i + 1).padStart(width, '0')}`;
      return {
        id,
        password: o.password ?? '',
        tz: o.tz,
        mode: (hashString(id) % 1000) / 1000 < o['prepay-share'] ? 'prepayment' : 'credit',
        feederId: o.feeders === undefined ? undefined : `${o.prefix}-F${1 + (i % o.feeders)}`,
      };
    });
  }
  if (!validZone(o.tz)) fail(`unknown time zone ${o.tz}`);
  const key = keySchema.safeParse(serverPublicKey ?? '');
  if (!key.success)
    fail(serverPublicKey ? issues(key.error) : '--server-public-key (or a fleet file) is required');
  const fwKey = firmwarePublicKey === undefined ? undefined : firmwareKeySchema.safeParse(firmwarePublicKey);
  if (fwKey && !fwKey.success) fail(issues(fwKey.error));
  brokerUrl ??= process.env.MQTT_URL ?? 'mqtt://127.0.0.1:1883';
  if (o['feeder-outage-every-hours'] !== undefined && !meters.some((m) => m.feederId !== undefined))
    fail(
      '--feeder-outage-every-hours: no meter has a feeder (give --feeders N, or feederId in the fleet file)',
    );

  const log = (line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);
  const fleet = new Fleet({
    brokerUrl,
    serverPublicKey: key.data,
    firmwarePublicKey: fwKey?.data,
    meters,
    stateDir: o['state-dir'],
    speed: o.speed,
    backfillDays: o['backfill-days'],
    batchIntervals: o.batch,
    connectsPerSecond: o['connects-per-second'],
    reconnect: {
      ...(o['reconnect-base-ms'] !== undefined && { baseMs: o['reconnect-base-ms'] }),
      ...(o['reconnect-cap-ms'] !== undefined && { capMs: o['reconnect-cap-ms'] }),
      ...(o['reconnect-stable-ms'] !== undefined && { stableMs: o['reconnect-stable-ms'] }),
    },
    faults: {
      tamperEverySimHours: o['tamper-every-hours'],
      powerLossEverySimHours: o['power-loss-every-hours'],
      dropEveryMinutes: o['drop-every-minutes'],
      restartEveryMinutes: o['restart-every-minutes'],
      feederOutageEverySimHours: o['feeder-outage-every-hours'],
      feederOutageSimMinutes: o['feeder-outage-minutes'],
      lastGaspShare: o['last-gasp-share'],
      stragglers: o.stragglers,
      stragglerExtraSimMinutes: o['straggler-extra-minutes'],
      householdOutageEverySimHours: o['household-outage-every-hours'],
      householdOutageSimMinutes: o['household-outage-minutes'],
      onlyWhenCaughtUp: o['faults-when-caught-up'],
      firstFaultsAfterS: o['first-faults-after-s'],
      fwPowerLossShare: o['fw-power-loss-share'],
      slowLinkShare: o['slow-link-share'],
      slowLinkBlockDelayMs: o['slow-link-block-delay-ms'],
    },
    log,
  });
  log(
    `starting ${meters.length} meters against ${brokerUrl} at speed ${o.speed}x, backfill ${o['backfill-days']} days, ` +
      `state ${o['state-dir'] ?? 'in memory'}`,
  );
  fleet.start();

  let stopping = false;
  const stop = async (why: string) => {
    if (stopping) return;
    stopping = true;
    log(`stopping (${why})`);
    await fleet.stop();
    log(formatStats(fleet.stats()));
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  if (o['duration-s'] !== undefined) setTimeout(() => void stop('duration reached'), o['duration-s'] * 1000);
}

try {
  main();
} catch (err) {
  process.stderr.write(`fatal: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
}
