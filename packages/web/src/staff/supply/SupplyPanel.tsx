import { useState } from 'react';
import type { ApprovalList, CommandList, SupplyAction, SupplyBody, SupplyResult } from '@kilowire/contract';
import { api, ApiError, qs } from '../../api.ts';
import { ErrorMessage, Loading, useApi, useSession } from '../../common.tsx';
import { Link } from '../../router.tsx';
import { Badge, ConfirmDialog, useToast, type Tone } from '../../ui/index.ts';
import { ReasonFields, reasonComplete, type ReasonValue } from './ReasonFields.tsx';
import { needsText, reasonLabel, shortTime, supplyErrorText } from './words.ts';
import './supply.css';

const RELAY: Record<string, { label: string; tone: Tone }> = {
  connected: { label: 'Connected', tone: 'good' },
  disconnected: { label: 'Disconnected', tone: 'bad' },
  armed: { label: 'Armed: waiting for the household to press the button', tone: 'warn' },
};

const OPEN = new Set(['awaiting_approval', 'requested', 'queued', 'sent']);
const COMMAND_WORDS: Record<string, string> = {
  'supply.off': 'Disconnect',
  'supply.arm': 'Reconnect (arm)',
  'supply.on': 'Switch on',
};
const STATUS_WORDS: Record<string, string> = {
  awaiting_approval: 'awaiting approval',
  requested: 'requested',
  queued: 'queued for the meter',
  sent: 'sent, waiting for the meter to answer',
};

/**
 * Remote supply control on the meter page: the relay state, Disconnect / Reconnect with a
 * reason (a confirmation dialog), and what is pending — commands on their way to the meter
 * and requests waiting for a second admin, with why.
 */
