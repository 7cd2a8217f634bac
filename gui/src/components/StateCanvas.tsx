import {
  applyNodeChanges,
  Background,
  Controls,
  Handle,
  MarkerType,
  Position,
  ReactFlow,
  ReactFlowProvider,
  useReactFlow,
  type Edge,
  type Node,
  type NodeChange,
  type NodeProps,
} from '@xyflow/react';
import { useEffect, useMemo, useState } from 'react';
import { describeCondition } from '../model/conditions';
import { END, type PlanLayer, type WorkflowDoc } from '../model/workflowDoc';

export type StateSelection = { kind: 'state'; name: string } | { kind: 'transition'; state: string; index: number };

type StateNodeData = {
  name: string;
  layers: PlanLayer[];
  maxVisits?: number;
  onExhausted?: string;
  start: boolean;
  /** The state the live run is in. */
  current: boolean;
  /** Its exhausted path goes somewhere (drawn from its bottom handle). */
  exhausted: boolean;
  visits?: number;
};
type TerminalData = { label: string };
type StateFlowNode = Node<StateNodeData, 'state'> | Node<TerminalData, 'terminal'>;

const STATE_WIDTH = 240;
const GAP = 110;

/** A state: its name, its bound, and its layers (chains of steps, or a wait) inside it. */
function StateNode({ data, selected }: NodeProps<Node<StateNodeData, 'state'>>) {
  return (
    <div className={`state-node${selected ? ' selected' : ''}${data.current ? ' current' : ''}`} data-testid={`state-${data.name}`} style={{ width: STATE_WIDTH }}>
      <Handle type="target" position={Position.Left} />
      <div className="state-node-head">
        {data.start && <span title="start state">▶ </span>}
        <strong>{data.name}</strong>
        {data.maxVisits !== undefined && (
          <span className="state-node-bound" title={`at most ${data.maxVisits} visits, then ${data.onExhausted ?? 'fail'}`}>
            ≤{data.maxVisits}
          </span>
        )}
        {data.visits !== undefined && <span className="state-node-visits">visit {data.visits}</span>}
      </div>
      <ol className="state-node-layers">
        {data.layers.map((layer, i) => (
          <li key={i}>
            {layer.wait ? (
              <span className="state-node-wait">wait for {layer.wait.region}</span>
            ) : (
              <>
                {layer.label && <span className="state-node-label">{layer.label}: </span>}
                {layer.chains.map((c) => `${c.name}: ${c.steps.map((s) => `${s.region}.${s.method}`).join(' → ') || '(empty)'}`).join(' ‖ ') || '(no chains)'}
              </>
            )}
          </li>
        ))}
        {data.layers.length === 0 && <li>(no layers)</li>}
      </ol>
      <Handle type="source" position={Position.Right} />
      {/* The exhausted path leaves from below, apart from the transitions. */}
      <Handle type="source" id="exhausted" position={Position.Bottom} isConnectable={false} style={{ visibility: data.exhausted ? 'visible' : 'hidden' }} />
    </div>
  );
}

function TerminalNode({ data }: NodeProps<Node<TerminalData, 'terminal'>>) {
  return (
    <div className="terminal-node" data-testid={`terminal-${data.label}`}>
      <Handle type="target" position={Position.Left} />
      {data.label}
      <Handle type="source" position={Position.Right} />
      <Handle type="target" id="below" position={Position.Bottom} isConnectable={false} style={{ visibility: 'hidden' }} />
    </div>
  );
}

const nodeTypes = { state: StateNode, terminal: TerminalNode };

interface Props {
  doc: WorkflowDoc;
  /** Bumped by every document change (the doc is edited in place). */
  rev: number;
  selection: StateSelection | null;
  onSelect: (selection: StateSelection | null) => void;
  edit: (change: (doc: WorkflowDoc) => void) => boolean;
  /** The live run: the state it is in and its visit number. */
  live?: { state: string; visit: number };
}

/**
 * The machine of a `states:` workflow: a node per state with its layers inside, an edge per
 * transition labelled with its order and condition, the exhausted path dashed, `start` and
 * `end` as small terminals. Drag from a state to another to add a transition.
 */
