/**
 * An in-page confirmation dialog (instead of window.prompt / window.confirm): modal (the rest of the
 * page is inert while it is open), focus moves into it and stays there (Tab and Shift+Tab cycle),
 * Escape cancels, and focus returns to whatever opened it. It may ask for a reason, optionally
 * required; the confirm action runs here so its errors are shown in the dialog itself.
 */
import { useEffect, useId, useRef, useState, type FormEvent, type KeyboardEvent, type ReactNode } from 'react';
import { createPortal } from 'react-dom';
import { errorText } from './api';

export interface ConfirmDialogProps {
  title: string;
  children: ReactNode;
  confirmLabel: string;
  cancelLabel?: string;
  /** Ask for a reason (a multi-line text field). */
  reason?: { label: string; required: boolean; hint?: string };
  danger?: boolean;
  onConfirm: (reason: string) => Promise<void>;
  onClose: () => void;
}

const FOCUSABLE =
  'a[href], button:not([disabled]), textarea:not([disabled]), input:not([disabled]), select:not([disabled]), [tabindex]:not([tabindex="-1"])';

export function ConfirmDialog({
  title,
  children,
  confirmLabel,
  cancelLabel = 'Cancel',
  reason,
  danger,
  onConfirm,
  onClose,
}: ConfirmDialogProps) {
  const id = useId();
  const box = useRef<HTMLDivElement>(null);
  const field = useRef<HTMLTextAreaElement>(null);
  const cancel = useRef<HTMLButtonElement>(null);
  const [text, setText] = useState('');
  const [missing, setMissing] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();

  // Modal: the console behind is inert; focus goes in, and back to the opener on close.
  useEffect(() => {
    const opener = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    const root = document.getElementById('root');
    root?.setAttribute('inert', '');
    root?.setAttribute('aria-hidden', 'true');
    (field.current ?? cancel.current)?.focus();
    return () => {
      root?.removeAttribute('inert');
      root?.removeAttribute('aria-hidden');
      if (opener?.isConnected) opener.focus();
      else document.getElementById('main')?.focus();
    };
  }, []);

  const close = () => {
    if (!busy) onClose();
  };

  const onKeyDown = (e: KeyboardEvent<HTMLDivElement>) => {
    if (e.key === 'Escape') {
      e.preventDefault();
      e.stopPropagation();
      close();
      return;
    }
    if (e.key !== 'Tab' || !box.current) return;
    const items = [...box.current.querySelectorAll<HTMLElement>(FOCUSABLE)];
    if (items.length === 0) return;
    const first = items[0]!;
    const last = items[items.length - 1]!;
    const active = document.activeElement;
    if (e.shiftKey && (active === first || !box.current.contains(active))) {
      e.preventDefault();
      last.focus();
    } else if (!e.shiftKey && (active === last || !box.current.contains(active))) {
      e.preventDefault();
      first.focus();
    }
  };

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (busy) return;
    const given = text.trim();
    if (reason?.required && given === '') {
      setMissing(true);
      field.current?.focus();
      return;
    }
    setBusy(true);
    setError(undefined);
    try {
      await onConfirm(given);
      onClose();
    } catch (err) {
      setError(errorText(err));
      setBusy(false);
    }
  };

  return createPortal(
    <div className="backdrop" onMouseDown={(e) => e.target === e.currentTarget && close()}>
      <div
        ref={box}
        className="dialog"
        role="dialog"
        aria-modal="true"
        aria-labelledby={`${id}-title`}
        aria-describedby={`${id}-body`}
        onKeyDown={onKeyDown}
        data-testid="dialog"
      >
        <form onSubmit={(e) => void submit(e)} noValidate>
          <h2 id={`${id}-title`}>{title}</h2>
          <div id={`${id}-body`}>{children}</div>
          {reason && (
            <label>
              {reason.label}
              {reason.required ? ' (required)' : ' (optional)'}
              <textarea
                ref={field}
                rows={3}
                value={text}
                required={reason.required}
                aria-invalid={missing || undefined}
                aria-describedby={missing ? `${id}-missing` : reason.hint ? `${id}-hint` : undefined}
                onChange={(e) => {
                  setText(e.target.value);
                  if (e.target.value.trim()) setMissing(false);
                }}
                onKeyDown={(e) => {
                  // Ctrl/Cmd+Enter submits from the text area (Enter alone adds a line).
                  if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) void submit(e);
                }}
              />
            </label>
          )}
          {reason?.hint && !missing && (
            <p id={`${id}-hint`} className="muted small">
              {reason.hint}
            </p>
          )}
          {missing && (
            <p id={`${id}-missing`} className="error" role="alert">
              Please give a reason.
            </p>
          )}
          {error && (
            <p className="error" role="alert">
              {error}
            </p>
          )}
          <div className="row end">
            <button ref={cancel} type="button" onClick={close} disabled={busy}>
              {cancelLabel}
            </button>
            <button type="submit" className={danger ? 'danger' : 'primary'} disabled={busy}>
              {busy ? 'Working…' : confirmLabel}
            </button>
          </div>
        </form>
      </div>
    </div>,
    document.body,
  );
}
