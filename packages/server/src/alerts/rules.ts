import { EVENT_CATALOGUE, type EventCode } from '@kilowire/protocol';
import type { Pool } from '../db/pool.ts';
import { addDays } from '@kilowire/protocol';
import { meterPriceOn, tariffVersions, type TariffVersion } from '../money/prices.ts';
import { kwh, localStamp, minorPrice, money, shortDay } from './format.ts';
import { raiseAlerts, type NewAlert, type RaiseOptions } from './raise.ts';
import { alertTypeOfEvent } from './types.ts';
import { disconnectedText, restoredText } from '../supply/messages.ts';

/**
 * Alert rules. Each produces alerts once per crossing, not once per reading: the dedupe key
 * (local day, local clock hour, event seq:idx, tariff version) plus UNIQUE (meter, type, key)
 * make every evaluation idempotent, so evaluating too often is harmless.
 */
export interface RuleOptions extends RaiseOptions {
  /** Limit rules look at local today and this many days before it (late or resent readings). */
  lookbackDays?: number;
}

const nowOf = (o: RuleOptions) => (o.now ? o.now() : Math.floor(Date.now() / 1000));

/** Daily and hourly limits of `meterIds`. Returns the ids of new alerts. */
export async function evaluateLimits(pool: Pool, meterIds: number[], o: RuleOptions = {}): Promise<number[]> {
  if (!meterIds.length) return [];
  const now = nowOf(o);
  const back = o.lookbackDays ?? 1;
  const alerts: NewAlert[] = [];

  const daily = await pool.query<{
    meter_id: number;
    serial: string;
    limit_wh: number;
    day: string;
    wh: number;
  }>(
    `SELECT l.meter_id, m.serial, l.daily_limit_wh AS limit_wh, r.day, r.wh
       FROM meter_limits l
       JOIN meters m ON m.id = l.meter_id
       JOIN daily_rollups r ON r.meter_id = l.meter_id
        AND r.day BETWEEN (to_timestamp($2) AT TIME ZONE m.tz)::date - $3::int AND (to_timestamp($2) AT TIME ZONE m.tz)::date
      WHERE l.meter_id = ANY($1::int[]) AND l.daily_limit_wh IS NOT NULL AND r.wh >= l.daily_limit_wh
        -- A limit counts from the local day it was set: setting one today does not judge yesterday.
        AND r.day >= (l.updated_at AT TIME ZONE m.tz)::date
        AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.meter_id = l.meter_id AND a.type = 'daily_limit' AND a.dedupe_key = r.day::text)`,
    [meterIds, now, back],
  );
  for (const r of daily.rows) {
    const verb = r.wh > r.limit_wh ? 'above' : 'reaching';
    alerts.push({
      meterId: r.meter_id,
      type: 'daily_limit',
      dedupeKey: r.day,
      title: 'Daily limit reached',
      message: `You used ${kwh(r.wh)} on ${shortDay(r.day)}, ${verb} your daily limit of ${kwh(r.limit_wh)} (meter ${r.serial}).`,
      figures: { day: r.day, wh: r.wh, limitWh: r.limit_wh },
    });
  }

  // A local clock hour is identified by the instant it starts (so the repeated hour of an
  // autumn DST change is two hours, and half-hour zones work).
  const hourly = await pool.query<{
    meter_id: number;
    serial: string;
    tz: string;
    limit_wh: number;
    hour_start: number;
    hour_key: string;
    wh: number;
  }>(
    `WITH h AS (
       SELECT l.meter_id, m.serial, m.tz, l.hourly_limit_wh AS limit_wh, ir.wh,
              ir.ts - ((ir.ts AT TIME ZONE m.tz) - date_trunc('hour', ir.ts AT TIME ZONE m.tz)) AS hour_start
         FROM meter_limits l
         JOIN meters m ON m.id = l.meter_id
         JOIN interval_readings ir ON ir.meter_id = l.meter_id
          AND ir.ts >= to_timestamp($2) - make_interval(days => $3 + 1) AND ir.ts <= to_timestamp($2)
        WHERE l.meter_id = ANY($1::int[]) AND l.hourly_limit_wh IS NOT NULL
          -- From the clock hour in which the limit was set onwards.
          AND ir.ts >= date_trunc('hour', l.updated_at)
     ), s AS (
       SELECT meter_id, serial, tz, limit_wh, hour_start, sum(wh)::bigint AS wh,
              to_char(hour_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI"Z"') AS hour_key
         FROM h GROUP BY meter_id, serial, tz, limit_wh, hour_start
     )
     SELECT meter_id, serial, tz, limit_wh, extract(epoch FROM hour_start)::bigint AS hour_start, hour_key, wh
       FROM s
      WHERE wh >= limit_wh
        AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.meter_id = s.meter_id AND a.type = 'hourly_limit' AND a.dedupe_key = s.hour_key)`,
    [meterIds, now, back],
  );
  for (const r of hourly.rows) {
    const from = localStamp(r.hour_start, r.tz);
    const to = localStamp(r.hour_start + 3600, r.tz);
    const verb = r.wh > r.limit_wh ? 'above' : 'reaching';
    alerts.push({
      meterId: r.meter_id,
      type: 'hourly_limit',
      dedupeKey: r.hour_key,
      title: 'Hourly limit reached',
      message: `You used ${kwh(r.wh)} between ${from.time} and ${to.time} on ${from.day}, ${verb} your hourly limit of ${kwh(r.limit_wh)} (meter ${r.serial}).`,
      figures: { hourStart: new Date(r.hour_start * 1000).toISOString(), wh: r.wh, limitWh: r.limit_wh },
    });
  }
  return raiseAlerts(pool, alerts, o);
}

