import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOwnMosquitto } from './fault-broker.ts';
import { keys } from './helpers.ts';

const CLI = fileURLToPath(new URL('../src/cli.ts', import.meta.url));

/** Run the simulator CLI as `npm run simulate` does; resolves with its exit code and output. */
function cli(args: string[], timeoutMs = 20_000): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
      env: { ...process.env, KILOWIRE_SERVER_PUBLIC_KEY: keys.publicKey },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const t = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`cli did not exit:\n${out}`));
    }, timeoutMs);
    p.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, out });
    });
  });
}

const gen = ['--count', '6', '--password', 'pw'];

let broker: Awaited<ReturnType<typeof startOwnMosquitto>>;
beforeAll(async () => {
  broker = await startOwnMosquitto();
});
afterAll(async () => {
  await broker?.close();
});

describe('simulator CLI fault options', () => {
  it('documents every fault option in --help', async () => {
    const { code, out } = await cli(['--help']);
    expect(code).toBe(0);
    for (const opt of [
      '--feeder-outage-every-hours',
      '--feeder-outage-minutes',
      '--last-gasp-share',
      '--stragglers',
      '--straggler-extra-minutes',
      '--household-outage-every-hours',
      '--household-outage-minutes',
      '--tamper-every-hours',
      '--faults-when-caught-up',
      '--first-faults-after-s',
      '--feeders',
      '--firmware-public-key',
      '--fw-power-loss-share',
      '--slow-link-share',
      '--slow-link-block-delay-ms',
    ]) {
      expect(out).toContain(opt);
    }
  });

  it.each([
    [['--feeders', '2', '--feeder-outage-every-hours', '1', '--last-gasp-share', '1.5'], /last-gasp-share/],
    [['--feeders', '2', '--feeder-outage-every-hours', '0'], /feeder-outage-every-hours/],
    [['--feeders', '2', '--feeder-outage-every-hours', 'soon'], /feeder-outage-every-hours/],
    [['--feeders', '2', '--stragglers', '2'], /give --feeder-outage-every-hours too/],
    [['--feeders', '2', '--feeder-outage-every-hours', '1', '--stragglers', '-1'], /stragglers/],
    [['--household-outage-minutes', '5'], /--household-outage-minutes needs --household-outage-every-hours/],
    [['--household-outage-every-hours', '-2'], /household-outage-every-hours/],
    [['--feeder-outage-every-hours', '1'], /no meter has a feeder/],
    [['--feeders', '0'], /feeders/],
    [['--firmware-public-key', 'c2hvcnQ='], /firmware public key must be base64 of 32 raw Ed25519 bytes/],
    [['--fw-power-loss-share', '2'], /fw-power-loss-share/],
    [['--slow-link-share', '-0.1'], /slow-link-share/],
    [['--slow-link-block-delay-ms', '0'], /slow-link-block-delay-ms/],
  ])('refuses %j with a message and exit code 2', async (extra, message) => {
    const { code, out } = await cli([...gen, '--broker', 'mqtt://127.0.0.1:1', ...extra]);
    expect(out).toMatch(message);
    expect(out).toContain('Run with --help');
    expect(code).toBe(2);
  });

  it('runs feeder and household outages and tampers from its options against a real broker', async () => {
    const { code, out } = await cli([
      ...gen,
      '--prefix',
      'CLI',
      '--feeders',
      '2',
      '--broker',
      broker.url,
      // Half an hour of history at 1000x: about two real seconds of catching up with the faults in it.
      '--backfill-days',
      '0.02',
      '--speed',
      '1000',
      '--feeder-outage-every-hours',
      '0.2',
      '--feeder-outage-minutes',
      '2',
      '--last-gasp-share',
      '0.5',
      '--stragglers',
      '1',
      '--household-outage-every-hours',
      '0.2',
      '--tamper-every-hours',
      '0.2',
      '--duration-s',
      '4',
    ]);
    expect(code).toBe(0);
    expect(out).toMatch(/fault: feeder outage on CLI-F[12] for \d+ ms: 3 meters, 2 last gasps, 1 stragglers/);
    expect(out).toMatch(/fault: household outage on CLI\d{6}/);
    expect(out).toMatch(/fault: tamper\.(cover|terminal|magnetic) on CLI\d{6}/);
    expect(out).toMatch(/faults=t[1-9]\d*\/p0\/d0\/r0\/feeder[1-9]\d*\/household[1-9]\d*/);
  });
});
