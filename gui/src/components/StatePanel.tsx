import { useEffect, useState } from 'react';
import { conditionOf, describeCondition, formOf, type ConditionForm, type ConditionKind, type FieldTest } from '../model/conditions';
import { END, type StateInfo, type WorkflowDoc } from '../model/workflowDoc';
import type { Problem } from '../validate/problem';
import { CommitInput, Field, InlineProblems, NameField } from './fields';

type Edit = (change: (doc: WorkflowDoc) => void) => boolean;

const KINDS: Array<[ConditionKind, string]> = [
  ['always', 'always'],
  ['says', 'a region says (regex)'],
  ['field', 'a field of its JSON reply'],
  ['output', 'output to outside (regex)'],
  ['nested', 'all / any / not (YAML)'],
];

/** The condition of a transition: a form per condition kind; applied with the button. */
export function ConditionEditor({ when, regions, onApply }: { when: unknown; regions: string[]; onApply: (when: unknown) => boolean }) {
  const stored = JSON.stringify(when ?? null);
  const [form, setForm] = useState<ConditionForm>(() => formOf(when));
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    setForm(formOf(when));
    setError(null);
    // The form follows the stored condition (re-read when it changes, not on every render).
  }, [stored]);
  const set = (change: Partial<ConditionForm>) => setForm((f) => ({ ...f, ...change }));
  const apply = () => {
    try {
      const value = conditionOf(form);
      setError(null);
      onApply(value);
    } catch (e) {
      setError((e as Error).message);
    }
  };
  const regionPicker = (
    <select value={form.region} aria-label="condition region" data-testid="condition-region" onChange={(e) => set({ region: e.target.value })}>
      <option value="">(region)</option>
      {[...new Set([...regions, ...(form.region ? [form.region] : [])])].map((r) => (
        <option key={r} value={r}>
          {r}
        </option>
      ))}
    </select>
  );
  return (
    <div className="condition-editor" data-testid="condition-editor">
      <select
        value={form.kind}
        aria-label="condition kind"
        data-testid="condition-kind"
        onChange={(e) => {
          const kind = e.target.value as ConditionKind;
          // Switching to the YAML box starts from what the form held.
          let text = form.text;
          if (kind === 'nested' && !text) {
            try {
              const current = conditionOf(form);
              text = current === undefined ? '' : formOf({ not: current }).text;
            } catch {
              text = '';
            }
          }
          set({ kind, text });
        }}
      >
        {KINDS.map(([kind, label]) => (
          <option key={kind} value={kind}>
            {label}
          </option>
        ))}
      </select>
      {form.kind === 'says' && (
        <div className="row">
          {regionPicker}
          <input value={form.pattern} placeholder="regex, e.g. APPROVED" data-testid="condition-pattern" onChange={(e) => set({ pattern: e.target.value })} />
        </div>
      )}
      {form.kind === 'output' && (
        <input value={form.pattern} placeholder="regex" data-testid="condition-pattern" onChange={(e) => set({ pattern: e.target.value })} />
      )}
      {form.kind === 'field' && (
        <>
          <div className="row">
            {regionPicker}
            <input value={form.path} placeholder="path, e.g. verdict" data-testid="condition-path" onChange={(e) => set({ path: e.target.value })} />
          </div>
          <div className="row">
            <select value={form.test} aria-label="test" data-testid="condition-test" onChange={(e) => set({ test: e.target.value as FieldTest })}>
              <option value="equals">equals</option>
              <option value="in">is one of</option>
              <option value="matches">matches</option>
            </select>
            {form.test === 'matches' ? (
              <input value={form.pattern} placeholder="regex" data-testid="condition-pattern" onChange={(e) => set({ pattern: e.target.value })} />
            ) : (
              <input
                value={form.value}
                placeholder={form.test === 'in' ? '[yes, maybe]' : 'yes'}
                data-testid="condition-value"
                onChange={(e) => set({ value: e.target.value })}
              />
            )}
          </div>
          <span className="field-help">The region needs an output_schema; the path is dotted (scores.0).</span>
        </>
      )}
      {form.kind === 'nested' && (
        <textarea
          value={form.text}
          rows={5}
          spellCheck={false}
          data-testid="condition-yaml"
          placeholder={'all:\n  - {region: Critic, says: OK}\n  - not: {output: error}'}
          onChange={(e) => set({ text: e.target.value })}
        />
      )}
      <div className="row">
        <button data-testid="condition-apply" onClick={apply}>
          Apply condition
        </button>
      </div>
      {error && (
        <p className="field-error" data-testid="condition-error">
          {error}
        </p>
      )}
    </div>
  );
}