/** Alerts from stored meter events (tamper.*, relay.disconnected/armed/connected, credit.low) of the given messages. */
export async function evaluateEvents(
  pool: Pool,
  keys: { meterId: number; seq: number }[],
  o: RuleOptions = {},
): Promise<number[]> {
  if (!keys.length) return [];
  const { rows } = await pool.query<{
    meter_id: number;
    seq: number;
    idx: number;
    t: number;
    code: string;
    data: Record<string, unknown> | null;
    serial: string;
    tz: string;
    currency: string | null;
    low_credit_minor: number | null;
    supplier_name: string;
    command_reason: string | null;
  }>(
    // A remote disconnection is told by the reason of the supply.off command it follows: the
    // newest one queued before the event arrived (the meter itself reports only remote/tamper).
    `SELECT e.meter_id, e.seq, e.idx, extract(epoch FROM e.ts)::bigint AS t, e.code, e.data, m.serial, m.tz, ac.currency,
            ml.low_credit_minor, s.name AS supplier_name, so.reason AS command_reason
       FROM (SELECT DISTINCT * FROM unnest($1::int[], $2::bigint[]) AS k(meter_id, seq)) k
       JOIN meter_events e ON e.meter_id = k.meter_id AND e.seq = k.seq
       JOIN meters m ON m.id = e.meter_id
       JOIN organisations s ON s.id = m.supplier_id
       LEFT JOIN accounts ac ON ac.id = m.account_id
       LEFT JOIN meter_limits ml ON ml.meter_id = m.id
       LEFT JOIN LATERAL (
         SELECT c.reason FROM commands c
          WHERE c.meter_id = e.meter_id AND c.type = 'supply.off' AND c.status IN ('sent', 'ok', 'expired')
            AND c.queued_at <= e.received_at
          ORDER BY c.queued_at DESC LIMIT 1
       ) so ON e.code = 'relay.disconnected' AND e.data->>'reason' IS DISTINCT FROM 'credit'
      WHERE e.code LIKE 'tamper.%' OR e.code IN ('relay.disconnected', 'relay.armed', 'relay.connected', 'credit.low')
      ORDER BY e.meter_id, e.seq, e.idx`,
    [keys.map((k) => k.meterId), keys.map((k) => k.seq)],
  );
  const alerts: NewAlert[] = [];
  for (const e of rows) {
    const type = alertTypeOfEvent(e.code);
    if (!type) continue;
    const at = localStamp(e.t, e.tz);
    const when = `at ${at.time} on ${at.day}`;
    const base = { meterId: e.meter_id, type, dedupeKey: `${e.seq}:${e.idx}` };
    const figures: Record<string, unknown> = {
      code: e.code,
      at: new Date(e.t * 1000).toISOString(),
      ...(e.data ?? {}),
    };
    const text =
      (EVENT_CATALOGUE as Record<string, { text: string } | undefined>)[e.code as EventCode]?.text ?? e.code;
    if (type === 'tamper') {
      alerts.push({
        ...base,
        title: `Tamper alert: ${text}`,
        message: `Meter ${e.serial} reported "${text}" ${when}. If neither you nor your supplier expected this, contact your supplier.`,
        figures,
      });
    } else if (type === 'disconnected') {
      const said = disconnectedText({
        serial: e.serial,
        supplier: e.supplier_name,
        when,
        meterReason: typeof e.data?.reason === 'string' ? e.data.reason : null,
        commandReason: e.command_reason,
      });
      alerts.push({ ...base, ...said, figures: { ...figures, supplyReason: e.command_reason } });
    } else if (type === 'supply_restored') {
      alerts.push({ ...base, ...restoredText({ serial: e.serial, when }), figures });
    } else if (type === 'supply_armed') {
      const why =
        e.data?.reason === 'credit'
          ? 'Your credit is back above zero'
          : 'Your supplier has allowed reconnection';
      alerts.push({
        ...base,
        title: 'Press the button to switch on',
        message: `${why}: the supply at meter ${e.serial} is ready to reconnect (${when}). Press the button on the meter to switch the power back on. Make sure appliances you left on are safe first.`,
        figures,
      });
    } else {
      const cur = e.currency ?? 'GBP';
      const credit = typeof e.data?.creditMinor === 'number' ? e.data.creditMinor : null;
      // The meter reports the level it judged by (the household's own once thresholds.set
      // reached it); an event without it is told against the household's chosen level.
      const thr = typeof e.data?.thresholdMinor === 'number' ? e.data.thresholdMinor : e.low_credit_minor;
      const amounts =
        credit !== null && thr !== null
          ? ` is ${money(credit, cur)}, below the low-credit threshold of ${money(thr, cur)}`
          : ' is below the low-credit threshold';
      alerts.push({
        ...base,
        title: 'Credit low',
        message: `Your credit on meter ${e.serial}${amounts} (${when}). Top up to keep the supply on.`,
        figures,
      });
    }
  }
  return raiseAlerts(pool, alerts, o);
}

