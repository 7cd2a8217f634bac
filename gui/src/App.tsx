import {
  applyNodeChanges,
  Background,
  Controls,
  MarkerType,
  MiniMap,
  ReactFlow,
  useReactFlow,
  type Connection,
  type Edge,
  type NodeChange,
} from '@xyflow/react';
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import * as api from './api';
import { PlanEditor } from './components/PlanEditor';
import { RegionNode, type RegionFlowNode } from './components/RegionNode';
import { RegionPanel } from './components/RegionPanel';
import { StateCanvas, type StateSelection } from './components/StateCanvas';
import { StatePanel } from './components/StatePanel';
import { TypeIcon } from './components/TypeIcon';
import { autoPositions } from './model/layout';
import { REGION_TYPES, typeStyle } from './model/methods';
import { isRecord, NEW_WORKFLOW, newWorkflow, WorkflowDoc } from './model/workflowDoc';
import { describeEvent, pathTaken, pendingWait, QUIET_EVENTS } from './model/runEvents';
import { formatPath } from './validate/problem';
import { help, validate } from './validate';

const nodeTypes = { region: RegionNode };
/** Fit the whole diagram, but never zoom in past 1:1 (a small workflow stays its real size). */
const FIT_VIEW = { maxZoom: 1, padding: 0.1 };

type Selection = { kind: 'region'; name: string } | { kind: 'edge'; source: string; target: string } | StateSelection | null;
type Tab = 'inspect' | 'problems' | 'run' | 'source';
/** What the canvas shows: the regions and their connections, or a machine's states. */
type View = 'regions' | 'states';

