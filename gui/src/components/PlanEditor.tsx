import { useState } from 'react';
import { methodsOf, typeStyle } from '../model/methods';
import { isRecord, type PlanEdit, type WorkflowDoc } from '../model/workflowDoc';
import { CommitInput } from './fields';
import type { Problem } from '../validate/problem';

interface Props {
  doc: WorkflowDoc;
  data: Record<string, unknown>;
  problems: Problem[];
  edit: (change: (doc: WorkflowDoc) => void) => boolean;
  /** Steps running now in a live run, as `layer/chain/step`. */
  running: ReadonlySet<string>;
  /** The state whose plan this is (undefined: the workflow's `plan:`). */
  state?: string;
  /**
   * Where this plan's first layer runs in the live run (layers run so far when its state was
   * entered); undefined when the run is not in this state. A plain plan starts at 0.
   */
  liveAt?: number;
}

/**
 * A plan (the workflow's, or one state's): layers as rows, chains as lanes, steps as chips to
 * add, reorder and remove, and `wait:` items (a region and a prompt for the person).
 */
export function PlanEditor({ doc, data, problems, edit, running, state, liveAt = state === undefined ? 0 : undefined }: Props) {
  const scope = doc.planOf(state);
  const plan = scope.layers();
  const on = (change: (p: PlanEdit) => void) => edit((d) => change(d.planOf(state)));
  const regions = isRecord(data.regions) ? data.regions : {};
  const typeOf = (region: string) => (isRecord(regions[region]) ? regions[region].type : undefined);
  const at = scope.path.length;
  const inPlan = (p: Problem) => scope.path.every((key, i) => p.path[i] === key);
  const problemAt = (layer: number, chain: string, step: number) =>
    problems.filter((p) => inPlan(p) && p.path[at] === layer && p.path[at + 2] === chain && p.path[at + 3] === step);
  // Live runs report steps by position (layers run so far), which `liveAt` maps to rows.
  const live = (li: number, chain: string, si: number) => liveAt !== undefined && running.has(`${liveAt + li}/${chain}/${si}`);

  return (
    <div className="plan" data-testid="plan-editor">
      {plan.map((layer, li) => (
        <div className={`plan-layer${layer.wait ? ' plan-wait' : ''}`} key={li} data-testid={`layer-${li}`}>
          <div className="plan-layer-head">
            <span className="plan-layer-index">{li + 1}</span>
            <LabelInput value={layer.label ?? ''} placeholder={layer.wait ? `wait-${layer.wait.region}` : `layer-${li}`} onCommit={(v) => on((d) => d.setLayerLabel(li, v))} />
            <button className="small" title="Move layer up" disabled={li === 0} onClick={() => on((d) => d.moveLayer(li, -1))}>
              ↑
            </button>
            <button className="small" title="Move layer down" disabled={li === plan.length - 1} onClick={() => on((d) => d.moveLayer(li, 1))}>
              ↓
            </button>
            {!layer.wait && <NewChain onAdd={(name) => on((d) => d.addChain(li, name))} />}
            <button className="small danger" title="Delete layer" onClick={() => on((d) => d.deleteLayer(li))}>
              ×
            </button>
          </div>
          {layer.wait && (
            <div className="plan-lanes" data-testid={`wait-${li}`}>
              <span className="plan-chain-name">wait for</span>
              <select value={layer.wait.region} aria-label="wait for region" onChange={(e) => on((d) => d.setWait(li, { region: e.target.value }))}>
                {[...new Set([layer.wait.region, ...Object.keys(regions)])].map((r) => (
                  <option key={r} value={r}>
                    {r || '(choose)'}
                  </option>
                ))}
              </select>
              <CommitInput value={layer.wait.prompt} placeholder="what to ask the person" testId={`wait-prompt-${li}`} onCommit={(v) => on((d) => d.setWait(li, { prompt: v }))} />
            </div>
          )}
          <div className="plan-lanes">
            {layer.chains.map((chain) => (
              <div className="plan-lane" key={chain.name} data-testid={`chain-${li}-${chain.name}`}>
                <span className="plan-chain-name" title="chain">
                  {chain.name}
                  <button className="small" title="Delete chain" onClick={() => on((d) => d.deleteChain(li, chain.name))}>
                    ×
                  </button>
                </span>
                {chain.steps.map((step, si) => {
                  const stepProblems = problemAt(li, chain.name, si);
                  const isLive = live(li, chain.name, si);
                  return (
                    <span
                      key={si}
                      className={`chip${stepProblems.length ? ' chip-bad' : ''}${isLive ? ' chip-live' : ''}`}
                      style={{ borderColor: typeStyle(typeOf(step.region)).color }}
                      title={stepProblems.map((p) => `${p.rule}: ${p.message}`).join('\n') || (step.hasPolicy ? 'has its own timeout/retries policy' : '')}
                      data-testid="step-chip"
                    >
                      <button className="chip-btn" title="Move left" disabled={si === 0} onClick={() => on((d) => d.moveStep(li, chain.name, si, -1))}>
                        ‹
                      </button>
                      {step.region}.{step.method}
                      {step.hasPolicy && ' ⚙'}
                      <button
                        className="chip-btn"
                        title="Move right"
                        disabled={si === chain.steps.length - 1}
                        onClick={() => on((d) => d.moveStep(li, chain.name, si, 1))}
                      >
                        ›
                      </button>
                      <button className="chip-btn" title="Remove step" onClick={() => on((d) => d.removeStep(li, chain.name, si))}>
                        ×
                      </button>
                    </span>
                  );
                })}
                <NewStep
                  regions={Object.keys(regions)}
                  typeOf={typeOf}
                  testId={`add-step-${li}-${chain.name}`}
                  onAdd={(step) => on((d) => d.addStep(li, chain.name, step))}
                />
              </div>
            ))}
          </div>
        </div>
      ))}
      <div className="row">
        <button data-testid="add-layer" onClick={() => on((d) => void d.addLayer())}>
          + Layer
        </button>
        <button
          data-testid="add-wait"
          title="Pause the run here until a message to a region is injected (a person's answer)"
          onClick={() => on((d) => void d.addWait(Object.keys(regions)[0] ?? '', 'Your answer?'))}
        >
          + Wait
        </button>
      </div>
    </div>
  );
}

