import { addDays, localDate } from '@kilowire/protocol';
import type { MeterOverview } from '@kilowire/contract';
import type { Q } from '../db/pool.ts';
import { listCommands } from '../commands/lifecycle.ts';
import { accountBalance } from '../money/ledger.ts';
import { meterTariffState } from '../money/tariffs.ts';
import type { MeterRow } from '../meters/queries.ts';

/** Each section of the page is bounded: the page is a summary, the full lists have their own routes. */
export const OVERVIEW_LIMITS = { usageDays: 30, events: 50, commands: 20, alerts: 20, vee: 50 } as const;

/** Event codes the timeline shows: tamper, power, relay, credit, firmware (not clock or tariff chatter). */
const TIMELINE = /^(tamper|power|relay|credit|firmware)\./;

/** Everything staff see on one meter's page. The caller has authorised `m` (meter.overview). */
export async function meterOverview(q: Q, m: MeterRow, nowMs = Date.now()): Promise<MeterOverview> {
  const nowS = Math.floor(nowMs / 1000);
  const today = localDate(nowS, m.tz);
  const from = addDays(today, -(OVERVIEW_LIMITS.usageDays - 1));

  const [meta, household, usage, events, commands, alerts, vee, openCase, tariff] = await Promise.all([
    q.query<{
      status: 'active' | 'decommissioned';
      hardware_class: string;
      last_status: { firmware?: { slot?: string } } | null;
    }>('SELECT status, hardware_class, last_status FROM meters WHERE id = $1', [m.id]),
    q.query<{
      name: string;
      login_id: string | null;
      address: string | null;
      postcode: string | null;
      vulnerable: boolean;
      vulnerable_note: string | null;
      email: string | null;
      mobile: string | null;
      account_id: string;
      mode: 'credit' | 'prepayment';
      currency: string;
    }>(
      `SELECT c.name, u.login_id, c.address, c.postcode, c.vulnerable, c.vulnerable_note, c.email, c.mobile,
              a.id AS account_id, a.mode, trim(a.currency) AS currency
         FROM accounts a JOIN consumers c ON c.id = a.consumer_id JOIN users u ON u.id = c.user_id
        WHERE a.id = $1`,
      [m.account_id],
    ),
    q.query<{ day: string; wh: string; estimated: number }>(
      `SELECT to_char(day, 'YYYY-MM-DD') AS day, wh::text, estimated FROM daily_rollups
        WHERE meter_id = $1 AND day >= $2::date AND day <= $3::date ORDER BY day`,
      [m.id, from, today],
    ),
    q.query<{ ts: Date; code: string; data: Record<string, unknown> | null }>(
      `SELECT ts, code, data FROM meter_events
        WHERE meter_id = $1 AND code ~ '^(tamper|power|relay|credit|firmware)\\.'
        ORDER BY ts DESC, seq DESC, idx DESC LIMIT $2`,
      [m.id, OVERVIEW_LIMITS.events],
    ),
    listCommands(q, m.id, OVERVIEW_LIMITS.commands),
    q.query<{ id: string; type: string; severity: string; title: string; created_at: Date }>(
      `SELECT id, type, severity, title, created_at FROM alerts WHERE meter_id = $1 ORDER BY id DESC LIMIT $2`,
      [m.id, OVERVIEW_LIMITS.alerts],
    ),
    // Findings waiting for review first, then the newest.
    q.query<{ ts: Date; rule: string; needs_review: boolean; detail: unknown }>(
      `SELECT ts, rule, needs_review, detail FROM vee_issues WHERE meter_id = $1
        ORDER BY needs_review DESC, ts DESC LIMIT $2`,
      [m.id, OVERVIEW_LIMITS.vee],
    ),
    q.query<{ id: string; status: string; opened_at: Date }>(
      `SELECT id, status, opened_at FROM tamper_cases WHERE meter_id = $1 AND status <> 'resolved'`,
      [m.id],
    ),
    meterTariffState(q, m.id, m.tz, nowS),
  ]);

  // Transitions and display names of the listed commands in two queries, not one per command.
  const ids = commands.map((c) => c.id);
  const transitions = ids.length
    ? (
        await q.query<{
          command_id: string;
          at: Date;
          from_status: string | null;
          to_status: string;
          by: string | null;
        }>(
          `SELECT t.command_id, t.at, t.from_status, t.to_status, u.display_name AS by
             FROM command_transitions t LEFT JOIN users u ON u.id = t.actor_id
            WHERE t.command_id = ANY($1::uuid[]) ORDER BY t.at`,
          [ids],
        )
      ).rows
    : [];
  const userIds = [
    ...new Set(commands.flatMap((c) => [c.created_by, c.approved_by]).filter((x) => x !== null)),
  ];
  const names = new Map<number, string>();
  if (userIds.length) {
    const r = await q.query<{ id: string; display_name: string }>(
      'SELECT id, display_name FROM users WHERE id = ANY($1::bigint[])',
      [userIds],
    );
    for (const u of r.rows) names.set(Number(u.id), u.display_name);
  }
  const nameOf = (id: number | null) => (id === null ? null : (names.get(Number(id)) ?? null));

  const h = household.rows[0];
  const balance = h ? await accountBalance(q, Number(h.account_id)) : 0;
  const st = meta.rows[0]!;
  const slot = st.last_status?.firmware?.slot;
  const oc = openCase.rows[0];

  return {
    serial: m.serial,
    status: st.status,
    tz: m.tz,
    area: { id: m.area_id, name: m.area_name },
    household: h
      ? {
          name: h.name,
          consumerId: h.login_id,
          address: h.address,
          postcode: h.postcode,
          vulnerable: h.vulnerable,
          vulnerableNote: h.vulnerable_note,
          email: h.email,
          mobile: h.mobile,
        }
      : null,
    account: h
      ? { id: Number(h.account_id), mode: h.mode, currency: h.currency, balanceMinor: balance }
      : null,
    tariff: {
      id: tariff.tariffId,
      name: tariff.tariffName,
      next: tariff.next
        ? { id: tariff.next.tariffId, name: tariff.next.tariffName, from: tariff.next.from }
        : null,
    },
    mode: m.mode,
    relay: m.relay,
    creditMinor: m.credit_minor === null ? null : Number(m.credit_minor),
    lastSeenAt: m.last_seen_at ? m.last_seen_at.toISOString() : null,
    openCase: oc ? { id: Number(oc.id), status: oc.status, openedAt: oc.opened_at.toISOString() } : null,
    usage: usage.rows.map((r) => ({ day: r.day, wh: Number(r.wh), estimated: r.estimated })),
    events: events.rows
      .filter((e) => TIMELINE.test(e.code))
      .map((e) => ({ ts: e.ts.toISOString(), code: e.code, data: e.data ?? null })),
    commands: commands.map((c) => ({
      id: c.id,
      type: c.type,
      status: c.status,
      reason: c.reason,
      requestedBy: nameOf(c.created_by),
      approvedBy: nameOf(c.approved_by),
      createdAt: c.created_at.toISOString(),
      repliedAt: c.replied_at ? c.replied_at.toISOString() : null,
      resultCode: c.result_code,
      transitions: transitions
        .filter((t) => t.command_id === c.id)
        .map((t) => ({ at: t.at.toISOString(), from: t.from_status, to: t.to_status, by: t.by })),
    })),
    alerts: alerts.rows.map((a) => ({
      id: Number(a.id),
      type: a.type,
      severity: a.severity,
      title: a.title,
      createdAt: a.created_at.toISOString(),
    })),
    vee: vee.rows.map((v) => ({
      ts: v.ts.toISOString(),
      rule: v.rule,
      needsReview: v.needs_review,
      detail: v.detail ?? null,
    })),
    firmware: {
      version: m.firmware_version,
      runningSlot: slot === 'A' || slot === 'B' ? slot : null,
      hardwareClass: st.hardware_class,
    },
  };
}