export interface TariffChange {
  meterIds: number[];
  /** Identifies the tariff version: one alert per meter per version. */
  version: string;
  name: string;
  /** Local day the new tariff applies from, YYYY-MM-DD. */
  effectiveFrom: string;
  /** Optional figures in words, e.g. "Unit rate 24.5p/kWh, standing charge 53.2p/day." */
  detail?: string;
  /** Extra figures kept with the alert (old and new prices). */
  figures?: Record<string, unknown>;
}

/** The hook for tariff changes (called by the tariff domain when a new version is pushed). */
export async function raiseTariffChanged(
  pool: Pool,
  t: TariffChange,
  o: RuleOptions = {},
): Promise<number[]> {
  const { rows } = await pool.query<{ id: number; serial: string }>(
    'SELECT id, serial FROM meters WHERE id = ANY($1::int[]) ORDER BY id',
    [t.meterIds],
  );
  return raiseAlerts(
    pool,
    rows.map((m) => ({
      meterId: m.id,
      type: 'tariff_changed' as const,
      dedupeKey: t.version,
      title: 'Tariff changed',
      message: `Your tariff for meter ${m.serial} changes to "${t.name}" from ${shortDay(t.effectiveFrom)}.${t.detail ? ` ${t.detail}` : ''}`,
      figures: { version: t.version, name: t.name, effectiveFrom: t.effectiveFrom, ...t.figures },
    })),
    o,
  );
}

