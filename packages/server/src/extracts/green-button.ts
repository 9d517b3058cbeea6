import { addDays, daysInMonth, localMidnight, tzOffsetS } from '@kilowire/protocol';
import type { Q } from '../db/pool.ts';

/**
 * Green Button "Download My Data": an ESPI (NAESB REQ.21) Atom feed of one meter's interval
 * readings. The shape: a UsagePoint entry, its LocalTimeParameters (for DST), one
 * MeterReading with its ReadingType (Wh: uom 72, powerOfTenMultiplier 0, the meter's
 * interval length), then one IntervalBlock per local day holding an IntervalReading per
 * interval received (start in epoch seconds, duration, value in Wh). Estimated intervals
 * carry a ReadingQuality (9: estimated by linear interpolation, which is how VEE fills
 * gaps from the register snapshots). Streamed a few days at a time.
 */

const ATOM = 'http://www.w3.org/2005/Atom';
const ESPI = 'http://naesb.org/espi';
/** ESPI QualityOfReading: estimated using linear interpolation. */
const QUALITY_ESTIMATED = 9;
/** Days per database read while streaming. */
const DAYS_PER_READ = 14;

export interface GreenButtonMeter {
  id: number;
  serial: string;
  tz: string;
  intervalS: number;
  household: string | null;
}

const esc = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/**
 * ESPI DstRuleType (a 32-bit hex word): month (bits 28-31), operator (25-27: 1 = the
 * weekday on or after the day of month, 2 = on or before), day of month (20-24), weekday
 * (17-19, Monday = 1), hour (12-16), seconds (0-11), at the local standard time of the change.
 */
function dstRule(epochS: number, offsetBeforeS: number): string {
  const local = new Date((epochS + offsetBeforeS) * 1000);
  const month = local.getUTCMonth() + 1;
  const day = local.getUTCDate();
  const dim = daysInMonth(local.getUTCFullYear(), month);
  const weekday = ((local.getUTCDay() + 6) % 7) + 1;
  // "Last Sunday" rules (Europe) say "on or before the month's last day"; "second Sunday"
  // rules (North America) say "on or after the 8th".
  const last = day + 7 > dim;
  const op = last ? 2 : 1;
  const dom = last ? dim : Math.floor((day - 1) / 7) * 7 + 1;
  const secs = local.getUTCHours() * 3600 + local.getUTCMinutes() * 60 + local.getUTCSeconds();
  const hour = Math.floor(secs / 3600);
  const word =
    ((month << 28) | (op << 25) | (dom << 20) | (weekday << 17) | (hour << 12) | (secs % 3600)) >>> 0;
  return word.toString(16).toUpperCase().padStart(8, '0');
}

/** The zone's standard offset, DST offset and DST rules for the year of `fromS`. */
export function localTimeParameters(
  tz: string,
  fromS: number,
): {
  tzOffset: number;
  dstOffset: number;
  dstStartRule: string;
  dstEndRule: string;
} {
  const year = new Date(fromS * 1000).getUTCFullYear();
  const jan = tzOffsetS(Date.UTC(year, 0, 1) / 1000, tz);
  const jul = tzOffsetS(Date.UTC(year, 6, 1) / 1000, tz);
  if (jan === jul) return { tzOffset: jan, dstOffset: 0, dstStartRule: '00000000', dstEndRule: '00000000' };
  const std = Math.min(jan, jul);
  const dst = Math.max(jan, jul);
  // Find the two changes of the year, to the hour.
  const changes: { at: number; to: number; before: number }[] = [];
  let prev = jan;
  for (let t = Date.UTC(year, 0, 1) / 1000; t < Date.UTC(year + 1, 0, 1) / 1000; t += 3600) {
    const off = tzOffsetS(t, tz);
    if (off !== prev) changes.push({ at: t, to: off, before: prev });
    prev = off;
  }
  const start = changes.find((c) => c.to === dst);
  const end = changes.find((c) => c.to === std);
  return {
    tzOffset: std,
    dstOffset: dst - std,
    // Both rules in local standard time, as ESPI expects.
    dstStartRule: start ? dstRule(start.at, std) : '00000000',
    dstEndRule: end ? dstRule(end.at, std) : '00000000',
  };
}

function entry(
  id: string,
  title: string,
  self: string,
  related: string[],
  content: string,
  updated: string,
): string {
  const links = [
    `<link rel="self" href="${esc(self)}"/>`,
    ...related.map((r) => `<link rel="related" href="${esc(r)}"/>`),
  ];
  return `<entry><id>${esc(id)}</id><title>${esc(title)}</title>${links.join('')}<updated>${updated}</updated><content>${content}</content></entry>\n`;
}

/**
 * The feed for local days [from, to] (inclusive) in the meter's time zone, as chunks of
 * text. Only intervals that have a reading appear (a missing one is not a zero).
 */
