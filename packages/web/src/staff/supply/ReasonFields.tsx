import { useId } from 'react';
import { SUPPLY_REASONS, type SupplyReason } from '@kilowire/contract/enums';
import { REASON_LABELS } from './words.ts';

export interface ReasonValue {
  reason: SupplyReason | '';
  text: string;
}

/** A reason chosen, and a text when it is "other". */
export function reasonComplete(v: ReasonValue): boolean {
  return v.reason !== '' && (v.reason !== 'other' || v.text.trim().length > 0);
}

/** The reason select and its text: both dialogs of remote supply control ask the same way. */
export function ReasonFields({
  value,
  onChange,
}: {
  value: ReasonValue;
  onChange: (v: ReasonValue) => void;
}) {
  const id = useId();
  return (
    <>
      <div className="field">
        <label htmlFor={`${id}-reason`}>Reason</label>
        <select
          id={`${id}-reason`}
          value={value.reason}
          required
          onChange={(e) => onChange({ ...value, reason: e.target.value as SupplyReason | '' })}
        >
          <option value="">Choose a reason…</option>
          {SUPPLY_REASONS.map((r) => (
            <option key={r} value={r}>
              {REASON_LABELS[r]}
            </option>
          ))}
        </select>
      </div>
      <div className="field">
        <label htmlFor={`${id}-text`}>
          Details{value.reason === 'other' ? ' (required)' : ' (optional)'}
        </label>
        <p className="hint" id={`${id}-hint`}>
          Kept in the audit log and shown to the admin who approves. The household is told the reason in plain
          words.
        </p>
        <textarea
          id={`${id}-text`}
          rows={2}
          maxLength={500}
          value={value.text}
          aria-describedby={`${id}-hint`}
          required={value.reason === 'other'}
          onChange={(e) => onChange({ ...value, text: e.target.value })}
        />
      </div>
    </>
  );
}
