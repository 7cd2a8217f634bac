import { useEffect, useState, type ReactNode } from 'react';

/** A labelled row with the schema's description as help. */
export function Field({ label, help, children }: { label: string; help?: string; children: ReactNode }) {
  return (
    <label className="field">
      <span className="field-label" title={help}>
        {label}
      </span>
      {children}
      {help && <span className="field-help">{help}</span>}
    </label>
  );
}

/**
 * A text input that commits on blur or Enter (not on every key stroke), so a rename or an edit
 * becomes one document change. Escape restores the stored value.
 */
export function CommitInput({
  value,
  onCommit,
  multiline = false,
  type = 'text',
  testId,
  placeholder,
  step,
}: {
  value: string;
  /** Return false to refuse the value (the field then shows the stored value again). */
  onCommit: (value: string) => boolean | void;
  multiline?: boolean;
  type?: 'text' | 'number';
  testId?: string;
  placeholder?: string;
  step?: string;
}) {
  const [draft, setDraft] = useState(value);
  useEffect(() => setDraft(value), [value]);
  const commit = () => {
    if (draft !== value && onCommit(draft) === false) setDraft(value);
  };
  const common = {
    value: draft,
    placeholder,
    'data-testid': testId,
    onBlur: commit,
    onChange: (e: { target: { value: string } }) => setDraft(e.target.value),
  };
  if (multiline) {
    return (
      <textarea
        {...common}
        rows={3}
        onKeyDown={(e) => {
          if (e.key === 'Escape') setDraft(value);
          if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) commit();
        }}
      />
    );
  }
  return (
    <input
      {...common}
      type={type}
      step={step}
      onKeyDown={(e) => {
        if (e.key === 'Escape') setDraft(value);
        if (e.key === 'Enter') commit();
      }}
    />
  );
}
