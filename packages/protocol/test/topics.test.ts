import { describe, expect, it } from 'vitest';
import { DOWN_KINDS, METER_ID_RE, UP_KINDS, parseTopic, topics } from '../src/index.ts';

describe('topics', () => {
  it('parses exactly what it builds, for every kind in each direction', () => {
    for (const kind of UP_KINDS) {
      expect(parseTopic(topics.up('KW0001', kind))).toEqual({ dir: 'up', meterId: 'KW0001', kind });
    }
    for (const kind of DOWN_KINDS) {
      expect(parseTopic(topics.down('KW0001', kind))).toEqual({ dir: 'down', meterId: 'KW0001', kind });
    }
    expect(topics.up('KW0001', 'readings')).toBe('meters/KW0001/up/readings');
    expect(topics.down('KW0001', 'commands')).toBe('meters/KW0001/down/commands');
  });

  it('accepts every id the documented pattern allows', () => {
    for (const id of ['a', 'KW_0001-b', 'Z'.repeat(32), '0']) {
      expect(parseTopic(`meters/${id}/up/status`)).toEqual({ dir: 'up', meterId: id, kind: 'status' });
    }
  });

  it.each([
    ['a wildcard meter', 'meters/+/up/readings'],
    ['a multi-level wildcard', 'meters/KW0001/up/#'],
    ['a wildcard kind', 'meters/KW0001/down/+'],
    ['a shared subscription', '$share/g/meters/KW0001/up/readings'],
    ['an extra level', 'meters/KW0001/up/readings/extra'],
    ['a trailing slash', 'meters/KW0001/up/readings/'],
    ['a leading slash', '/meters/KW0001/up/readings'],
    ['a missing level', 'meters/KW0001/readings'],
    ['the subscription pattern', 'meters/KW0001/down/#'],
    ['an empty id', 'meters//up/readings'],
    ['an id too long', `meters/${'Z'.repeat(33)}/up/readings`],
    ['a dot in the id', 'meters/KW.0001/up/readings'],
    ['a space in the id', 'meters/KW 0001/up/readings'],
    ['a non-ASCII id', 'meters/KWé/up/readings'],
    ['an up kind sent down', 'meters/KW0001/down/readings'],
    ['a down kind sent up', 'meters/KW0001/up/commands'],
    ['an unknown kind', 'meters/KW0001/up/telemetry'],
    ['another root', 'meter/KW0001/up/readings'],
    ['capitals in the root', 'Meters/KW0001/up/readings'],
    ['capitals in the direction', 'meters/KW0001/UP/readings'],
    ['an empty topic', ''],
  ])('refuses %s: %s', (_, topic) => {
    expect(parseTopic(topic)).toBeNull();
  });

  it('keeps MQTT wildcards and separators out of meter ids', () => {
    for (const bad of ['+', '#', 'a/b', '', 'Z'.repeat(33)]) expect(METER_ID_RE.test(bad)).toBe(false);
  });

  it("gives the head-end's and a meter's subscriptions", () => {
    expect(topics.allUp()).toBe('meters/+/up/#');
    expect(topics.allUp('ingest')).toBe('$share/ingest/meters/+/up/#');
    expect(topics.meterDown('KW0001')).toBe('meters/KW0001/down/#');
  });
});
