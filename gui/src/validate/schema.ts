/**
 * JSON Schema validation with the CLI's own schema (bundled at build time), with ajv's errors
 * mapped to the rule ids `regions verify` reports for the schema layer.
 */
import Ajv2020, { type ErrorObject } from 'ajv/dist/2020';
import workflowSchema from '../../../schemas/workflow.schema.json';
import type { PathKey } from '../model/workflowDoc';
import { regionOfPath, type Problem } from './problem';

export const schema = workflowSchema as Record<string, unknown>;

const ajv = new Ajv2020({ allErrors: true, strict: false, allowUnionTypes: true });
const check = ajv.compile(schema);

/** `/regions/Historian/llm` -> ['regions', 'Historian', 'llm'] (array indexes as numbers). */
export function pointerToPath(pointer: string, data: unknown): PathKey[] {
  const path: PathKey[] = [];
  let node: unknown = data;
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    const step: PathKey = Array.isArray(node) && /^\d+$/.test(key) ? Number(key) : key;
    path.push(step);
    node = node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[String(step)] : undefined;
  }
  return path;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${JSON.stringify(value)}`;
}

function valueAt(data: unknown, path: PathKey[]): unknown {
  let node = data;
  for (const key of path) node = node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[String(key)] : undefined;
  return node;
}

function toProblem(error: ErrorObject, data: unknown): Problem | undefined {
  const path = pointerToPath(error.instancePath, data);
  const where = path.length ? path.map(String).join('.') : 'the document';
  const params = error.params as Record<string, unknown>;
  let rule: string;
  let message: string;
  let at = path;
  switch (error.keyword) {
    case 'additionalProperties':
      rule = 'unknown-key';
      at = [...path, String(params.additionalProperty)];
      message = `unknown key \`${String(params.additionalProperty)}\` in ${where}`;
      break;
    case 'propertyNames': {
      const name = String(params.propertyName);
      at = [...path, name];
      // A closed list of names (per region type / backend) vs a naming pattern.
      const parent = valueAt(data, path) as Record<string, unknown> | undefined;
      const kind = path[0] === 'regions' ? `type ${String(parent?.type)}` : path[0] === 'llms' || path[0] === 'embedders' ? `backend ${String(parent?.backend)}` : '';
      if (kind && path.length === 2) {
        rule = 'key-not-for-type';
        message = `\`${name}\` does not apply to ${kind} (${where})`;
      } else {
        rule = 'invalid-value';
        message = `invalid name \`${name}\` in ${where}`;
      }
      break;
    }
    case 'required':
      rule = 'missing-key';
      message = `${where} needs \`${String(params.missingProperty)}\``;
      break;
    case 'type':
      rule = 'wrong-type';
      message = `${where} should be ${String(params.type).replace(/,/g, ' or ')}, not ${describe(valueAt(data, path))}`;
      break;
    case 'enum':
      rule = 'invalid-value';
      message = `${where} is ${describe(valueAt(data, path))}; expected one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
      break;
    default:
      rule = 'invalid-value';
      message = `${where} ${error.message ?? 'is invalid'}`;
  }
  return { rule, severity: 'error', message, path: at, region: regionOfPath(at) };
}

/** Schema problems of `data`, one per offending value (ajv's bookkeeping errors dropped). */
export function schemaProblems(data: unknown): Problem[] {
  if (check(data)) return [];
  const seen = new Set<string>();
  const out: Problem[] = [];
  for (const error of check.errors ?? []) {
    // `if` failures only say "must match then"; the inner error says what is wrong. A
    // propertyNames failure comes with an inner `enum`/`pattern` error on the same name.
    if (error.keyword === 'if' || (error.propertyName !== undefined && error.keyword !== 'propertyNames')) continue;
    const problem = toProblem(error, data);
    if (!problem) continue;
    const key = `${problem.rule}|${problem.path.join('.')}|${problem.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push(problem);
    }
  }
  // A key the schema does not know at all is `unknown-key` only (as in regions verify).
  const unknown = new Set(out.filter((p) => p.rule === 'unknown-key').map((p) => p.path.join('\0')));
  return out.filter((p) => p.rule !== 'key-not-for-type' || !unknown.has(p.path.join('\0')));
}

/** Why `value` is not a JSON Schema (checked against the 2020-12 meta-schema), or null. */
export function jsonSchemaProblem(value: unknown): string | null {
  if (ajv.validateSchema(value as object) === true) return null;
  return `not a JSON Schema: ${ajv.errorsText(ajv.errors, { dataVar: 'schema' })}`;
}
