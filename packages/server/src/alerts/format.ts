import { localParts } from '@kilowire/protocol';

/** Wh as kWh with one decimal: 12400 -> "12.4 kWh". */
export function kwh(wh: number): string {
  return `${(Math.round(wh / 100) / 10).toFixed(1)} kWh`;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** A local calendar day YYYY-MM-DD as "26 Nov". */
export function shortDay(date: string): string {
  const [, m, d] = date.split('-').map(Number) as [number, number, number];
  return `${d} ${MONTHS[m - 1] ?? ''}`;
}

/** An instant in `tz` as { day: "26 Nov", time: "14:05" }. */
export function localStamp(epochS: number, tz: string): { date: string; day: string; time: string } {
  const p = localParts(epochS, tz);
  const date = `${p.year}-${String(p.month).padStart(2, '0')}-${String(p.day).padStart(2, '0')}`;
  return {
    date,
    day: shortDay(date),
    time: `${String(p.hour).padStart(2, '0')}:${String(p.minute).padStart(2, '0')}`,
  };
}

/** Minor currency units as money: 123 GBP -> "£1.23". */
export function money(minor: number, currency = 'GBP'): string {
  const sign = minor < 0 ? '-' : '';
  const abs = Math.abs(minor);
  const sym = currency === 'GBP' ? '£' : currency === 'EUR' ? '€' : `${currency} `;
  return `${sign}${sym}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`;
}

const MINOR_SUFFIX: Record<string, string> = { GBP: 'p', EUR: 'c', USD: '¢' };

/**
 * A price in thousandths of a minor unit, in the minor unit with only the decimals it has:
 * 24500 GBP -> "24.5p", 53350 -> "53.35p", 12000 -> "12p".
 */
export function minorPrice(milli: number, currency = 'GBP'): string {
  const sign = milli < 0 ? '-' : '';
  const abs = Math.abs(milli);
  const frac = String(abs % 1000)
    .padStart(3, '0')
    .replace(/0+$/, '');
  const suffix = MINOR_SUFFIX[currency] ?? ` ${currency}/100`;
  return `${sign}${Math.floor(abs / 1000)}${frac ? `.${frac}` : ''}${suffix}`;
}
