/**
 * The control-flow rules of `regions verify` (the "control flow" section of
 * regions_cli/workflow/rules.py), ported for the editor: states and transitions, conditions,
 * region schemas and routers. Same rule ids; the sub-workflow rules need the disk and stay with
 * the Python verifier.
 */
import { jsonSchemaProblem } from './schema';
import { isRecord, type PathKey } from '../model/workflowDoc';

type Report = (rule: MachineRuleId, path: PathKey[], message: string) => void;

export const MACHINE_RULE_SEVERITY = {
  'unknown-state': 'error',
  'unbounded-cycle': 'error',
  'exhausted-to-itself': 'error',
  'unreachable-state': 'warning',
  'field-without-schema': 'error',
  'unknown-field': 'error',
  'invalid-schema': 'error',
  'bad-regex': 'error',
  'route-not-connected': 'error',
} as const;

export type MachineRuleId = keyof typeof MACHINE_RULE_SEVERITY;

const END = 'end';

function record(value: unknown): Record<string, unknown> {
  return isRecord(value) ? value : {};
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

/** Every condition with its path, nested ones included (as `Context.conditions`). */
export function conditions(data: Record<string, unknown>): Array<[Record<string, unknown>, PathKey[]]> {
  const out: Array<[Record<string, unknown>, PathKey[]]> = [];
  const walk = (condition: unknown, path: PathKey[]) => {
    if (!isRecord(condition)) return;
    out.push([condition, path]);
    for (const key of ['all', 'any']) list(condition[key]).forEach((item, i) => walk(item, [...path, key, i]));
    walk(condition.not, [...path, 'not']);
  };
  for (const [state, spec] of Object.entries(record(data.states))) {
    list(record(spec).next).forEach((entry, i) => walk(record(entry).when, ['states', state, 'next', i, 'when']));
  }
  return out;
}

function bounded(spec: unknown): boolean {
  const visits = record(spec).max_visits;
  return typeof visits === 'number' && Number.isInteger(visits) && visits >= 1;
}

/** state -> [next state, where it is written, is on_exhausted] for edges to known states. */
function edges(states: Record<string, unknown>): Map<string, Array<[string, PathKey[], boolean]>> {
  const out = new Map<string, Array<[string, PathKey[], boolean]>>(Object.keys(states).map((s) => [s, []]));
  for (const [name, spec] of Object.entries(states)) {
    list(record(spec).next).forEach((entry, i) => {
      const to = record(entry).to;
      if (typeof to === 'string' && to in states) out.get(name)!.push([to, ['states', name, 'next', i, 'to'], false]);
    });
  }
  for (const [name, spec] of Object.entries(states)) {
    const target = record(spec).on_exhausted;
    if (typeof target === 'string' && target in states && target !== name) out.get(name)!.push([target, ['states', name, 'on_exhausted'], true]);
  }
  return out;
}

function startOf(data: Record<string, unknown>, states: Record<string, unknown>): string | undefined {
  return typeof data.start === 'string' && data.start in states ? data.start : Object.keys(states)[0];
}

function stateRules(data: Record<string, unknown>, report: Report): void {
  const states = record(data.states);
  const names = Object.keys(states);
  const refs: Array<[string, PathKey[], string]> = [];
  for (const [name, spec] of Object.entries(states)) {
    list(record(spec).next).forEach((entry, i) => {
      const to = record(entry).to;
      if (typeof to === 'string' && to !== END) refs.push([to, ['states', name, 'next', i, 'to'], `state ${name} goes to`]);
    });
  }
  if (typeof data.start === 'string' && 'states' in data) refs.push([data.start, ['start'], '`start` names']);
  for (const [name, spec] of Object.entries(states)) {
    const target = record(spec).on_exhausted;
    if (typeof target === 'string' && target !== 'fail' && target !== END) refs.push([target, ['states', name, 'on_exhausted'], `state ${name} on_exhausted goes to`]);
  }
  for (const [target, path, what] of refs) {
    if (!(target in states)) report('unknown-state', path, `${what} unknown state ${target} (states: ${names.join(', ') || 'none'}; \`end\` finishes the run)`);
  }

  // A bounded state bounds a cycle only when the cycle leaves it by a transition, so a
  // bounded state keeps only its on_exhausted edge; each back edge of a depth-first walk
  // closes one unbounded cycle.
  const all = edges(states);
  const kept = new Map([...all].map(([s, out]) => [s, out.filter((e) => e[2] === bounded(states[s]))]));
  const start = startOf(data, states);
  const order = start === undefined ? names : [start, ...names.filter((n) => n !== start)];
  const done = new Set<string>();
  for (const root of order) {
    if (done.has(root)) continue;
    const stack = [root];
    const onStack = new Set([root]);
    const pending = [[...kept.get(root)!].values()];
    while (pending.length) {
      const step = pending[pending.length - 1].next();
      if (step.done) {
        pending.pop();
        done.add(stack[stack.length - 1]);
        onStack.delete(stack.pop()!);
        continue;
      }
      const [target, path] = step.value;
      if (onStack.has(target)) {
        const cycle = [...stack.slice(stack.indexOf(target)), target];
        report('unbounded-cycle', path, `${cycle.join(' -> ')} can go round forever: give one of its states max_visits`);
      } else if (!done.has(target)) {
        stack.push(target);
        onStack.add(target);
        pending.push([...kept.get(target)!].values());
      }
    }
  }

  for (const [name, spec] of Object.entries(states)) {
    if (record(spec).on_exhausted === name) report('exhausted-to-itself', ['states', name, 'on_exhausted'], `state ${name} goes to itself when its visits are spent: it would never stop`);
  }

  if (start !== undefined) {
    const seen = new Set([start]);
    const todo = [start];
    while (todo.length) {
      for (const [target] of all.get(todo.pop()!)!) {
        if (!seen.has(target)) {
          seen.add(target);
          todo.push(target);
        }
      }
    }
    for (const name of names) if (!seen.has(name)) report('unreachable-state', ['states', name], `state ${name} is never entered: no transition from ${start} leads to it`);
  }
}

/** The index of the first part of a dotted path `schema` cannot produce (as `_unproducible`). */
export function unproducible(schema: unknown, parts: string[]): number | undefined {
  let node: unknown = schema;
  for (let index = 0; index < parts.length; index++) {
    const part = parts[index];
    if (!isRecord(node)) return undefined;
    const schema = node;
    if (['$ref', 'anyOf', 'oneOf', 'allOf', 'if'].some((k) => k in schema)) return undefined;
    const types = new Set(typeof node.type === 'string' ? [node.type] : list(node.type));
    if ('properties' in node || types.has('object')) {
      const properties = record(node.properties);
      const extra = 'additionalProperties' in node ? node.additionalProperties : !('properties' in node);
      if (part in properties) node = properties[part];
      else if (node.patternProperties || isRecord(extra) || extra === true) node = isRecord(extra) ? extra : true;
      else return index;
    } else if ('items' in node || 'prefixItems' in node || types.has('array')) {
      if (!/^\d+$/.test(part)) return index;
      const prefix = list(node.prefixItems);
      const items = 'items' in node ? node.items : true;
      node = Number(part) < prefix.length ? prefix[Number(part)] : items;
    } else if (types.size) {
      return index;
    } else {
      return undefined;
    }
  }
  return undefined;
}

/** Whether Python's `re` would compile `pattern`, told by JavaScript's (named groups and leading inline flags translated). */
export function regexProblem(pattern: string): string | undefined {
  const translated = pattern
    .replace(/^\(\?[aiLmsux]+\)/, '')
    .replace(/\(\?P</g, '(?<')
    .replace(/\(\?P=(\w+)\)/g, '\\k<$1>');
  try {
    new RegExp(translated);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

function conditionRules(data: Record<string, unknown>, report: Report): void {
  const regions = record(data.regions);
  for (const [condition, path] of conditions(data)) {
    const region = condition.region;
    const field = condition.field;
    if (typeof region === 'string' && typeof field === 'string' && region in regions) {
      const schema = record(regions[region]).output_schema;
      if (!isRecord(schema)) {
        report('field-without-schema', [...path, 'field'], `a condition tests field ${field} of ${region}, which has no output_schema: its replies are text, not JSON`);
      } else {
        const parts = field.split('.');
        const bad = unproducible(schema, parts);
        if (bad !== undefined) report('unknown-field', [...path, 'field'], `${region} cannot produce field ${field}: its output_schema has no ${parts[bad]}`);
      }
    }
    for (const key of ['says', 'matches', 'output']) {
      const pattern = condition[key];
      if (typeof pattern !== 'string') continue;
      const problem = regexProblem(pattern);
      if (problem) report('bad-regex', [...path, key], `${pattern} is not a valid regex: ${problem}`);
    }
  }
}

function regionRules(data: Record<string, unknown>, report: Report): void {
  for (const [name, raw] of Object.entries(record(data.regions))) {
    const spec = record(raw);
    for (const key of ['output_schema', 'input_schema']) {
      if (!isRecord(spec[key])) continue;
      const problem = jsonSchemaProblem(spec[key]);
      if (problem) report('invalid-schema', ['regions', name, key], `the ${key} of region ${name} is ${problem}`);
    }
    list(spec.routes).forEach((route, i) => {
      const says = record(record(route).when).says;
      if (typeof says !== 'string') return;
      const problem = regexProblem(says);
      if (problem) report('bad-regex', ['regions', name, 'routes', i, 'when', 'says'], `${says} is not a valid regex: ${problem}`);
    });
    if (spec.type !== 'RouterRegion') continue;
    const connected = Array.isArray(spec.connections) ? spec.connections : Object.keys(record(spec.connections));
    const targets: Array<[unknown, PathKey[]]> = list(spec.routes).map((route, i) => [record(route).to, ['regions', name, 'routes', i, 'to']]);
    if (typeof spec.default === 'string') targets.push([spec.default, ['regions', name, 'default']]);
    for (const [target, path] of targets) {
      if (typeof target === 'string' && target in record(data.regions) && !connected.includes(target)) {
        report('route-not-connected', path, `router ${name} routes to ${target}, which is not one of its connections`);
      }
    }
  }
}

/** Every control-flow problem of a (possibly schema-invalid) workflow mapping. */
export function machineRuleProblems(data: Record<string, unknown>, report: Report): void {
  stateRules(data, report);
  conditionRules(data, report);
  regionRules(data, report);
}
