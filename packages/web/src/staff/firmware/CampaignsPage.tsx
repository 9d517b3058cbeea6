import { useEffect, useMemo, useState } from 'react';
import type { FwCampaignStatus, FwCampaignsResponse, FwCampaignSummary } from '@kilowire/contract';
import { qs } from '../../api.ts';
import { ErrorMessage, Loading, useApi, useSession } from '../../common.tsx';
import { Link } from '../../router.tsx';
import { Badge, DataTable, EmptyState, PageHeader, type ColumnDef } from '../../ui/index.ts';
import { shortTime } from '../supply/words.ts';
import { StateBar } from './StateBar.tsx';
import { CAMPAIGN_STATUS, stageLabel } from './words.ts';
import './firmware.css';

const LIVE: readonly FwCampaignStatus[] = ['awaiting_approval', 'running', 'paused'];

/**
 * Every firmware campaign of the supplier with its status and a compact progress bar per state
 * (waiting, downloading, verified, confirmed, failed). Refreshes every 10 s while one runs.
 */
export default function CampaignsPage() {
  const { me } = useSession();
  const canManage = me.capabilities.includes('firmware.manage');
  const [status, setStatus] = useState<FwCampaignStatus | ''>('');
  const [cursors, setCursors] = useState<string[]>([]);
  const cursor = cursors.at(-1);
  const list = useApi<FwCampaignsResponse>(
    `/api/firmware/campaigns${qs({ status: status || undefined, limit: 50, cursor })}`,
  );
  const live = (list.data?.items ?? []).some((c) => LIVE.includes(c.status));
  const reload = list.reload;
  useEffect(() => {
    if (!live) return;
    const t = setInterval(reload, 10_000);
    return () => clearInterval(t);
  }, [live, reload]);

  const columns = useMemo<ColumnDef<FwCampaignSummary, unknown>[]>(
    () => [
      {
        id: 'name',
        header: 'Campaign',
        accessorKey: 'name',
        cell: ({ row }) => (
          <>
            <Link href={`/firmware/campaigns/${row.original.id}`}>{row.original.name}</Link>
            <div className="muted">
              {row.original.image.version} · {row.original.image.hardwareClass}
            </div>
          </>
        ),
      },
      {
        id: 'status',
        header: 'Status',
        accessorKey: 'status',
        cell: ({ row }) => {
          const c = row.original;
          return (
            <>
              <Badge tone={CAMPAIGN_STATUS[c.status].tone}>{CAMPAIGN_STATUS[c.status].label}</Badge>
              {(c.status === 'running' || c.status === 'paused' || c.status === 'halted') && (
                <div className="muted">
                  {stageLabel(c.stage)}, stage {c.stage + 1} of {c.stages}
                </div>
              )}
              {c.status === 'halted' && c.haltedReason && (
                <div className="fw-wrap fw-over">{c.haltedReason}</div>
              )}
            </>
          );
        },
      },
      {
        id: 'progress',
        header: 'Progress',
        enableSorting: false,
        cell: ({ row }) => <StateBar counts={row.original.counts} total={row.original.meters} />,
      },
      { id: 'meters', header: 'Meters', accessorKey: 'meters' },
      {
        id: 'created',
        header: 'Created',
        accessorKey: 'createdAt',
        cell: ({ row }) => (
          <>
            {shortTime(row.original.createdAt)}
            {row.original.createdBy && <div className="muted">by {row.original.createdBy}</div>}
          </>
        ),
      },
    ],
    [],
  );

  return (
    <div className="fw-page">
      <PageHeader
        title="Firmware campaigns"
        description="Each campaign takes one image to a set of meters: a canary stage first, then waves. It halts itself when failures in a stage pass its threshold."
        actions={
          <>
            <Link className="btn btn-secondary" href="/firmware">
              Images
            </Link>
            {canManage && (
              <Link className="btn" href="/firmware/campaigns/new">
                New campaign
              </Link>
            )}
          </>
        }
      />
      <div className="field field-inline">
        <label htmlFor="fw-status">Status</label>
        <select
          id="fw-status"
          value={status}
          onChange={(e) => {
            setStatus(e.target.value as FwCampaignStatus | '');
            setCursors([]);
          }}
        >
          <option value="">All</option>
          {(Object.keys(CAMPAIGN_STATUS) as FwCampaignStatus[]).map((s) => (
            <option key={s} value={s}>
              {CAMPAIGN_STATUS[s].label}
            </option>
          ))}
        </select>
      </div>
      {list.error ? (
        <ErrorMessage error={list.error} retry={list.reload} />
      ) : !list.data ? (
        <Loading what="campaigns" />
      ) : (
        <>
          <DataTable
            caption="Firmware campaigns, newest first"
            columns={columns}
            rows={list.data.items}
            rowKey={(r) => String(r.id)}
            busy={list.loading}
            empty={
              <EmptyState title={status ? 'No campaigns with this status' : 'No firmware campaigns yet'}>
                {status ? (
                  <p>Choose another status above.</p>
                ) : canManage ? (
                  <p>
                    Upload a signed image on the <Link href="/firmware">Firmware</Link> page, then start a
                    campaign with it.
                  </p>
                ) : (
                  <p>A supplier admin plans campaigns; they appear here with their progress.</p>
                )}
              </EmptyState>
            }
          />
          {(cursors.length > 0 || list.data.nextCursor) && (
            <div className="form-actions">
              {cursors.length > 0 && (
                <button
                  type="button"
                  className="btn btn-secondary"
                  onClick={() => setCursors((c) => c.slice(0, -1))}
                >
                  Newer campaigns
                </button>
              )}
              {list.data.nextCursor && (
                <button
                  type="button"
                  className="btn btn-secondary"
                  onClick={() => setCursors((c) => [...c, list.data!.nextCursor!])}
                >
                  Older campaigns
                </button>
              )}
            </div>
          )}
        </>
      )}
    </div>
  );
}