function StateDiagram({ doc, rev, selection, onSelect, edit, live }: Props) {
  const states = useMemo(() => doc.states(), [doc, rev]);
  const start = doc.startState();
  const layout = useMemo(() => {
    const out: Record<string, { x: number; y: number }> = { '@start': { x: 0, y: 40 } };
    states.forEach((s, i) => (out[s.name] = { x: 90 + i * (STATE_WIDTH + GAP), y: i % 2 === 0 ? 0 : 90 }));
    out['@end'] = { x: 90 + states.length * (STATE_WIDTH + GAP), y: 40 };
    return out;
  }, [states]);
  const [nodes, setNodes] = useState<StateFlowNode[]>([]);
  // Where the user dragged nodes to (the view only: a machine's layout is not saved).
  const [dragged, setDragged] = useState<Record<string, { x: number; y: number }>>({});

  useEffect(() => {
    setNodes(() => {
      const at = (id: string) => dragged[id] ?? layout[id];
      return [
        { id: '@start', type: 'terminal', position: at('@start'), data: { label: 'start' }, selectable: false, deletable: false },
        ...states.map(
          (s): StateFlowNode => ({
            id: s.name,
            type: 'state',
            position: at(s.name),
            selected: selection?.kind === 'state' && selection.name === s.name,
            data: {
              name: s.name,
              layers: doc.planOf(s.name).layers(),
              maxVisits: s.maxVisits,
              onExhausted: s.onExhausted,
              start: s.name === start,
              current: live?.state === s.name,
              exhausted: s.maxVisits !== undefined && s.onExhausted !== undefined && s.onExhausted !== 'fail',
              visits: live?.state === s.name ? live.visit : undefined,
            },
          }),
        ),
        { id: '@end', type: 'terminal', position: at('@end'), data: { label: END }, selectable: false, deletable: false },
      ];
    });
  }, [doc, states, layout, start, selection, live, dragged]);

  // A state added or deleted: fit the view so every state (and `end`) stays in sight.
  const flow = useReactFlow();
  const count = states.length;
  useEffect(() => {
    const frame = window.requestAnimationFrame(() => void flow.fitView({ maxZoom: 1, padding: 0.15 }));
    return () => window.cancelAnimationFrame(frame);
  }, [count, flow]);

  const edges = useMemo(() => {
    const names = new Set(states.map((s) => s.name));
    const target = (to: string) => (to === END ? '@end' : names.has(to) ? to : undefined);
    const out: Edge[] = [];
    if (start !== undefined) out.push({ id: 'start', source: '@start', target: start, selectable: false, deletable: false, markerEnd: { type: MarkerType.ArrowClosed } });
    for (const state of states) {
      state.next.forEach((t, index) => {
        const to = target(t.to);
        if (to === undefined) return;
        const chosen = selection?.kind === 'transition' && selection.state === state.name && selection.index === index;
        out.push({
          id: `t:${state.name}:${index}`,
          source: state.name,
          target: to,
          label: `${index + 1}. ${describeCondition(t.when)}`,
          selected: chosen,
          type: to === state.name ? 'default' : 'smoothstep',
          markerEnd: { type: MarkerType.ArrowClosed, width: 18, height: 18 },
          style: { strokeWidth: chosen ? 3 : 1.5 },
          data: { state: state.name, index },
        });
      });
      if (state.maxVisits !== undefined && state.onExhausted && state.onExhausted !== 'fail') {
        const to = target(state.onExhausted);
        if (to !== undefined) {
          out.push({
            id: `x:${state.name}`,
            source: state.name,
            sourceHandle: 'exhausted',
            target: to,
            targetHandle: to === '@end' ? 'below' : undefined,
            label: `after ${state.maxVisits} visits`,
            selectable: false,
            deletable: false,
            type: 'smoothstep',
            style: { strokeDasharray: '5 4', stroke: '#b45309' },
            markerEnd: { type: MarkerType.ArrowClosed, color: '#b45309' },
          });
        }
      }
    }
    return out;
  }, [states, start, selection]);

  return (
    <ReactFlow<StateFlowNode, Edge>
      nodes={nodes}
      edges={edges}
      nodeTypes={nodeTypes}
      onNodesChange={(changes: NodeChange<StateFlowNode>[]) => setNodes((n) => applyNodeChanges(changes.filter((c) => c.type !== 'remove'), n))}
      onNodeDragStop={(_e, node) => setDragged((d) => ({ ...d, [node.id]: node.position }))}
      onNodeClick={(_e, node) => node.type === 'state' && onSelect({ kind: 'state', name: node.id })}
      onEdgeClick={(_e, e) => {
        const data = e.data as { state: string; index: number } | undefined;
        if (data) onSelect({ kind: 'transition', ...data });
      }}
      onPaneClick={() => onSelect(null)}
      onConnect={(c) => {
        if (!c.source || !c.target || c.source.startsWith('@')) return;
        const to = c.target === '@end' ? END : c.target;
        let index = 0;
        if (edit((d) => (index = d.addTransition(c.source, to)))) onSelect({ kind: 'transition', state: c.source, index });
      }}
      onNodesDelete={(deleted) => {
        const names = deleted.filter((n) => n.type === 'state').map((n) => n.id);
        if (names.length && edit((d) => names.forEach((n) => d.deleteState(n)))) onSelect(null);
      }}
      onEdgesDelete={(deleted) => {
        // Highest index first, so the others keep theirs.
        const gone = deleted.map((e) => e.data as { state: string; index: number } | undefined).filter((d) => d !== undefined);
        gone.sort((a, b) => b.index - a.index);
        if (gone.length && edit((d) => gone.forEach((t) => d.deleteTransition(t.state, t.index)))) onSelect(null);
      }}
      deleteKeyCode={['Delete', 'Backspace']}
      fitView
      fitViewOptions={{ maxZoom: 1, padding: 0.15 }}
    >
      <Background gap={20} />
      <Controls />
    </ReactFlow>
  );
}

/** The state diagram in its own React Flow (the region canvas keeps its own view). */
export function StateCanvas(props: Props) {
  return (
    <ReactFlowProvider>
      <div className="state-canvas" data-testid="state-canvas">
        <StateDiagram {...props} />
      </div>
    </ReactFlowProvider>
  );
}
