import { EVENT_CATALOGUE, type EventCode } from '@kilowire/protocol';
import type { TamperCaseAction, TamperCaseStatus } from '@kilowire/contract';
import { withTx, type Pool, type PoolClient, type Q, type Tx } from '../db/pool.ts';
import { AppError } from '../errors.ts';
import type { DomainEvent, Subscriber } from '../events/types.ts';
import { scopeSql, type Actor } from '../policies.ts';

/**
 * Tamper cases: a tamper event a meter reports opens a case for that meter, or joins the
 * one not yet resolved (at most one per meter, a unique index says so). Staff move a case
 * open -> investigating -> resolved, add notes and record actions; resolved is final, and
 * a later tamper event opens a new case.
 */

/** Which status may follow which. Resolved is final: a new event opens a new case. */
const NEXT: Record<TamperCaseStatus, readonly TamperCaseStatus[]> = {
  open: ['investigating'],
  investigating: ['resolved'],
  resolved: [],
};

export interface TamperEventKey {
  meterId: number;
  seq: number;
  idx: number;
}

/**
 * Link each tamper event to its meter's unresolved case, opening one when there is none.
 * Idempotent: an event already linked (a redelivered domain event) changes nothing. Each
 * event in its own transaction with its audit row (by the system: actor null).
 */
export async function linkTamperEvents(pool: Pool, events: readonly TamperEventKey[]): Promise<number[]> {
  const touched: number[] = [];
  for (const e of events) {
    const caseId = await withTx(pool, { actorId: null }, async (t) => {
      const linked = await t.c.query<{ case_id: string }>(
        'SELECT case_id FROM tamper_case_events WHERE meter_id = $1 AND seq = $2 AND idx = $3',
        [e.meterId, e.seq, e.idx],
      );
      if (linked.rows[0]) return null;
      // Two events of one meter handled at once by two workers: the unique index on the
      // unresolved case lets one INSERT win; the other finds that case on its second look.
      let c = await unresolvedCase(t.c, e.meterId);
      let opened = false;
      if (c === null) {
        const ins = await t.c.query<{ id: string }>(
          `INSERT INTO tamper_cases (meter_id, supplier_id, opened_at)
           SELECT m.id, m.supplier_id, coalesce(ev.ts, now())
             FROM meters m LEFT JOIN meter_events ev ON ev.meter_id = m.id AND ev.seq = $2 AND ev.idx = $3
            WHERE m.id = $1
           ON CONFLICT (meter_id) WHERE status <> 'resolved' DO NOTHING
           RETURNING id`,
          [e.meterId, e.seq, e.idx],
        );
        if (ins.rows[0]) {
          c = Number(ins.rows[0].id);
          opened = true;
        } else c = await unresolvedCase(t.c, e.meterId);
      }
      if (c === null) return null; // no such meter
      const link = await t.c.query(
        `INSERT INTO tamper_case_events (case_id, meter_id, seq, idx) VALUES ($1, $2, $3, $4)
         ON CONFLICT DO NOTHING`,
        [c, e.meterId, e.seq, e.idx],
      );
      if (!link.rowCount) return null;
      if (opened) {
        await addEntry(t.c, c, null, 'status', { text: 'Opened by a tamper event', data: { to: 'open' } });
        await t.audit('tamper_case.open', String(c), { meterId: e.meterId, seq: e.seq, idx: e.idx });
      } else {
        await t.c.query('UPDATE tamper_cases SET updated_at = now() WHERE id = $1', [c]);
        await t.audit('tamper_case.event', String(c), { meterId: e.meterId, seq: e.seq, idx: e.idx });
      }
      return c;
    });
    if (caseId !== null) touched.push(caseId);
  }
  return touched;
}

async function unresolvedCase(c: PoolClient, meterId: number): Promise<number | null> {
  const { rows } = await c.query<{ id: string }>(
    `SELECT id FROM tamper_cases WHERE meter_id = $1 AND status <> 'resolved' FOR UPDATE`,
    [meterId],
  );
  return rows[0] ? Number(rows[0].id) : null;
}

