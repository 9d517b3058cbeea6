import type { ReactNode } from 'react';
import { formatDateTime } from '../format.ts';

/** One entry of a timeline: what happened, who did it (none: the system) and when. */
export interface TimelineEntry {
  key: string | number;
  title: ReactNode;
  /** The person who did it; null when Kilowire did it. */
  actor: string | null;
  /** ISO time, shown in the timeline's zone. */
  at: string;
  /** Words under the title (a note's text), kept as written. */
  text?: string | null;
  /** The marker's colour: a person's action, a note, or (default) a change of status. */
  kind?: 'action' | 'note';
}

/** A case's or an incident's history, oldest first: a marker on a line for each entry. */
export function Timeline({ entries, tz }: { entries: TimelineEntry[]; tz: string }) {
  return (
    <ol className="timeline">
      {entries.map((e) => (
        <li key={e.key} className={`timeline-entry${e.kind ? ` timeline-entry-${e.kind}` : ''}`}>
          <div className="timeline-entry-head">
            <strong>{e.title}</strong>
            <span className="muted">
              {' '}
              · {e.actor ?? 'Kilowire'} · {formatDateTime(e.at, tz)}
            </span>
          </div>
          {e.text && <p className="timeline-entry-text">{e.text}</p>}
        </li>
      ))}
    </ol>
  );
}
