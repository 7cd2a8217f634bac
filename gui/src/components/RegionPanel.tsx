import { useState } from 'react';
import { INPUT_SCHEMA_TYPES, LLM_CHOOSING_TYPES, LLM_REGION_TYPES, OUTPUT_SCHEMA_TYPES, REGION_TYPES, typeStyle } from '../model/methods';
import { jsonSchemaProblem } from '../validate/schema';
import { isRecord, type WorkflowDoc } from '../model/workflowDoc';
import type { Problem } from '../validate/problem';
import { CommitInput, Field, InlineProblems, JsonInput, NameField } from './fields';
import { TypeIcon } from './TypeIcon';

interface Props {
  doc: WorkflowDoc;
  data: Record<string, unknown>;
  name: string;
  help: Record<string, string>;
  /** Prompt template name -> description (from the schema). */
  prompts: Record<string, string>;
  problems: Problem[];
  edit: (change: (doc: WorkflowDoc) => void) => boolean;
  onRenamed: (name: string) => void;
  onDeleted: () => void;
}

function keysOf(value: unknown): string[] {
  return isRecord(value) ? Object.keys(value) : [];
}

/** The side panel for one region: every field of its type, with the schema's help. */
export function RegionPanel({ doc, data, name, help, prompts: promptHelp, problems, edit, onRenamed, onDeleted }: Props) {
  const region = isRecord(data.regions) && isRecord(data.regions[name]) ? data.regions[name] : {};
  const type = typeof region.type === 'string' ? region.type : '';
  const regionNames = keysOf(data.regions);
  const targets = doc.connections().filter(([source]) => source === name).map(([, target]) => target);
  const [connectTo, setConnectTo] = useState('');
  const described = doc.connectionDescriptions(name);
  const set = (key: string, value: unknown) => edit((d) => d.setRegionField(name, key, value));
  const text = (key: string) => (typeof region[key] === 'string' ? (region[key] as string) : region[key] === undefined ? '' : String(region[key]));
  const number = (raw: string) => (raw.trim() === '' ? undefined : Number(raw));
  const llms = keysOf(data.llms);
  const rags = keysOf(data.rags);
  const style = typeStyle(type);
  const taps = Array.isArray(region.taps) ? region.taps.map(String) : [];
  const prompts = isRecord(region.prompts) ? region.prompts : {};
  const routes = (Array.isArray(region.routes) ? region.routes : []).map((r) => ({
    says: isRecord(r) && isRecord(r.when) && typeof r.when.says === 'string' ? r.when.says : '',
    to: isRecord(r) && typeof r.to === 'string' ? r.to : '',
  }));

  return (
    <div className="panel region-panel" data-testid="region-panel">
      <h2 style={{ borderColor: style.color }}>
        <TypeIcon type={type} /> {name}
      </h2>
      <InlineProblems problems={problems} />
      <NameField
        name={name}
        help="Renaming updates every reference: connections, plan steps, inject, layout."
        testId="field-name"
        edit={edit}
        rename={(d, value) => d.renameRegion(name, value)}
        onRenamed={onRenamed}
      />
      <Field label="Type" help={help.type}>
        <select value={type} data-testid="field-type" onChange={(e) => set('type', e.target.value)}>
          {!REGION_TYPES.includes(type as never) && <option value={type}>{type || '(none)'}</option>}
          {REGION_TYPES.map((t) => (
            <option key={t} value={t}>
              {t}
            </option>
          ))}
        </select>
      </Field>
      {type !== 'ListenerRegion' && (
        <Field label="Task" help={help.task}>
          <CommitInput multiline value={text('task')} testId="field-task" onCommit={(v) => set('task', v)} />
        </Field>
      )}
      {LLM_CHOOSING_TYPES.has(type) && (
        <Field label="LLM" help={help.llm}>
          <select value={text('llm')} data-testid="field-llm" onChange={(e) => set('llm', e.target.value)}>
            <option value="">{type === 'RouterRegion' ? '(none: rules only)' : '(default)'}</option>
            {[...new Set([...llms, ...(text('llm') ? [text('llm')] : [])])].map((l) => (
              <option key={l} value={l}>
                {l}
              </option>
            ))}
          </select>
        </Field>
      )}
      {type === 'RAGRegion' && (
        <>
          <Field label="RAG store" help={help.rag}>
            <select value={text('rag')} data-testid="field-rag" onChange={(e) => set('rag', e.target.value)}>
              <option value="">(choose)</option>
              {[...new Set([...rags, ...(text('rag') ? [text('rag')] : [])])].map((r) => (
                <option key={r} value={r}>
                  {r}
                </option>
              ))}
            </select>
          </Field>
          <Field label="Threshold" help={help.threshold}>
            <CommitInput type="number" step="0.05" value={text('threshold')} testId="field-threshold" onCommit={(v) => set('threshold', number(v))} />
          </Field>
          <Field label="Max results" help={help.max_results}>
            <CommitInput type="number" value={text('max_results')} onCommit={(v) => set('max_results', number(v))} />
          </Field>
          <label className="field checkbox" title={help.reply_with_actors}>
            <input
              type="checkbox"
              checked={region.reply_with_actors === true}
              onChange={(e) => set('reply_with_actors', e.target.checked ? true : undefined)}
            />
            Reply with actors
            {help.reply_with_actors && <span className="field-help">{help.reply_with_actors}</span>}
          </label>
        </>
      )}
      {type === 'ListenerRegion' && (
        <>
          <Field label="Sink" help={help.sink}>
            <CommitInput value={text('sink')} placeholder="trace.jsonl" onCommit={(v) => set('sink', v)} />
          </Field>
          <Field label="Taps" help={help.taps}>
            <div className="checks">
              {regionNames
                .filter((r) => r !== name)
                .map((r) => (
                  <label key={r}>
                    <input
                      type="checkbox"
                      checked={taps.includes(r)}
                      onChange={(e) => set('taps', e.target.checked ? [...taps, r] : taps.filter((t) => t !== r))}
                    />
                    {r}
                  </label>
                ))}
            </div>
          </Field>
        </>
      )}
      {type === 'RouterRegion' && (
        <Field label="Routes" help={help.routes}>
          <ol className="route-list" data-testid="route-list">
            {routes.map((route, i) => (
              <li key={i} className="row">
                <CommitInput value={route.says} placeholder="regex" testId={`route-says-${i}`} onCommit={(v) => edit((d) => d.setRoute(name, i, { says: v }))} />
                <span>→</span>
                <select value={route.to} aria-label="route target" data-testid={`route-to-${i}`} onChange={(e) => edit((d) => d.setRoute(name, i, { to: e.target.value }))}>
                  {[...new Set([route.to, ...regionNames.filter((r) => r !== name)])].map((r) => (
                    <option key={r} value={r}>
                      {r || '(choose)'}
                    </option>
                  ))}
                </select>
                <button className="small" title="Delete route" onClick={() => edit((d) => d.deleteRoute(name, i))}>
                  ×
                </button>
              </li>
            ))}
          </ol>
          <button data-testid="route-add" onClick={() => edit((d) => d.addRoute(name, '.*', targets[0] ?? ''))}>
            + Route
          </button>
        </Field>
      )}
      {type === 'RouterRegion' && (
        <Field label="Default" help={help.default}>
          <select value={text('default')} data-testid="field-default" onChange={(e) => set('default', e.target.value)}>
            <option value="">(none)</option>
            {[...new Set([...regionNames.filter((r) => r !== name), ...(text('default') ? [text('default')] : [])])].map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </Field>
      )}
      {type === 'WorkflowRegion' && (
        <>
          <Field label="Workflow" help={help.workflow}>
            <CommitInput value={text('workflow')} placeholder="other.yaml" testId="field-workflow" onCommit={(v) => set('workflow', v.trim())} />
          </Field>
          <Field label="Entry" help={help.entry}>
            <CommitInput value={text('entry')} placeholder="(default)" testId="field-entry" onCommit={(v) => set('entry', v.trim())} />
          </Field>
        </>
      )}
      {type !== 'ListenerRegion' && (
        <Field label="Connections" help={help.connections}>
          <ul className="connection-list" data-testid="connection-list">
            {targets.map((target) => (
              <li key={target}>
                <span className="connection-target">→ {target}</span>
                {described && (
                  <CommitInput
                    value={described[target] ?? ''}
                    placeholder="what it is for"
                    onCommit={(v) => edit((d) => d.setConnectionDescription(name, target, v))}
                  />
                )}
                <button className="small" title={`Delete the connection to ${target}`} onClick={() => edit((d) => d.deleteConnection(name, target))}>
                  ×
                </button>
              </li>
            ))}
          </ul>
          <div className="row">
            <select value={connectTo} data-testid="connect-to" onChange={(e) => setConnectTo(e.target.value)}>
              <option value="">connect to…</option>
              {regionNames
                .filter((r) => r !== name && !targets.includes(r))
                .map((r) => (
                  <option key={r} value={r}>
                    {r}
                  </option>
                ))}
            </select>
            <button
              disabled={!connectTo}
              data-testid="connect-add"
              onClick={() => {
                edit((d) => d.addConnection(name, connectTo));
                setConnectTo('');
              }}
            >
              Connect
            </button>
          </div>
        </Field>
      )}
      {OUTPUT_SCHEMA_TYPES.has(type) && (
        <Field label="Output schema (JSON)" help={help.output_schema}>
          <JsonInput value={region.output_schema} testId="field-output-schema" placeholder='{"type": "object", "properties": {...}}' check={jsonSchemaProblem} onCommit={(v) => set('output_schema', v)} />
        </Field>
      )}
      {INPUT_SCHEMA_TYPES.has(type) && (
        <Field label="Input schema (JSON)" help={help.input_schema}>
          <JsonInput value={region.input_schema} testId="field-input-schema" placeholder='{"type": "string"}' check={jsonSchemaProblem} onCommit={(v) => set('input_schema', v)} />
        </Field>
      )}
      {LLM_REGION_TYPES.has(type) && (
        <details className="prompts">
          <summary title={help.prompts}>Prompt overrides ({Object.keys(prompts).length})</summary>
          {Object.entries(promptHelp).map(([prompt, description]) => (
            <Field key={prompt} label={prompt} help={description}>
              <CommitInput
                multiline
                value={typeof prompts[prompt] === 'string' ? (prompts[prompt] as string) : ''}
                placeholder="(the default template)"
                onCommit={(v) => edit((d) => d.setPrompt(name, prompt, v))}
              />
            </Field>
          ))}
        </details>
      )}
      <button
        className="danger"
        data-testid="delete-region"
        onClick={() => {
          if (edit((d) => d.deleteRegion(name))) onDeleted();
        }}
      >
        Delete region
      </button>
    </div>
  );
}
