import { useId, useState } from 'react';
import type { SupplyAction, SupplyBulkBody, SupplyResult, SupplySettings } from '@kilowire/contract';
import { api, ApiError } from '../../api.ts';
import { useApi, useSession } from '../../common.tsx';
import { ConfirmDialog, useToast } from '../../ui/index.ts';
import { ReasonFields, reasonComplete, type ReasonValue } from './ReasonFields.tsx';
import { needsText, supplyErrorText } from './words.ts';
import './supply.css';

/**
 * The fleet table's bulk action: disconnect or reconnect the selected meters with a reason.
 * Says beforehand when the count is over the supplier's threshold (a second admin must
 * approve), and afterwards whether it went to the meters or waits. Supplier admins only.
 */
export function BulkSupplyButton({ serials, onDone }: { serials: string[]; onDone?: () => void }) {
  const { me } = useSession();
  const allowed = me.capabilities.includes('supply.bulk');
  const toast = useToast();
  const id = useId();
  const [open, setOpen] = useState(false);
  const [action, setAction] = useState<SupplyAction>('disconnect');
  const [value, setValue] = useState<ReasonValue>({ reason: '', text: '' });
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<string | null>(null);
  const settings = useApi<SupplySettings>(allowed && open ? '/api/supplier/settings' : null);
  if (!allowed) return null;
  const n = serials.length;
  const threshold = settings.data?.bulkThreshold ?? null;
  const overThreshold = threshold !== null && n > threshold;

  const submit = (): void => {
    if (value.reason === '' || busy) return;
    setBusy(true);
    setFailure(null);
    const body: SupplyBulkBody = {
      serials,
      action,
      reason: value.reason,
      ...(value.text.trim() ? { reasonText: value.text.trim() } : {}),
    };
    api<SupplyResult>('POST', '/api/supply/actions', body).then(
      (r) => {
        setBusy(false);
        setOpen(false);
        setValue({ reason: '', text: '' });
        toast.show(
          r.outcome === 'sent'
            ? `${action === 'disconnect' ? 'Disconnection' : 'Reconnection'} sent to ${r.commands.length} meters.`
            : `${r.commands.length} meters wait for a second supplier admin's approval (${needsText(r.needs)}).`,
          r.outcome === 'sent' ? 'good' : 'info',
        );
        onDone?.();
      },
      (e: unknown) => {
        setBusy(false);
        setFailure(e instanceof ApiError ? supplyErrorText(e) : String(e));
      },
    );
  };

  const meters = n === 1 ? '1 meter' : `${n} meters`;
  return (
    <>
      <button type="button" className="btn btn-secondary" disabled={n === 0} onClick={() => setOpen(true)}>
        Disconnect or reconnect{n ? ` (${n})` : ''}
      </button>
      <ConfirmDialog
        open={open}
        title={`${action === 'disconnect' ? 'Disconnect' : 'Reconnect'} ${meters}?`}
        confirmLabel={action === 'disconnect' ? `Disconnect ${meters}` : `Reconnect ${meters}`}
        danger={action === 'disconnect'}
        busy={busy}
        canConfirm={reasonComplete(value) && n > 0}
        onConfirm={submit}
        onCancel={() => {
          setOpen(false);
          setFailure(null);
        }}
      >
        <fieldset className="field">
          <legend>Action</legend>
          {(['disconnect', 'reconnect'] as const).map((a) => (
            // A div around each choice: `.field > label` would make a direct label a block.
            <div key={a} className="check">
              <input
                id={`${id}-${a}`}
                type="radio"
                name={`${id}-action`}
                checked={action === a}
                onChange={() => setAction(a)}
              />
              <label htmlFor={`${id}-${a}`}>
                {a === 'disconnect' ? 'Disconnect' : 'Reconnect (the household presses the button)'}
              </label>
            </div>
          ))}
        </fieldset>
        {overThreshold ? (
          <p className="notice notice-warn">
            {meters} is more than your threshold of {threshold}: nothing is sent until a second supplier admin
            approves.
          </p>
        ) : threshold !== null ? (
          <p className="hint">
            Up to {threshold} meters go at once; a non-payment disconnection of a vulnerable household or in
            protected hours still waits for approval.
          </p>
        ) : null}
        <ReasonFields value={value} onChange={setValue} />
        {failure && (
          <p className="error-text" role="alert">
            {failure}
          </p>
        )}
      </ConfirmDialog>
    </>
  );
}
