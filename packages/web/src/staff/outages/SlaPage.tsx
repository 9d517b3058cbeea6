import { useMemo, useState } from 'react';
import type { SlaMonth, SlaResponse } from '@kilowire/contract';
import { qs } from '../../api.ts';
import { ErrorMessage, Loading, useApi } from '../../common.tsx';
import { DataTable, PageHeader, type ColumnDef } from '../../ui/index.ts';
import { duration } from './words.tsx';
import './outages.css';

const MONTH = new Intl.DateTimeFormat('en-GB', { month: 'long', year: 'numeric', timeZone: 'UTC' });
const monthName = (m: string) => MONTH.format(new Date(`${m}-01T00:00:00Z`));
const secs = (s: number | null) => (s === null ? '–' : duration(s * 1000));
const mins = (m: number | null) => (m === null ? '–' : duration(m * 60_000));

/**
 * The SLA dashboard: per month (by when the power failed, UTC), the incidents, how fast they
 * were detected (the 3-minute rule) and restored, and the breaches of the restoration target.
 */
export default function SlaPage() {
  const [months, setMonths] = useState(6);
  const sla = useApi<SlaResponse>(`/api/network/sla${qs({ months })}`);
  const columns = useMemo<ColumnDef<SlaMonth, unknown>[]>(
    () => [
      {
        id: 'month',
        header: 'Month',
        accessorKey: 'month',
        cell: ({ row }) => monthName(row.original.month),
      },
      {
        id: 'incidents',
        header: 'Incidents',
        accessorKey: 'incidents',
        cell: ({ row }) => (
          <>
            {row.original.incidents}
            {row.original.incidents > 0 && (
              <div className="muted">
                {row.original.feeder} feeder · {row.original.single} single
              </div>
            )}
          </>
        ),
      },
      {
        id: 'detect',
        header: 'Time to detect (median · 95%)',
        accessorKey: 'detectP95S',
        cell: ({ row }) =>
          row.original.incidents
            ? `${secs(row.original.detectP50S)} · ${secs(row.original.detectP95S)}`
            : '–',
      },
      {
        id: 'restore',
        header: 'Time to restore (median · 95%)',
        accessorKey: 'restoreP95Min',
        cell: ({ row }) =>
          row.original.restored
            ? `${mins(row.original.restoreP50Min)} · ${mins(row.original.restoreP95Min)}`
            : '–',
      },
      { id: 'atRisk', header: 'At risk', accessorKey: 'atRisk' },
      {
        id: 'breaches',
        header: 'Breaches',
        accessorKey: 'breaches',
        cell: ({ row }) => (
          <strong className={row.original.breaches ? 'sla-breaches' : undefined}>
            {row.original.breaches}
          </strong>
        ),
      },
    ],
    [],
  );
  const rows = sla.data ? [...sla.data.months].reverse() : [];
  const total = rows.reduce(
    (a, m) => ({ incidents: a.incidents + m.incidents, breaches: a.breaches + m.breaches }),
    { incidents: 0, breaches: 0 },
  );
  return (
    <>
      <PageHeader
        title="SLA dashboard"
        description="Restoration against your targets, month by month. The operator must be alerted within 3 minutes of the first last gasp."
        actions={
          <div className="segmented" role="group" aria-label="Months shown">
            {[6, 12].map((n) => (
              <button key={n} type="button" aria-pressed={months === n} onClick={() => setMonths(n)}>
                {n} months
              </button>
            ))}
          </div>
        }
      />
      {sla.error && <ErrorMessage error={sla.error} retry={sla.reload} />}
      {sla.loading && !sla.data && <Loading what="the SLA dashboard" />}
      {sla.data && (
        <>
          <div className="tiles" role="group" aria-label={`The last ${months} months`}>
            <div className="tile">
              <p className="tile-label">Incidents</p>
              <p className="tile-value">{total.incidents}</p>
            </div>
            <div className={`tile${total.breaches ? ' tile-bad' : ''}`}>
              <p className="tile-label">Breaches</p>
              <p className="tile-value">{total.breaches}</p>
            </div>
          </div>
          <DataTable
            caption="SLA per month, newest first"
            columns={columns}
            rows={rows}
            rowKey={(m) => m.month}
          />
        </>
      )}
    </>
  );
}