export async function* greenButtonFeed(
  q: Q,
  m: GreenButtonMeter,
  from: string,
  to: string,
  now: Date = new Date(),
): AsyncGenerator<string> {
  const updated = now.toISOString();
  const base = `urn:kilowire:meter:${m.serial}`;
  const href = `/espi/1_1/resource/UsagePoint/${encodeURIComponent(m.serial)}`;
  const startS = localMidnight(from, m.tz);
  const endS = localMidnight(addDays(to, 1), m.tz);
  const ltp = localTimeParameters(m.tz, startS);
  yield (
    `<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="${ATOM}" xmlns:espi="${ESPI}">\n` +
    `<id>${esc(`${base}:feed:${from}:${to}`)}</id><title>${esc(`Green Button data, meter ${m.serial}, ${from} to ${to}`)}</title>` +
    `<updated>${updated}</updated><link rel="self" href="${esc(`/api/meters/${m.serial}/green-button?from=${from}&to=${to}`)}"/>\n`
  );
  yield entry(
    `${base}:usage-point`,
    m.household ? `Electricity, ${m.household}` : `Electricity, meter ${m.serial}`,
    href,
    [`${href}/MeterReading`, `/espi/1_1/resource/LocalTimeParameters/${encodeURIComponent(m.serial)}`],
    // ServiceCategory kind 0 = electricity.
    `<espi:UsagePoint><espi:ServiceCategory><espi:kind>0</espi:kind></espi:ServiceCategory></espi:UsagePoint>`,
    updated,
  );
  yield entry(
    `${base}:local-time`,
    `Local time: ${m.tz}`,
    `/espi/1_1/resource/LocalTimeParameters/${encodeURIComponent(m.serial)}`,
    [],
    `<espi:LocalTimeParameters><espi:dstEndRule>${ltp.dstEndRule}</espi:dstEndRule><espi:dstOffset>${ltp.dstOffset}</espi:dstOffset>` +
      `<espi:dstStartRule>${ltp.dstStartRule}</espi:dstStartRule><espi:tzOffset>${ltp.tzOffset}</espi:tzOffset></espi:LocalTimeParameters>`,
    updated,
  );
  yield entry(
    `${base}:meter-reading`,
    'Electricity consumption',
    `${href}/MeterReading/1`,
    [
      `${href}/MeterReading/1/IntervalBlock`,
      `/espi/1_1/resource/ReadingType/${encodeURIComponent(m.serial)}`,
    ],
    '<espi:MeterReading/>',
    updated,
  );
  // accumulationBehaviour 4 = deltaData, commodity 1 = electricity, flowDirection 1 = forward
  // (import), kind 12 = energy, uom 72 = Wh, powerOfTenMultiplier 0 (values are whole Wh).
  yield entry(
    `${base}:reading-type`,
    'Energy delivered (Wh)',
    `/espi/1_1/resource/ReadingType/${encodeURIComponent(m.serial)}`,
    [],
    `<espi:ReadingType><espi:accumulationBehaviour>4</espi:accumulationBehaviour><espi:commodity>1</espi:commodity>` +
      `<espi:currency>826</espi:currency><espi:dataQualifier>12</espi:dataQualifier><espi:flowDirection>1</espi:flowDirection>` +
      `<espi:intervalLength>${m.intervalS}</espi:intervalLength><espi:kind>12</espi:kind><espi:phase>769</espi:phase>` +
      `<espi:powerOfTenMultiplier>0</espi:powerOfTenMultiplier><espi:timeAttribute>0</espi:timeAttribute><espi:uom>72</espi:uom></espi:ReadingType>`,
    updated,
  );
  for (let day = from; day <= to; day = addDays(day, DAYS_PER_READ)) {
    const last = addDays(day, DAYS_PER_READ - 1) < to ? addDays(day, DAYS_PER_READ - 1) : to;
    const a = localMidnight(day, m.tz);
    const b = Math.min(localMidnight(addDays(last, 1), m.tz), endS);
    const { rows } = await q.query<{ t: number; wh: number; flags: number }>(
      `SELECT extract(epoch FROM ts)::bigint AS t, wh, flags FROM interval_readings
        WHERE meter_id = $1 AND ts >= to_timestamp($2) AND ts < to_timestamp($3) ORDER BY ts`,
      [m.id, a, b],
    );
    let i = 0;
    for (let d = day; d <= last; d = addDays(d, 1)) {
      const ds = localMidnight(d, m.tz);
      const de = localMidnight(addDays(d, 1), m.tz);
      const readings: string[] = [];
      while (i < rows.length && rows[i]!.t < de) {
        const r = rows[i++]!;
        if (r.t < ds) continue;
        const quality =
          r.flags & 1
            ? `<espi:ReadingQuality><espi:quality>${QUALITY_ESTIMATED}</espi:quality></espi:ReadingQuality>`
            : '';
        readings.push(
          `<espi:IntervalReading>${quality}<espi:timePeriod><espi:duration>${m.intervalS}</espi:duration><espi:start>${r.t}</espi:start></espi:timePeriod><espi:value>${r.wh}</espi:value></espi:IntervalReading>`,
        );
      }
      if (!readings.length) continue;
      yield entry(
        `${base}:interval-block:${d}`,
        `Intervals of ${d}`,
        `${href}/MeterReading/1/IntervalBlock/${d}`,
        [],
        `<espi:IntervalBlock><espi:interval><espi:duration>${de - ds}</espi:duration><espi:start>${ds}</espi:start></espi:interval>${readings.join('')}</espi:IntervalBlock>`,
        updated,
      );
    }
  }
  yield '</feed>\n';
}
