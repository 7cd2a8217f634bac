import type { PathKey } from '../model/workflowDoc';

/** One finding, as the problems list and the nodes show it. `rule` matches `regions verify`. */
export interface Problem {
  rule: string;
  severity: 'error' | 'warning';
  message: string;
  /** Where in the document: e.g. ['regions', 'Historian', 'llm']. */
  path: PathKey[];
  /** The region the problem belongs to, when there is one (its node shows a badge). */
  region?: string;
}

/** `regions.Historian.llm` / `plan[0].chains.main[1]` — the same notation as the CLI. */
export function formatPath(path: readonly PathKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out ? `.${key}` : key;
  }
  return out || '(document)';
}

/** The region a path points into, if any. */
export function regionOfPath(path: readonly PathKey[]): string | undefined {
  return path[0] === 'regions' && typeof path[1] === 'string' ? path[1] : undefined;
}
