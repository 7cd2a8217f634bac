/** Live validation: YAML syntax, the CLI's JSON Schema, then the cross-reference rules. */
import type { WorkflowDoc } from '../model/workflowDoc';
import { regionOfPath, type Problem } from './problem';
import { ruleProblems } from './rules';
import { schema, schemaProblems } from './schema';
import { schemaHelp } from './schemaHelp';

export const help = schemaHelp(schema);

/** Every problem of the document, in the order `regions verify` layers them. */
export function validate(data: Record<string, unknown>, doc?: WorkflowDoc): Problem[] {
  const syntax: Problem[] = (doc?.doc.errors ?? []).map((error) => ({
    rule: error.code === 'DUPLICATE_KEY' ? 'duplicate-key' : 'yaml-syntax',
    severity: 'error',
    message: error.message.split('\n')[0],
    path: [],
  }));
  // As in regions verify: a syntax error hides the duplicate keys the parser also noticed.
  const fatal = syntax.filter((p) => p.rule === 'yaml-syntax');
  if (syntax.length) return fatal.length ? fatal : syntax;
  // What the loader refuses stops regions verify before the schema, so it stops the editor too.
  const load = doc?.loadProblems() ?? [];
  if (load.length) return load.map((p) => ({ ...p, severity: 'error', region: regionOfPath(p.path) }));
  if (Object.keys(data).length === 0) {
    return [{ rule: 'not-a-mapping', severity: 'error', message: 'the document is empty or is not a mapping', path: [] }];
  }
  return [...schemaProblems(data), ...ruleProblems(data)];
}