/** A version's prices in words: "day 24.5p/kWh, night 12p/kWh (00:30-07:30), standing charge 53.35p/day, VAT 5%". */
export function pricesInWords(v: TariffVersion): string {
  const c = v.currency;
  const hours = (ws: { from: string; to: string }[]) => ws.map((w) => `${w.from}-${w.to}`).join(', ');
  const parts =
    v.structure === 'flat'
      ? [`unit rate ${minorPrice(v.dayRate, c)}/kWh`]
      : [`day ${minorPrice(v.dayRate, c)}/kWh`];
  if (v.structure !== 'flat' && v.nightRate !== null)
    parts.push(`night ${minorPrice(v.nightRate, c)}/kWh (${hours(v.nightWindows)})`);
  if (v.structure === 'three_band' && v.peakRate !== null)
    parts.push(`peak ${minorPrice(v.peakRate, c)}/kWh (${hours(v.peakWindows)})`);
  parts.push(`standing charge ${minorPrice(v.standingMilliPerDay, c)}/day`);
  parts.push(`VAT ${v.vatBp / 100}%`);
  return parts.join(', ');
}

const priceFigures = (v: TariffVersion) => ({
  tariff: v.code,
  version: v.version,
  dayRate: v.dayRate,
  nightRate: v.nightRate,
  peakRate: v.peakRate,
  standingMilliPerDay: v.standingMilliPerDay,
  vatBp: v.vatBp,
});

/**
 * The "tariff changed" alert of one meter for a `tariff.changed` event: the new prices from
 * `from` against the prices of the day before (what the household pays now). Idempotent: one
 * alert per meter, tariff, version and first day.
 */
export async function raiseTariffChangedFor(
  pool: Pool,
  meterId: number,
  e: { tariffId: number; version: number; from: string },
  o: RuleOptions = {},
): Promise<number[]> {
  const nv = (await tariffVersions(pool, e.tariffId)).find((v) => v.version === e.version);
  if (!nv) return [];
  const old = await meterPriceOn(pool, meterId, addDays(e.from, -1));
  const now = `New prices: ${pricesInWords(nv)}.`;
  const was = old
    ? ` Until then: ${old.tariffId === nv.tariffId ? '' : `"${old.name}", `}${pricesInWords(old)}.`
    : '';
  return raiseTariffChanged(
    pool,
    {
      meterIds: [meterId],
      version: `${nv.code}:v${nv.version}:${e.from}`,
      name: nv.name,
      effectiveFrom: e.from,
      detail: `${now}${was}`,
      figures: { new: priceFigures(nv), old: old ? priceFigures(old) : null },
    },
    o,
  );
}

/** The household hears the supplier's decision on its tariff-change request (once per request). */
export async function raiseTariffRequestDecided(
  pool: Pool,
  requestId: number,
  o: RuleOptions = {},
): Promise<number[]> {
  const { rows } = await pool.query<{
    meter_id: number;
    serial: string;
    status: string;
    reason: string | null;
    effective_from: string | null;
    to_name: string;
  }>(
    `SELECT r.meter_id, m.serial, r.status, r.reason, to_char(r.effective_from, 'YYYY-MM-DD') AS effective_from, t.name AS to_name
       FROM tariff_change_requests r JOIN meters m ON m.id = r.meter_id JOIN tariffs t ON t.id = r.to_tariff_id
      WHERE r.id = $1 AND r.status IN ('approved', 'declined')`,
    [requestId],
  );
  const r = rows[0];
  if (!r) return [];
  const approved = r.status === 'approved';
  return raiseAlerts(
    pool,
    [
      {
        meterId: r.meter_id,
        type: 'tariff_request',
        dedupeKey: `request:${requestId}`,
        title: approved ? 'Tariff change approved' : 'Tariff change declined',
        message: approved
          ? `Your request to move meter ${r.serial} to "${r.to_name}" was approved: it applies from ${shortDay(r.effective_from!)}.`
          : `Your request to move meter ${r.serial} to "${r.to_name}" was declined. Reason: ${r.reason ?? ''}`,
        figures: {
          requestId,
          status: r.status,
          tariff: r.to_name,
          effectiveFrom: r.effective_from,
          reason: r.reason,
        },
      },
    ],
    o,
  );
}
