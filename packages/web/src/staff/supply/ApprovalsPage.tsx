import { useId, useState } from 'react';
import type {
  Approval,
  ApprovalDetail,
  ApprovalList,
  FwCampaignsResponse,
  FwCampaignSummary,
} from '@kilowire/contract';
import { api, ApiError, qs } from '../../api.ts';
import { ErrorMessage, Loading, PageHeading, useApi, useSession } from '../../common.tsx';
import { Link } from '../../router.tsx';
import { Badge, ConfirmDialog, EmptyState, useToast, type Tone } from '../../ui/index.ts';
import {
  FIRMWARE_CAMPAIGN_KIND,
  kindLabel,
  needsText,
  reasonLabel,
  REQUEST_STATUS,
  shortTime,
  supplyErrorText,
} from './words.ts';
import './supply.css';

const TONE: Record<Approval['status'], Tone> = {
  awaiting_approval: 'warn',
  approved: 'good',
  rejected: 'bad',
  expired: 'neutral',
  cancelled: 'neutral',
};

/**
 * Actions of the supplier that wait for a second person: who asked, why it waits, how many
 * meters, when it lapses. Supplier admins approve or reject with a reason; the requester sees
 * their own request without Approve (and may withdraw it); agents follow along.
 */
export function ApprovalsPage() {
  const [show, setShow] = useState<'waiting' | 'all'>('waiting');
  const list = useApi<ApprovalList>(
    `/api/approvals${qs(show === 'waiting' ? { status: 'awaiting_approval' } : { limit: 100 })}`,
  );
  const items = list.data?.items ?? [];
  // #10 D: a firmware campaign's request links to its campaign (the campaign names its request).
  const { me } = useSession();
  const hasFirmware =
    items.some((a) => a.kind === FIRMWARE_CAMPAIGN_KIND) && me.capabilities.includes('firmware.read');
  const campaigns = useApi<FwCampaignsResponse>(hasFirmware ? '/api/firmware/campaigns?limit=200' : null);
  const byRequest = new Map<number, FwCampaignSummary>();
  for (const c of campaigns.data?.items ?? []) if (c.requestId !== null) byRequest.set(c.requestId, c);
  return (
    <>
      <PageHeading title="Approvals">Approvals</PageHeading>
      <p>
        Disconnections of vulnerable households or in protected hours for non-payment, actions on more meters
        than your threshold, and the start of a firmware campaign reach no meter until a second supplier admin
        approves them.
      </p>
      <div className="segmented" role="group" aria-label="Show">
        <button type="button" aria-pressed={show === 'waiting'} onClick={() => setShow('waiting')}>
          Waiting
        </button>
        <button type="button" aria-pressed={show === 'all'} onClick={() => setShow('all')}>
          All
        </button>
      </div>
      <div className="approvals-body">
        {list.error ? (
          <ErrorMessage error={list.error} retry={list.reload} />
        ) : !list.data ? (
          <Loading what="approvals" />
        ) : items.length === 0 ? (
          <EmptyState
            title={show === 'waiting' ? 'Nothing is waiting for approval' : 'No approval requests yet'}
          >
            <p>Requests appear here when a safeguard holds an action for a second supplier admin.</p>
          </EmptyState>
        ) : (
          <ul className="approval-list">
            {items.map((a) => (
              <li key={a.id}>
                <ApprovalCard a={a} onDecided={list.reload} campaign={byRequest.get(a.id) ?? null} />
              </li>
            ))}
          </ul>
        )}
      </div>
    </>
  );
}

