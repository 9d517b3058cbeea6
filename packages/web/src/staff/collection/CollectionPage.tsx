import { useMemo } from 'react';
import type { CollectionArea, CollectionAreasResponse, CollectionDaySummary } from '@kilowire/contract';
import { addDays, localTimeToEpoch } from '@kilowire/protocol/calendar';
import { ErrorMessage, Loading, useApi, useNow } from '../../common.tsx';
import { formatDateTime } from '../../format.ts';
import { Link } from '../../router.tsx';
import { Badge, DataTable, EmptyState, PageHeader, type ColumnDef } from '../../ui/index.ts';
import { CompleteBadge, dayLabel, kwh, nf, REASON_SHORT } from './shared.tsx';
import './collection.css';

const DAYS = 14;

/** When day D of the area is collected: D+1 at the cut-off, in the area's time zone. */
function dueAt(a: CollectionArea, day: string): number {
  return localTimeToEpoch(addDays(day, 1), a.cutoff, a.tz) * 1000;
}

function AreaDays({ area, now }: { area: CollectionArea; now: number }) {
  const columns = useMemo<ColumnDef<CollectionDaySummary>[]>(
    () => [
      {
        id: 'day',
        header: 'Day',
        enableSorting: false,
        cell: ({ row }) =>
          // A day past its cut-off opens even when not collected: operator admins collect it there.
          row.original.latest || dueAt(area, row.original.day) <= now ? (
            <Link href={`/collection/${encodeURIComponent(area.areaId)}/${row.original.day}`}>
              {dayLabel(row.original.day)}
            </Link>
          ) : (
            dayLabel(row.original.day)
          ),
      },
      {
        id: 'complete',
        header: 'Completeness',
        enableSorting: false,
        cell: ({ row }) => {
          const l = row.original.latest;
          if (l) return <CompleteBadge pct={l.completePct} threshold={area.completenessAlertPct} />;
          const due = dueAt(area, row.original.day);
          // Past its cut-off and not collected: the schedule has not got to it yet, or the
          // day is older than the schedule catches up after downtime (collected by hand only).
          return due > now ? (
            <Badge tone="info">Due {formatDateTime(new Date(due).toISOString(), area.tz)}</Badge>
          ) : (
            <Badge>Not collected</Badge>
          );
        },
      },
      {
        id: 'missing',
        header: 'Meters missing',
        enableSorting: false,
        cell: ({ row }) => {
          const l = row.original.latest;
          return l ? `${nf(l.meters - l.completeMeters)} of ${nf(l.meters)}` : '—';
        },
      },
      {
        id: 'kwh',
        header: 'Energy',
        enableSorting: false,
        cell: ({ row }) => (row.original.latest ? kwh(row.original.latest.wh) : '—'),
      },
      {
        id: 'estimated',
        header: 'Estimated',
        enableSorting: false,
        cell: ({ row }) => (row.original.latest ? nf(row.original.latest.estimated) : '—'),
      },
      {
        id: 'version',
        header: 'Version',
        enableSorting: false,
        cell: ({ row }) => {
          const l = row.original.latest;
          if (!l) return '—';
          return (
            <>
              v{l.version} <span className="muted">({REASON_SHORT[l.reason]})</span>
            </>
          );
        },
      },
    ],
    [area, now],
  );
  const latest = area.days.find((d) => d.latest)?.latest ?? null;
  const latestDay = area.days.find((d) => d.latest)?.day;
  const headingId = `area-${area.areaId}`;
  return (
    <section className="card collection-area" aria-labelledby={headingId}>
      <h2 id={headingId}>{area.name}</h2>
      <p className="muted">
        Time zone {area.tz} · each day is collected at {area.cutoff} the next morning · alert below{' '}
        {area.completenessAlertPct}% complete
      </p>
      {latest && latestDay && (
        <div className="tiles" role="group" aria-label={`${area.name}, ${dayLabel(latestDay)} at a glance`}>
          <div className="tile">
            <p className="tile-label">Latest day collected</p>
            <p className="tile-value">{dayLabel(latestDay)}</p>
          </div>
          <div className="tile">
            <p className="tile-label">Complete</p>
            <p className="tile-value">{latest.completePct === null ? '—' : `${latest.completePct}%`}</p>
          </div>
          <div className="tile">
            <p className="tile-label">Meters missing</p>
            <p className="tile-value">{nf(latest.meters - latest.completeMeters)}</p>
          </div>
          <div className="tile">
            <p className="tile-label">Energy</p>
            <p className="tile-value">{kwh(latest.wh)}</p>
          </div>
        </div>
      )}
      <DataTable
        caption={`${area.name}: the last ${DAYS} days`}
        columns={columns}
        rows={area.days}
        rowKey={(d) => d.day}
        empty={<EmptyState title="No days yet">Days appear here once the area has meters.</EmptyState>}
      />
    </section>
  );
}

/**
 * The network operator's daily collection: per area, the last days with how complete each
 * is, how many meters are missing and the energy collected; each day opens its own page
 * (versions, totals per supplier and feeder, missing meters, the suppliers' files).
 */
export default function CollectionPage() {
  const now = useNow();
  const data = useApi<CollectionAreasResponse>(`/api/collection/areas?days=${DAYS}`);
  return (
    <div className="collection">
      <PageHeader
        title="Daily collection"
        description="Each meter's day, collected from its half-hours once the data has settled. Late data makes a new version; earlier versions are kept."
      />
      {data.error ? (
        <ErrorMessage error={data.error} retry={data.reload} />
      ) : !data.data ? (
        <Loading what="the collection" />
      ) : data.data.areas.length === 0 ? (
        <EmptyState title="No network areas yet">
          <p>Areas appear here once the platform administrator sets them up for your organisation.</p>
        </EmptyState>
      ) : (
        data.data.areas.map((a) => <AreaDays key={a.areaId} area={a} now={now} />)
      )}
    </div>
  );
}
