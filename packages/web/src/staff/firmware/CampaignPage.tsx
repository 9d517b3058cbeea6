import { useEffect, useId, useMemo, useState } from 'react';
import type {
  FwCampaignDetail,
  FwCampaignMeter,
  FwCampaignMetersResponse,
  FwCampaignStatus,
  FwCampaignSummary,
  FwMeterState,
  FwStage,
  FwTarget,
} from '@kilowire/contract';
import { FW_FAILURE_STATES } from '@kilowire/contract/enums';
import { api, ApiError, qs } from '../../api.ts';
import { ErrorMessage, Loading, useApi, useSession } from '../../common.tsx';
import { Link } from '../../router.tsx';
import {
  Badge,
  ConfirmDialog,
  DataTable,
  EmptyState,
  PageHeader,
  Timeline,
  useToast,
  type ColumnDef,
} from '../../ui/index.ts';
import { shortTime } from '../supply/words.ts';
import { StateBar } from './StateBar.tsx';
import {
  CAMPAIGN_STATUS,
  eventLabel,
  firmwareErrorText,
  formatSeconds,
  METER_STATE,
  SKIP_REASON,
  stageLabel,
  STATE_ORDER,
} from './words.ts';
import './firmware.css';

const LIVE: readonly FwCampaignStatus[] = ['awaiting_approval', 'running', 'paused'];
const FAILURES: readonly FwMeterState[] = FW_FAILURE_STATES;
const PAGE = 50;

/** Blocks held over blocks needed, whole per cent, or null without meters. */
function downloadPct(ms: readonly FwCampaignMeter[]): number | null {
  const total = ms.reduce((n, m) => n + m.blocksTotal, 0);
  return total > 0 ? Math.floor((ms.reduce((n, m) => n + m.blocksDone, 0) * 100) / total) : null;
}
const BROWSER_TZ = Intl.DateTimeFormat().resolvedOptions().timeZone;

type Action = 'pause' | 'resume' | 'cancel';
const ACTION: Record<Action, { label: string; title: string; body: string; done: string }> = {
  pause: {
    label: 'Pause',
    title: 'Pause this campaign?',
    body: 'No meter is offered the image or told to activate it until you resume. Downloads under way finish; activations already sent to a meter still happen.',
    done: 'Campaign paused.',
  },
  resume: {
    label: 'Resume',
    title: 'Resume this campaign?',
    body: 'Offers and activations carry on where they stopped, inside the activation window.',
    done: 'Campaign resumed.',
  },
  cancel: {
    label: 'Cancel campaign',
    title: 'Cancel this campaign?',
    body: 'Meters not yet activated are told to drop the image and stay on the one they run. Meters already on the new image keep it. This cannot be undone.',
    done: 'Campaign cancelled.',
  },
};

/** What a supplier admin can do from each status (the API refuses the rest with 409). */
function actionsFor(s: FwCampaignStatus): Action[] {
  if (s === 'running') return ['pause', 'cancel'];
  if (s === 'paused') return ['resume', 'cancel'];
  return [];
}

/** "Version 1.2.0 on feeder EAST-1, prepayment" / "24 named meters". */
function targetText(t: FwTarget): string {
  if ('serials' in t) return `${t.serials.length} named meter${t.serials.length === 1 ? '' : 's'}`;
  const f = t.filter;
  const parts = [
    f.hardwareClass && `hardware ${f.hardwareClass}`,
    f.version && `running ${f.version}`,
    f.area && `area ${f.area}`,
    f.feeder && `feeder ${f.feeder}`,
    f.tariffId && `tariff ${f.tariffId}`,
    f.mode && `${f.mode} meters`,
  ].filter(Boolean);
  return parts.length ? `Fleet filter: ${parts.join(', ')}` : 'The whole fleet';
}

/**
 * One campaign: where it stands (status, stage, a banner when it halted itself, with why), the
 * meters per state, each stage against its halt limit, why meters failed, every meter (filtered
 * by state, a page at a time), the timeline, and for supplier admins pause, resume and cancel.
 * Refreshes every 10 s while it is live.
 */
