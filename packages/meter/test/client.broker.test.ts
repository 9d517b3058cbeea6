import { randomBytes, randomUUID } from 'node:crypto';
import { connectAsync } from 'mqtt';
import { describe, expect, it } from 'vitest';
import { decodeUp, encodeDown, topics, type UpKind } from '@kilowire/protocol';
import { MeterClient } from '../src/client.ts';
import { HH, T0, connectHeadend, makeMeter, signed, until } from './helpers.ts';

const url = process.env.MQTT_URL;

describe('MeterClient over MQTT', () => {
  it.skipIf(!url)(
    'talks to a real broker: status, readings, acks, commands, junk, reconnect (skipped unless MQTT_URL is set)',
    async () => {
      const brokerUrl = url!;
      const id = `T${randomBytes(6).toString('hex')}`;
      const head = await connectHeadend(brokerUrl, id);
      const got: { kind: UpKind; payload: Buffer }[] = [];
      head.on('message', (topic, payload) => got.push({ kind: topic.split('/')[3] as UpKind, payload }));
      await head.subscribeAsync(`meters/${id}/up/#`, { qos: 1 });
      const of = <K extends UpKind>(kind: K) =>
        got.filter((g) => g.kind === kind).map((g) => decodeUp(kind, g.payload));
      const ack = (stream: 'readings' | 'events', upTo: number) =>
        head.publishAsync(topics.down(id, 'acks'), encodeDown('acks', { v: 1, kind: 'ack', stream, upTo }), {
          qos: 1,
        });

      const meter = makeMeter({ id });
      const client = new MeterClient({
        meter,
        brokerUrl,
        password: process.env.MQTT_METER_PASSWORD ?? 'test',
        autoTick: false,
        reconnectPeriodMs: 200,
      });
      try {
        client.start();
        await until('status on connect', () => of('status').length === 1);
        expect(of('status')[0]).toMatchObject({ relay: 'connected', outbox: 0 });

        for (let i = 1; i <= 3; i++) client.tick(T0 + i * HH);
        await until('three readings', () => of('readings').length === 3);
        expect(of('readings').map((r) => r.seq)).toEqual([1, 2, 3]);
        await ack('readings', 2);
        await until('ack applied', () => meter.outbox.length === 1);
        expect(client.counters.acked).toBe(2);

        // Junk on every down topic is counted and ignored.
        await head.publishAsync(topics.down(id, 'acks'), 'garbage', { qos: 1 });
        await head.publishAsync(topics.down(id, 'commands'), '{"v":1}', { qos: 1 });
        await head.publishAsync(topics.down(id, 'fw'), Buffer.from([0xff]), { qos: 1 });
        await until(
          'junk counted',
          () => client.counters.malformed >= 1 && client.counters.commandsRejected >= 1,
        );

        const cmdId = randomUUID();
        await head.publishAsync(
          topics.down(id, 'commands'),
          signed({ type: 'supply.off' }, 1, { meter: id, id: cmdId }),
          {
            qos: 1,
          },
        );
        await until('reply', () => of('replies').some((r) => r.id === cmdId));
        expect(of('replies').find((r) => r.id === cmdId)).toMatchObject({ result: 'ok', counter: 1 });
        await until('status after command', () => of('status').some((s) => s.relay === 'disconnected'));

        // Offline for a while: the meter keeps metering; on reconnect the whole outbox goes again.
        client.dropConnection();
        client.tick(T0 + 4 * HH);
        client.tick(T0 + 5 * HH);
        expect(meter.outbox.filter((e) => e.stream === 'readings').map((e) => e.seq)).toEqual([3, 4, 5]);
        client.start();
        await until('backlog after reconnect', () => of('readings').some((r) => r.seq === 5));
        expect(new Set(of('readings').map((r) => r.seq))).toEqual(new Set([1, 2, 3, 4, 5]));
        await ack('readings', 5);
        await ack('events', 99);
        await until('outbox drained', () => meter.outbox.length === 0);
      } finally {
        await client.stop();
        // Drop the persistent session this test created on the broker.
        const purge = await connectAsync(brokerUrl, {
          protocolVersion: 4,
          clientId: id,
          clean: true,
          username: id,
          password: process.env.MQTT_METER_PASSWORD ?? 'test',
        });
        await purge.endAsync();
        await head.endAsync();
      }
    },
    20_000,
  );
});
