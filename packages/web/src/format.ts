// Pure formatting helpers (unit-tested in test/format.test.ts). Locale is en-GB throughout.

import { normaliseMobile } from '@kilowire/contract/phone';

const LOCALE = 'en-GB';

const kwh1 = new Intl.NumberFormat(LOCALE, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const kwh2 = new Intl.NumberFormat(LOCALE, { minimumFractionDigits: 2, maximumFractionDigits: 2 });

/** Wh (integer) as a kWh number string with `digits` decimals (1 or 2): 6240 -> "6.2". */
export function kwhNumber(wh: number, digits: 1 | 2 = 1): string {
  return (digits === 1 ? kwh1 : kwh2).format(wh / 1000);
}

/** Wh as "6.2 kWh". */
export function formatKwh(wh: number, digits: 1 | 2 = 1): string {
  return `${kwhNumber(wh, digits)} kWh`;
}

/** Whole percent of part in total, or null when total is not positive. */
export function percentOf(part: number, total: number): number | null {
  if (!(total > 0)) return null;
  return Math.round((part / total) * 100);
}

/** "6.2 of 10.0 kWh (62 %)" */
export function usageAgainstLimit(wh: number, limitWh: number): string {
  const pct = percentOf(wh, limitWh);
  return `${kwhNumber(wh)} of ${kwhNumber(limitWh)} kWh${pct === null ? '' : ` (${pct} %)`}`;
}

/** Money from integer minor units (pence for GBP): 2000 -> "£20.00"; -150 -> "-£1.50". */
export function formatMoney(minor: number, currency = 'GBP'): string {
  const fmt = new Intl.NumberFormat(LOCALE, { style: 'currency', currency });
  const digits = fmt.resolvedOptions().maximumFractionDigits ?? 2;
  return fmt.format(minor / 10 ** digits);
}

/** "just now", "1 min ago", "14 min ago", "3 h ago", "1 day ago", "5 days ago". */
export function relativeTime(thenIso: string, nowMs: number): string {
  const then = Date.parse(thenIso);
  if (Number.isNaN(then)) return 'unknown';
  const s = Math.floor((nowMs - then) / 1000);
  if (s < 60) return 'just now';
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h} h ago`;
  const d = Math.floor(h / 24);
  return d === 1 ? '1 day ago' : `${d} days ago`;
}

/** "26 Nov 2026, 11:11 GMT" in the given IANA zone. */
export function formatDateTime(iso: string, tz: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return new Intl.DateTimeFormat(LOCALE, {
    day: 'numeric',
    month: 'short',
    year: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    timeZone: tz,
    timeZoneName: 'short',
  }).format(d);
}

/** Parse a kWh amount typed by a person ("10", "7.5", " 2,5 ") into integer Wh. */
export function parseKwhInput(text: string): { ok: true; wh: number } | { ok: false; message: string } {
  const t = text.trim().replace(',', '.');
  if (!/^\d{1,6}(\.\d{1,3})?$/.test(t)) {
    return { ok: false, message: 'Enter a number of kWh, for example 10 or 7.5 (up to 3 decimals).' };
  }
  const wh = Math.round(Number(t) * 1000);
  if (wh <= 0) return { ok: false, message: 'Enter an amount greater than 0 kWh.' };
  return { ok: true, wh };
}

/** Wh as the text to prefill a kWh input with: 7500 -> "7.5", 10000 -> "10". */
export function whToInput(wh: number | null): string {
  if (wh === null) return '';
  return String(Math.round(wh) / 1000);
}

/**
 * A typed mobile as E.164 ("07700 900123" -> "+447700900123"), or null: the same function
 * the API's profile schema applies, so the form never refuses what the server would accept.
 */
export function normaliseE164(text: string): string | null {
  return normaliseMobile(text);
}

/** Parse an amount of money typed by a person ("5", "2.50", "£3") into minor units (2 decimals). */
export function parseMoneyInput(text: string): { ok: true; minor: number } | { ok: false; message: string } {
  const t = text.trim().replace(/^£\s*/, '').replace(',', '.');
  if (!/^\d{1,5}(\.\d{1,2})?$/.test(t)) {
    return { ok: false, message: 'Enter an amount in pounds, for example 5 or 2.50.' };
  }
  const [whole, frac = ''] = t.split('.') as [string, string?];
  return { ok: true, minor: Number(whole) * 100 + Number(frac.padEnd(2, '0')) };
}

/** Minor units as the text to prefill a money input with: 250 -> "2.50", 500 -> "5". */
export function minorToInput(minor: number): string {
  return minor % 100 === 0 ? String(minor / 100) : (minor / 100).toFixed(2);
}

const hhmmIn = (tz: string) =>
  new Intl.DateTimeFormat(LOCALE, { hour: '2-digit', minute: '2-digit', timeZone: tz, hourCycle: 'h23' });

/**
 * "Data up to 14:30, catching up" when the newest stored reading ends more than two
 * intervals ago (a meter sends each interval shortly after it ends; after a restart or an
 * outage it sends the backlog): the figures are not wrong, only not complete yet. Null when
 * the data is current. Readings older than a day show the date too.
 */
export function catchingUpText(
  lastReadingAt: string | null,
  intervalS: number,
  nowMs: number,
  tz: string,
): string | null {
  if (lastReadingAt === null) return 'No readings received from your meter yet.';
  const at = Date.parse(lastReadingAt);
  if (Number.isNaN(at) || nowMs - at <= 2 * intervalS * 1000) return null;
  const time = hhmmIn(tz).format(at);
  const day = (ms: number) => new Intl.DateTimeFormat('en-CA', { timeZone: tz }).format(ms);
  const when =
    day(at) === day(nowMs)
      ? time
      : `${new Intl.DateTimeFormat(LOCALE, { day: 'numeric', month: 'short', timeZone: tz }).format(at)}, ${time}`;
  return `Data up to ${when}, catching up`;
}
