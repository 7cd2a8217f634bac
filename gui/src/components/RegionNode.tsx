import { Handle, Position, type Node, type NodeProps } from '@xyflow/react';
import { typeStyle } from '../model/methods';
import { TypeIcon } from './TypeIcon';

export type RegionNodeData = {
  name: string;
  type: unknown;
  task: string;
  problems: string[];
  /** Live run status of the region (idle, waiting_llm, replying, done, failed). */
  status?: string;
};

export type RegionFlowNode = Node<RegionNodeData, 'region'>;

/** A region on the canvas: colour and icon by type, its task, and a badge for its problems. */
export function RegionNode({ data, selected }: NodeProps<RegionFlowNode>) {
  const style = typeStyle(data.type);
  const hasProblems = data.problems.length > 0;
  return (
    <div
      className={`region-node${selected ? ' selected' : ''}${hasProblems ? ' has-problems' : ''}`}
      style={{ borderColor: hasProblems ? '#dc2626' : style.color }}
      data-testid={`node-${data.name}`}
      title={hasProblems ? data.problems.join('\n') : data.task}
    >
      <Handle type="target" position={Position.Left} style={{ background: style.color }} />
      <div className="region-node-head" style={{ background: style.color }}>
        <TypeIcon type={data.type} />
        <span className="region-node-name">{data.name}</span>
        {hasProblems && <span className="region-node-badge">{data.problems.length}</span>}
      </div>
      <div className="region-node-type">
        {style.label}
        {data.status && <span className={`region-node-status status-${data.status}`}>{data.status}</span>}
      </div>
      {data.task && <div className="region-node-task">{data.task}</div>}
      <Handle type="source" position={Position.Right} style={{ background: style.color }} />
    </div>
  );
}
