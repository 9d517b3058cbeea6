import { useMemo, useState } from 'react';
import type { Meter, MeterList, MeterListQuery, RelayState } from '@kilowire/contract';
import { qs } from '../../api.ts';
import { ErrorMessage, Loading, useApi, useNow, useSession } from '../../common.tsx';
import { formatDateTime, relativeTime } from '../../format.ts';
import { Badge, DataTable, EmptyState, PageHeader, type ColumnDef, type Tone } from '../../ui/index.ts';
import './network.css';

const PAGE = 50;

const RELAY: Record<RelayState, { label: string; tone: Tone }> = {
  connected: { label: 'Connected', tone: 'good' },
  disconnected: { label: 'Disconnected', tone: 'bad' },
  armed: { label: 'Armed', tone: 'warn' },
};

/** A meter not heard from for this long is flagged: it normally reports every interval. */
const QUIET_MS = 2 * 3600_000;

/**
 * The network operator's meters: every meter in the operator's areas (GET /api/meters
 * scopes the list), in serial order, a page at a time, with when each was last heard from
 * and its relay state. Operators run the wires: no prices and no households here.
 */
export default function NetworkMetersPage() {
  const { me } = useSession();
  const now = useNow();
  // Cursors of the pages before this one: "Previous" pops, "Next" pushes.
  const [trail, setTrail] = useState<(string | undefined)[]>([]);
  const [cursor, setCursor] = useState<string | undefined>(undefined);
  const list = useApi<MeterList>(`/api/meters${qs<MeterListQuery>({ limit: PAGE, cursor })}`);
  const page = trail.length + 1;

  const columns = useMemo<ColumnDef<Meter>[]>(
    () => [
      { id: 'serial', header: 'Serial', accessorKey: 'serial', enableSorting: false },
      { id: 'area', header: 'Area', accessorFn: (m) => m.area.name, enableSorting: false },
      { id: 'supplier', header: 'Supplier', accessorFn: (m) => m.supplier.name, enableSorting: false },
      {
        id: 'relay',
        header: 'Relay',
        enableSorting: false,
        cell: ({ row }) => {
          const r = row.original.relay;
          return r ? <Badge tone={RELAY[r].tone}>{RELAY[r].label}</Badge> : <Badge>Not reported</Badge>;
        },
      },
      {
        id: 'lastSeen',
        header: 'Last seen',
        enableSorting: false,
        cell: ({ row }) => {
          const at = row.original.lastSeenAt;
          if (!at) return <Badge tone="warn">Never</Badge>;
          const quiet = now - Date.parse(at) > QUIET_MS;
          return (
            <>
              <time dateTime={at} title={formatDateTime(at, row.original.tz)}>
                {relativeTime(at, now)}
              </time>
              {quiet && <Badge tone="warn">Quiet</Badge>}
            </>
          );
        },
      },
      {
        id: 'firmware',
        header: 'Firmware',
        enableSorting: false,
        cell: ({ row }) => row.original.firmwareVersion ?? <span className="muted">Unknown</span>,
      },
    ],
    [now],
  );

  const items = list.data?.items ?? [];
  const quiet = items.filter((m) => !m.lastSeenAt || now - Date.parse(m.lastSeenAt) > QUIET_MS).length;
  const off = items.filter((m) => m.relay === 'disconnected').length;

  return (
    <div className="network-meters">
      <PageHeader
        title="Meters"
        heading="Meters on your network"
        description={`${me.organisation?.name ?? 'Your organisation'}: every meter in your areas, in serial order.`}
      />
      {list.error ? (
        <ErrorMessage error={list.error} retry={list.reload} />
      ) : !list.data && list.loading ? (
        <Loading what="meters" />
      ) : (
        <>
          {items.length > 0 && (
            <div className="tiles" aria-label="This page at a glance" role="group">
              <div className="tile">
                <p className="tile-label">Meters on this page</p>
                <p className="tile-value">{items.length}</p>
              </div>
              <div className="tile">
                <p className="tile-label">Quiet for over 2 hours</p>
                <p className="tile-value">{quiet}</p>
              </div>
              <div className="tile">
                <p className="tile-label">Supply disconnected</p>
                <p className="tile-value">{off}</p>
              </div>
            </div>
          )}
          <DataTable
            caption={`Meters, page ${page}`}
            columns={columns}
            rows={items}
            rowKey={(m) => m.serial}
            busy={list.loading}
            empty={
              <EmptyState title="No meters in your areas yet">
                <p>
                  Meters appear here as soon as the platform administrator registers them on your feeders.
                </p>
              </EmptyState>
            }
          />
          {(page > 1 || list.data?.nextCursor) && (
            <nav className="pager" aria-label="Pages of meters">
              <p className="muted">Page {page}</p>
              <div className="form-actions">
                <button
                  type="button"
                  className="btn btn-secondary btn-small"
                  disabled={page === 1 || list.loading}
                  onClick={() => {
                    setCursor(trail[trail.length - 1]);
                    setTrail((t) => t.slice(0, -1));
                  }}
                >
                  Previous page
                </button>
                <button
                  type="button"
                  className="btn btn-secondary btn-small"
                  disabled={!list.data?.nextCursor || list.loading}
                  onClick={() => {
                    setTrail((t) => [...t, cursor]);
                    setCursor(list.data?.nextCursor ?? undefined);
                  }}
                >
                  Next page
                </button>
              </div>
            </nav>
          )}
        </>
      )}
    </div>
  );
}