function LabelInput({ value, placeholder, onCommit }: { value: string; placeholder: string; onCommit: (v: string) => void }) {
  const [draft, setDraft] = useState<string | null>(null);
  return (
    <input
      className="plan-layer-label"
      value={draft ?? value}
      placeholder={placeholder}
      title="Layer label (optional, unique)"
      onChange={(e) => setDraft(e.target.value)}
      onBlur={() => {
        if (draft !== null && draft !== value) onCommit(draft.trim());
        setDraft(null);
      }}
      onKeyDown={(e) => e.key === 'Enter' && (e.target as HTMLInputElement).blur()}
    />
  );
}

function NewChain({ onAdd }: { onAdd: (name: string) => void }) {
  const [name, setName] = useState('');
  return (
    <span className="new-chain">
      <input value={name} placeholder="new chain" onChange={(e) => setName(e.target.value)} />
      <button
        className="small"
        disabled={!name.trim()}
        onClick={() => {
          onAdd(name.trim());
          setName('');
        }}
      >
        + Chain
      </button>
    </span>
  );
}

/** Region picker, then a method picker offering only the methods of that region's type. */
function NewStep({
  regions,
  typeOf,
  onAdd,
  testId,
}: {
  regions: string[];
  typeOf: (region: string) => unknown;
  onAdd: (step: string) => void;
  testId: string;
}) {
  const [region, setRegion] = useState('');
  const methods = methodsOf(typeof typeOf(region) === 'string' ? (typeOf(region) as string) : undefined);
  return (
    <span className="new-step" data-testid={testId}>
      <select value={region} aria-label="step region" onChange={(e) => setRegion(e.target.value)}>
        <option value="">+ step…</option>
        {regions.map((r) => (
          <option key={r} value={r}>
            {r}
          </option>
        ))}
      </select>
      {region && (
        <select
          value=""
          aria-label="step method"
          onChange={(e) => {
            if (!e.target.value) return;
            onAdd(`${region}.${e.target.value}`);
            setRegion('');
          }}
        >
          <option value="">method…</option>
          {methods.map((m) => (
            <option key={m} value={m}>
              {m}
            </option>
          ))}
        </select>
      )}
    </span>
  );
}