function ApprovalCard({
  a,
  onDecided,
  campaign,
}: {
  a: Approval;
  onDecided: () => void;
  /** #10 D: the firmware campaign this request would start, when it is one. */
  campaign: FwCampaignSummary | null;
}) {
  const firmware = a.kind === FIRMWARE_CAMPAIGN_KIND;
  const { me } = useSession();
  const toast = useToast();
  const id = useId();
  const mayDecide = me.capabilities.includes('approvals.decide');
  const waiting = a.status === 'awaiting_approval';
  const [mode, setMode] = useState<'approve' | 'reject' | null>(null);
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<string | null>(null);
  const [showMeters, setShowMeters] = useState(false);
  const detail = useApi<ApprovalDetail>(showMeters ? `/api/approvals/${a.id}` : null);
  const title = kindLabel(a.kind, a.meterCount);

  const decide = (): void => {
    if (!mode || busy || reason.trim().length < 3) return;
    setBusy(true);
    setFailure(null);
    api<ApprovalDetail>('POST', `/api/approvals/${a.id}/${mode}`, { reason: reason.trim() }).then(
      (r) => {
        setBusy(false);
        setMode(null);
        setReason('');
        toast.show(
          r.status === 'approved' && firmware
            ? 'Approved: the campaign starts with its canary stage.'
            : r.status === 'approved'
              ? `Approved: ${a.meterCount} command${a.meterCount === 1 ? '' : 's'} on the way to the meters.`
              : r.status === 'cancelled'
                ? 'Your request is withdrawn; nothing was sent.'
                : 'Rejected; nothing was sent.',
          r.status === 'approved' ? 'good' : 'info',
        );
        onDecided();
      },
      (e: unknown) => {
        setBusy(false);
        setFailure(e instanceof ApiError ? supplyErrorText(e) : String(e));
      },
    );
  };

  return (
    <section className="card" aria-labelledby={`${id}-h`}>
      <div className="approval-head">
        <h3 id={`${id}-h`}>
          {title} <span className="muted">· request {a.id}</span>
        </h3>
        <Badge tone={TONE[a.status]}>{REQUEST_STATUS[a.status]}</Badge>
      </div>
      <dl className="approval-facts">
        {firmware && (
          <>
            <dt>Campaign</dt>
            <dd>
              {campaign ? (
                <Link href={`/firmware/campaigns/${campaign.id}`}>
                  {campaign.name} ({campaign.image.version})
                </Link>
              ) : (
                <Link href="/firmware/campaigns">Firmware campaigns</Link>
              )}
            </dd>
          </>
        )}
        <dt>Why it waits</dt>
        <dd>{needsText(a.needs)}</dd>
        <dt>Reason</dt>
        <dd>
          {firmware && a.reasonText
            ? a.reasonText
            : `${reasonLabel(a.reason)}${a.reasonText ? `: ${a.reasonText}` : ''}`}
        </dd>
        <dt>Asked by</dt>
        <dd>
          {a.mine ? 'You' : a.requestedBy.name}, {shortTime(a.createdAt)}
        </dd>
        {waiting ? (
          <>
            <dt>Lapses</dt>
            <dd>{shortTime(a.expiresAt)}</dd>
          </>
        ) : a.decidedBy ? (
          <>
            <dt>{a.status === 'cancelled' ? 'Withdrawn by' : 'Decided by'}</dt>
            <dd>
              {a.decidedBy.name}
              {a.decidedAt ? `, ${shortTime(a.decidedAt)}` : ''}
              {a.decisionReason ? `: ${a.decisionReason}` : ''}
            </dd>
          </>
        ) : null}
      </dl>
      {waiting && a.mine && (
        <p className="notice" role="note">
          You asked for this, so a second supplier admin must approve it.
          {mayDecide ? ' You can withdraw it.' : ''}
        </p>
      )}
      {waiting && !mayDecide && !a.mine && <p className="muted">A supplier admin decides.</p>}
      <div className="form-actions">
        {waiting && mayDecide && !a.mine && (
          <button type="button" className="btn" onClick={() => setMode('approve')}>
            Approve<span className="visually-hidden"> request {a.id}</span>
          </button>
        )}
        {waiting && mayDecide && (
          <button type="button" className="btn btn-secondary" onClick={() => setMode('reject')}>
            {a.mine ? 'Withdraw' : 'Reject'}
            <span className="visually-hidden"> request {a.id}</span>
          </button>
        )}
        {!firmware && (
          <button
            type="button"
            className="btn btn-secondary btn-small"
            aria-expanded={showMeters}
            onClick={() => setShowMeters((s) => !s)}
          >
            {showMeters
              ? 'Hide meters'
              : `Show ${a.meterCount === 1 ? 'the meter' : `the ${a.meterCount} meters`}`}
          </button>
        )}
      </div>
      {showMeters &&
        (detail.error ? (
          <ErrorMessage error={detail.error} retry={detail.reload} />
        ) : !detail.data ? (
          <Loading what="meters" />
        ) : (
          <ul className="approval-meters">
            {detail.data.meters.map((m) => (
              <li key={m.serial}>
                {m.serial}
                {m.vulnerable ? ' (vulnerable)' : ''}{' '}
                <span className="muted">· {m.commandStatus.replace('_', ' ')}</span>
              </li>
            ))}
          </ul>
        ))}
      <ConfirmDialog
        open={mode !== null}
        title={
          mode === 'approve'
            ? `Approve: ${title.toLowerCase()}?`
            : a.mine
              ? 'Withdraw your request?'
              : `Reject: ${title.toLowerCase()}?`
        }
        confirmLabel={mode === 'approve' ? 'Approve' : a.mine ? 'Withdraw' : 'Reject'}
        danger={mode === 'approve' && a.kind === 'supply.disconnect'}
        busy={busy}
        canConfirm={reason.trim().length >= 3}
        onConfirm={decide}
        onCancel={() => {
          setMode(null);
          setFailure(null);
        }}
      >
        <p>
          {mode === 'approve' && firmware
            ? 'The campaign starts as soon as you approve: its canary meters are offered the image, and activate only in its window.'
            : mode === 'reject' && firmware
              ? 'The campaign does not start; no meter is offered anything.'
              : mode === 'approve'
                ? `The commands go to ${a.meterCount === 1 ? 'the meter' : `${a.meterCount} meters`} as soon as you approve.`
                : 'Nothing is sent to any meter; the commands are cancelled.'}
        </p>
        <div className="field">
          <label htmlFor={`${id}-reason`}>Your reason (kept in the audit log)</label>
          <textarea
            id={`${id}-reason`}
            rows={3}
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
    </section>
  );
}