export default function CampaignPage({ param }: { param?: string }) {
  const id = Number(param);
  const valid = Number.isInteger(id) && id > 0;
  const { me } = useSession();
  const canManage = me.capabilities.includes('firmware.manage');
  const toast = useToast();
  const uid = useId();
  const loaded = useApi<FwCampaignDetail>(valid ? `/api/firmware/campaigns/${id}` : null);
  const d = loaded.data;
  const reload = loaded.reload;
  const live = d ? LIVE.includes(d.status) : false;
  const [tick, setTick] = useState(0);
  // "Downloading, 62 %": the blocks the downloading meters hold of those they need (in-flight
  // transfers are few: the engine caps them, so one page holds them all).
  const nDownloading = d?.counts.downloading ?? 0;
  const downloading = useApi<FwCampaignMetersResponse>(
    valid && nDownloading > 0
      ? `/api/firmware/campaigns/${id}/meters${qs({ state: 'downloading', limit: 500 })}`
      : null,
  );
  const reloadDownloading = downloading.reload;
  useEffect(() => {
    if (tick > 0) reloadDownloading();
  }, [tick, reloadDownloading]);
  useEffect(() => {
    if (!live) return;
    const t = setInterval(() => {
      reload();
      setTick((n) => n + 1);
    }, 10_000);
    return () => clearInterval(t);
  }, [live, reload]);

  const [action, setAction] = useState<Action | null>(null);
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<string | null>(null);
  const act = (): void => {
    if (!action || busy) return;
    setBusy(true);
    setFailure(null);
    api<FwCampaignSummary>(
      'POST',
      `/api/firmware/campaigns/${id}/${action}`,
      reason.trim() ? { reason: reason.trim() } : {},
    ).then(
      () => {
        setBusy(false);
        toast.show(ACTION[action].done);
        setAction(null);
        setReason('');
        reload();
        setTick((n) => n + 1);
      },
      (e: unknown) => {
        setBusy(false);
        setFailure(e instanceof ApiError ? firmwareErrorText(e) : String(e));
      },
    );
  };

  if (!valid)
    return (
      <>
        <PageHeader title="Campaign not found" />
        <p>
          There is no campaign at this address. <Link href="/firmware/campaigns">See every campaign</Link>.
        </p>
      </>
    );
  if (loaded.error)
    return (
      <>
        <PageHeader title="Firmware campaign" />
        {loaded.error.status === 404 ? (
          <p>
            No campaign {id} among yours. <Link href="/firmware/campaigns">See every campaign</Link>.
          </p>
        ) : (
          <ErrorMessage error={loaded.error} retry={reload} />
        )}
      </>
    );
  if (!d) return <Loading what="the campaign" />;

  const status = CAMPAIGN_STATUS[d.status];
  const dl = downloading.data ? downloadPct(downloading.data.items) : null;
  const actions = canManage ? actionsFor(d.status) : [];
  return (
    <div className="fw-page">
      <PageHeader
        title={d.name}
        heading={
          <>
            {d.name} <Badge tone={status.tone}>{status.label}</Badge>
          </>
        }
        description={
          <>
            Image {d.image.version} ({d.image.hardwareClass}) to {d.meters} meter{d.meters === 1 ? '' : 's'} ·{' '}
            {d.status === 'running' || d.status === 'paused' || d.status === 'halted'
              ? `${stageLabel(d.stage)}, stage ${d.stage + 1} of ${d.stages}`
              : `${d.stages} stage${d.stages === 1 ? '' : 's'}`}{' '}
            · <Link href="/firmware/campaigns">All campaigns</Link>
          </>
        }
        actions={
          actions.length ? (
            <>
              {actions.map((a) => (
                <button
                  key={a}
                  type="button"
                  className={a === 'cancel' ? 'btn btn-secondary' : 'btn'}
                  onClick={() => setAction(a)}
                >
                  {ACTION[a].label}
                </button>
              ))}
            </>
          ) : undefined
        }
      />

      {d.status === 'halted' && (
        <div className="notice notice-error fw-banner" role="alert">
          <h2>This campaign halted itself</h2>
          <p>{d.haltedReason ?? 'Failures passed the threshold in a stage.'}</p>
          <p>
            Meters not yet activated were told to drop the image; nothing beyond{' '}
            {d.stage === 0 ? 'the canary' : stageLabel(d.stage).toLowerCase()} was offered. Read the failure
            reasons below before you plan another campaign.
          </p>
        </div>
      )}
      {d.status === 'awaiting_approval' && (
        <div className="notice notice-warn" role="status">
          <p>
            Waiting for a second supplier admin&rsquo;s approval: nothing reaches a meter before. Approve,
            reject or withdraw it on the <Link href="/approvals">Approvals</Link> page.
          </p>
        </div>
      )}
      {d.status === 'paused' && (
        <div className="notice notice-warn" role="status">
          <p>Paused by hand: no meter is offered the image or told to activate it until someone resumes.</p>
        </div>
      )}
      {d.status === 'rejected' && (
        <div className="notice" role="status">
          <p>
            The approving admin rejected this campaign (or the request lapsed); no meter was offered anything.
          </p>
        </div>
      )}

      <section aria-labelledby={`${uid}-states`}>
        <h2 id={`${uid}-states`}>Meters by state</h2>
        <StateBar counts={d.counts} total={d.meters} legend />
        <div className="tiles fw-state-tiles" role="list" aria-label="Meters in each state">
          {STATE_ORDER.map((s) => {
            const n = d.counts[s] ?? 0;
            const bad = FAILURES.includes(s) && n > 0;
            return (
              <div
                key={s}
                role="listitem"
                className={`tile${bad ? ' tile-bad' : ''}`}
                title={METER_STATE[s].help}
              >
                <p className="tile-label">{METER_STATE[s].label}</p>
                <p className="tile-value">{n}</p>
                {s === 'downloading' && dl !== null && <p className="tile-sub">{dl} % of blocks</p>}
              </div>
            );
          })}
        </div>
      </section>

      <section aria-labelledby={`${uid}-stages`}>
        <h2 id={`${uid}-stages`}>Stages</h2>
        <StagesTable stages={d.stagesDetail} current={d.stage} status={d.status} />
      </section>

      <div className="fw-two">
        <section aria-labelledby={`${uid}-reasons`}>
          <h2 id={`${uid}-reasons`}>Failure reasons</h2>
          {d.failureReasons.length === 0 ? (
            <p className="muted">No meter has failed.</p>
          ) : (
            <ul className="fw-reasons">
              {d.failureReasons.map((r) => (
                <li key={r.reason}>
                  {r.reason}: <strong>{r.meters}</strong> meter{r.meters === 1 ? '' : 's'}
                </li>
              ))}
            </ul>
          )}
        </section>
        <section aria-labelledby={`${uid}-plan`}>
          <h2 id={`${uid}-plan`}>Plan</h2>
          <dl className="fw-facts card">
            <dt>Meters</dt>
            <dd>{targetText(d.target)}</dd>
            <dt>Canary</dt>
            <dd>
              {d.canaryCount !== null
                ? `${d.canaryCount} meter${d.canaryCount === 1 ? '' : 's'}`
                : `${d.canaryPct ?? 0} % of the meters`}
            </dd>
            <dt>Waves</dt>
            <dd>
              {d.waveSize} meter{d.waveSize === 1 ? '' : 's'} each
            </dd>
            <dt>Halts when</dt>
            <dd>failures in a stage pass {d.failureThresholdPct} %</dd>
            <dt>Activation</dt>
            <dd>
              {d.windowFrom}–{d.windowTo}, meter&rsquo;s local time
            </dd>
            <dt>Per feeder</dt>
            <dd>
              at most {d.feederMax} every {formatSeconds(d.feederSpacingS)}
            </dd>
            <dt>Confirmation</dt>
            <dd>within {formatSeconds(d.confirmS)}, or the meter reverts</dd>
            <dt>Created</dt>
            <dd>
              {shortTime(d.createdAt)}
              {d.createdBy ? ` by ${d.createdBy}` : ''}
            </dd>
            {d.startedAt && (
              <>
                <dt>Started</dt>
                <dd>{shortTime(d.startedAt)}</dd>
              </>
            )}
            {d.finishedAt && (
              <>
                <dt>Ended</dt>
                <dd>{shortTime(d.finishedAt)}</dd>
              </>
            )}
          </dl>
        </section>
      </div>

      <MetersSection campaignId={id} stages={d.stagesDetail.length} refresh={tick} />

      <section aria-labelledby={`${uid}-timeline`}>
        <h2 id={`${uid}-timeline`}>Timeline</h2>
        {d.timeline.length === 0 ? (
          <p className="muted">Nothing has happened yet.</p>
        ) : (
          <Timeline
            tz={BROWSER_TZ}
            entries={d.timeline.map((e, i) => ({
              key: i,
              title: eventLabel(e.kind),
              actor: e.actor,
              at: e.at,
              text: e.detail,
              ...(e.actor ? { kind: 'action' as const } : {}),
            }))}
          />
        )}
      </section>

      <ConfirmDialog
        open={action !== null}
        title={action ? ACTION[action].title : ''}
        confirmLabel={action ? ACTION[action].label : ''}
        danger={action === 'cancel'}
        busy={busy}
        onConfirm={act}
        onCancel={() => {
          setAction(null);
          setFailure(null);
        }}
      >
        <p>{action ? ACTION[action].body : ''}</p>
        <div className="field">
          <label htmlFor={`${uid}-reason`}>Reason (optional, kept in the timeline and audit log)</label>
          <textarea
            id={`${uid}-reason`}
            rows={2}
            maxLength={500}
            value={reason}
            onChange={(e) => setReason(e.target.value)}
          />
        </div>
        {failure && (
          <p className="error-text" role="alert">
            {failure}
          </p>
        )}
      </ConfirmDialog>
    </div>
  );
}

