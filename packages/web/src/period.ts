// The statistics page's periods (a day, a month or a year of the meter's local calendar) and
// their labels. Calendar arithmetic itself is the protocol package's one calendar module.
import { addDays, addMonths, daysInMonth } from '@kilowire/protocol/calendar';

export type View = 'day' | 'month' | 'year';

export interface Period {
  view: View;
  /** First local day of the period, YYYY-MM-DD. */
  from: string;
  /** Last local day of the period (inclusive), YYYY-MM-DD. */
  to: string;
  /** Human label: "Sunday 25 October 2026", "October 2026", "2026". */
  label: string;
}

const pad = (n: number): string => String(n).padStart(2, '0');

const dayLabel = new Intl.DateTimeFormat('en-GB', {
  weekday: 'long',
  day: 'numeric',
  month: 'long',
  year: 'numeric',
  timeZone: 'UTC',
});
const monthLabel = new Intl.DateTimeFormat('en-GB', { month: 'long', year: 'numeric', timeZone: 'UTC' });

export function periodOf(view: View, date: string): Period {
  const y = Number(date.slice(0, 4));
  const m = Number(date.slice(5, 7));
  switch (view) {
    case 'day':
      return { view, from: date, to: date, label: dayLabel.format(new Date(`${date}T00:00:00Z`)) };
    case 'month': {
      const from = `${y}-${pad(m)}-01`;
      return {
        view,
        from,
        to: `${y}-${pad(m)}-${pad(daysInMonth(y, m))}`,
        label: monthLabel.format(new Date(`${from}T00:00:00Z`)),
      };
    }
    case 'year':
      return { view, from: `${y}-01-01`, to: `${y}-12-31`, label: String(y) };
  }
}

/** The anchor date of the period `dir` periods away (-1 previous, +1 next). */
export function shiftDate(view: View, date: string, dir: number): string {
  switch (view) {
    case 'day':
      return addDays(date, dir);
    case 'month':
      return addMonths(date, dir);
    case 'year':
      return `${Number(date.slice(0, 4)) + dir}-01-01`;
  }
}

/** The period before `p` (for comparisons). */
export function previousPeriod(p: Period): Period {
  return periodOf(p.view, shiftDate(p.view, p.from, -1));
}

/** Does the period contain `today` (so it is still in progress)? */
export function contains(p: Period, today: string): boolean {
  return p.from <= today && today <= p.to;
}
