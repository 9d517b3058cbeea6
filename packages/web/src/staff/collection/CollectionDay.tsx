import { useId, useMemo, useState } from 'react';
import type {
  CollectionDayResponse,
  CollectionMissingMeter,
  CollectionMissingResponse,
  CollectionTotal,
  CollectionVersion,
  CollectResponse,
} from '@kilowire/contract';
import { api } from '../../api.ts';
import { ErrorMessage, Loading, useApi, useNow, useSession } from '../../common.tsx';
import { formatDateTime, relativeTime } from '../../format.ts';
import { Link } from '../../router.tsx';
import {
  Badge,
  ConfirmDialog,
  DataTable,
  EmptyState,
  PageHeader,
  useToast,
  type ColumnDef,
} from '../../ui/index.ts';
import { asApiError, usePaged } from '../admin/shared.tsx';
import { CompleteBadge, dayLabel, kwh, meters, nf, REASON_LABEL } from './shared.tsx';
import './collection.css';

const signed = (n: number) => (n > 0 ? `+${nf(n)}` : nf(n));

function totalColumns(kind: 'Supplier' | 'Feeder', threshold: number): ColumnDef<CollectionTotal>[] {
  return [
    { id: 'name', header: kind, accessorFn: (t) => t.name },
    {
      id: 'meters',
      header: 'Meters',
      accessorFn: (t) => t.meters,
      cell: ({ row }) => nf(row.original.meters),
    },
    {
      id: 'complete',
      header: 'Completeness',
      accessorFn: (t) => t.completePct ?? -1,
      cell: ({ row }) => <CompleteBadge pct={row.original.completePct} threshold={threshold} />,
    },
    { id: 'wh', header: 'Energy', accessorFn: (t) => t.wh, cell: ({ row }) => kwh(row.original.wh) },
    {
      id: 'intervals',
      header: 'Half-hours act. / est. / exp.',
      enableSorting: false,
      cell: ({ row }) =>
        `${nf(row.original.actual)} / ${nf(row.original.estimated)} / ${nf(row.original.expected)}`,
    },
  ];
}

/**
 * One local day of an area: its versions and what each changed, totals per supplier (with
 * the supplier's daily file to download) and per feeder, and the meters missing or incomplete
 * with when each was last heard of. Operator admins can collect the day again by hand.
 */
