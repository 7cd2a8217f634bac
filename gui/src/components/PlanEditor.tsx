import { useState } from 'react';
import { methodsOf, typeStyle } from '../model/methods';
import { isRecord, type WorkflowDoc } from '../model/workflowDoc';
import type { Problem } from '../validate/problem';

interface Props {
  doc: WorkflowDoc;
  data: Record<string, unknown>;
  problems: Problem[];
  edit: (change: (doc: WorkflowDoc) => void) => boolean;
  /** Steps running now in a live run, as `layer/chain/step`. */
  running: ReadonlySet<string>;
}

/** The plan: layers as rows, chains as lanes, steps as chips to add, reorder and remove. */
export function PlanEditor({ doc, data, problems, edit, running }: Props) {
  const plan = doc.plan();
  const regions = isRecord(data.regions) ? data.regions : {};
  const typeOf = (region: string) => (isRecord(regions[region]) ? regions[region].type : undefined);
  const problemAt = (layer: number, chain: string, step: number) =>
    problems.filter((p) => p.path[0] === 'plan' && p.path[1] === layer && p.path[3] === chain && p.path[4] === step);

  return (
    <div className="plan" data-testid="plan-editor">
      {plan.map((layer, li) => (
        <div className="plan-layer" key={li} data-testid={`layer-${li}`}>
          <div className="plan-layer-head">
            <span className="plan-layer-index">{li + 1}</span>
            <LabelInput value={layer.label ?? ''} placeholder={`layer-${li}`} onCommit={(v) => edit((d) => d.setLayerLabel(li, v))} />
            <button className="small" title="Move layer up" disabled={li === 0} onClick={() => edit((d) => d.moveLayer(li, -1))}>
              ↑
            </button>
            <button className="small" title="Move layer down" disabled={li === plan.length - 1} onClick={() => edit((d) => d.moveLayer(li, 1))}>
              ↓
            </button>
            <NewChain onAdd={(name) => edit((d) => d.addChain(li, name))} />
            <button className="small danger" title="Delete layer" onClick={() => edit((d) => d.deleteLayer(li))}>
              ×
            </button>
          </div>
          <div className="plan-lanes">
            {layer.chains.map((chain) => (
              <div className="plan-lane" key={chain.name} data-testid={`chain-${li}-${chain.name}`}>
                <span className="plan-chain-name" title="chain">
                  {chain.name}
                  <button className="small" title="Delete chain" onClick={() => edit((d) => d.deleteChain(li, chain.name))}>
                    ×
                  </button>
                </span>
                {chain.steps.map((step, si) => {
                  const stepProblems = problemAt(li, chain.name, si);
                  const live = running.has(`${li}/${chain.name}/${si}`);
                  return (
                    <span
                      key={si}
                      className={`chip${stepProblems.length ? ' chip-bad' : ''}${live ? ' chip-live' : ''}`}
                      style={{ borderColor: typeStyle(typeOf(step.region)).color }}
                      title={stepProblems.map((p) => `${p.rule}: ${p.message}`).join('\n') || (step.hasPolicy ? 'has its own timeout/retries policy' : '')}
                      data-testid="step-chip"
                    >
                      <button className="chip-btn" title="Move left" disabled={si === 0} onClick={() => edit((d) => d.moveStep(li, chain.name, si, -1))}>
                        ‹
                      </button>
                      {step.region}.{step.method}
                      {step.hasPolicy && ' ⚙'}
                      <button
                        className="chip-btn"
                        title="Move right"
                        disabled={si === chain.steps.length - 1}
                        onClick={() => edit((d) => d.moveStep(li, chain.name, si, 1))}
                      >
                        ›
                      </button>
                      <button className="chip-btn" title="Remove step" onClick={() => edit((d) => d.removeStep(li, chain.name, si))}>
                        ×
                      </button>
                    </span>
                  );
                })}
                <NewStep
                  regions={Object.keys(regions)}
                  typeOf={typeOf}
                  testId={`add-step-${li}-${chain.name}`}
                  onAdd={(step) => edit((d) => d.addStep(li, chain.name, step))}
                />
              </div>
            ))}
          </div>
        </div>
      ))}
      <button data-testid="add-layer" onClick={() => edit((d) => void d.addLayer())}>
        + Layer
      </button>
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
