/** Words and numbers shared by the network-charges pages. */

/** "2026-03" -> "March 2026". */
export function monthLabel(m: string): string {
  return new Intl.DateTimeFormat('en-GB', { month: 'long', year: 'numeric', timeZone: 'UTC' }).format(
    new Date(`${m.slice(0, 7)}-01T00:00:00Z`),
  );
}

/** Last calendar month, YYYY-MM: the month usually invoiced. */
export function lastMonth(): string {
  const d = new Date();
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - 1, 1)).toISOString().slice(0, 7);
}

/** Thousandths of a minor unit as pence with only the decimals it has: 4200 -> "4.2p". */
export function milliPence(milli: number, currency = 'GBP'): string {
  const unit = currency === 'GBP' ? 'p' : currency === 'EUR' ? 'c' : ` ${currency}/100`;
  const whole = Math.floor(milli / 1000);
  const frac = String(milli % 1000)
    .padStart(3, '0')
    .replace(/0+$/, '');
  return `${whole}${frac ? `.${frac}` : ''}${unit}`;
}

/** A price typed in pence ("4.2", "12.345") as thousandths of a penny; null when not a price. */
export function parseMilli(text: string): number | null {
  const t = text.trim().replace(/p$/, '');
  if (!/^\d{1,6}(\.\d{1,3})?$/.test(t)) return null;
  const [w, f = ''] = t.split('.') as [string, string?];
  return Number(w) * 1000 + Number(f.padEnd(3, '0'));
}

/** An amount typed in pounds ("1234.56", "£1,234") as minor units; null when not an amount. */
export function parsePounds(text: string): number | null {
  const t = text.trim().replace(/^£\s*/, '').replace(/,/g, '');
  if (!/^\d{1,9}(\.\d{1,2})?$/.test(t)) return null;
  const [w, f = ''] = t.split('.') as [string, string?];
  const v = Number(w) * 100 + Number(f.padEnd(2, '0'));
  return v > 0 ? v : null;
}

/** Wh as kWh for people: 1234567 -> "1,234.6 kWh". */
export function kwh(wh: number): string {
  return `${(wh / 1000).toLocaleString('en-GB', { maximumFractionDigits: 1, minimumFractionDigits: 1 })} kWh`;
}

export const KIND_LABEL = {
  invoice: 'Invoice',
  credit_note: 'Credit note',
  debit_note: 'Debit note',
} as const;
