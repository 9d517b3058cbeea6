import type { FwMeterState } from '@kilowire/contract';
import { STATE_GROUPS } from './words.ts';

type Counts = Partial<Record<FwMeterState, number>>;

/** Meters per group of states (waiting, downloading, verified, confirmed, failed, cancelled). */
export function groupCounts(counts: Counts): { key: string; label: string; n: number }[] {
  return STATE_GROUPS.map((g) => ({
    key: g.key,
    label: g.label,
    n: g.states.reduce((s, st) => s + (counts[st] ?? 0), 0),
  }));
}

/** "3 confirmed, 1 failed, 2 waiting" — what the bar shows, in words (for the bar's label). */
export function countsText(counts: Counts, total: number): string {
  const parts = groupCounts(counts)
    .filter((g) => g.n > 0)
    .map((g) => `${g.n} ${g.label.toLowerCase()}`);
  return parts.length ? `${parts.join(', ')} of ${total} meter${total === 1 ? '' : 's'}` : 'No meters';
}

/**
 * A campaign's progress as one stacked bar: a segment per group of states, each with its own
 * colour and fill pattern; the words are the bar's label and (with `legend`) written beside it,
 * so nobody needs the colours.
 */
export function StateBar({
  counts,
  total,
  legend = false,
}: {
  counts: Counts;
  total: number;
  legend?: boolean;
}) {
  const groups = groupCounts(counts);
  return (
    <div className="fw-progress">
      <div className="fw-bar" role="img" aria-label={countsText(counts, total)}>
        {total > 0 &&
          groups
            .filter((g) => g.n > 0)
            .map((g) => (
              <span
                key={g.key}
                className={`fw-seg fw-seg-${g.key}`}
                style={{ width: `${(g.n / total) * 100}%` }}
              />
            ))}
      </div>
      {legend ? (
        <ul className="fw-legend">
          {groups.map((g) => (
            <li key={g.key}>
              <span className={`fw-swatch fw-seg-${g.key}`} aria-hidden="true" />
              {g.label} <strong>{g.n}</strong>
            </li>
          ))}
        </ul>
      ) : (
        <p className="fw-bar-text">{countsText(counts, total)}</p>
      )}
    </div>
  );
}
