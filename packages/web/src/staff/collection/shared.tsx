import type { CollectionReason } from '@kilowire/contract';
import { Badge, type Tone } from '../../ui/index.ts';

export const REASON_LABEL: Record<CollectionReason, string> = {
  cutoff: 'At the cut-off',
  late_data: 'Late data',
  manual: 'Collected by hand',
};

/** A day's completeness in a word and a number: below the operator's threshold is a warning. */
export function CompleteBadge({ pct, threshold }: { pct: number | null; threshold: number }) {
  if (pct === null) return <Badge>No meters</Badge>;
  const tone: Tone = pct >= threshold ? 'good' : pct >= threshold - 10 ? 'warn' : 'bad';
  const word = pct >= threshold ? 'Complete' : 'Incomplete';
  return (
    <Badge tone={tone}>
      {word} {pct.toLocaleString('en-GB', { maximumFractionDigits: 1 })}%
    </Badge>
  );
}

/** Short words for a version's reason, where a table column is narrow. */
export const REASON_SHORT: Record<CollectionReason, string> = {
  cutoff: 'cut-off',
  late_data: 'late data',
  manual: 'by hand',
};

export const nf = (n: number) => n.toLocaleString('en-GB');
/** "1 meter", "3 meters". */
export const meters = (n: number) => `${nf(n)} meter${n === 1 ? '' : 's'}`;
export const kwh = (wh: number) =>
  `${(wh / 1000).toLocaleString('en-GB', { minimumFractionDigits: 1, maximumFractionDigits: 1 })} kWh`;

/** "Sun 25 Oct 2026" for a calendar date (no time zone shift: it is a plain date). */
export function dayLabel(day: string): string {
  return new Intl.DateTimeFormat('en-GB', {
    weekday: 'short',
    day: 'numeric',
    month: 'short',
    year: 'numeric',
    timeZone: 'UTC',
  }).format(new Date(`${day}T12:00:00Z`));
}
