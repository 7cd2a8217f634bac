import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { WorkflowDoc } from '../src/model/workflowDoc';
import { validate } from '../src/validate';
import { RULE_SEVERITY } from '../src/validate/rules';
import { help } from '../src/validate';
import { BASE, CASES } from './cases';

/** The rule ids of the problems of BASE after `change`. */
function rulesAfter(change: (text: string) => string): string[] {
  const doc = WorkflowDoc.parse(change(BASE));
  return validate(doc.toData(), doc).map((p) => p.rule);
}

const pythonRules = [...readFileSync(new URL('../../regions_cli/workflow/rules.py', import.meta.url), 'utf8').matchAll(/^\s+"([a-z-]+)": RuleInfo\(/gm)].map((m) => m[1]);

describe('validator', () => {
  it('finds nothing wrong in a valid workflow', () => {
    const doc = WorkflowDoc.parse(BASE);
    expect(validate(doc.toData(), doc)).toEqual([]);
  });

  it('uses only rule ids that regions verify knows', () => {
    expect(pythonRules.length).toBeGreaterThan(20);
    for (const rule of Object.keys(RULE_SEVERITY)) expect(pythonRules).toContain(rule);
  });

  const cases = CASES;

  for (const [rule, change] of cases) {
    it(`reports ${rule}`, () => {
      const rules = rulesAfter(change);
      expect(rules).toContain(rule);
      expect(pythonRules).toContain(rule);
    });
  }

  it('has a test case for every rule it checks', () => {
    const tested = new Set(cases.map(([rule]) => rule));
    for (const rule of Object.keys(RULE_SEVERITY)) expect(tested).toContain(rule);
  });

  it('reports a key of the wrong type once, as key-not-for-type', () => {
    const rules = rulesAfter((t) => t.replace('    task: Answer questions about history.', '    task: Answer questions about history.\n    rag: facts'));
    expect(rules.filter((r) => r !== 'unused-region')).toEqual(['key-not-for-type']);
  });

  it('reports an unknown key once, as unknown-key', () => {
    expect(rulesAfter((t) => t.replace('    rag: facts', '    rag: facts\n    colour: red'))).toEqual(['unknown-key']);
  });

  it('points problems at their region so the node can show them', () => {
    const doc = WorkflowDoc.parse(BASE.replace('rag: facts', 'rag: stories'));
    const [problem] = validate(doc.toData(), doc);
    expect(problem).toMatchObject({ rule: 'unknown-rag', region: 'Facts', path: ['regions', 'Facts', 'rag'], severity: 'error' });
  });

  it('skips references that come from the environment', () => {
    expect(rulesAfter((t) => t.replace('rag: facts', 'rag: ${STORE}'))).toEqual([]);
  });
});

describe('schema help', () => {
  it('has a description for every region field the panel shows', () => {
    for (const key of ['type', 'task', 'connections', 'llm', 'rag', 'threshold', 'reply_with_actors', 'max_results', 'prompts', 'sink', 'taps']) {
      expect(help.region[key], key).toBeTruthy();
    }
    expect(help.top.plan).toBeTruthy();
    expect(Object.keys(help.prompts)).toEqual(expect.arrayContaining(['system', 'make_replies', 'make_questions', 'summarize_replies']));
  });
});

describe('validator details shared with regions verify', () => {
  it('does not count an unused listener', () => {
    expect(rulesAfter((t) => t.replace('Trace.start, ', ''))).toEqual([]);
  });

  it('treats $${ as a literal and a bare ${ as malformed', () => {
    expect(rulesAfter((t) => t.replace('task: Provide facts.', 'task: "costs $${price}"'))).toEqual([]);
    expect(rulesAfter((t) => t.replace('task: Provide facts.', 'task: "costs ${ price"'))).toEqual(['bad-interpolation']);
  });

  it('reports a region in two chains once per layer', () => {
    const rules = rulesAfter((t) => t + '      side: [Historian.summarize_replies, Historian.clear_replies]\n');
    expect(rules.filter((r) => r === 'region-in-two-chains')).toHaveLength(1);
  });
});