function StagesTable({
  stages,
  current,
  status,
}: {
  stages: FwStage[];
  current: number;
  status: FwCampaignStatus;
}) {
  const columns = useMemo<ColumnDef<FwStage, unknown>[]>(
    () => [
      {
        id: 'stage',
        header: 'Stage',
        accessorKey: 'stage',
        cell: ({ row }) => (
          <>
            {stageLabel(row.original.stage)}
            {row.original.stage === current &&
              (status === 'running' || status === 'paused' || status === 'halted') && (
                <div className="muted">current</div>
              )}
          </>
        ),
      },
      { id: 'meters', header: 'Meters', accessorKey: 'meters' },
      {
        id: 'confirmed',
        header: 'Confirmed',
        accessorFn: (s) => s.counts.confirmed ?? 0,
      },
      {
        id: 'failures',
        header: 'Failures / halt limit',
        accessorKey: 'failures',
        cell: ({ row }) => {
          const s = row.original;
          const over = s.failures > s.maxFailures;
          return (
            <span className={over ? 'fw-over' : undefined}>
              {s.failures} of at most {s.maxFailures}
              {over ? ' — over the limit' : ''}
            </span>
          );
        },
      },
      {
        id: 'download',
        header: 'Blocks held',
        accessorKey: 'downloadPct',
        cell: ({ row }) => `${Math.round(row.original.downloadPct)} %`,
      },
      {
        id: 'progress',
        header: 'Progress',
        enableSorting: false,
        cell: ({ row }) => <StateBar counts={row.original.counts} total={row.original.meters} />,
      },
    ],
    [current, status],
  );
  return (
    <DataTable
      caption="Each stage against its halt limit"
      columns={columns}
      rows={stages}
      rowKey={(s) => String(s.stage)}
      empty={<EmptyState title="No stages">The campaign selected no meters.</EmptyState>}
    />
  );
}

