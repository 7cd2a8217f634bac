/**
 * The automatic layout of regions that have no stored position (no `layout:` entry).
 *
 * A column per plan layer (the first layer a region acts in), so a file reads left to right
 * in plan order; regions no step uses go in a last column. Inside a column, regions are
 * ordered by the mean row of their neighbours in the columns already placed (the barycenter
 * heuristic), which removes most edge crossings, and every column is centred on the tallest
 * one so short columns sit in the middle rather than along the top edge. A long plan wraps
 * like text: at most `BAND_COLUMNS` columns side by side, then a new band below, so a fitted
 * view of a nine-layer pipeline keeps its labels readable.
 */
import type { Position, WorkflowDoc } from './workflowDoc';

/** Room per node: a node is 200px wide and at most ~90px high (name, type, two task lines). */
export const COLUMN_WIDTH = 300;
export const ROW_HEIGHT = 130;
export const BAND_COLUMNS = 4;
const BAND_GAP = 60;
const MARGIN = 40;

export function autoPositions(doc: WorkflowDoc): Record<string, Position> {
  const names = doc.regionNames();
  const column = new Map<string, number>();
  // A machine's states in order read as one long plan (a region's column: the first layer it acts in).
  doc
    .allPlans()
    .flatMap((plan) => plan.layers())
    .forEach((layer, li) => {
      for (const chain of layer.chains) for (const step of chain.steps) if (!column.has(step.region)) column.set(step.region, li);
    });
  const used = [...new Set(column.values())].sort((a, b) => a - b);
  // Empty layers (or layers that only repeat earlier regions) leave no gap.
  const dense = new Map(used.map((li, i) => [li, i]));
  const last = used.length;
  const columns: string[][] = Array.from({ length: last + 1 }, () => []);
  for (const name of names) columns[column.has(name) ? dense.get(column.get(name)!)! : last].push(name);

  // Neighbours in either direction: a request channel ties two regions whichever way it points.
  const neighbours = new Map<string, string[]>(names.map((n) => [n, []]));
  for (const [source, target] of doc.connections()) {
    neighbours.get(source)?.push(target);
    neighbours.get(target)?.push(source);
  }
  const row = new Map<string, number>();
  for (const members of columns) {
    const weight = (name: string, index: number): number => {
      const placed = neighbours.get(name)!.filter((n) => row.has(n)).map((n) => row.get(n)!);
      // No placed neighbour: keep the file's order (stable among the others).
      return placed.length ? placed.reduce((a, b) => a + b, 0) / placed.length : index - (members.length - 1) / 2;
    };
    const ordered = members.map((name, i) => ({ name, key: weight(name, i) })).sort((a, b) => a.key - b.key);
    // Rows are centred: row 0 of a column of k sits (k - 1) / 2 above the middle.
    ordered.forEach(({ name }, i) => row.set(name, i - (ordered.length - 1) / 2));
  }

  const out: Record<string, Position> = {};
  const filled = columns.filter((members) => members.length > 0);
  let top = MARGIN;
  for (let first = 0; first < filled.length; first += BAND_COLUMNS) {
    const band = filled.slice(first, first + BAND_COLUMNS);
    const tallest = Math.max(1, ...band.map((c) => c.length));
    const middle = top + ((tallest - 1) / 2) * ROW_HEIGHT;
    band.forEach((members, ci) => {
      for (const name of members) out[name] = { x: MARGIN + ci * COLUMN_WIDTH, y: Math.round(middle + row.get(name)! * ROW_HEIGHT) };
    });
    top += tallest * ROW_HEIGHT + BAND_GAP;
  }
  return out;
}
