// Tariff prices in words, shared by the household and supplier tariff pages. Prices arrive as
// exact integers: rates and standing charges in thousandths of a minor unit, VAT in basis points.
import type { CommandStatus, TariffStructureName, TariffVersionView } from '@kilowire/contract';

const MINOR_SUFFIX: Record<string, string> = { GBP: 'p', EUR: 'c' };

/** 24500 -> "24.5p", 53350 -> "53.35p", 12000 -> "12p". */
export function minorPrice(milli: number, currency: string): string {
  const frac = String(milli % 1000)
    .padStart(3, '0')
    .replace(/0+$/, '');
  return `${Math.floor(milli / 1000)}${frac ? `.${frac}` : ''}${MINOR_SUFFIX[currency] ?? ` ${currency}/100`}`;
}

/** A price typed in minor units with up to 3 decimals ("24.5") as thousandths (24500). */
export function parseMinorPrice(text: string): number | null {
  const t = text.trim().replace(',', '.');
  if (!/^\d{1,6}(\.\d{1,3})?$/.test(t)) return null;
  const [whole, frac = ''] = t.split('.') as [string, string?];
  return Number(whole) * 1000 + Number(frac.padEnd(3, '0'));
}

/** Thousandths as the text to prefill a price input with: 24500 -> "24.5". */
export function priceToInput(milli: number | null): string {
  if (milli === null) return '';
  return String(milli / 1000);
}

export const STRUCTURE_LABELS: Record<TariffStructureName, string> = {
  flat: 'One price all day',
  two_rate: 'Cheaper at night (two rates)',
  three_band: 'Night, day and peak (three rates)',
};

export const hours = (ws: readonly { from: string; to: string }[]): string =>
  ws.map((w) => `${w.from}–${w.to}`).join(', ');

/** The lines of a version's prices, in plain words. */
export function priceLines(v: TariffVersionView, currency: string): string[] {
  const lines: string[] = [];
  if (v.nightRate === null && v.peakRate === null) {
    lines.push(`${minorPrice(v.dayRate, currency)} per kWh at any time`);
  } else {
    if (v.peakRate !== null)
      lines.push(`Peak ${minorPrice(v.peakRate, currency)} per kWh (${hours(v.peakWindows)})`);
    lines.push(`Day ${minorPrice(v.dayRate, currency)} per kWh`);
    if (v.nightRate !== null)
      lines.push(`Night ${minorPrice(v.nightRate, currency)} per kWh (${hours(v.nightWindows)})`);
  }
  lines.push(`Standing charge ${minorPrice(v.standingMilliPerDay, currency)} a day`);
  if (v.exportRate !== null) lines.push(`Export paid at ${minorPrice(v.exportRate, currency)} per kWh`);
  lines.push(`Prices before VAT; VAT of ${v.vatBp / 100} % is added`);
  return lines;
}

/** Where a tariff.set is in the command lifecycle, in words for the household and staff. */
export const TARIFF_COMMAND_WORDS: Record<CommandStatus, string> = {
  requested: 'The new prices are being prepared for the meter.',
  awaiting_approval: 'The new prices are waiting for approval.',
  queued: 'The new prices are waiting to reach the meter.',
  sent: 'The new prices were sent; waiting for the meter to confirm.',
  ok: 'The meter has confirmed the prices.',
  rejected: 'The meter refused the prices.',
  failed: 'The meter could not apply the prices.',
  expired: 'The prices did not reach the meter in time; they will be sent again when changed.',
  cancelled: 'Sending the prices was cancelled.',
};

const dayFmt = new Intl.DateTimeFormat('en-GB', {
  day: 'numeric',
  month: 'long',
  year: 'numeric',
  timeZone: 'UTC',
});
/** "1 December 2026" from YYYY-MM-DD. */
export const longDay = (d: string): string => dayFmt.format(new Date(`${d}T00:00:00Z`));

/** The version after the one in force today (a price change already decided), if any. */
export function upcomingVersion<V extends { effectiveFrom: string }>(
  versions: readonly V[],
  current: V | null,
): V | null {
  return versions.find((v) => (current ? v.effectiveFrom > current.effectiveFrom : true)) ?? null;
}
