/**
 * Topic layout: everything a meter may touch lives under `meters/{id}/`, so a broker ACL
 * of two patterns (write `meters/%u/up/#`, read `meters/%u/down/#`) confines each meter.
 */
export const UP_KINDS = ['readings', 'events', 'status', 'replies', 'fw'] as const;
export const DOWN_KINDS = ['acks', 'commands', 'fw'] as const;
export type UpKind = (typeof UP_KINDS)[number];
export type DownKind = (typeof DOWN_KINDS)[number];

/** Meter ids are short ASCII tokens: they appear in topics and must not contain MQTT wildcards. */
export const METER_ID_RE = /^[A-Za-z0-9_-]{1,32}$/;

export const topics = {
  up: (meterId: string, kind: UpKind) => `meters/${meterId}/up/${kind}`,
  down: (meterId: string, kind: DownKind) => `meters/${meterId}/down/${kind}`,
  /** What the head-end subscribes to (optionally as a shared subscription group). */
  allUp: (shareGroup?: string) => (shareGroup ? `$share/${shareGroup}/meters/+/up/#` : 'meters/+/up/#'),
  /** What a meter subscribes to. */
  meterDown: (meterId: string) => `meters/${meterId}/down/#`,
};

export type ParsedTopic =
  { dir: 'up'; meterId: string; kind: UpKind } | { dir: 'down'; meterId: string; kind: DownKind };

export function parseTopic(topic: string): ParsedTopic | null {
  const parts = topic.split('/');
  if (parts.length !== 4 || parts[0] !== 'meters') return null;
  const [, meterId, dir, kind] = parts as [string, string, string, string];
  if (!METER_ID_RE.test(meterId)) return null;
  if (dir === 'up' && (UP_KINDS as readonly string[]).includes(kind)) {
    return { dir, meterId, kind: kind as UpKind };
  }
  if (dir === 'down' && (DOWN_KINDS as readonly string[]).includes(kind)) {
    return { dir, meterId, kind: kind as DownKind };
  }
  return null;
}

/**
 * Whether every topic the subscription `filter` can match is also matched by `pattern`
 * (both MQTT filters with + and #). The embedded broker allows a subscription only inside
 * the subtree an ACL pattern grants, exactly as Mosquitto's pattern ACL does.
 */
export function filterWithin(filter: string, pattern: string): boolean {
  const f = filter.split('/');
  const p = pattern.split('/');
  for (let i = 0; i < p.length; i++) {
    const ps = p[i]!;
    if (ps === '#') return true;
    const fs = f[i];
    if (fs === undefined || fs === '#') return false;
    if (ps === '+') {
      continue;
    }
    if (fs === '+' || fs !== ps) return false;
  }
  return f.length === p.length;
}

/**
 * The broker rules, one definition for both brokers (the embedded one checks them in its
 * hooks, the Mosquitto configuration writer turns them into an ACL): a meter writes only its
 * own up kinds and reads only its own down subtree; the head-end reads every meter's up
 * subtree and writes every meter's down kinds.
 */
export const BROKER_RULES = {
  meterWrites: (id: string) => UP_KINDS.map((k) => topics.up(id, k)),
  meterReads: (id: string) => `meters/${id}/down/#`,
  headendReads: 'meters/+/up/#',
  headendWrites: DOWN_KINDS.map((k) => `meters/+/down/${k}`),
} as const;