export function SupplyPanel({
  serial,
  relay,
  onChanged,
}: {
  serial: string;
  relay: string | null;
  onChanged?: () => void;
}) {
  const { me } = useSession();
  const toast = useToast();
  const commands = useApi<CommandList>(`/api/meters/${encodeURIComponent(serial)}/commands?limit=20`);
  // Approvals are the supplier's own business: an administrator sees the relay and the
  // commands, not the supplier's queue (the API would refuse, and the page would show that).
  const seesApprovals = me.capabilities.includes('approvals.read');
  const waiting = useApi<ApprovalList>(
    seesApprovals ? `/api/approvals${qs({ status: 'awaiting_approval', serial })}` : null,
  );
  const [dialog, setDialog] = useState<SupplyAction | null>(null);
  const [value, setValue] = useState<ReasonValue>({ reason: '', text: '' });
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<string | null>(null);
  const mayAct = me.user.role === 'supplier';

  const pending = (commands.data?.items ?? []).filter(
    (c) => c.type.startsWith('supply.') && OPEN.has(c.status),
  );
  const requests = waiting.data?.items ?? [];
  const blocked = requests.length > 0;
  const state = relay ? RELAY[relay] : undefined;
  const canDisconnect = !blocked && relay !== 'disconnected';
  const canReconnect = !blocked && relay === 'disconnected';
  const why = blocked
    ? 'A request for this meter waits for approval: it must be decided (or lapse) before another.'
    : relay === 'armed'
      ? 'Already armed: the household switches the power on by pressing the button on the meter.'
      : relay === 'disconnected'
        ? 'Reconnecting arms the meter; the household then presses the button on the meter.'
        : relay === null
          ? 'The meter has not reported its relay state yet, so it cannot be reconnected.'
          : null;

  const submit = (): void => {
    if (!dialog || value.reason === '' || busy) return;
    setBusy(true);
    setFailure(null);
    const body: SupplyBody = {
      action: dialog,
      reason: value.reason,
      ...(value.text.trim() ? { reasonText: value.text.trim() } : {}),
    };
    api<SupplyResult>('POST', `/api/meters/${encodeURIComponent(serial)}/supply`, body).then(
      (r) => {
        setBusy(false);
        setDialog(null);
        setValue({ reason: '', text: '' });
        toast.show(
          r.outcome === 'sent'
            ? `${dialog === 'disconnect' ? 'Disconnection' : 'Reconnection'} sent to meter ${serial}.`
            : `Waiting for a second supplier admin to approve (${needsText(r.needs)}).`,
          r.outcome === 'sent' ? 'good' : 'info',
        );
        commands.reload();
        waiting.reload();
        onChanged?.();
      },
      (e: unknown) => {
        setBusy(false);
        setFailure(e instanceof ApiError ? supplyErrorText(e) : String(e));
      },
    );
  };

  return (
    <section className="card supply-panel" aria-labelledby="supply-panel-h">
      <h2 id="supply-panel-h">Supply</h2>
      <p className="supply-state">
        Relay:{' '}
        {state ? (
          <Badge tone={state.tone}>{state.label}</Badge>
        ) : (
          <span className="muted">not reported yet</span>
        )}
      </p>
      {waiting.error ? (
        <ErrorMessage error={waiting.error} retry={waiting.reload} />
      ) : waiting.loading && !waiting.data ? (
        <Loading what="approvals" />
      ) : (
        requests.map((r) => (
          <div key={r.id} className="notice notice-warn">
            <p>
              <strong>
                {r.kind === 'supply.disconnect' ? 'Disconnection' : 'Reconnection'} awaiting approval by a
                second admin
              </strong>{' '}
              (reason: {needsText(r.needs)}). Asked by {r.requestedBy.name} for{' '}
              {reasonLabel(r.reason).toLowerCase()}; lapses {shortTime(r.expiresAt)}.{' '}
              <Link href="/approvals">Open approvals</Link>
            </p>
          </div>
        ))
      )}
      {commands.error ? (
        <ErrorMessage error={commands.error} retry={commands.reload} />
      ) : pending.length > 0 ? (
        <>
          <h3 className="supply-sub">Pending commands</h3>
          <ul className="supply-pending">
            {pending.map((c) => (
              <li key={c.id}>
                {COMMAND_WORDS[c.type] ?? c.type}
                {c.reason ? ` (${reasonLabel(c.reason).toLowerCase()})` : ''}:{' '}
                {STATUS_WORDS[c.status] ?? c.status}
                <span className="muted"> · {shortTime(c.createdAt)}</span>
              </li>
            ))}
          </ul>
        </>
      ) : null}
      {mayAct && (
        <div className="form-actions">
          {/* aria-disabled, not disabled: the buttons stay focusable and the hint below says why. */}
          <button
            type="button"
            className="btn btn-danger"
            aria-disabled={!canDisconnect}
            aria-describedby={why ? 'supply-panel-why' : undefined}
            onClick={() => canDisconnect && setDialog('disconnect')}
          >
            Disconnect
          </button>
          <button
            type="button"
            className="btn btn-secondary"
            aria-disabled={!canReconnect}
            aria-describedby={why ? 'supply-panel-why' : undefined}
            onClick={() => canReconnect && setDialog('reconnect')}
          >
            Reconnect
          </button>
        </div>
      )}
      {mayAct && why && (
        <p className="hint" id="supply-panel-why">
          {why}
        </p>
      )}
      <ConfirmDialog
        open={dialog !== null}
        title={dialog === 'disconnect' ? `Disconnect meter ${serial}?` : `Reconnect meter ${serial}?`}
        confirmLabel={dialog === 'disconnect' ? 'Disconnect' : 'Reconnect'}
        danger={dialog === 'disconnect'}
        busy={busy}
        canConfirm={reasonComplete(value)}
        onConfirm={submit}
        onCancel={() => {
          setDialog(null);
          setFailure(null);
        }}
      >
        <p>
          {dialog === 'disconnect'
            ? 'The supply is cut off as soon as the meter receives the command. A non-payment disconnection of a vulnerable household, or in protected hours, waits for a second supplier admin.'
            : 'The meter is armed: the household is told to press the button on the meter to switch the power back on.'}
        </p>
        <ReasonFields value={value} onChange={setValue} />
        {failure && (
          <p className="error-text" role="alert">
            {failure}
          </p>
        )}
      </ConfirmDialog>
    </section>
  );
}