export function App() {
  const [wdoc, setWdoc] = useState(() => WorkflowDoc.parse(NEW_WORKFLOW));
  const [rev, setRev] = useState(0);
  const [file, setFile] = useState<api.FileState | null>(null);
  const [server, setServer] = useState(false);
  const [savedText, setSavedText] = useState(NEW_WORKFLOW);
  const [selection, setSelection] = useState<Selection>(null);
  const [tab, setTab] = useState<Tab>('inspect');
  const [status, setStatus] = useState<{ text: string; error?: boolean } | null>(null);
  const [addType, setAddType] = useState<string>('Region');
  const [nodes, setNodes] = useState<RegionFlowNode[]>([]);
  const [events, setEvents] = useState<api.RunEvent[]>([]);
  const [lit, setLit] = useState<Record<string, number>>({});
  const [regionStatus, setRegionStatus] = useState<Record<string, string>>({});
  const [running, setRunning] = useState<Set<string>>(new Set());
  const [serverFindings, setServerFindings] = useState<api.VerifyResult | null>(null);
  const [view, setView] = useState<View>('regions');
  /** The state whose plan the bottom panel shows (a machine only). */
  const [planState, setPlanState] = useState<string | undefined>(undefined);
  const [liveState, setLiveState] = useState<{ state: string; visit: number; layer: number } | undefined>(undefined);
  const fileInput = useRef<HTMLInputElement>(null);
  // Bumped by every open: the view then fits the new diagram (once its nodes exist).
  const [fitRequest, setFitRequest] = useState(0);
  const fitted = useRef(0);

  const data = useMemo(() => wdoc.toData(), [wdoc, rev]);
  const text = useMemo(() => wdoc.toString(), [wdoc, rev]);
  const problems = useMemo(() => validate(data, wdoc), [data, wdoc]);
  const dirty = text !== savedText;

  const open = useCallback((source: string, saved: string | null = source) => {
    const next = WorkflowDoc.parse(source);
    setWdoc(next);
    setRev((r) => r + 1);
    if (saved !== null) setSavedText(next.toString());
    setSelection(null);
    setServerFindings(null);
    setPlanState(undefined);
    if (!next.isMachine()) setView('regions');
    setFitRequest((r) => r + 1);
    setStatus(next.errors.length ? { text: `YAML: ${next.errors[0]}`, error: true } : null);
  }, []);

  // Load the file `regions gui` was started with (standalone: a new workflow).
  useEffect(() => {
    api.loadFile().then(
      (state) => {
        if (!state) return;
        setServer(true);
        setFile(state);
        if (state.exists) open(state.text);
        else {
          // A new file: the template, not saved yet (so marked as changed).
          open(newWorkflow(state.schema_ref), null);
          setSavedText('');
        }
      },
      (error: Error) => {
        setServer(true);
        setStatus({ text: `Cannot open the file: ${error.message}`, error: true });
      },
    );
  }, [open]);

  /** Apply one change to the document; a refused change (bad name...) is shown, not thrown. */
  const edit = useCallback(
    (change: (doc: WorkflowDoc) => void): boolean => {
      if (wdoc.errors.length) {
        setStatus({ text: `Fix the YAML first (source tab): ${wdoc.errors[0]}`, error: true });
        return false;
      }
      try {
        change(wdoc);
      } catch (error) {
        setStatus({ text: (error as Error).message, error: true });
        return false;
      }
      setRev((r) => r + 1);
      setStatus(null);
      return true;
    },
    [wdoc],
  );

  // Nodes follow the document; React Flow only owns them while a drag is in flight.
  useEffect(() => {
    const positions = { ...autoPositions(wdoc), ...wdoc.positions() };
    const names = wdoc.regionNames();
    const regions = isRecord(data.regions) ? data.regions : {};
    setNodes((current) => {
      const selected = new Set(current.filter((n) => n.selected).map((n) => n.id));
      return names.map((name) => {
        const region = isRecord(regions[name]) ? regions[name] : {};
        return {
          id: name,
          type: 'region' as const,
          position: positions[name],
          selected: selected.has(name) || (selection?.kind === 'region' && selection.name === name),
          data: {
            name,
            type: region.type,
            task: typeof region.task === 'string' ? region.task : '',
            problems: problems.filter((p) => p.region === name).map((p) => `${p.rule}: ${p.message}`),
            status: regionStatus[name],
          },
        };
      });
    });
  }, [wdoc, data, problems, regionStatus, selection]);

  const edges: Edge[] = useMemo(() => {
    const names = new Set(wdoc.regionNames());
    // A listener's taps: dashed, not connections (edit them in the listener's panel).
    const regions = isRecord(data.regions) ? data.regions : {};
    const taps: Edge[] = Object.entries(regions).flatMap(([listener, region]) =>
      isRecord(region) && region.type === 'ListenerRegion' && Array.isArray(region.taps)
        ? region.taps
            .filter((tapped): tapped is string => typeof tapped === 'string' && names.has(tapped))
            .map((tapped) => ({
              id: `tap:${tapped}->${listener}`,
              source: tapped,
              target: listener,
              type: 'smoothstep',
              deletable: false,
              selectable: false,
              style: { stroke: '#94a3b8', strokeDasharray: '4 4' },
            }))
        : [],
    );
    const connections = wdoc
      .connections()
      .filter(([, target]) => names.has(target))
      .map(([source, target]) => {
        const id = `${source}->${target}`;
        const on = lit[id] !== undefined;
        return {
          id,
          source,
          target,
          className: on ? 'lit' : undefined,
          animated: on,
          selected: selection?.kind === 'edge' && selection.source === source && selection.target === target,
          markerEnd: { type: MarkerType.ArrowClosed, width: 18, height: 18, color: on ? '#f59e0b' : '#64748b' },
          style: { stroke: on ? '#f59e0b' : '#64748b', strokeWidth: on ? 3 : 1.5 },
        };
      });
    return [...connections, ...taps];
  }, [wdoc, data, lit, selection]);

  const onNodesChange = useCallback((changes: NodeChange<RegionFlowNode>[]) => {
    // Removals go through onNodesDelete (the document decides); the rest is view state.
    setNodes((current) => applyNodeChanges(changes.filter((c) => c.type !== 'remove'), current));
  }, []);

  const flow = useReactFlow();
  useEffect(() => {
    if (fitted.current === fitRequest || nodes.length === 0) return;
    fitted.current = fitRequest;
    void flow.fitView(FIT_VIEW);
  }, [fitRequest, nodes, flow]);
  const canvas = useRef<HTMLElement>(null);
  const addRegion = () => {
    // In the middle of what the user is looking at, a little apart from the last one added.
    const rect = canvas.current?.getBoundingClientRect();
    const center = rect ? flow.screenToFlowPosition({ x: rect.x + rect.width / 2, y: rect.y + rect.height / 2 }) : { x: 0, y: 0 };
    const shift = (wdoc.regionNames().length % 5) * 24;
    const position = { x: center.x - 100 + shift, y: center.y - 40 + shift };
    let name = '';
    if (edit((d) => (name = d.addRegion(addType, position)))) {
      setSelection({ kind: 'region', name });
      setTab('inspect');
    }
  };

  /** Save to the file (or, standalone, download it); false when that did not happen. */
  const save = async (): Promise<boolean> => {
    if (!server) {
      api.download(`${String(data.name ?? 'workflow')}.yaml`, text);
      setSavedText(text);
      return true;
    }
    try {
      const result = await api.saveFile(text, file?.hash ?? null);
      setFile((f) => (f ? { ...f, hash: result.hash, exists: true } : f));
      setSavedText(text);
      setStatus({ text: `Saved ${result.path}` });
      return true;
    } catch (error) {
      setStatus({ text: `Not saved: ${(error as Error).message}`, error: true });
      return false;
    }
  };

  /** Replacing the document loses unsaved edits: ask first. */
  const mayDiscard = () => !dirty || window.confirm('Discard the unsaved changes?');

  // Closing or reloading the tab with unsaved edits asks first, too.
  useEffect(() => {
    if (!dirty) return;
    const warn = (event: BeforeUnloadEvent) => event.preventDefault();
    window.addEventListener('beforeunload', warn);
    return () => window.removeEventListener('beforeunload', warn);
  }, [dirty]);

  const importFiles = async (files: FileList) => {
    const list = [...files];
    try {
      if (list.length === 1 && !list[0].name.toLowerCase().endsWith('.json')) {
        open(await list[0].text(), null);
        setStatus({ text: `Opened ${list[0].name} (not saved yet)` });
        return;
      }
      if (!server) throw new Error('importing the original JSON needs `regions gui` (or use `regions import`)');
      const payload: Record<string, string> = {};
      for (const f of list) payload[f.name] = await f.text();
      const result = await api.importJson(payload);
      open(result.text, null);
      setStatus({ text: `Imported ${list.map((f) => f.name).join(', ')} (not saved yet)` });
    } catch (error) {
      setStatus({ text: (error as Error).message, error: true });
    }
  };

  const exportOriginal = async () => {
    try {
      const result = await api.exportJson(text);
      for (const [name, body] of Object.entries(result.files)) api.download(name, body, 'application/json');
      const dropped = result.dropped.length ? `; not expressible there, left out: ${result.dropped.join('; ')}` : '';
      setStatus({ text: `Exported ${Object.keys(result.files).join(', ')}${dropped}` });
    } catch (error) {
      setStatus({ text: `Export JSON: ${(error as Error).message}`, error: true });
    }
  };

  const verifyOnServer = async () => {
    try {
      setServerFindings(await api.verifyText(text));
      setTab('problems');
    } catch (error) {
      setStatus({ text: (error as Error).message, error: true });
    }
  };

  // The live run: events from the server light up edges and fill the feed.
  useEffect(() => {
    if (!server) return;
    return api.subscribeEvents((event) => {
      setEvents((list) => [...list.slice(-499), event]);
      if (event.kind === 'run_started') {
        setRegionStatus({});
        setRunning(new Set());
      } else if (event.kind === 'state_entered') {
        setLiveState({ state: String(event.state), visit: Number(event.visit), layer: Number(event.layer) });
      } else if (event.kind === 'run_finished' && event.status !== 'waiting') {
        setLiveState(undefined);
      } else if (event.kind === 'message' && isRecord(event.message)) {
        const id = `${String(event.message.source)}->${String(event.message.destination)}`;
        const stamp = Date.now();
        setLit((l) => ({ ...l, [id]: stamp }));
        window.setTimeout(() => setLit((l) => (l[id] === stamp ? omit(l, id) : l)), 1500);
      } else if (event.kind === 'region_status') {
        setRegionStatus((s) => ({ ...s, [String(event.region)]: String(event.status) }));
      } else if (event.kind === 'step_started' || event.kind === 'step_finished') {
        const key = `${String(event.layer)}/${String(event.chain)}/${String(event.step)}`;
        setRunning((r) => {
          const next = new Set(r);
          if (event.kind === 'step_started') next.add(key);
          else next.delete(key);
          return next;
        });
      }
    });
  }, [server]);

  const run = async () => {
    if (dirty && !(await save())) return;
    try {
      setEvents([]);
      setLiveState(undefined);
      await api.startRun();
      setTab('run');
    } catch (error) {
      setStatus({ text: `Run: ${(error as Error).message}`, error: true });
    }
  };

  const selectedRegion = selection?.kind === 'region' && wdoc.regionNames().includes(selection.name) ? selection.name : null;
  const machine = wdoc.isMachine();
  const stateNames = machine ? wdoc.stateNames() : [];
  const selectedState =
    (selection?.kind === 'state' || selection?.kind === 'transition') && stateNames.includes(selection.kind === 'state' ? selection.name : selection.state)
      ? selection
      : null;
  const shownPlanState = machine
    ? [selectedState?.kind === 'state' ? selectedState.name : selectedState?.state, planState, wdoc.startState()].find((s) => s !== undefined && stateNames.includes(s))
    : undefined;
  const errorCount = problems.filter((p) => p.severity === 'error').length;

  return (
    <div className="app">
      <header className="toolbar">
        <strong className="brand">regions</strong>
        <span className="file" data-testid="file-name" title={file?.path ?? ''}>
          {file?.path ?? 'standalone'}
          {dirty && <span className="dirty" title="unsaved changes"> ●</span>}
        </span>
        <button onClick={() => mayDiscard() && open(newWorkflow(file?.schema_ref), null)}>New</button>
        <button onClick={() => mayDiscard() && fileInput.current?.click()} title="Open a workflow YAML, or import the original's JSON (regions + plan, or a full state)">
          Open / Import…
        </button>
        <input
          ref={fileInput}
          type="file"
          hidden
          multiple
          accept=".yaml,.yml,.json"
          onChange={(e) => {
            if (e.target.files?.length) void importFiles(e.target.files);
            e.target.value = '';
          }}
        />
        <button data-testid="save" onClick={() => void save()} disabled={server && !file?.path}>
          {server ? 'Save' : 'Export YAML'}
        </button>
        {server && <button onClick={() => api.download(file?.path?.split('/').pop() ?? 'workflow.yaml', text)}>Export</button>}
        {server && (
          <button onClick={() => void exportOriginal()} title="Download the original framework's regions.json and executions.json">
            Export JSON
          </button>
        )}
        <span className="sep" />
        <select value={addType} data-testid="add-type" onChange={(e) => setAddType(e.target.value)}>
          {REGION_TYPES.map((t) => (
            <option key={t} value={t}>
              {t}
            </option>
          ))}
        </select>
        <button data-testid="add-region" onClick={addRegion}>
          + Region
        </button>
        <span className="sep" />
        {server && <button onClick={() => void verifyOnServer()}>Verify</button>}
        {server && (
          <button data-testid="run" onClick={() => void run()} disabled={!file?.path}>
            ▶ Run
          </button>
        )}
        <span className={`problem-count${errorCount ? ' bad' : ''}`} data-testid="problem-count" onClick={() => setTab('problems')}>
          {errorCount ? `${errorCount} problem${errorCount === 1 ? '' : 's'}` : '✓ valid'}
        </span>
        {status && (
          <span className={`status${status.error ? ' error' : ''}`} data-testid="status">
            {status.text}
          </span>
        )}
      </header>
      <main className="main">
        <section className="canvas" ref={canvas}>
          {machine && (
            <div className="view-switch" role="tablist">
              {(['regions', 'states'] as View[]).map((v) => (
                <button key={v} className={v === view ? 'active' : ''} data-testid={`view-${v}`} onClick={() => setView(v)}>
                  {v === 'regions' ? `Regions (${wdoc.regionNames().length})` : `States (${stateNames.length})`}
                </button>
              ))}
              {view === 'states' && (
                <button
                  data-testid="add-state"
                  onClick={() => {
                    let name = '';
                    if (edit((d) => (name = d.addState()))) {
                      setSelection({ kind: 'state', name });
                      setTab('inspect');
                    }
                  }}
                >
                  + State
                </button>
              )}
            </div>
          )}
          {machine && view === 'states' ? (
            <StateCanvas
              doc={wdoc}
              rev={rev}
              selection={selectedState}
              edit={edit}
              live={liveState}
              onSelect={(s) => {
                setSelection(s);
                if (s) setTab('inspect');
              }}
            />
          ) : (
            <ReactFlow<RegionFlowNode, Edge>
              nodes={nodes}
              edges={edges}
              nodeTypes={nodeTypes}
              onNodesChange={onNodesChange}
              onConnect={(c: Connection) => c.source && c.target && c.source !== c.target && edit((d) => d.addConnection(c.source, c.target))}
              onNodeDragStop={(_e, node) => edit((d) => d.setPosition(node.id, node.position))}
              onNodesDelete={(deleted) => edit((d) => deleted.forEach((n) => d.deleteRegion(n.id)))}
              onEdgesDelete={(deleted) => edit((d) => deleted.forEach((e) => d.deleteConnection(e.source, e.target)))}
              onNodeClick={(_e, node) => {
                setSelection({ kind: 'region', name: node.id });
                setTab('inspect');
              }}
              onEdgeClick={(_e, e) => {
                setSelection({ kind: 'edge', source: e.source, target: e.target });
                setTab('inspect');
              }}
              onPaneClick={() => setSelection(null)}
              fitView
              fitViewOptions={FIT_VIEW}
              deleteKeyCode={['Delete', 'Backspace']}
            >
              <Background gap={20} />
              <MiniMap pannable zoomable style={{ width: 150, height: 100 }} nodeColor={(n) => typeStyle((n as RegionFlowNode).data.type).color} />
              <Controls />
            </ReactFlow>
          )}
        </section>
        <aside className="side">
          <nav className="tabs">
            {(['inspect', 'problems', 'run', 'source'] as Tab[]).map((t) => (
              <button key={t} className={t === tab ? 'active' : ''} data-testid={`tab-${t}`} onClick={() => setTab(t)}>
                {t === 'problems' ? `problems (${problems.length})` : t}
              </button>
            ))}
          </nav>
          {tab === 'inspect' &&
            (selectedRegion ? (
              <RegionPanel
                key={selectedRegion}
                doc={wdoc}
                data={data}
                name={selectedRegion}
                help={help.region}
                prompts={help.prompts}
                problems={problems.filter((p) => p.region === selectedRegion)}
                edit={edit}
                onRenamed={(name) => setSelection({ kind: 'region', name })}
                onDeleted={() => setSelection(null)}
              />
            ) : selectedState ? (
              <StatePanel
                key={`${selectedState.kind}:${selectedState.kind === 'state' ? selectedState.name : `${selectedState.state}:${selectedState.index}`}`}
                doc={wdoc}
                data={data}
                name={selectedState.kind === 'state' ? selectedState.name : selectedState.state}
                transition={selectedState.kind === 'transition' ? selectedState.index : undefined}
                problems={problems.filter((p) => p.path[0] === 'states' && p.path[1] === (selectedState.kind === 'state' ? selectedState.name : selectedState.state))}
                edit={edit}
                onRenamed={(name) => setSelection({ kind: 'state', name })}
                onDeleted={() => setSelection(null)}
              />
            ) : selection?.kind === 'edge' ? (
              <div className="panel">
                <h2>
                  {selection.source} → {selection.target}
                </h2>
                <p className="field-help">{help.region.connections}</p>
                <button
                  className="danger"
                  data-testid="delete-connection"
                  onClick={() => {
                    if (edit((d) => d.deleteConnection(selection.source, selection.target))) setSelection(null);
                  }}
                >
                  Delete connection
                </button>
              </div>
            ) : (
              <WorkflowSummary
                data={data}
                machine={machine}
                onUseStates={() => {
                  if (edit((d) => d.useStates())) setView('states');
                }}
              />
            ))}
          {tab === 'problems' && (
            <div className="panel" data-testid="problems">
              {problems.length === 0 && <p>No problems: the schema and every cross-reference rule pass.</p>}
              <ul className="problems">
                {problems.map((p, i) => (
                  <li
                    key={i}
                    className={p.severity}
                    onClick={() => {
                      if (p.region) setSelection({ kind: 'region', name: p.region });
                      else if (p.path[0] === 'states' && typeof p.path[1] === 'string') {
                        setSelection({ kind: 'state', name: p.path[1] });
                        setView('states');
                      }
                    }}
                  >
                    <code>{p.rule}</code> <span className="where">{formatPath(p.path)}{lineSuffix(wdoc, p.path, dirty)}</span>
                    <div>{p.message}</div>
                  </li>
                ))}
              </ul>
              {serverFindings && (
                <>
                  <h3>regions verify (saved by the server's verifier)</h3>
                  {serverFindings.findings.length === 0 && <p>✓ no findings</p>}
                  <ul className="problems">
                    {serverFindings.findings.map((f, i) => (
                      <li key={i} className={f.severity}>
                        <code>{f.rule}</code> {f.line ? <span className="where">line {f.line}</span> : null}
                        <div>{f.message}</div>
                      </li>
                    ))}
                  </ul>
                </>
              )}
            </div>
          )}
          {tab === 'run' && (
            <RunFeed
              events={events}
              server={server}
              onAnswer={async (region, answer) => {
                try {
                  await api.answerWait(region, answer);
                  return true;
                } catch (error) {
                  setStatus({ text: `Answer: ${(error as Error).message}`, error: true });
                  return false;
                }
              }}
            />
          )}
          {tab === 'source' && <SourceView text={text} onApply={(t) => open(t, null)} />}
        </aside>
        <section className="bottom">
          {machine && (
            <div className="state-tabs" data-testid="state-tabs">
              <span className="field-label">Plan of state</span>
              {stateNames.map((name) => (
                <button
                  key={name}
                  className={name === shownPlanState ? 'active' : ''}
                  data-testid={`plan-state-${name}`}
                  onClick={() => {
                    setPlanState(name);
                    if (selectedState) setSelection({ kind: 'state', name });
                  }}
                >
                  {name}
                  {liveState?.state === name ? ' ●' : ''}
                </button>
              ))}
            </div>
          )}
          {(!machine || shownPlanState !== undefined) && (
            <PlanEditor
              key={shownPlanState ?? ''}
              doc={wdoc}
              data={data}
              problems={problems}
              edit={edit}
              running={running}
              state={shownPlanState}
              liveAt={machine ? (liveState?.state === shownPlanState ? liveState?.layer : undefined) : 0}
            />
          )}
        </section>
      </main>
    </div>
  );
}

function omit<T>(record: Record<string, T>, key: string): Record<string, T> {
  const { [key]: _drop, ...rest } = record;
  return rest;
}

function lineSuffix(doc: WorkflowDoc, path: (string | number)[], dirty: boolean): string {
  if (dirty) return '';
  const line = doc.lineOf(path);
  return line ? ` (line ${line})` : '';
}

function WorkflowSummary({ data, machine, onUseStates }: { data: Record<string, unknown>; machine: boolean; onUseStates: () => void }) {
  return (
    <div className="panel">
      <h2>{String(data.name ?? '(unnamed)')}</h2>
      {typeof data.description === 'string' && <p>{data.description}</p>}
      {machine ? (
        <p className="field-help">
          A machine of states: switch the canvas to States to see them and their transitions; select a state or a
          transition to edit it.
        </p>
      ) : (
        <p className="field-help">
          To loop or branch, turn the plan into a state (then add states and transitions):{' '}
          <button className="small" data-testid="use-states" onClick={onUseStates}>
            Use states
          </button>
        </p>
      )}
      <p className="field-help">
        Select a region to edit it. Drag from a node's right handle to another node to connect them; select a node or
        an edge and press Delete to remove it.
      </p>
      <ul className="legend">
        {REGION_TYPES.map((t) => (
          <li key={t}>
            <span className="legend-dot" style={{ background: typeStyle(t).color }} /> <TypeIcon type={t} /> {t}
          </li>
        ))}
      </ul>
    </div>
  );
}

function RunFeed({
  events,
  server,
  onAnswer,
}: {
  events: api.RunEvent[];
  server: boolean;
  onAnswer: (region: string, text: string) => Promise<boolean>;
}) {
  if (!server) return <div className="panel">A live run needs `regions gui FILE`.</div>;
  const last = [...events].reverse().find((e) => e.kind === 'run_finished');
  const wait = pendingWait(events);
  const path = pathTaken(events);
  return (
    <div className="panel run-feed" data-testid="run-feed">
      {events.length === 0 && <p>Press ▶ Run: the saved file runs in the server and its traffic shows here.</p>}
      {last && (
        <p className="run-result" data-testid="run-result">
          Run {String(last.status)}: {String(last.messages)} messages, {String(last.steps_ok)} steps ok, {String(last.steps_failed)} failed
        </p>
      )}
      {path.length > 0 && (
        <p className="run-path" data-testid="run-path">
          {path.join(' → ')}
        </p>
      )}
      {wait && <WaitAnswer key={wait.at} wait={wait} onAnswer={onAnswer} />}
      <ol>
        {events.filter((e) => !QUIET_EVENTS.has(e.kind)).map((e, i) => (
          <li key={i} className={`event event-${e.kind}`}>
            {describeEvent(e)}
          </li>
        ))}
      </ol>
    </div>
  );
}

/** The run waits for a person: the wait's prompt and a box whose text resumes the run. */
function WaitAnswer({ wait, onAnswer }: { wait: { region: string; prompt: string }; onAnswer: (region: string, text: string) => Promise<boolean> }) {
  const [text, setText] = useState('');
  const [sending, setSending] = useState(false);
  const send = async () => {
    if (!text.trim() || sending) return;
    setSending(true);
    if (!(await onAnswer(wait.region, text))) setSending(false);
  };
  return (
    <form
      className="wait-answer"
      data-testid="wait-answer"
      onSubmit={(e) => {
        e.preventDefault();
        void send();
      }}
    >
      <label className="field">
        <span className="field-label">{wait.prompt || `The run waits for a message to ${wait.region}`}</span>
        <textarea
          value={text}
          rows={3}
          autoFocus
          data-testid="wait-input"
          placeholder={`Your answer (sent to ${wait.region}; Ctrl+Enter sends)`}
          onChange={(e) => setText(e.target.value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) void send();
          }}
        />
      </label>
      <button type="submit" data-testid="wait-send" disabled={!text.trim() || sending}>
        {sending ? 'Resuming…' : `Send to ${wait.region} and resume`}
      </button>
    </form>
  );
}

function SourceView({ text, onApply }: { text: string; onApply: (text: string) => void }) {
  const [draft, setDraft] = useState(text);
  useEffect(() => setDraft(text), [text]);
  return (
    <div className="panel source">
      <textarea value={draft} spellCheck={false} data-testid="source" onChange={(e) => setDraft(e.target.value)} />
      <button disabled={draft === text} onClick={() => onApply(draft)}>
        Apply text
      </button>
    </div>
  );
}