/** Every meter of the campaign, a page at a time, filtered by state and stage. */
function MetersSection({
  campaignId,
  stages,
  refresh,
}: {
  campaignId: number;
  stages: number;
  refresh: number;
}) {
  const uid = useId();
  const [state, setState] = useState<FwMeterState | ''>('');
  const [stage, setStage] = useState<string>('');
  const [cursors, setCursors] = useState<string[]>([]);
  const cursor = cursors.at(-1);
  const path = `/api/firmware/campaigns/${campaignId}/meters${qs({
    state: state || undefined,
    stage: stage === '' ? undefined : Number(stage),
    limit: PAGE,
    cursor,
  })}`;
  const list = useApi<FwCampaignMetersResponse>(path);
  const reload = list.reload;
  useEffect(() => {
    if (refresh > 0) reload();
  }, [refresh, reload]);

  const columns = useMemo<ColumnDef<FwCampaignMeter, unknown>[]>(
    () => [
      {
        id: 'serial',
        header: 'Meter',
        accessorKey: 'serial',
        cell: ({ row }) => (
          <Link href={`/meters/${encodeURIComponent(row.original.serial)}`}>{row.original.serial}</Link>
        ),
      },
      { id: 'stage', header: 'Stage', accessorFn: (m) => stageLabel(m.stage) },
      {
        id: 'state',
        header: 'State',
        accessorKey: 'state',
        cell: ({ row }) => (
          <Badge tone={METER_STATE[row.original.state].tone}>{METER_STATE[row.original.state].label}</Badge>
        ),
      },
      {
        id: 'blocks',
        header: 'Blocks',
        accessorKey: 'blocksDone',
        cell: ({ row }) => {
          const m = row.original;
          const pct = Math.floor((m.blocksDone / Math.max(1, m.blocksTotal)) * 100);
          return (
            <>
              <span className="fw-mini-bar" aria-hidden="true">
                <span style={{ width: `${pct}%` }} />
              </span>
              {m.blocksDone} of {m.blocksTotal} ({pct} %)
            </>
          );
        },
      },
      {
        id: 'why',
        header: 'Why',
        accessorFn: (m) => m.reason ?? (m.skipReason ? SKIP_REASON[m.skipReason] : ''),
        cell: ({ row }) => {
          const m = row.original;
          const text = m.reason ?? (m.skipReason ? `Skipped: ${SKIP_REASON[m.skipReason]}` : null);
          return text ? <span className="fw-wrap">{text}</span> : <span className="muted">—</span>;
        },
      },
      { id: 'feeder', header: 'Feeder', accessorFn: (m) => m.feederId ?? '—' },
      {
        id: 'activate',
        header: 'Activation',
        accessorKey: 'activateAt',
        cell: ({ row }) =>
          row.original.activateAt ? shortTime(row.original.activateAt) : <span className="muted">—</span>,
      },
      {
        id: 'updated',
        header: 'Updated',
        accessorKey: 'updatedAt',
        cell: ({ row }) => shortTime(row.original.updatedAt),
      },
    ],
    [],
  );
  // A page of the meters in the server's order: sorting one page would look like sorting them all.
  const pageColumns = useMemo(() => columns.map((c) => ({ ...c, enableSorting: false })), [columns]);

  return (
    <section aria-labelledby={`${uid}-h`}>
      <h2 id={`${uid}-h`}>Meters</h2>
      <div className="fw-meter-filter">
        <div className="field">
          <label htmlFor={`${uid}-state`}>State</label>
          <select
            id={`${uid}-state`}
            value={state}
            onChange={(e) => {
              setState(e.target.value as FwMeterState | '');
              setCursors([]);
            }}
          >
            <option value="">Any state</option>
            {STATE_ORDER.map((s) => (
              <option key={s} value={s}>
                {METER_STATE[s].label}
              </option>
            ))}
          </select>
        </div>
        {stages > 1 && (
          <div className="field">
            <label htmlFor={`${uid}-stage`}>Stage</label>
            <select
              id={`${uid}-stage`}
              value={stage}
              onChange={(e) => {
                setStage(e.target.value);
                setCursors([]);
              }}
            >
              <option value="">Any stage</option>
              {Array.from({ length: stages }, (_, i) => (
                <option key={i} value={i}>
                  {stageLabel(i)}
                </option>
              ))}
            </select>
          </div>
        )}
      </div>
      {list.error ? (
        <ErrorMessage error={list.error} retry={reload} />
      ) : !list.data ? (
        <Loading what="meters" />
      ) : (
        <>
          <DataTable
            caption={`Meters of the campaign${state ? `: ${METER_STATE[state].label.toLowerCase()}` : ''}`}
            columns={pageColumns}
            rows={list.data.items}
            rowKey={(m) => m.serial}
            busy={list.loading}
            empty={
              <EmptyState
                title={state ? `No meter is ${METER_STATE[state].label.toLowerCase()}` : 'No meters'}
              >
                {state ? 'Choose another state above.' : 'The campaign selected no meters.'}
              </EmptyState>
            }
          />
          {(cursors.length > 0 || list.data.nextCursor) && (
            <div className="pager">
              <p className="muted">Page {cursors.length + 1}</p>
              <div className="form-actions">
                {cursors.length > 0 && (
                  <button
                    type="button"
                    className="btn btn-secondary"
                    onClick={() => setCursors((c) => c.slice(0, -1))}
                  >
                    Previous page
                  </button>
                )}
                {list.data.nextCursor && (
                  <button
                    type="button"
                    className="btn btn-secondary"
                    onClick={() => setCursors((c) => [...c, list.data!.nextCursor!])}
                  >
                    Next page
                  </button>
                )}
              </div>
            </div>
          )}
        </>
      )}
    </section>
  );
}
