import { useEffect, useMemo } from 'react';
import type { ActivationWindow, ActivationWindowsResponse } from '@kilowire/contract';
import { ErrorMessage, Loading, useApi } from '../../common.tsx';
import { formatDateTime } from '../../format.ts';
import { DataTable, EmptyState, type ColumnDef } from '../../ui/index.ts';
import './firmware.css';

/**
 * The operator's "Planned firmware activations": where and when suppliers' meters reboot on
 * purpose onto new firmware, so a burst of last gasps there is not taken for an outage.
 * Shown on the network overview (refreshed every 30 s); times in the console's zone.
 */
export function ActivationWindows({ tz }: { tz: string }) {
  const list = useApi<ActivationWindowsResponse>('/api/network/activation-windows');
  const reload = list.reload;
  // Windows change when a campaign plans activations: every 30 s is soon enough.
  useEffect(() => {
    const t = setInterval(reload, 30_000);
    return () => clearInterval(t);
  }, [reload]);
  const columns = useMemo<ColumnDef<ActivationWindow, unknown>[]>(
    () => [
      {
        id: 'feeder',
        header: 'Feeder',
        accessorFn: (w) => w.feederName ?? w.feederId ?? '',
        cell: ({ row }) => (
          <>
            {row.original.feederName ?? row.original.feederId ?? 'No feeder recorded'}
            <div className="muted">
              {[
                row.original.feederId && !(row.original.feederName ?? '').includes(row.original.feederId)
                  ? row.original.feederId
                  : null,
                row.original.areaId,
              ]
                .filter(Boolean)
                .join(' · ')}
            </div>
          </>
        ),
      },
      { id: 'supplier', header: 'Supplier', accessorKey: 'supplier' },
      { id: 'meters', header: 'Meters', accessorKey: 'meters' },
      {
        id: 'from',
        header: 'From',
        accessorKey: 'from',
        cell: ({ row }) => formatDateTime(row.original.from, tz),
      },
      {
        id: 'to',
        header: 'Until',
        accessorKey: 'to',
        cell: ({ row }) => formatDateTime(row.original.to, tz),
      },
    ],
    [tz],
  );
  return (
    <section aria-labelledby="fw-windows-h" className="fw-windows">
      <h2 id="fw-windows-h">Planned firmware activations</h2>
      <p className="muted">
        Meters on these feeders restart onto new firmware in these windows. Their power-off and power-on
        events are reboots, not outages.
      </p>
      {list.error ? (
        <ErrorMessage error={list.error} retry={reload} />
      ) : !list.data ? (
        <Loading what="planned activations" />
      ) : (
        <DataTable
          caption="Planned firmware activations per feeder, soonest first"
          columns={columns}
          rows={list.data.items}
          rowKey={(w) => `${w.campaignId}-${w.feederId ?? ''}-${w.from}`}
          busy={list.loading}
          empty={
            <EmptyState title="No activations planned">
              When a supplier&rsquo;s firmware campaign plans reboots on your feeders, the windows appear
              here.
            </EmptyState>
          }
        />
      )}
    </section>
  );
}
