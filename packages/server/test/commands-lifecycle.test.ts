import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet, MemoryStore, Meter, MeterClient } from '@kilowire/meter';
import { generateSigningKeyPair, privateKeyFromB64, type ReplyMessage } from '@kilowire/protocol';
import {
  applyReplies,
  approveCommand,
  cancelCommand,
  claimDueCommands,
  commandHistory,
  expireCommands,
  requestCommand,
  DEFAULT_TIMING,
} from '../src/commands/lifecycle.ts';
import { tx, type Pool } from '../src/db/pool.ts';
import { createStaffUser, type CreatedHousehold } from '../src/accounts/repo.ts';
import { AppError } from '../src/errors.ts';
import { createTestDb, type TestDb } from './support/db.ts';
import { HEADEND, HEADEND_2, startMosquitto, startTestBroker, type TestBroker } from './support/brokers.ts';
import { KilowireProcess } from './support/process.ts';
import { seedMeters, sleep, waitFor } from './support/world.ts';

/**
 * One command lifecycle: requested -> (awaiting approval) -> queued -> sent -> ok | rejected
 * | failed | expired | cancelled, every transition stored; sending claimed so that any number
 * of gateways never send one command at once; a result never flips; an expired command never
 * runs when its meter comes back.
 */
const keys = generateSigningKeyPair();
const key = privateKeyFromB64(keys.privateKey);
let db: TestDb;
let hh: CreatedHousehold[];

beforeAll(async () => {
  db = await createTestDb();
  hh = await seedMeters(db.pool, 3);
});
afterAll(async () => {
  await db?.drop();
});

const meterOf = (h: CreatedHousehold) => ({ id: h.meterId, serial: h.meterSerial });
const status = async (pool: Pool, id: string) =>
  (
    await pool.query<{ status: string; result_code: string | null }>(
      'SELECT status, result_code FROM commands WHERE id = $1',
      [id],
    )
  ).rows[0]!;