async function addEntry(
  c: PoolClient,
  caseId: number,
  actorId: number | null,
  kind: 'note' | 'status' | 'action',
  e: { action?: TamperCaseAction; text?: string | null; data?: Record<string, unknown> | null },
): Promise<number> {
  const { rows } = await c.query<{ id: string }>(
    `INSERT INTO tamper_case_entries (case_id, actor_id, kind, action, text, data)
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
    [caseId, actorId, kind, e.action ?? null, e.text ?? null, e.data ? JSON.stringify(e.data) : null],
  );
  await c.query('UPDATE tamper_cases SET updated_at = now() WHERE id = $1', [caseId]);
  return Number(rows[0]!.id);
}

/**
 * The supply-control code calls this when it disconnects or reconnects a meter: the meter's
 * unresolved case, if any, records the action with the command. Runs in the caller's
 * transaction, so the entry exists if and only if the command does. Returns the case id.
 */
export async function noteSupplyAction(
  c: PoolClient,
  meterId: number,
  kind: 'disconnect' | 'reconnect',
  commandId: string,
  actorId: number | null,
): Promise<number | null> {
  const caseId = await unresolvedCase(c, meterId);
  if (caseId === null) return null;
  await addEntry(c, caseId, actorId, 'action', { action: kind, data: { commandId } });
  return caseId;
}

/** The domain-event subscriber of the jobs service: tamper events open or join cases. */
export function tamperCasesSubscriber(pool: Pool): Subscriber {
  return {
    name: 'tamper-cases',
    types: ['meter.event'],
    async handle(events: DomainEvent[]): Promise<void> {
      const keys: TamperEventKey[] = [];
      for (const e of events) {
        if (e.type !== 'meter.event' || e.meterId === null) continue;
        const p = (e as DomainEvent<'meter.event'>).payload;
        if (p.code.startsWith('tamper.')) keys.push({ meterId: e.meterId, seq: p.seq, idx: p.idx });
      }
      await linkTamperEvents(pool, keys);
    },
  };
}

// ------------------------------------------------------------------ reads

export interface CaseSummary {
  id: number;
  status: TamperCaseStatus;
  serial: string;
  household: string | null;
  openedAt: string;
  updatedAt: string;
  resolvedAt: string | null;
  resolution: string | null;
  events: number;
  lastEventAt: string | null;
}

const SUMMARY = `
  SELECT tc.id, tc.status, m.serial, co.name AS household, tc.opened_at, tc.updated_at, tc.resolved_at,
         tc.resolution, ev.n AS events, ev.last_at
    FROM tamper_cases tc
    JOIN meters m ON m.id = tc.meter_id
    LEFT JOIN accounts a ON a.id = m.account_id
    LEFT JOIN consumers co ON co.id = a.consumer_id
    LEFT JOIN LATERAL (
      SELECT count(*)::int AS n, max(me.ts) AS last_at
        FROM tamper_case_events te JOIN meter_events me USING (meter_id, seq, idx)
       WHERE te.case_id = tc.id) ev ON TRUE`;

interface SummaryRow {
  id: string;
  status: TamperCaseStatus;
  serial: string;
  household: string | null;
  opened_at: Date;
  updated_at: Date;
  resolved_at: Date | null;
  resolution: string | null;
  events: number;
  last_at: Date | null;
}

const summary = (r: SummaryRow): CaseSummary => ({
  id: Number(r.id),
  status: r.status,
  serial: r.serial,
  household: r.household,
  openedAt: r.opened_at.toISOString(),
  updatedAt: r.updated_at.toISOString(),
  resolvedAt: r.resolved_at?.toISOString() ?? null,
  resolution: r.resolution,
  events: r.events,
  lastEventAt: r.last_at?.toISOString() ?? null,
});

/** Cases in the actor's scope, newest first, paged by id; `counts` per status for the filter tabs. */
export async function listCases(
  q: Q,
  actor: Actor,
  o: { status?: TamperCaseStatus; limit: number; beforeId: number | null },
): Promise<{ items: CaseSummary[]; nextBefore: number | null; counts: Record<TamperCaseStatus, number> }> {
  const s = scopeSql(actor, 'tamper_cases', 'tc', 4);
  const { rows } = await q.query<SummaryRow>(
    `${SUMMARY}
      WHERE ($1::text IS NULL OR tc.status = $1) AND ($2::bigint IS NULL OR tc.id < $2) AND ${s.sql}
      ORDER BY tc.id DESC LIMIT $3`,
    [o.status ?? null, o.beforeId, o.limit + 1, ...s.params],
  );
  const c = await q.query<{ status: TamperCaseStatus; n: number }>(
    `SELECT tc.status, count(*)::int AS n FROM tamper_cases tc WHERE ${scopeSql(actor, 'tamper_cases', 'tc').sql} GROUP BY 1`,
    scopeSql(actor, 'tamper_cases', 'tc').params,
  );
  const counts = { open: 0, investigating: 0, resolved: 0 };
  for (const r of c.rows) counts[r.status] = r.n;
  const items = rows.slice(0, o.limit).map(summary);
  return { items, nextBefore: rows.length > o.limit ? items[items.length - 1]!.id : null, counts };
}

/** The cases of one meter (already authorised), newest first. */
export async function casesOfMeter(q: Q, meterId: number): Promise<CaseSummary[]> {
  const { rows } = await q.query<SummaryRow>(
    `${SUMMARY} WHERE tc.meter_id = $1 ORDER BY tc.id DESC LIMIT 50`,
    [meterId],
  );
  return rows.map(summary);
}

export interface CaseDetail extends CaseSummary {
  meter: { serial: string; tz: string; relay: string | null };
  consumerId: string | null;
  timeline: {
    events: { seq: number; idx: number; code: string; text: string; at: string }[];
    entries: {
      id: number;
      at: string;
      actor: string | null;
      kind: 'note' | 'status' | 'action';
      action: TamperCaseAction | null;
      text: string | null;
      data: Record<string, unknown> | null;
    }[];
  };
}

/** One case in the actor's scope, with its events and entries; null when not found or not theirs. */
export async function caseDetail(q: Q, actor: Actor, id: number): Promise<CaseDetail | null> {
  const s = scopeSql(actor, 'tamper_cases', 'tc', 2);
  const { rows } = await q.query<SummaryRow & { tz: string; relay: string | null; login_id: string | null }>(
    `SELECT x.*, m.tz, m.relay, u.login_id
       FROM (${SUMMARY} WHERE tc.id = $1 AND ${s.sql}) x
       JOIN meters m ON m.serial = x.serial
       LEFT JOIN accounts a ON a.id = m.account_id
       LEFT JOIN consumers co ON co.id = a.consumer_id
       LEFT JOIN users u ON u.id = co.user_id`,
    [id, ...s.params],
  );
  const r = rows[0];
  if (!r) return null;
  const ev = await q.query<{ seq: number; idx: number; code: string; ts: Date }>(
    `SELECT me.seq, me.idx, me.code, me.ts FROM tamper_case_events te
       JOIN meter_events me USING (meter_id, seq, idx) WHERE te.case_id = $1 ORDER BY me.ts, me.seq, me.idx`,
    [id],
  );
  const en = await q.query<{
    id: string;
    at: Date;
    actor: string | null;
    kind: 'note' | 'status' | 'action';
    action: TamperCaseAction | null;
    text: string | null;
    data: Record<string, unknown> | null;
  }>(
    `SELECT e.id, e.at, u.display_name AS actor, e.kind, e.action, e.text, e.data
       FROM tamper_case_entries e LEFT JOIN users u ON u.id = e.actor_id WHERE e.case_id = $1 ORDER BY e.id`,
    [id],
  );
  return {
    ...summary(r),
    meter: { serial: r.serial, tz: r.tz, relay: r.relay },
    consumerId: r.login_id,
    timeline: {
      events: ev.rows.map((e) => ({
        seq: e.seq,
        idx: e.idx,
        code: e.code,
        text:
          (EVENT_CATALOGUE as Record<string, { text: string } | undefined>)[e.code as EventCode]?.text ??
          e.code,
        at: e.ts.toISOString(),
      })),
      entries: en.rows.map((e) => ({
        id: Number(e.id),
        at: e.at.toISOString(),
        actor: e.actor,
        kind: e.kind,
        action: e.action,
        text: e.text,
        data: e.data,
      })),
    },
  };
}

// ------------------------------------------------------------------ changes by staff

/** Lock the case if the actor may see it; 404 otherwise (another supplier's looks absent). */
async function lockCase(
  t: Tx,
  actor: Actor,
  id: number,
): Promise<{ status: TamperCaseStatus; meterId: number }> {
  const s = scopeSql(actor, 'tamper_cases', 'tc', 2);
  const { rows } = await t.c.query<{ status: TamperCaseStatus; meter_id: number }>(
    `SELECT tc.status, tc.meter_id FROM tamper_cases tc WHERE tc.id = $1 AND ${s.sql} FOR UPDATE`,
    [id, ...s.params],
  );
  if (!rows[0]) throw new AppError('NOT_FOUND', 'tamper case not found');
  return { status: rows[0].status, meterId: rows[0].meter_id };
}

export async function addNote(t: Tx, actor: Actor, id: number, text: string): Promise<void> {
  const c = await lockCase(t, actor, id);
  // Notes after resolution are allowed: a late finding belongs with the case it concerns.
  void c;
  const entry = await addEntry(t.c, id, actor.userId, 'note', { text });
  await t.audit('tamper_case.note', String(id), { entryId: entry });
}

export async function moveStatus(
  t: Tx,
  actor: Actor,
  id: number,
  to: TamperCaseStatus,
  text: string | undefined,
): Promise<void> {
  const c = await lockCase(t, actor, id);
  if (!NEXT[c.status].includes(to)) throw new AppError('CONFLICT', `a ${c.status} case cannot move to ${to}`);
  if (to === 'resolved' && !text)
    throw new AppError('VALIDATION', 'body.text: a resolution is required to resolve a case', [
      { path: 'body.text', message: 'a resolution is required to resolve a case' },
    ]);
  await t.c.query(
    `UPDATE tamper_cases SET status = $2, resolved_at = CASE WHEN $2 = 'resolved' THEN now() END,
            resolution = CASE WHEN $2 = 'resolved' THEN $3 END WHERE id = $1`,
    [id, to, text ?? null],
  );
  await addEntry(t.c, id, actor.userId, 'status', { text: text ?? null, data: { from: c.status, to } });
  await t.audit('tamper_case.status', String(id), { from: c.status, to });
}

export async function recordAction(
  t: Tx,
  actor: Actor,
  id: number,
  a: {
    action: TamperCaseAction;
    text?: string | undefined;
    visitDate?: string | undefined;
    commandId?: string | undefined;
  },
): Promise<void> {
  const c = await lockCase(t, actor, id);
  if (c.status === 'resolved') throw new AppError('CONFLICT', 'the case is resolved');
  if (a.action === 'site_visit_booked' && !a.visitDate)
    throw new AppError('VALIDATION', 'body.visitDate: the date of the visit is required', [
      { path: 'body.visitDate', message: 'the date of the visit is required' },
    ]);
  if (a.commandId) {
    // A command of another meter would put a false fact on the timeline.
    const cmd = await t.c.query('SELECT 1 FROM commands WHERE id = $1 AND meter_id = $2', [
      a.commandId,
      c.meterId,
    ]);
    if (!cmd.rowCount)
      throw new AppError('VALIDATION', "body.commandId: not a command of this case's meter", [
        { path: 'body.commandId', message: "not a command of this case's meter" },
      ]);
  }
  const data: Record<string, unknown> = {};
  if (a.visitDate) data.visitDate = a.visitDate;
  if (a.commandId) data.commandId = a.commandId;
  await addEntry(t.c, id, actor.userId, 'action', {
    action: a.action,
    text: a.text ?? null,
    data: Object.keys(data).length ? data : null,
  });
  await t.audit('tamper_case.action', String(id), { action: a.action, ...data });
}