/** One `next:` entry: where it goes and when. */
export function TransitionEditor({
  doc,
  state,
  index,
  regions,
  edit,
}: {
  doc: WorkflowDoc;
  state: StateInfo;
  index: number;
  regions: string[];
  edit: Edit;
}) {
  const transition = state.next[index];
  const targets = [...new Set([...doc.stateNames(), END, transition.to])];
  return (
    <div className="transition" data-testid={`transition-${index}`}>
      <div className="row">
        <span className="transition-index">{index + 1}.</span>
        <span>to</span>
        <select value={transition.to} aria-label="transition target" data-testid="transition-to" onChange={(e) => edit((d) => d.setTransitionTarget(state.name, index, e.target.value))}>
          {targets.map((t) => (
            <option key={t} value={t}>
              {t}
            </option>
          ))}
        </select>
        <button className="small" title="Check earlier" disabled={index === 0} onClick={() => edit((d) => d.moveTransition(state.name, index, -1))}>
          ↑
        </button>
        <button className="small" title="Check later" disabled={index === state.next.length - 1} onClick={() => edit((d) => d.moveTransition(state.name, index, 1))}>
          ↓
        </button>
        <button className="small danger" title="Delete transition" data-testid="transition-delete" onClick={() => edit((d) => d.deleteTransition(state.name, index))}>
          ×
        </button>
      </div>
      <div className="transition-when">when {describeCondition(transition.when)}</div>
      <ConditionEditor when={transition.when} regions={regions} onApply={(when) => edit((d) => d.setCondition(state.name, index, when))} />
    </div>
  );
}

interface Props {
  doc: WorkflowDoc;
  data: Record<string, unknown>;
  name: string;
  problems: Problem[];
  edit: Edit;
  /** The transition to show alone (an edge was clicked), else all of them. */
  transition?: number;
  onRenamed: (name: string) => void;
  onDeleted: () => void;
}

/** The side panel of one state: name, start, bound and what happens when it is exhausted, transitions. */
export function StatePanel({ doc, data, name, problems, edit, transition, onRenamed, onDeleted }: Props) {
  const state = doc.states().find((s) => s.name === name);
  const [newTarget, setNewTarget] = useState('');
  if (!state) return null;
  const regions = Object.keys(typeof data.regions === 'object' && data.regions ? data.regions : {});
  const others = doc.stateNames().filter((s) => s !== name);
  const shown = transition === undefined ? state.next.map((_t, i) => i) : [transition].filter((i) => i < state.next.length);
  return (
    <div className="panel state-panel" data-testid="state-panel">
      <h2>State {name}</h2>
      <InlineProblems problems={problems} />
      {transition === undefined && (
        <>
          <NameField
            name={name}
            help="Renaming updates start, every transition to it and every on_exhausted naming it."
            testId="state-name"
            edit={edit}
            rename={(d, value) => d.renameState(name, value)}
            onRenamed={onRenamed}
          />
          <label className="field checkbox">
            <input type="checkbox" checked={doc.startState() === name} disabled={doc.startState() === name} data-testid="state-start" onChange={() => edit((d) => d.setStart(name))} />
            Start state
          </label>
          <Field label="Max visits" help="Every cycle must pass through a state with a bound (verify: unbounded-cycle).">
            <CommitInput
              type="number"
              value={state.maxVisits === undefined ? '' : String(state.maxVisits)}
              placeholder="unbounded"
              testId="state-max-visits"
              onCommit={(v) => edit((d) => d.setStateField(name, 'max_visits', v.trim() === '' ? undefined : Number(v)))}
            />
          </Field>
          <Field label="When exhausted" help="One visit more than max_visits: fail the run (exit 3), end it, or go to another state.">
            <select
              value={state.onExhausted ?? ''}
              data-testid="state-on-exhausted"
              onChange={(e) => edit((d) => d.setStateField(name, 'on_exhausted', e.target.value || undefined))}
            >
              <option value="">fail (default)</option>
              {[...new Set(['fail', END, ...others, ...(state.onExhausted ? [state.onExhausted] : [])])].map((t) => (
                <option key={t} value={t}>
                  {t}
                </option>
              ))}
            </select>
          </Field>
          <h3>Transitions (checked in order; the first that holds wins; none: the run ends)</h3>
        </>
      )}
      {shown.map((i) => (
        <TransitionEditor key={`${i}:${JSON.stringify(state.next[i])}`} doc={doc} state={state} index={i} regions={regions} edit={edit} />
      ))}
      {transition === undefined && (
        <>
          <div className="row">
            <select value={newTarget} data-testid="transition-new-to" onChange={(e) => setNewTarget(e.target.value)}>
              <option value="">add a transition to…</option>
              {[...doc.stateNames(), END].map((t) => (
                <option key={t} value={t}>
                  {t}
                </option>
              ))}
            </select>
            <button
              disabled={!newTarget}
              data-testid="transition-add"
              onClick={() => {
                edit((d) => d.addTransition(name, newTarget));
                setNewTarget('');
              }}
            >
              + Transition
            </button>
          </div>
          <button
            className="danger"
            data-testid="delete-state"
            onClick={() => {
              if (edit((d) => d.deleteState(name))) onDeleted();
            }}
          >
            Delete state
          </button>
        </>
      )}
    </div>
  );
}