describe('the lifecycle in the database', () => {
  it('queues a request at once with a counter, a signed body with an expiry, and its transitions', async () => {
    const h = hh[0]!;
    const r = await tx(db.pool, (c) =>
      requestCommand(
        c,
        key,
        meterOf(h),
        { type: 'supply.off' },
        { actorId: null, reason: 'test', timing: { ttlS: 3600 }, nowS: 1_800_000_000 },
      ),
    );
    expect(r.status).toBe('queued');
    expect(r.counter).toBeGreaterThan(0);
    const row = (
      await db.pool.query<{ body: { expiresAt: number; issuedAt: number }; reason: string }>(
        'SELECT body, reason FROM commands WHERE id = $1',
        [r.id],
      )
    ).rows[0]!;
    expect(row.body.expiresAt - row.body.issuedAt).toBe(3600);
    expect(row.reason).toBe('test');
    expect((await commandHistory(db.pool, r.id)).map((t) => [t.from_status, t.to_status])).toEqual([
      [null, 'requested'],
      ['requested', 'queued'],
    ]);
  });

  it('approval: not by the requester; approval signs with a counter above commands queued meanwhile', async () => {
    const h = hh[1]!;
    const { rows } = await db.pool.query<{ supplier_id: number }>(
      'SELECT supplier_id FROM meters WHERE id = $1',
      [h.meterId],
    );
    const alice = await createStaffUser(db.pool, {
      role: 'supplier',
      email: `alice-${h.meterId}@sup.test`,
      password: 'x'.repeat(12),
      orgId: rows[0]!.supplier_id,
      name: 'Alice',
    });
    const bob = await createStaffUser(db.pool, {
      role: 'supplier',
      email: `bob-${h.meterId}@sup.test`,
      password: 'x'.repeat(12),
      orgId: rows[0]!.supplier_id,
      name: 'Bob',
    });
    const held = await tx(db.pool, (c) =>
      requestCommand(c, key, meterOf(h), { type: 'supply.off' }, { actorId: alice, requireApproval: true }),
    );
    expect(held).toMatchObject({ status: 'awaiting_approval', counter: null });
    const meanwhile = await tx(db.pool, (c) =>
      requestCommand(c, key, meterOf(h), { type: 'supply.arm' }, { actorId: bob }),
    );
    await expect(tx(db.pool, (c) => approveCommand(c, key, held.id, alice))).rejects.toMatchObject({
      code: 'FORBIDDEN',
    });
    const approved = await tx(db.pool, (c) => approveCommand(c, key, held.id, bob));
    expect(approved.status).toBe('queued');
    expect(approved.counter!).toBeGreaterThan(meanwhile.counter!);
    await expect(tx(db.pool, (c) => approveCommand(c, key, held.id, bob))).rejects.toBeInstanceOf(AppError);
    const hist = await commandHistory(db.pool, held.id);
    expect(hist.map((t) => [t.to_status, t.actor_id])).toEqual([
      ['requested', alice],
      ['awaiting_approval', alice],
      ['queued', bob],
    ]);
  });

  it('cancel: only before a command is sent', async () => {
    const h = hh[2]!;
    const a = await tx(db.pool, (c) =>
      requestCommand(c, key, meterOf(h), { type: 'supply.on' }, { actorId: null }),
    );
    await tx(db.pool, (c) => cancelCommand(c, a.id, null, 'changed my mind'));
    expect((await status(db.pool, a.id)).status).toBe('cancelled');
    const b = await tx(db.pool, (c) =>
      requestCommand(c, key, meterOf(h), { type: 'supply.on' }, { actorId: null }),
    );
    const claimed = await tx(db.pool, (c) => claimDueCommands(c, DEFAULT_TIMING));
    expect(claimed.map((d) => d.id)).toContain(b.id);
    await expect(tx(db.pool, (c) => cancelCommand(c, b.id, null, null))).rejects.toMatchObject({
      code: 'CONFLICT',
    });
  });

  it('claims: concurrent senders never get the same command; a resend waits for the backoff and for the meter to be seen', async () => {
    const [h] = await seedMeters(db.pool, 1);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push(
        (
          await tx(db.pool, (c) =>
            requestCommand(c, key, meterOf(h!), { type: 'supply.on' }, { actorId: null }),
          )
        ).id,
      );
    }
    // Ten senders at once: exactly one of them gets the meter's oldest command.
    const got = await Promise.all(
      Array.from({ length: 10 }, () =>
        tx(db.pool, (c) => claimDueCommands(c, { ...DEFAULT_TIMING, retryS: 1 })),
      ),
    );
    const mine = got.flat().filter((d) => ids.includes(d.id));
    expect(mine.map((d) => d.id)).toEqual([ids[0]]);
    // Past the backoff, but the meter has not been seen since: no second copy into its session.
    await sleep(1100);
    const again = (await tx(db.pool, (c) => claimDueCommands(c, { ...DEFAULT_TIMING, retryS: 1 }))).filter(
      (d) => ids.includes(d.id),
    );
    expect(again).toEqual([]);
    // The meter shows up (a status message): now it is resent.
    await db.pool.query('UPDATE meters SET last_seen_at = now() WHERE id = $1', [h!.meterId]);
    const resent = (await tx(db.pool, (c) => claimDueCommands(c, { ...DEFAULT_TIMING, retryS: 1 }))).filter(
      (d) => ids.includes(d.id),
    );
    expect(resent.map((d) => [d.id, d.attempts])).toEqual([[ids[0], 2]]);
  });

  it('replies: the first answer counts; a duplicate cannot turn ok into rejected; a late ok beats the head-end expiry', async () => {
    const [h] = await seedMeters(db.pool, 1);
    const a = await tx(db.pool, (c) =>
      requestCommand(c, key, meterOf(h!), { type: 'supply.off' }, { actorId: null }),
    );
    await tx(db.pool, (c) => claimDueCommands(c, DEFAULT_TIMING));
    const reply = (result: ReplyMessage['result'], code?: string): ReplyMessage => ({
      v: 1,
      id: a.id,
      counter: a.counter!,
      t: Math.floor(Date.now() / 1000),
      result,
      ...(code ? { code } : {}),
    });
    await tx(db.pool, (c) =>
      applyReplies(c, [
        { meterId: h!.meterId, reply: reply('ok') },
        { meterId: h!.meterId, reply: reply('rejected', 'STALE_COUNTER') },
      ]),
    );
    expect(await status(db.pool, a.id)).toEqual({ status: 'ok', result_code: null });
    // Another meter cannot answer for this one.
    const b = await tx(db.pool, (c) =>
      requestCommand(c, key, meterOf(h!), { type: 'supply.on' }, { actorId: null }),
    );
    await tx(db.pool, (c) =>
      applyReplies(c, [{ meterId: hh[0]!.meterId, reply: { ...reply('ok'), id: b.id } }]),
    );
    expect((await status(db.pool, b.id)).status).toBe('queued');
    // Given up on by the head-end (expired), then the meter's ok arrives: the meter is right.
    await db.pool.query("UPDATE commands SET expires_at = now() - interval '1 hour' WHERE id = $1", [b.id]);
    expect(await tx(db.pool, (c) => expireCommands(c))).toBeGreaterThanOrEqual(1);
    expect((await status(db.pool, b.id)).status).toBe('expired');
    await tx(db.pool, (c) =>
      applyReplies(c, [{ meterId: h!.meterId, reply: { ...reply('ok'), id: b.id, counter: b.counter! } }]),
    );
    expect((await status(db.pool, b.id)).status).toBe('ok');
    const ev = await db.pool.query<{ type: string; payload: { commandId: string; result: string } }>(
      "SELECT type, payload FROM domain_events WHERE type = 'command.replied' AND meter_id = $1 ORDER BY id",
      [h!.meterId],
    );
    expect(ev.rows.map((r) => [r.payload.commandId, r.payload.result])).toEqual([
      [a.id, 'ok'],
      [b.id, 'ok'],
    ]);
  });
});