export default function CollectionDayPage({ param }: { param?: string }) {
  const [areaId = '', day = ''] = (param ?? '').split('/');
  const { me } = useSession();
  const toast = useToast();
  const now = useNow();
  const pickId = useId();
  const [version, setVersion] = useState<number | null>(null);
  const base = `/api/collection/areas/${encodeURIComponent(areaId)}/days/${day}`;
  const vq = version === null ? '' : `?version=${version}`;
  const view = useApi<CollectionDayResponse>(`${base}${vq}`);
  const missing = usePaged<CollectionMissingMeter>(`${base}/missing${vq ? `${vq}&` : '?'}limit=100`);
  const total = useApi<CollectionMissingResponse>(`${base}/missing${vq ? `${vq}&` : '?'}limit=1`);
  const [confirm, setConfirm] = useState(false);
  const [busy, setBusy] = useState(false);
  const mayCollect = me.capabilities.includes('network.settings');
  const d = view.data;
  const threshold = d?.completenessAlertPct ?? 98;
  const shownVersion = d?.version.version;
  const fileQ = version === null ? '' : `?version=${version}`;
  const supplierColumns = useMemo<ColumnDef<CollectionTotal>[]>(
    () => [
      ...totalColumns('Supplier', threshold),
      {
        id: 'files',
        header: 'Daily file',
        enableSorting: false,
        cell: ({ row }) => {
          const f = `${base}/suppliers/${row.original.id}/file`;
          return (
            <span className="collection-files">
              <a
                className="btn btn-small btn-secondary"
                href={`${f}.csv${fileQ}`}
                download
                aria-label={`Download the CSV file for ${row.original.name}`}
              >
                CSV
              </a>
              <a
                className="btn btn-small btn-secondary"
                href={`${f}.json${fileQ}`}
                download
                aria-label={`Download the JSON file for ${row.original.name}`}
              >
                JSON
              </a>
            </span>
          );
        },
      },
    ],
    [base, fileQ, threshold],
  );
  const feederColumns = useMemo(() => totalColumns('Feeder', threshold), [threshold]);
  const versionColumns = useMemo<ColumnDef<CollectionVersion>[]>(
    () => [
      { id: 'v', header: 'Version', accessorFn: (v) => v.version },
      {
        id: 'reason',
        header: 'Why',
        enableSorting: false,
        cell: ({ row }) => REASON_LABEL[row.original.reason],
      },
      {
        id: 'at',
        header: 'Collected',
        enableSorting: false,
        cell: ({ row }) => formatDateTime(row.original.collectedAt, d?.tz ?? 'UTC'),
      },
      {
        id: 'complete',
        header: 'Completeness',
        enableSorting: false,
        cell: ({ row }) => <CompleteBadge pct={row.original.completePct} threshold={threshold} />,
      },
      { id: 'wh', header: 'Energy', enableSorting: false, cell: ({ row }) => kwh(row.original.wh) },
      {
        id: 'changed',
        header: 'Changed',
        enableSorting: false,
        cell: ({ row }) =>
          row.original.changedMeters === null ? (
            <span className="muted">First version</span>
          ) : (
            `${meters(row.original.changedMeters)}, ${signed(row.original.whDelta ?? 0)} Wh`
          ),
      },
    ],
    [d?.tz, threshold],
  );
  const missingColumns = useMemo<ColumnDef<CollectionMissingMeter>[]>(
    () => [
      { id: 'serial', header: 'Meter', enableSorting: false, accessorFn: (m) => m.serial },
      { id: 'feeder', header: 'Feeder', enableSorting: false, cell: ({ row }) => row.original.feeder ?? '—' },
      { id: 'supplier', header: 'Supplier', enableSorting: false, accessorFn: (m) => m.supplier },
      {
        id: 'got',
        header: 'Half-hours received',
        enableSorting: false,
        cell: ({ row }) => {
          const m = row.original;
          return `${nf(m.actual + m.estimated)} of ${nf(m.expected)}${m.estimated ? ` (${nf(m.estimated)} estimated)` : ''}`;
        },
      },
      {
        id: 'since',
        header: 'Missing since',
        enableSorting: false,
        cell: ({ row }) => {
          const at = row.original.lastDataAt;
          if (!at) return <Badge tone="bad">Never sent data</Badge>;
          return (
            <time dateTime={at} title={formatDateTime(at, d?.tz ?? 'UTC')}>
              {formatDateTime(at, d?.tz ?? 'UTC')} <span className="muted">({relativeTime(at, now)})</span>
            </time>
          );
        },
      },
    ],
    [d?.tz, now],
  );

  const collect = () => {
    setBusy(true);
    api<CollectResponse>('POST', `${base}/collect`, {}).then(
      (r) => {
        setBusy(false);
        setConfirm(false);
        toast.show(
          r.created
            ? `Version ${r.run.version} collected: ${r.run.completePct ?? 0}% complete`
            : `Nothing has changed since version ${r.run.version}`,
        );
        setVersion(null);
        view.reload();
        missing.reload();
        total.reload();
      },
      (e: unknown) => {
        setBusy(false);
        setConfirm(false);
        toast.show(asApiError(e).message, 'bad');
      },
    );
  };

  return (
    <div className="collection">
      <p className="collection-back">
        <Link href="/collection">← Daily collection</Link>
      </p>
      <PageHeader
        title={`Collection ${day}`}
        heading={`${d?.areaName ?? areaId}: ${day ? dayLabel(day) : ''}`}
        description={
          d
            ? `Version ${d.version.version} of ${d.versions.length} (${REASON_LABEL[d.version.reason].toLowerCase()}), collected ${formatDateTime(d.version.collectedAt, d.tz)}. Local day in ${d.tz}.`
            : undefined
        }
        actions={
          mayCollect && (d || view.error?.status === 404) ? (
            <button
              type="button"
              className="btn btn-secondary"
              onClick={() => setConfirm(true)}
              disabled={busy}
            >
              {d ? 'Collect again' : 'Collect now'}
            </button>
          ) : undefined
        }
      />
      {view.error ? (
        view.error.status === 404 ? (
          <EmptyState title="This day has not been collected">
            <p>
              A day is collected the morning after, at the cut-off. Days older than the schedule catches up
              after downtime are collected by hand.
            </p>
          </EmptyState>
        ) : (
          <ErrorMessage error={view.error} retry={view.reload} />
        )
      ) : !d ? (
        <Loading what="the day's collection" />
      ) : (
        <>
          {d.versions.length > 1 && (
            <div className="field collection-version-picker">
              <label htmlFor={pickId}>Version shown</label>
              <select
                id={pickId}
                value={shownVersion}
                onChange={(e) => {
                  const v = Number(e.target.value);
                  setVersion(v === d.versions[d.versions.length - 1]!.version ? null : v);
                }}
              >
                {d.versions.map((v) => (
                  <option key={v.version} value={v.version}>
                    Version {v.version} — {REASON_LABEL[v.reason]}
                  </option>
                ))}
              </select>
            </div>
          )}
          <div className="tiles" role="group" aria-label="The day at a glance">
            <div className="tile">
              <p className="tile-label">Complete</p>
              <p className="tile-value">
                {d.version.completePct === null ? '—' : `${d.version.completePct}%`}
              </p>
            </div>
            <div className="tile">
              <p className="tile-label">Meters</p>
              <p className="tile-value">{nf(d.version.meters)}</p>
            </div>
            <div className="tile">
              <p className="tile-label">Missing or incomplete</p>
              <p className="tile-value">{nf(d.version.meters - d.version.completeMeters)}</p>
            </div>
            <div className="tile">
              <p className="tile-label">Energy</p>
              <p className="tile-value">{kwh(d.version.wh)}</p>
            </div>
            <div className="tile">
              <p className="tile-label">Half-hours estimated</p>
              <p className="tile-value">
                {nf(d.version.estimated)} <span className="muted">of {nf(d.version.expected)}</span>
              </p>
            </div>
          </div>

          <section className="card" aria-labelledby="coll-suppliers">
            <h2 id="coll-suppliers">Per supplier</h2>
            <DataTable
              caption="Totals per supplier, with each supplier's daily file"
              columns={supplierColumns}
              rows={d.suppliers}
              rowKey={(t) => t.id}
              empty={<EmptyState title="No meters">No meters were active in the area this day.</EmptyState>}
            />
          </section>

          <section className="card" aria-labelledby="coll-feeders">
            <h2 id="coll-feeders">Per feeder</h2>
            <DataTable
              caption="Totals per feeder"
              columns={feederColumns}
              rows={d.feeders}
              rowKey={(t) => t.id || 'none'}
              empty={<EmptyState title="No meters">No meters were active in the area this day.</EmptyState>}
            />
          </section>

          <section className="card" aria-labelledby="coll-missing">
            <h2 id="coll-missing">
              Meters missing or incomplete{total.data ? ` (${nf(total.data.total)})` : ''}
            </h2>
            <p className="muted">
              Longest missing first. Missing since: the end of the last half-hour received.
            </p>
            {missing.error ? (
              <ErrorMessage error={missing.error} retry={missing.reload} />
            ) : !missing.items || (missing.busy && missing.items.length === 0) ? (
              // Reloading after "Collect again": the old, empty list would say "every meter is
              // complete" under a heading that already counts the new version's missing meters.
              <Loading what="missing meters" />
            ) : (
              <>
                <DataTable
                  caption="Meters missing or incomplete"
                  columns={missingColumns}
                  rows={missing.items}
                  rowKey={(m) => m.serial}
                  busy={missing.busy}
                  empty={
                    <EmptyState title="Every meter is complete">
                      Every meter sent all its half-hours for this day.
                    </EmptyState>
                  }
                />
                {missing.hasMore && (
                  <div className="form-actions">
                    <button
                      type="button"
                      className="btn btn-secondary btn-small"
                      onClick={missing.more}
                      disabled={missing.busy}
                    >
                      Show more
                    </button>
                  </div>
                )}
              </>
            )}
          </section>

          <section className="card" aria-labelledby="coll-versions">
            <h2 id="coll-versions">Versions</h2>
            <p className="muted">
              Earlier versions are kept as they were; invoices name the version they used.
            </p>
            <DataTable
              caption="Versions of this day, oldest first"
              columns={versionColumns}
              rows={d.versions}
              rowKey={(v) => String(v.version)}
            />
          </section>
        </>
      )}
      <ConfirmDialog
        open={confirm}
        title={d ? 'Collect this day again?' : 'Collect this day now?'}
        confirmLabel={d ? 'Collect again' : 'Collect now'}
        busy={busy}
        onConfirm={collect}
        onCancel={() => setConfirm(false)}
      >
        {d ? (
          <p>
            The day is read again from the meters&apos; half-hours. If anything changed, a new version is made
            and the current one is kept as it is; if nothing changed, nothing happens.
          </p>
        ) : (
          <p>
            The day is read from the meters&apos; half-hours as they are now and kept as version 1. Data that
            arrives later makes a new version.
          </p>
        )}
      </ConfirmDialog>
    </div>
  );
}
