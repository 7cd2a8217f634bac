import { useEffect, useState, type ReactNode } from 'react';
import type { WorkflowDoc } from '../model/workflowDoc';
import type { Problem } from '../validate/problem';

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

/**
 * A JSON value (a region's `output_schema` / `input_schema`) edited as JSON text: committed on
 * blur or Ctrl+Enter when it parses to an object (`check` may refuse it with a reason); an
 * empty box removes the key.
 */
export function JsonInput({
  value,
  onCommit,
  check,
  testId,
  placeholder,
}: {
  value: unknown;
  onCommit: (value: Record<string, unknown> | undefined) => boolean | void;
  check?: (value: Record<string, unknown>) => string | null;
  testId?: string;
  placeholder?: string;
}) {
  const stored = value === undefined ? '' : JSON.stringify(value, null, 2);
  const [draft, setDraft] = useState(stored);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    setDraft(stored);
    setError(null);
  }, [stored]);
  const commit = () => {
    if (draft === stored) return;
    if (draft.trim() === '') {
      setError(null);
      onCommit(undefined);
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(draft);
    } catch (e) {
      setError(`not JSON: ${(e as Error).message}`);
      return;
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      setError('a JSON Schema is an object: {"type": "object", ...}');
      return;
    }
    const problem = check?.(parsed as Record<string, unknown>) ?? null;
    setError(problem);
    if (problem === null) onCommit(parsed as Record<string, unknown>);
  };
  return (
    <>
      <textarea
        className={`json-input${error ? ' bad' : ''}`}
        value={draft}
        rows={6}
        spellCheck={false}
        placeholder={placeholder}
        data-testid={testId}
        onChange={(e) => setDraft(e.target.value)}
        onBlur={commit}
        onKeyDown={(e) => {
          if (e.key === 'Escape') setDraft(stored);
          if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) commit();
        }}
      />
      {error && (
        <span className="field-error" data-testid={testId ? `${testId}-error` : undefined}>
          {error}
        </span>
      )}
    </>
  );
}

/** The problems of what a panel edits, listed at its top (none: nothing shown). */
export function InlineProblems({ problems }: { problems: Problem[] }) {
  if (problems.length === 0) return null;
  return (
    <ul className="inline-problems">
      {problems.map((p, i) => (
        <li key={i}>
          <code>{p.rule}</code> {p.message}
        </li>
      ))}
    </ul>
  );
}

/** The Name field of a region or a state: a rename is one document change, refused in one line. */
export function NameField({
  name,
  help,
  testId,
  edit,
  rename,
  onRenamed,
}: {
  name: string;
  help: string;
  testId: string;
  edit: (change: (doc: WorkflowDoc) => void) => boolean;
  rename: (doc: WorkflowDoc, newName: string) => void;
  onRenamed: (name: string) => void;
}) {
  return (
    <Field label="Name" help={help}>
      <CommitInput
        value={name}
        testId={testId}
        onCommit={(value) => {
          const renamed = edit((d) => rename(d, value.trim()));
          if (renamed) onRenamed(value.trim());
          return renamed;
        }}
      />
    </Field>
  );
}
