import { useEffect, useRef, type ReactNode } from 'react';

/**
 * A modal confirmation for a dangerous action (disconnect, decommission, approve). A native
 * <dialog>: focus is trapped and Escape cancels without any library.
 */
export function ConfirmDialog(p: {
  open: boolean;
  title: string;
  children?: ReactNode;
  confirmLabel: string;
  /** Red confirm button: the action cuts a supply, deletes, or cannot be undone. */
  danger?: boolean;
  busy?: boolean;
  /** Disable confirm until the form inside is valid. */
  canConfirm?: boolean;
  onConfirm: () => void;
  onCancel: () => void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (p.open && !d.open) d.showModal();
    if (!p.open && d.open) d.close();
  }, [p.open]);
  return (
    <dialog
      ref={ref}
      className="dialog"
      aria-labelledby="dialog-title"
      onCancel={(e) => {
        e.preventDefault();
        p.onCancel();
      }}
    >
      <form
        method="dialog"
        onSubmit={(e) => {
          e.preventDefault();
          if (p.canConfirm !== false && !p.busy) p.onConfirm();
        }}
      >
        <h2 id="dialog-title">{p.title}</h2>
        <div className="dialog-body">{p.children}</div>
        <div className="form-actions">
          <button type="button" className="btn btn-secondary" onClick={p.onCancel}>
            Cancel
          </button>
          <button
            type="submit"
            className={p.danger ? 'btn btn-danger' : 'btn'}
            disabled={p.canConfirm === false || p.busy}
          >
            {p.busy ? 'Working…' : p.confirmLabel}
          </button>
        </div>
      </form>
    </dialog>
  );
}
