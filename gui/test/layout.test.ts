import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { autoPositions, BAND_COLUMNS, COLUMN_WIDTH, ROW_HEIGHT } from '../src/model/layout';
import { WorkflowDoc } from '../src/model/workflowDoc';

/** Node boxes (200 x 90 at most) overlap when two positions are closer than that. */
function overlaps(positions: Record<string, { x: number; y: number }>): string[] {
  const entries = Object.entries(positions);
  const out: string[] = [];
  entries.forEach(([a, p], i) => {
    for (const [b, q] of entries.slice(i + 1)) if (Math.abs(p.x - q.x) < 200 && Math.abs(p.y - q.y) < 90) out.push(`${a}/${b}`);
  });
  return out;
}

const CROSSED = `version: 1
name: crossed
llms: {default: {backend: scripted}}
regions:
  A: {type: Region, task: a, connections: [Y]}
  B: {type: Region, task: b, connections: [X]}
  X: {type: Region, task: x}
  Y: {type: Region, task: y}
  Idle: {type: Region, task: not in the plan}
plan:
  - layer: one
    chains: {a: [A.make_questions], b: [B.make_questions]}
  - layer: two
    chains: {x: [X.make_replies], y: [Y.make_replies]}
`;

describe('automatic layout', () => {
  it('puts regions in a column per plan layer, unused ones last', () => {
    const at = autoPositions(WorkflowDoc.parse(CROSSED));
    expect(at.A.x).toBe(at.B.x);
    expect(at.X.x).toBe(at.A.x + COLUMN_WIDTH);
    expect(at.Idle.x).toBe(at.X.x + COLUMN_WIDTH);
  });

  it('orders a column by its neighbours so connections do not cross', () => {
    const at = autoPositions(WorkflowDoc.parse(CROSSED));
    // A is above B; A talks to Y and B to X, so Y goes above X (the file lists X first).
    expect(at.A.y).toBeLessThan(at.B.y);
    expect(at.Y.y).toBeLessThan(at.X.y);
    expect(at.X.y - at.Y.y).toBe(ROW_HEIGHT);
  });

  it('centres a short column on the tallest one', () => {
    const at = autoPositions(WorkflowDoc.parse(CROSSED));
    expect(at.Idle.y).toBe((at.A.y + at.B.y) / 2);
  });

  it('wraps a long plan into bands of columns, like lines of text', () => {
    const names = ['S1', 'S2', 'S3', 'S4', 'S5', 'S6'];
    const regions = names.map((n, i) => `  ${n}: {type: Region, task: t${i ? `, connections: [${names[i - 1]}]` : ''}}`).join('\n');
    const plan = names.map((n) => `  - chains: {c: [${n}.make_replies]}`).join('\n');
    const at = autoPositions(WorkflowDoc.parse(`version: 1\nname: long\nregions:\n${regions}\nplan:\n${plan}\n`));
    expect(names.map((n) => at[n].x)).toEqual(names.map((_, i) => at.S1.x + (i % BAND_COLUMNS) * COLUMN_WIDTH));
    const [last, next] = [names[BAND_COLUMNS - 1], names[BAND_COLUMNS]];
    expect(at[next].y).toBeGreaterThan(at[last].y + ROW_HEIGHT);
    expect(at.S6.y).toBe(at.S5.y);
  });

  it('places no node on another in any example workflow', () => {
    const examples = new URL('../../workflows/', import.meta.url);
    const files = readdirSync(examples).filter((f) => f.endsWith('.yaml'));
    expect(files.length).toBeGreaterThan(3);
    for (const file of files) {
      const doc = WorkflowDoc.parse(readFileSync(new URL(file, examples), 'utf8'));
      const at = autoPositions(doc);
      expect(Object.keys(at).sort(), file).toEqual(doc.regionNames().sort());
      expect(overlaps(at), file).toEqual([]);
    }
  });
});
