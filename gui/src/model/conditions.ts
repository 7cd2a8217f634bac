/**
 * Transition conditions (`when:` of a state's `next:` entry): a short text for edge labels and
 * the flat form the condition editor shows. The forms are those of regions_cli/workflow/convert.py
 * (`condition`): says, field equals / in / matches, output, and all / any / not of them.
 */
import { parse, stringify } from 'yaml';
import { isRecord } from './workflowDoc';

export type ConditionKind = 'always' | 'says' | 'field' | 'output' | 'nested';
export type FieldTest = 'equals' | 'in' | 'matches';

/** A condition as the editor's form holds it: every value as the text of its input. */
export interface ConditionForm {
  kind: ConditionKind;
  region: string;
  /** The regex of `says` / `output` / `matches`. */
  pattern: string;
  /** The dotted path of a `field` test. */
  path: string;
  test: FieldTest;
  /** `equals`: a YAML scalar (`yes`, `3`, `"a b"`); `in`: a YAML list (`[a, b]`). */
  value: string;
  /** `all` / `any` / `not` (or anything else): the whole condition as YAML. */
  text: string;
}

const EMPTY: ConditionForm = { kind: 'always', region: '', pattern: '', path: '', test: 'equals', value: '', text: '' };

function yamlText(value: unknown): string {
  return stringify(value, { lineWidth: 0, flowCollectionPadding: false }).trimEnd();
}

function flowText(value: unknown): string {
  return stringify(value, { lineWidth: 0, flowCollectionPadding: false, collectionStyle: 'flow' }).trimEnd();
}

/** The form for a `when` value (undefined or null: always). */
export function formOf(when: unknown): ConditionForm {
  if (when === undefined || when === null) return { ...EMPTY };
  if (!isRecord(when)) return { ...EMPTY, kind: 'nested', text: yamlText(when) };
  const keys = Object.keys(when).sort().join(',');
  const region = typeof when.region === 'string' ? when.region : '';
  if (keys === 'output' && typeof when.output === 'string') return { ...EMPTY, kind: 'output', pattern: when.output };
  if ((keys === 'region,says' || keys === 'says') && typeof when.says === 'string') return { ...EMPTY, kind: 'says', region, pattern: when.says };
  if (typeof when.field === 'string' && Object.keys(when).length === 3 && region) {
    const base = { ...EMPTY, kind: 'field' as const, region, path: when.field };
    if ('equals' in when) return { ...base, test: 'equals', value: flowText(when.equals) };
    if ('in' in when && Array.isArray(when.in)) return { ...base, test: 'in', value: flowText(when.in) };
    if ('matches' in when && typeof when.matches === 'string') return { ...base, test: 'matches', pattern: when.matches };
  }
  return { ...EMPTY, kind: 'nested', text: yamlText(when) };
}

/** Check that `pattern` is a regular expression (Python's `re` accepts nearly the same). */
function regex(pattern: string, where: string): string {
  if (!pattern) throw new Error(`${where}: give a regular expression`);
  try {
    new RegExp(pattern);
  } catch (error) {
    throw new Error(`${where}: not a regular expression: ${(error as Error).message}`);
  }
  return pattern;
}

function parseYaml(text: string, where: string): unknown {
  try {
    return parse(text);
  } catch (error) {
    throw new Error(`${where}: not YAML: ${(error as Error).message.split('\n')[0]}`);
  }
}

/** The `when` value of a form (undefined: always). Throws a one-line reason on bad input. */
export function conditionOf(form: ConditionForm): unknown {
  switch (form.kind) {
    case 'always':
      return undefined;
    case 'output':
      return { output: regex(form.pattern, 'output') };
    case 'says':
      if (!form.region) throw new Error('says: choose the region');
      return { region: form.region, says: regex(form.pattern, 'says') };
    case 'field': {
      if (!form.region) throw new Error('field: choose the region');
      if (!/^[^.\s]+(\.[^.\s]+)*$/.test(form.path)) throw new Error('field: give a dotted path such as verdict or scores.0');
      const base = { region: form.region, field: form.path };
      if (form.test === 'matches') return { ...base, matches: regex(form.pattern, 'matches') };
      const value = parseYaml(form.value, form.test);
      if (form.test === 'in') {
        if (!Array.isArray(value) || value.length === 0) throw new Error('in: give a list such as [yes, maybe]');
        return { ...base, in: value };
      }
      if (value === undefined || (value !== null && typeof value === 'object')) throw new Error('equals: give one value (a string, number, true/false or null)');
      return { ...base, equals: value };
    }
    case 'nested': {
      const value = parseYaml(form.text, 'condition');
      if (value === null || value === undefined || value === '') return undefined;
      if (!isRecord(value)) throw new Error('condition: a mapping such as {all: [...]}, {any: [...]} or {not: {...}}');
      return value;
    }
  }
}

/** A short text for an edge label: `Critic says /APPROVED/`, `not (…)`, `always`. */
export function describeCondition(when: unknown): string {
  if (when === undefined || when === null) return 'always';
  if (!isRecord(when)) return String(when);
  if (Array.isArray(when.all)) return when.all.map((c) => `(${describeCondition(c)})`).join(' and ') || 'all()';
  if (Array.isArray(when.any)) return when.any.map((c) => `(${describeCondition(c)})`).join(' or ') || 'any()';
  if ('not' in when) return `not (${describeCondition(when.not)})`;
  if (typeof when.output === 'string') return `output ~ /${when.output}/`;
  const region = typeof when.region === 'string' ? when.region : 'any region';
  if (typeof when.says === 'string') return `${region} says /${when.says}/`;
  if (typeof when.field === 'string') {
    const at = `${region}.${when.field}`;
    if ('equals' in when) return `${at} = ${flowText(when.equals)}`;
    if ('in' in when) return `${at} in ${flowText(when.in)}`;
    if ('matches' in when) return `${at} ~ /${String(when.matches)}/`;
  }
  return flowText(when);
}
