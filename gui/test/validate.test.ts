import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { WorkflowDoc } from '../src/model/workflowDoc';
import { validate } from '../src/validate';
import { RULE_SEVERITY } from '../src/validate/rules';
import { help } from '../src/validate';

const BASE = `version: 1
name: lookup
llms:
  default: {backend: scripted}
embedders:
  default: {backend: hash, dimensions: 64}
rags:
  facts: {path: facts.db, chunk_size: 100, overlap: 10}
regions:
  Historian:
    type: Region
    task: Answer questions about history.
    connections: [Facts]
  Facts:
    type: RAGRegion
    task: Provide facts.
    rag: facts
    connections: [Historian]
  Trace:
    type: ListenerRegion
    taps: [Historian]
inject:
  - {from: user, to: Historian, role: request, content: "Who?"}
delivery: {undeliverable: drop}
plan:
  - layer: ask
    chains:
      main: [Trace.start, Historian.make_questions, Facts.make_replies, Historian.make_replies]
`;

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

  const cases: Array<[string, (t: string) => string]> = [
    ['yaml-syntax', (t) => t + 'plan: [oops\n'],
    ['duplicate-key', (t) => t.replace('name: lookup', 'name: lookup\nname: again')],
    ['not-a-mapping', () => '- just\n- a list\n'],
    ['unknown-key', (t) => t.replace('    rag: facts', '    rag: facts\n    colour: red')],
    ['key-not-for-type', (t) => t.replace('    task: Answer questions about history.', '    task: Answer questions about history.\n    rag: facts')],
    ['missing-key', (t) => t.replace('    rag: facts\n', '')],
    ['wrong-type', (t) => t.replace('chunk_size: 100', 'chunk_size: lots')],
    ['invalid-value', (t) => t.replace('type: RAGRegion', 'type: RagRegion')],
    ['unsupported-version', (t) => t.replace('version: 1', 'version: 2')],
    ['unknown-region', (t) => t.replace('connections: [Facts]', 'connections: [Facts, Nobody]')],
    ['unknown-method', (t) => t.replace('Facts.make_replies', 'Facts.make_questions')],
    ['region-in-two-chains', (t) => t + '      side: [Historian.summarize_replies]\n'],
    ['unknown-llm', (t) => t.replace('    connections: [Facts]', '    connections: [Facts]\n    llm: gpt')],
    ['unknown-rag', (t) => t.replace('rag: facts', 'rag: stories')],
    ['unknown-embedder', (t) => t.replace('overlap: 10}', 'overlap: 10, embedder: e5}')],
    ['missing-default-llm', (t) => t.replace('  default: {backend: scripted}', '  other: {backend: scripted}')],
    ['missing-default-embedder', (t) => t.replace('  default: {backend: hash, dimensions: 64}', '  other: {backend: hash, dimensions: 64}')],
    ['overlap-too-large', (t) => t.replace('overlap: 10', 'overlap: 100')],
    ['empty-plan', (t) => t.replace(/plan:\n[\s\S]*$/, 'plan: []\n')],
    ['empty-layer', (t) => t + '  - chains: {}\n'],
    ['empty-chain', (t) => t + '      empty: []\n'],
    ['duplicate-layer-label', (t) => t + '  - layer: ask\n    chains:\n      again: [Facts.clear_replies]\n'],
    ['missing-reroute-target', (t) => t.replace('{undeliverable: drop}', '{undeliverable: reroute}')],
    ['bad-interpolation', (t) => t.replace('task: Provide facts.', 'task: "Provide ${facts."')],
    ['unused-region', (t) => t.replace('Trace.start, ', '')],
    ['self-connection', (t) => t.replace('connections: [Facts]', 'connections: [Facts, Historian]')],
    ['unreachable-replies', (t) => t.replace('connections: [Historian]', 'connections: []').replace('to: Historian', 'to: Facts')],
  ];

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
  });
});
