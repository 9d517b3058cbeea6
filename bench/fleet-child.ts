/**
 * Part (e)'s, (n)'s and (o)'s simulated meters: one Fleet in its own process (so its sockets
 * and heap are its own). argv[2] is a JSON file with the FleetOptions that matter; prints one
 * JSON stats line a second ({connected, published, acked, backlog, errors, rssMb, simMinS,
 * commandsOk, produced}); SIGTERM stops the fleet. SIGUSR2 holds production (meters stay
 * connected and drain) and writes what each meter produced (cursor, interval, import register,
 * outbox) to argv[2] + '.meters.json', for the parts that check every reading was stored.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Fleet, type MeterDescriptor } from '@kilowire/meter';

interface FleetJob {
  brokerUrl: string;
  serverPublicKey: string;
  meters: MeterDescriptor[];
  speed: number;
  backfillDays: number;
  connectsPerSecond: number;
  tickMs?: number;
  reconnect?: { baseMs?: number; capMs?: number; stableMs?: number };
}

const job = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as FleetJob;
const fleet = new Fleet({
  brokerUrl: job.brokerUrl,
  serverPublicKey: job.serverPublicKey,
  meters: job.meters,
  speed: job.speed,
  backfillDays: job.backfillDays,
  connectsPerSecond: job.connectsPerSecond,
  tickMs: job.tickMs,
  reconnect: job.reconnect,
  summaryEveryMs: 3_600_000,
});
fleet.start();
// Where each meter began (its cursor before the first tick): `produced` counts intervals since.
const began = job.meters.map((m) => fleet.meter(m.id)!);
const startCursor = began.map((m) => m.cursor);
const timer = setInterval(() => {
  const s = fleet.stats();
  const line = {
    connected: s.connected,
    published: s.published,
    acked: s.acked,
    backlog: s.backlog,
    errors: s.errors,
    rssMb: Math.round(process.memoryUsage().rss / 1048576),
    simMinS: s.simMinS,
    commandsOk: s.commandsOk,
    produced: began.reduce((n, m, i) => n + (m.cursor - startCursor[i]!) / m.intervalS, 0),
  };
  process.stdout.write(`STATS ${JSON.stringify(line)}\n`);
}, 1000);

process.on('SIGUSR2', () => {
  // Production stops first, so the states written below stay what the meters produced.
  fleet.holdProduction();
  const meters = job.meters.map((d) => {
    const m = fleet.meter(d.id)!;
    const c = fleet.client(d.id)!.counters;
    return {
      id: d.id,
      cursor: m.cursor,
      intervalS: m.intervalS,
      importWh: m.registers['1.0.1.8.0'],
      outbox: m.outbox.length,
      resendRequests: c.resendRequests,
    };
  });
  writeFileSync(`${process.argv[2]!}.meters.json`, JSON.stringify(meters));
  process.stdout.write('METERS written\n');
});

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  clearInterval(timer);
  setTimeout(() => process.exit(0), 15_000).unref();
  void fleet.stop().finally(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
