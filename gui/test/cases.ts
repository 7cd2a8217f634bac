/** A valid workflow and one change per rule id that breaks it (shared by the validator tests). */

export const BASE = `version: 1
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

/** Billion laughs: five levels of ten aliases each expand to 100,000 items. */
const BOMB = ['a: &a [x, x, x, x, x, x, x, x, x, x]', ...['b', 'c', 'd', 'e'].map((n, i) => `${n}: &${n} [${Array(10).fill(`*${'abcd'[i]}`).join(', ')}]`)]
  .map((line) => `x-${line}\n`)
  .join('');

/** BASE as a machine: its plan in state `one`, then `next` (and more states) after it. */
const machine = (t: string, next: string, bounds = '') =>
  t.replace(
    /plan:\n[\s\S]*$/,
    `states:\n  one:\n${bounds}    plan:\n      - layer: ask\n        chains:\n          main: [Trace.start, Historian.make_questions, Facts.make_replies, Historian.make_replies]\n    next:\n${next}`,
  );
/** BASE with a command tool `look` offered to Historian (extra keys for the tool, and for Historian after its connections). */
const TOOLS = (t: string, tool = '', historian = '') =>
  t
    .replace('regions:\n', `tools:\n  look:\n    command: [python3, look.py]\n${tool}regions:\n`)
    .replace('    connections: [Facts]\n', `    connections: [Facts]\n    tools: [look]\n${historian}`);
const SCHEMA = '    connections: [Facts]\n    output_schema: {type: object, properties: {verdict: {type: string}}, additionalProperties: false}\n';

export const CASES: Array<[string, (t: string) => string]> = [
  ['yaml-syntax', (t) => t + 'plan: [oops\n'],
  ['non-string-key', (t) => t.replace('connections: [Facts]', 'connections: {Facts: ask, 2: who}')],
  ['recursive-alias', (t) => t.replace('regions:\n', 'regions: &all\n').replace('    taps: [Historian]', '    taps: [Historian]\n    loop: *all')],
  ['alias-bomb', (t) => t + BOMB],
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
  ['tls-verification-off', (t) => t.replace('  default: {backend: scripted}', '  default: {backend: openai, base_url: "https://models.example.org/v1", verify_tls: false}')],
  ['credentials-over-http', (t) => t.replace('  default: {backend: scripted}', '  default: {backend: openai, base_url: "http://models.example.org/v1", api_key: k}')],
  ['cross-chain-message', (t) => t.replace('Facts.make_replies, Historian.make_replies]', 'Historian.make_replies]\n      lookup: [Facts.make_replies]')],
  ['unknown-llm', (t) => t.replace('    connections: [Facts]', '    connections: [Facts]\n    llm: gpt')],
  ['unknown-rag', (t) => t.replace('rag: facts', 'rag: stories')],
  ['unknown-embedder', (t) => t.replace('overlap: 10}', 'overlap: 10, embedder: e5}')],
  ['missing-default-llm', (t) => t.replace('  default: {backend: scripted}', '  other: {backend: scripted}')],
  ['missing-default-embedder', (t) => t.replace('  default: {backend: hash, dimensions: 64}', '  other: {backend: hash, dimensions: 64}')],
  ['overlap-too-large', (t) => t.replace('overlap: 10', 'overlap: 100')],
  ['bad-prompt-template', (t) => t.replace('    connections: [Facts]\n', '    connections: [Facts]\n    prompts: {make_replies: "Costs 5$ for $tsak"}\n')],
  ['empty-plan', (t) => t.replace(/plan:\n[\s\S]*$/, 'plan: []\n')],
  ['empty-layer', (t) => t + '  - chains: {}\n'],
  ['empty-chain', (t) => t + '      empty: []\n'],
  ['duplicate-layer-label', (t) => t + '  - layer: ask\n    chains:\n      again: [Facts.clear_replies]\n'],
  ['missing-reroute-target', (t) => t.replace('{undeliverable: drop}', '{undeliverable: reroute}')],
  ['bad-interpolation', (t) => t.replace('task: Provide facts.', 'task: "Provide ${facts."')],
  ['unused-region', (t) => t.replace('  Trace:\n', '  Idle: {type: Region, task: Nothing.}\n  Trace:\n')],
  ['self-connection', (t) => t.replace('connections: [Facts]', 'connections: [Facts, Historian]')],
  ['unknown-state', (t) => machine(t, '      - to: nowhere\n')],
  ['unbounded-cycle', (t) => machine(t, '      - when: {output: again}\n        to: one\n')],
  ['exhausted-to-itself', (t) => machine(t, '      - to: one\n', '    max_visits: 2\n    on_exhausted: one\n')],
  ['unreachable-state', (t) => machine(t, '      - to: end\n  two:\n    plan:\n      - chains: {x: [Facts.clear_replies]}\n')],
  ['field-without-schema', (t) => machine(t, '      - when: {region: Historian, field: verdict, equals: yes}\n        to: end\n')],
  ['unknown-field', (t) => machine(t.replace('    connections: [Facts]\n', SCHEMA), '      - when: {region: Historian, field: score, in: [1, 2]}\n        to: end\n')],
  ['invalid-schema', (t) => t.replace('    connections: [Facts]\n', '    connections: [Facts]\n    output_schema: {type: 5}\n')],
  ['bad-regex', (t) => machine(t, '      - when: {not: {region: Historian, says: "(unclosed"}}\n        to: end\n')],
  ['route-not-connected', (t) => t.replace('  Trace:\n', '  Desk:\n    type: RouterRegion\n    connections: [Historian]\n    routes: [{when: {says: facts}, to: Facts}]\n    default: Historian\n  Trace:\n')],
  ['unreachable-replies', (t) => t.replace('connections: [Historian]', 'connections: []').replace('to: Historian', 'to: Facts')],
  ['unknown-tool', (t) => TOOLS(t).replace('tools: [look]', 'tools: [look, lok]')],
  ['terminal-tool-not-offered', (t) => TOOLS(t, '', '    tool_loop: {terminal_tools: [done]}\n')],
  ['self-tool', (t) => TOOLS(t, '  ask_me: {region: Historian}\n').replace('tools: [look]', 'tools: [look, ask_me]')],
  ['region-tool-cannot-answer', (t) => TOOLS(t, '  watch: {region: Trace}\n').replace('tools: [look]', 'tools: [look, watch]')],
  ['tool-loop-without-tools', (t) => t.replace('    connections: [Facts]\n', '    connections: [Facts]\n    tool_loop: {max_iterations: 2}\n')],
  ['unused-tool', (t) => TOOLS(t, '  spare:\n    command: [python3, spare.py]\n')],
];