let hasMosquitto = true;
try {
  execFileSync('mosquitto', ['-h'], { stdio: 'ignore' });
} catch (err) {
  // `mosquitto -h` exits 3 after printing its help; only a missing binary is a reason to skip.
  hasMosquitto = (err as { code?: string }).code !== 'ENOENT';
}

describe.skipIf(!hasMosquitto)(
  'two gateway processes sharing the meter topics (Mosquitto shared subscription)',
  () => {
    let broker: TestBroker;
    let fleet: Fleet;
    const gateways: KilowireProcess[] = [];
    let meters: CreatedHousehold[];

    afterAll(async () => {
      await fleet?.stop();
      for (const g of gateways) await g.stop();
      await broker?.close();
    });

    it('1,000 commands over 100 meters: each applied exactly once, each ok', async () => {
      meters = await seedMeters(db.pool, 100);
      broker = await startMosquitto(meters.map((h) => ({ id: h.meterSerial, password: h.meterCredential })));
      for (const [i, login] of [HEADEND, HEADEND_2].entries()) {
        const g = new KilowireProcess('gateway', {
          DATABASE_URL: db.url,
          MQTT_URL: broker.url,
          MQTT_USERNAME: login.username,
          MQTT_PASSWORD: login.password,
          MQTT_SHARE_GROUP: 'kw',
          GATEWAY_CLIENT_ID: login.username === 'headend' ? 'kw-gw-1' : 'kw-gw-2',
          COMMAND_SIGNING_KEY: keys.privateKey,
          COMMAND_RETRY_S: '2',
        });
        g.start();
        gateways.push(g);
        void i;
      }
      for (const g of gateways) await g.waitFor('gateway connected to broker');
      fleet = new Fleet({
        brokerUrl: broker.url,
        serverPublicKey: keys.publicKey,
        meters: meters.map((h, i) => ({ id: h.meterSerial, password: h.meterCredential, seed: i + 1 })),
        speed: 1,
        backfillDays: 0,
        tickMs: 200,
        connectsPerSecond: 200,
        autoPressButton: false,
      });
      fleet.start();
      await waitFor(() => fleet.stats().connected === 100, 30_000, 'fleet connected');
      // Ten commands per meter, alternating off and on: queued all at once.
      const ids: string[] = [];
      for (const h of meters) {
        await tx(db.pool, async (c) => {
          for (let k = 0; k < 10; k++) {
            const cmd = k % 2 === 0 ? ({ type: 'supply.off' } as const) : ({ type: 'supply.on' } as const);
            ids.push((await requestCommand(c, key, meterOf(h), cmd, { actorId: null })).id);
          }
        });
      }
      const counts = async () =>
        (
          await db.pool.query<{ status: string; n: number }>(
            'SELECT status, count(*)::int AS n FROM commands WHERE id = ANY($1::uuid[]) GROUP BY status',
            [ids],
          )
        ).rows;
      await waitFor(
        async () => (await counts()).find((r) => r.status === 'ok')?.n === 1000,
        150_000,
        'all 1,000 ok',
      ).catch(async (e: unknown) => {
        throw new Error(`${String(e)}: ${JSON.stringify(await counts())}`);
      });
      // Applied exactly once each: the meters applied 1,000 commands in all (a copy that arrived
      // twice was answered from the reply memory, never applied again), and each meter's relay
      // ended where its last command put it.
      expect(fleet.stats().commandsOk).toBe(1000);
      for (const h of meters) expect(fleet.meter(h.meterSerial)!.relay.state).toBe('connected');
      const last = await db.pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM command_transitions WHERE command_id = ANY($1::uuid[]) AND to_status = 'ok'`,
        [ids],
      );
      expect(last.rows[0]!.n).toBe(1000);
      // Both gateways took part (the shared subscription split the replies between them).
      for (const g of gateways) expect(g.alive).toBe(true);
    }, 200_000);
  },
);

describe('expiry', () => {
  let broker: TestBroker;
  let client: MeterClient | undefined;
  afterAll(async () => {
    await client?.stop();
    await broker?.close();
  });

  it('a command that expired while its meter was offline is not applied when it comes back', async () => {
    const [h] = await seedMeters(db.pool, 1);
    broker = await startTestBroker(db.pool, [{ id: h!.meterSerial, password: h!.meterCredential }]);
    const store = new MemoryStore();
    const makeClient = () => {
      const meter = new Meter({
        id: h!.meterSerial,
        tz: 'Europe/London',
        serverPublicKey: keys.publicKey,
        store,
      });
      const c = new MeterClient({
        meter,
        brokerUrl: broker.url,
        password: h!.meterCredential,
        reconnectPeriodMs: 200,
      });
      c.start();
      return c;
    };
    // The meter has been online once (a persistent session), then goes away.
    client = makeClient();
    await waitFor(() => client!.connected, 10_000, 'meter online');
    await client.stop();
    client = undefined;
    const gw = new KilowireProcess('gateway', {
      DATABASE_URL: db.url,
      MQTT_URL: broker.url,
      MQTT_USERNAME: HEADEND.username,
      MQTT_PASSWORD: HEADEND.password,
      GATEWAY_CLIENT_ID: `kw-expiry-${process.pid}`,
      COMMAND_SIGNING_KEY: keys.privateKey,
    });
    gw.start();
    try {
      await gw.waitFor('gateway connected to broker');
      const cmd = await tx(db.pool, (c) =>
        requestCommand(c, key, meterOf(h!), { type: 'supply.off' }, { actorId: null, timing: { ttlS: 2 } }),
      );
      // Sent into the offline meter's session (the broker keeps it), then expired by the clock.
      await waitFor(async () => (await status(db.pool, cmd.id)).status === 'sent', 10_000, 'sent');
      await sleep(3_000);
      client = makeClient();
      await waitFor(
        () => client!.counters.commandsRejected >= 1,
        15_000,
        'stale command refused by the meter',
      ).catch(async (e: unknown) => {
        const row = await db.pool.query(
          'SELECT status, attempts, sent_at, expires_at, now() AS now FROM commands WHERE id = $1',
          [cmd.id],
        );
        throw new Error(
          `${String(e)} ${JSON.stringify(client!.counters)} ${JSON.stringify(row.rows)} relay=${client!.meter.relay.state}`,
        );
      });
      expect(client.meter.relay.state).toBe('connected');
      await waitFor(
        async () => (await status(db.pool, cmd.id)).result_code === 'EXPIRED',
        10_000,
        'EXPIRED recorded',
      );
      expect((await status(db.pool, cmd.id)).status).toBe('rejected');
    } finally {
      await gw.stop();
    }
  }, 60_000);
});
