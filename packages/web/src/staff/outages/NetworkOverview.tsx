import { useEffect, useMemo, useState } from 'react';
import type { FeedersResponse, FeederStatus, IncidentsResponse, IncidentSummary } from '@kilowire/contract';
import { qs } from '../../api.ts';
import { ErrorMessage, Loading, useApi, useNow } from '../../common.tsx';
import { formatDateTime } from '../../format.ts';
import { Link } from '../../router.tsx';
import { Badge, DataTable, EmptyState, PageHeader, type ColumnDef } from '../../ui/index.ts';
import { duration, IncidentStatusBadge, isOpen, KIND_LABEL, NETWORK_TZ, SlaBadge } from './words.tsx';
import './outages.css';
import { ActivationWindows } from '../firmware/ActivationWindows.tsx'; // #10 D

type Show = 'open' | 'closed' | 'all';
const SHOW_LABEL: Record<Show, string> = { open: 'Open', closed: 'Past', all: 'All' };

/**
 * The network operator's console home: counters, the incidents (open first: what the control
 * room is working on) with their SLA state, and every feeder with its meters off. Refreshes
 * every 10 s, so a new incident shows up without a reload.
 */
export default function NetworkOverviewPage() {
  const now = useNow(10_000);
  const [show, setShow] = useState<Show>('open');
  const [cursor, setCursor] = useState<string | undefined>(undefined);
  const feeders = useApi<FeedersResponse>('/api/network/feeders');
  const incidents = useApi<IncidentsResponse>(`/api/incidents${qs({ state: show, limit: 50, cursor })}`);
  const reloadF = feeders.reload;
  const reloadI = incidents.reload;
  useEffect(() => {
    const t = setInterval(() => {
      reloadF();
      reloadI();
    }, 10_000);
    return () => clearInterval(t);
  }, [reloadF, reloadI]);

  const incidentColumns = useMemo<ColumnDef<IncidentSummary, unknown>[]>(
    () => [
      {
        id: 'incident',
        header: 'Incident',
        accessorKey: 'id',
        cell: ({ row }) => (
          <>
            <Link href={`/incidents/${row.original.id}`}>
              {row.original.kind === 'feeder'
                ? `Feeder ${row.original.feederId}`
                : `Meter ${row.original.serial}`}
            </Link>
            <div className="muted">{KIND_LABEL[row.original.kind]}</div>
          </>
        ),
      },
      {
        id: 'status',
        header: 'Status',
        accessorKey: 'status',
        cell: ({ row }) => <IncidentStatusBadge status={row.original.status} />,
      },
      {
        id: 'sla',
        header: 'SLA',
        accessorKey: 'slaState',
        cell: ({ row }) => <SlaBadge state={row.original.slaState} open={isOpen(row.original.status)} />,
      },
      {
        id: 'off',
        header: 'Meters off',
        accessorKey: 'metersOff',
        cell: ({ row }) => `${row.original.metersOff} of ${row.original.meters}`,
      },
      {
        id: 'since',
        header: 'Power off since',
        accessorKey: 'firstFailureAt',
        cell: ({ row }) => (
          <>
            {formatDateTime(row.original.firstFailureAt, NETWORK_TZ)}
            {isOpen(row.original.status) && (
              <div className="muted">for {duration(now - Date.parse(row.original.firstFailureAt))}</div>
            )}
          </>
        ),
      },
      {
        id: 'target',
        header: 'Restore by',
        accessorKey: 'slaTargetAt',
        cell: ({ row }) => formatDateTime(row.original.slaTargetAt, NETWORK_TZ),
      },
      {
        id: 'etr',
        header: 'Estimate',
        accessorKey: 'etr',
        cell: ({ row }) =>
          row.original.etr ? (
            formatDateTime(row.original.etr, NETWORK_TZ)
          ) : (
            <span className="muted">None yet</span>
          ),
      },
    ],
    [now],
  );

  const feederColumns = useMemo<ColumnDef<FeederStatus, unknown>[]>(
    () => [
      {
        id: 'feeder',
        header: 'Feeder',
        accessorKey: 'name',
        cell: ({ row }) => (
          <>
            {row.original.name}
            {!row.original.name.includes(row.original.id) && <div className="muted">{row.original.id}</div>}
          </>
        ),
      },
      {
        id: 'status',
        header: 'Status',
        accessorKey: 'incidentId',
        cell: ({ row }) =>
          row.original.incidentId !== null ? (
            <Link
              href={`/incidents/${row.original.incidentId}`}
              aria-label={`Outage on ${row.original.name}: open the incident`}
            >
              <Badge tone="bad">Outage</Badge>
            </Link>
          ) : row.original.metersOff > 0 ? (
            <Badge tone="warn">Some meters off</Badge>
          ) : (
            <Badge tone="good">Normal</Badge>
          ),
      },
      { id: 'off', header: 'Meters off', accessorKey: 'metersOff' },
      { id: 'meters', header: 'Meters', accessorKey: 'meters' },
      { id: 'area', header: 'Area', accessorKey: 'areaName' },
    ],
    [],
  );

  const c = feeders.data?.counters;
  return (
    <div className="network-overview">
      <PageHeader
        title="Network"
        description="Outages on your feeders as the meters report them: last gasps, meters gone silent, and power coming back."
        actions={
          <>
            <Link className="btn btn-secondary" href="/sla">
              SLA dashboard
            </Link>
          </>
        }
      />
      {c && (
        <div className="tiles" role="group" aria-label="The network at a glance">
          <div className="tile">
            <p className="tile-label">Open incidents</p>
            <p className="tile-value">{c.openIncidents}</p>
          </div>
          <div className="tile">
            <p className="tile-label">Feeders out</p>
            <p className="tile-value">
              {c.feedersOut} <span className="tile-of">of {c.feeders}</span>
            </p>
          </div>
          <div className="tile">
            <p className="tile-label">Meters off</p>
            <p className="tile-value">{c.metersOff}</p>
          </div>
          <div className={`tile${c.atRisk ? ' tile-warn' : ''}`}>
            <p className="tile-label">At risk</p>
            <p className="tile-value">{c.atRisk}</p>
          </div>
          <div className={`tile${c.breached ? ' tile-bad' : ''}`}>
            <p className="tile-label">Breached</p>
            <p className="tile-value">{c.breached}</p>
          </div>
        </div>
      )}

      <section aria-labelledby="incidents-h">
        <div className="list-head">
          <h2 id="incidents-h">Incidents</h2>
          <div className="segmented" role="group" aria-label="Show incidents">
            {(['open', 'closed', 'all'] as Show[]).map((s) => (
              <button
                key={s}
                type="button"
                aria-pressed={show === s}
                onClick={() => {
                  setShow(s);
                  setCursor(undefined);
                }}
              >
                {SHOW_LABEL[s]}
              </button>
            ))}
          </div>
        </div>
        {incidents.error && <ErrorMessage error={incidents.error} retry={reloadI} />}
        {incidents.loading && !incidents.data && <Loading what="incidents" />}
        {incidents.data && (
          <DataTable
            caption={`Incidents: ${show === 'closed' ? 'restored and closed' : SHOW_LABEL[show].toLowerCase()}, newest first`}
            columns={incidentColumns}
            rows={incidents.data.items}
            rowKey={(r) => String(r.id)}
            busy={incidents.loading}
            empty={
              <EmptyState title={show === 'open' ? 'No open incidents' : 'No incidents here'}>
                {show === 'open'
                  ? 'Power is on everywhere the meters can tell. When meters of a feeder send their last gasp, an incident opens here within seconds.'
                  : 'Choose another view above.'}
              </EmptyState>
            }
          />
        )}
        {incidents.data?.nextCursor && (
          <div className="form-actions">
            <button
              type="button"
              className="btn btn-secondary"
              onClick={() => setCursor(incidents.data?.nextCursor ?? undefined)}
            >
              Older incidents
            </button>
          </div>
        )}
      </section>

      {/* #10 D: suppliers' planned reboots onto new firmware, so they are not taken for outages. */}
      <ActivationWindows tz={NETWORK_TZ} />

      <section aria-labelledby="feeders-h">
        <h2 id="feeders-h">Feeders</h2>
        {feeders.error && <ErrorMessage error={feeders.error} retry={reloadF} />}
        {feeders.loading && !feeders.data && <Loading what="feeders" />}
        {feeders.data && (
          <DataTable
            caption="Feeders, those with an outage first"
            columns={feederColumns}
            rows={feeders.data.items}
            rowKey={(r) => r.id}
            busy={feeders.loading}
            empty={
              <EmptyState title="No feeders yet">Feeders appear here once your areas have them.</EmptyState>
            }
          />
        )}
      </section>
    </div>
  );
}
