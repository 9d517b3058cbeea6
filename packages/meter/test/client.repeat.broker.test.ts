import { randomBytes, randomUUID } from 'node:crypto';
import { connectAsync } from 'mqtt';
import { describe, expect, it } from 'vitest';
import { decodeUp, topics } from '@kilowire/protocol';
import { MeterClient } from '../src/client.ts';
import { connectHeadend, makeMeter, signed, until } from './helpers.ts';

const url = process.env.MQTT_URL;

describe('MeterClient and a resent command', () => {
  it.skipIf(!url)(
    'answers it from memory and counts it apart from new commands (skipped unless MQTT_URL is set)',
    async () => {
      const brokerUrl = url!;
      const id = `T${randomBytes(6).toString('hex')}`;
      const head = await connectHeadend(brokerUrl, id);
      const replies: unknown[] = [];
      head.on('message', (_topic, payload) => replies.push(decodeUp('replies', payload)));
      await head.subscribeAsync(topics.up(id, 'replies'), { qos: 1 });
      const meter = makeMeter({ id });
      const client = new MeterClient({
        meter,
        brokerUrl,
        password: process.env.MQTT_METER_PASSWORD ?? 'test',
        autoTick: false,
      });
      try {
        client.start();
        await until('connected', () => client.connected);
        const cmdId = randomUUID();
        const env = signed({ type: 'supply.off' }, 1, { meter: id, id: cmdId });
        await head.publishAsync(topics.down(id, 'commands'), env, { qos: 1 });
        await until('first reply', () => replies.length === 1);
        await head.publishAsync(topics.down(id, 'commands'), env, { qos: 1 });
        await until('second reply', () => replies.length === 2);
        expect(replies[1]).toEqual(replies[0]);
        expect(replies[0]).toMatchObject({ id: cmdId, counter: 1, result: 'ok' });
        expect(client.counters).toMatchObject({ commandsOk: 1, commandsRepeated: 1, commandsRejected: 0 });
      } finally {
        await client.stop();
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
