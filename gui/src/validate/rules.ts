/**
 * The cross-reference rules of `regions verify` (regions_cli/workflow/rules.py), ported so the
 * editor can show them live. Rule ids are the same; rules that need the disk or PATH
 * (`missing-file`, `command-not-found`) or the environment (`unset-variable`) are left to the
 * server's verifier.
 */
import { LLM_REGION_TYPES, methodsOf } from '../model/methods';
import { isRecord, parseStep, type PathKey } from '../model/workflowDoc';
import { conditions, MACHINE_RULE_SEVERITY, machineRuleProblems } from './machineRules';
import { regionOfPath, type Problem } from './problem';
import { jsonSchemaProblem } from './schema';

export const SUPPORTED_VERSIONS = [1];

/** Rule id -> severity, for the rules this module checks. */
export const RULE_SEVERITY = {
  'unsupported-version': 'error',
  'unknown-region': 'error',
  'unknown-method': 'error',
  'region-in-two-chains': 'error',
  'cross-chain-message': 'warning',
  'unknown-llm': 'error',
  'unknown-rag': 'error',
  'unknown-embedder': 'error',
  'missing-default-llm': 'error',
  'missing-default-embedder': 'error',
  'overlap-too-large': 'error',
  'bad-prompt-template': 'error',
  'empty-plan': 'error',
  'empty-layer': 'error',
  'empty-chain': 'error',
  'duplicate-layer-label': 'error',
  'missing-reroute-target': 'error',
  'bad-interpolation': 'error',
  'unused-region': 'warning',
  'tls-verification-off': 'warning',
  'credentials-over-http': 'warning',
  'self-connection': 'warning',
  'unreachable-replies': 'warning',
  'unknown-tool': 'error',
  'terminal-tool-not-offered': 'error',
  'self-tool': 'error',
  'region-tool-cannot-answer': 'error',
  'tool-loop-without-tools': 'warning',
  'unused-tool': 'warning',
  ...MACHINE_RULE_SEVERITY,
} as const;

export type RuleId = keyof typeof RULE_SEVERITY;

/** Prompt template name -> the fields it may use (regions_cli/model/templates.py FIELDS). */
const TEMPLATE_FIELDS: Record<string, string[]> = {
  system: ['name', 'task', 'knowledge', 'requests', 'connections'],
  make_replies: ['name', 'task', 'question', 'source', 'connections'],
  make_questions: ['name', 'task', 'connections'],
  summarize_replies: ['name', 'task', 'text', 'source'],
  knowledge: ['items'],
  requests: ['items'],
};

/** Python's string.Template pattern: $$, $name, ${name}, or a stray $. */
const PLACEHOLDER = /\$(?:(\$)|([_a-z][_a-z0-9]*)|\{([_a-z][_a-z0-9]*)\}|())/gi;

/** The problems of prompt template `name` (as `template_problems` in templates.py). */
function templateProblems(name: string, text: string): string[] {
  const allowed = TEMPLATE_FIELDS[name];
  const problems: string[] = [];
  for (const match of text.matchAll(PLACEHOLDER)) {
    const field = match[2] ?? match[3];
    if (match[4] !== undefined) problems.push("'$' starts no placeholder: write $field, or $$ for a literal '$'");
    else if (field !== undefined && allowed !== undefined && !allowed.includes(field)) {
      problems.push(`unknown placeholder $${field}; ${name} offers ${[...allowed].sort().map((f) => `$${f}`).join(', ')}`);
    }
  }
  return problems;
}

/** A value taken from the environment at run time: the editor cannot resolve it, so skips it. */
function interpolated(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  for (const match of value.matchAll(TOKEN)) if (match[1] !== undefined) return true;
  return false;
}

function entries(value: unknown): Array<[string, Record<string, unknown>]> {
  if (!isRecord(value)) return [];
  return Object.entries(value).filter((e): e is [string, Record<string, unknown>] => isRecord(e[1]));
}

function namesOf(value: unknown): string[] {
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
  return isRecord(value) ? Object.keys(value) : [];
}

interface StepAt {
  region: string;
  method: string;
  path: PathKey[];
  /** The layer, unique across the workflow's plans (`plan/0`, `states/review/plan/1`). */
  layer: string;
  /** The layer in words: `layer 1`, `layer 2 of state review`. */
  layerName: string;
  chain: string;
}

interface PlanAt {
  path: PathKey[];
  items: unknown[];
  /** The state owning the plan (undefined: the workflow's `plan:`). */
  state?: string;
}

/** The workflow's plans: the plan of each state of a `states:` machine, else `plan:`. */
function plans(data: Record<string, unknown>): PlanAt[] {
  if ('states' in data) {
    return entries(data.states)
      .filter(([, spec]) => Array.isArray(spec.plan))
      .map(([state, spec]) => ({ path: ['states', state, 'plan'], items: spec.plan as unknown[], state }));
  }
  return Array.isArray(data.plan) ? [{ path: ['plan'], items: data.plan }] : [];
}

function layerName(plan: PlanAt, li: number): string {
  return plan.state === undefined ? `layer ${li + 1}` : `layer ${li + 1} of state ${plan.state}`;
}

function steps(data: Record<string, unknown>): StepAt[] {
  const out: StepAt[] = [];
  for (const plan of plans(data)) {
    plan.items.forEach((layer, li) => {
      if (!isRecord(layer)) return;
      for (const [chain, list] of Object.entries(isRecord(layer.chains) ? layer.chains : {})) {
        if (!Array.isArray(list)) continue;
        list.forEach((item, si) => {
          const text = typeof item === 'string' ? item : isRecord(item) && typeof item.step === 'string' ? item.step : undefined;
          const ref = text === undefined ? undefined : parseStep(text);
          const at: PathKey[] = [...plan.path, li, 'chains', chain, si];
          const path = typeof item === 'string' ? at : [...at, 'step'];
          if (ref) out.push({ ...ref, path, layer: [...plan.path, li].join('/'), layerName: layerName(plan, li), chain });
        });
      }
    });
  }
  return out;
}

const CREDENTIAL_HEADERS = new Set(['authorization', 'proxy-authorization', 'api-key', 'x-api-key', 'cookie']);

function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/** `verify_tls: false`, and credentials over plain http to another machine (as `regions verify`). */
function endpointSafety(
  data: Record<string, unknown>,
  report: (rule: RuleId, path: PathKey[], message: string, region?: string) => void,
): void {
  for (const [block, label] of [['llms', 'llm'], ['embedders', 'embedder']] as const) {
    for (const [name, spec] of entries(data[block])) {
      if (spec.verify_tls === false) {
        report('tls-verification-off', [block, name, 'verify_tls'], `${label} ${name} does not check the server's certificate`);
      }
      const url = spec.base_url;
      if (typeof url !== 'string' || url.includes('${') || !url.toLowerCase().startsWith('http://')) continue;
      let parsed: URL;
      try {
        parsed = new URL(url);
      } catch {
        continue;
      }
      if (isLoopback(parsed.hostname)) continue;
      const headers = isRecord(spec.headers) ? Object.keys(spec.headers) : [];
      const carries = Boolean(spec.api_key) || parsed.password !== '' || headers.some((h) => CREDENTIAL_HEADERS.has(h.toLowerCase()));
      if (carries) report('credentials-over-http', [block, name, 'base_url'], `${label} ${name} sends a credential over plain http:// to ${parsed.hostname}`);
    }
  }
}

/** The roles of the messages each method may post, and of the stored messages it reads. */
const POSTS: Record<string, string[]> = {
  make_questions: ['request'],
  make_replies: ['request', 'reply'], // a FeedForwardRegion also forwards
  request_summaries: ['request'],
  broadcast: ['request', 'reply'],
};
const READS: Record<string, string[]> = {
  make_questions: ['reply'],
  make_replies: ['request', 'reply'],
  summarize_replies: ['reply'],
  make_updates: ['reply'],
  broadcast: ['request', 'reply'],
  clear_replies: ['reply'],
  keep_last_reply_per_source: ['reply'],
};

/**
 * Chains of a layer exchange messages only at the layer's end: warn where a step reads what a
 * connected region of another chain of the same layer may post there (as `regions verify` does).
 */
function crossChainMessages(
  all: StepAt[],
  regions: Array<[string, Record<string, unknown>]>,
  report: (rule: RuleId, path: PathKey[], message: string, region?: string) => void,
): void {
  const connected = new Map(regions.map(([name, r]) => [name, new Set(namesOf(r.connections))]));
  const layers = new Map<string, Map<string, StepAt[]>>();
  for (const step of all) {
    const byRegion = layers.get(step.layer) ?? new Map<string, StepAt[]>();
    layers.set(step.layer, byRegion);
    byRegion.set(step.region, [...(byRegion.get(step.region) ?? []), step]);
  }
  for (const byRegion of layers.values()) {
    const chainOf = new Map<string, string>();
    for (const [region, list] of byRegion) {
      if (new Set(list.map((s) => s.chain)).size === 1) chainOf.set(region, list[0].chain);
    }
    const reported = new Set<string>();
    for (const [sender, chain] of chainOf) {
      for (const [target, other] of chainOf) {
        const pair = [sender, target].sort().join('\u0000');
        if (other === chain || reported.has(pair)) continue;
        const roles = new Set<string>(connected.get(sender)?.has(target) ? ['request', 'reply'] : []);
        if (connected.get(target)?.has(sender)) roles.add('reply');
        const posted = new Set(byRegion.get(sender)!.flatMap((s) => POSTS[s.method] ?? []).filter((r) => roles.has(r)));
        const reader = byRegion.get(target)!.find((s) => (READS[s.method] ?? []).some((r) => posted.has(r)));
        if (reader === undefined) continue;
        reported.add(pair);
        report('cross-chain-message', reader.path, `${reader.region}.${reader.method} reads what ${sender} (chain ${chain}) may send it, but runs in chain ${other} of ${reader.layerName}: it sees those messages only from the next layer`, reader.region);
      }
    }
  }
}

/** The loader's `${...}` tokens: an escaped `$${`, a well-formed `${NAME[:-default]}`, or a bad `${`. */
const TOKEN = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}|\$\{/g;

function malformed(text: string): boolean {
  for (const match of text.matchAll(TOKEN)) if (match[0] === '${') return true;
  return false;
}

function walkStrings(value: unknown, path: PathKey[], visit: (text: string, path: PathKey[]) => void): void {
  if (typeof value === 'string') visit(value, path);
  else if (Array.isArray(value)) value.forEach((v, i) => walkStrings(v, [...path, i], visit));
  else if (isRecord(value)) for (const [k, v] of Object.entries(value)) walkStrings(v, [...path, k], visit);
}

/** A region's tool names: its `tools` list and a ToolRegion's `tool`, with their paths (as `_tool_refs`). */
function toolRefs(regions: Array<[string, Record<string, unknown>]>): Array<{ region: string; tool: string; path: PathKey[] }> {
  const out: Array<{ region: string; tool: string; path: PathKey[] }> = [];
  for (const [region, spec] of regions) {
    (Array.isArray(spec.tools) ? spec.tools : []).forEach((tool, i) => {
      if (typeof tool === 'string') out.push({ region, tool, path: ['regions', region, 'tools', i] });
    });
    if (spec.type === 'ToolRegion' && typeof spec.tool === 'string') out.push({ region, tool: spec.tool, path: ['regions', region, 'tool'] });
  }
  return out;
}

/** The `tools:` rules of `regions verify` (unknown, unused and self tools, terminal tools, region tools). */
function toolRules(
  data: Record<string, unknown>,
  regions: Array<[string, Record<string, unknown>]>,
  report: (rule: RuleId, path: PathKey[], message: string, region?: string) => void,
): void {
  const tools = new Map(entries(data.tools));
  const refs = toolRefs(regions);
  for (const { region, tool, path } of refs) {
    if (!tools.has(tool) && !interpolated(tool)) report('unknown-tool', path, `${region} uses tool ${tool}, which tools: does not define`);
    const target = tools.get(tool)?.region;
    if (target === region) report('self-tool', path, `${region} can call itself: its tool ${tool} asks ${region}, which is busy with the step that calls it`);
  }
  for (const [name, spec] of regions) {
    const offered = Array.isArray(spec.tools) ? namesOf(spec.tools) : [];
    if ('tool_loop' in spec && !(Array.isArray(spec.tools) && spec.tools.length > 0)) {
      report('tool-loop-without-tools', ['regions', name, 'tool_loop'], `${name} has a tool_loop but no tools: the loop never runs`);
    }
    // An MCP server's tool names are known only once it runs.
    if (offered.some((t) => 'mcp' in (tools.get(t) ?? {}))) continue;
    const terminal = isRecord(spec.tool_loop) && Array.isArray(spec.tool_loop.terminal_tools) ? spec.tool_loop.terminal_tools : [];
    terminal.forEach((tool, i) => {
      if (typeof tool === 'string' && !offered.includes(tool)) {
        report('terminal-tool-not-offered', ['regions', name, 'tool_loop', 'terminal_tools', i], `${name}: terminal tool ${tool} is not one of its tools (${offered.join(', ') || 'none'})`);
      }
    });
  }
  const types = new Map(regions.map(([name, r]) => [name, r.type]));
  const used = new Set(refs.map((r) => r.tool));
  for (const [name, spec] of tools) {
    const type = typeof spec.region === 'string' ? types.get(spec.region) : undefined;
    const methods = typeof type === 'string' ? methodsOf(type) : [];
    if (methods.length && !methods.includes('make_replies')) {
      report('region-tool-cannot-answer', ['tools', name, 'region'], `tool ${name} asks ${String(spec.region)}, but a ${String(type)} does not answer requests (it has no make_replies)`);
    }
    if (!used.has(name)) report('unused-tool', ['tools', name], `tool ${name} is not used by any region`);
    // Parameters are checked as the run checks them: JSON Schema 2020-12 (whatever `$schema`
    // says), and of an object, since a call's arguments are a JSON object.
    if (!isRecord(spec.parameters)) continue;
    const { $schema: _, ...parameters } = spec.parameters;
    const problem = jsonSchemaProblem(parameters);
    if (problem) report('invalid-schema', ['tools', name, 'parameters'], `the parameters of tool ${name} are ${problem}`);
    else if ((spec.parameters.type ?? 'object') !== 'object') {
      report('invalid-schema', ['tools', name, 'parameters', 'type'], `the parameters of tool ${name} must be the schema of an object (type: object), not type: ${JSON.stringify(spec.parameters.type)}`);
    }
  }
}

/** Every cross-reference problem of a (possibly schema-invalid) workflow mapping. */
export function ruleProblems(data: Record<string, unknown>): Problem[] {
  const problems: Problem[] = [];
  const report = (rule: RuleId, path: PathKey[], message: string, region = regionOfPath(path)) =>
    problems.push({ rule, severity: RULE_SEVERITY[rule], message, path, region });

  if (data.version !== undefined && !SUPPORTED_VERSIONS.includes(data.version as number)) {
    report('unsupported-version', ['version'], `version ${JSON.stringify(data.version)} is not supported (only 1)`);
  }

  walkStrings(data, [], (text, path) => {
    if (malformed(text)) report('bad-interpolation', path, `malformed \`\${...}\` in ${path.join('.')}: use \${NAME} or \${NAME:-default}`);
  });

  const regions = entries(data.regions);
  const regionNames = new Set(regions.map(([name]) => name));
  const llmsDeclared = isRecord(data.llms);
  const llmNames = new Set(llmsDeclared ? Object.keys(data.llms as object) : ['default']);
  const embeddersDeclared = isRecord(data.embedders);
  const embedderNames = new Set(embeddersDeclared ? Object.keys(data.embedders as object) : ['default']);
  const rags = entries(data.rags);
  const ragNames = new Set(rags.map(([name]) => name));
  const isRegion = (name: unknown) => typeof name === 'string' && (regionNames.has(name) || interpolated(name));

  // Regions: connections, taps, llm, rag.
  const incoming = new Set<string>();
  for (const [name, region] of regions) {
    for (const target of namesOf(region.connections)) {
      incoming.add(target);
      if (target === name) report('self-connection', ['regions', name, 'connections'], `${name} is connected to itself`);
      else if (!isRegion(target)) report('unknown-region', ['regions', name, 'connections', target], `${name} connects to ${target}, which is not a region`);
    }
    namesOf(region.taps).forEach((tap, i) => {
      if (!isRegion(tap)) report('unknown-region', ['regions', name, 'taps', i], `${name} taps ${tap}, which is not a region`);
    });
    const type = region.type;
    if (typeof type === 'string' && LLM_REGION_TYPES.has(type)) {
      if (region.llm === undefined) {
        if (!llmNames.has('default')) report('missing-default-llm', ['regions', name], `${name} names no llm and llms: has no \`default\``);
      } else if (typeof region.llm === 'string' && !interpolated(region.llm) && !llmNames.has(region.llm)) {
        report('unknown-llm', ['regions', name, 'llm'], `${name} uses llm ${region.llm}, which llms: does not define`);
      }
    }
    for (const [template, text] of Object.entries(isRecord(region.prompts) ? region.prompts : {})) {
      if (typeof text !== 'string' || interpolated(text)) continue; // filled in at run time
      for (const problem of templateProblems(template, text)) report('bad-prompt-template', ['regions', name, 'prompts', template], `${name}, prompts.${template}: ${problem}`);
    }
    if (type === 'RAGRegion' && typeof region.rag === 'string' && !interpolated(region.rag) && !ragNames.has(region.rag)) {
      report('unknown-rag', ['regions', name, 'rag'], `${name} uses store ${region.rag}, which rags: does not define`);
    }
  }
  const tools = entries(data.tools);
  for (const [name, tool] of tools) {
    if (typeof tool.rag === 'string' && !interpolated(tool.rag) && !ragNames.has(tool.rag)) {
      report('unknown-rag', ['tools', name, 'rag'], `tool ${name} uses store ${tool.rag}, which rags: does not define`);
    }
    if (typeof tool.region === 'string' && !isRegion(tool.region)) {
      report('unknown-region', ['tools', name, 'region'], `tool ${name} asks ${tool.region}, which is not a region`);
    }
  }

  // Stores: embedder and chunking.
  for (const [name, rag] of rags) {
    if (rag.embedder === undefined) {
      if (!embedderNames.has('default')) report('missing-default-embedder', ['rags', name], `store ${name} names no embedder and embedders: has no \`default\``);
    } else if (typeof rag.embedder === 'string' && !interpolated(rag.embedder) && !embedderNames.has(rag.embedder)) {
      report('unknown-embedder', ['rags', name, 'embedder'], `store ${name} uses embedder ${rag.embedder}, which embedders: does not define`);
    }
    const chunk = typeof rag.chunk_size === 'number' ? rag.chunk_size : 512;
    const overlap = typeof rag.overlap === 'number' ? rag.overlap : 50;
    if (overlap >= chunk) report('overlap-too-large', ['rags', name, 'overlap'], `store ${name}: overlap ${overlap} must be smaller than chunk_size ${chunk}`);
  }

  // Plans (the workflow's, or each state's): structure, labels, steps. Labels name layers
  // across the whole workflow (a machine's states' layers run as one list): a layer without a
  // label is layer-<index in the workflow>, a wait wait-<region>.
  const labels = new Map<string, { explicit: boolean; where: PathKey[]; name: string }>();
  let position = 0;
  for (const plan of plans(data)) {
    if (plan.items.length === 0) report('empty-plan', plan.path, plan.state === undefined ? 'the plan has no layers' : `state ${plan.state} has no layers`);
    plan.items.forEach((layer, li) => {
      const index = position++;
      if (!isRecord(layer)) return;
      const explicit = typeof layer.layer === 'string';
      const isWait = 'wait' in layer;
      const label = explicit ? (layer.layer as string) : isWait ? `wait-${String(isRecord(layer.wait) ? layer.wait.for : undefined)}` : `layer-${index}`;
      const first = labels.get(label);
      if (first === undefined) labels.set(label, { explicit, where: [...plan.path, li], name: layerName(plan, li) });
      else if (explicit || first.explicit || isWait) {
        const at = explicit ? [...plan.path, li, 'layer'] : first.explicit ? [...first.where, 'layer'] : [...plan.path, li, 'wait'];
        report('duplicate-layer-label', at, `layer label ${label} is used by ${first.name} and ${layerName(plan, li)}`);
      }
      const chains = isRecord(layer.chains) ? layer.chains : undefined;
      if (chains && Object.keys(chains).length === 0) report('empty-layer', [...plan.path, li, 'chains'], `${layerName(plan, li)} has no chains`);
      for (const [chain, list] of Object.entries(chains ?? {})) {
        if (Array.isArray(list) && list.length === 0) report('empty-chain', [...plan.path, li, 'chains', chain], `chain ${chain} of ${layerName(plan, li)} has no steps`);
      }
    });
  }
  const regionTypes = new Map(regions.map(([name, r]) => [name, r.type]));
  const chainOf = new Map<string, string>();
  const twoChains = new Set<string>();
  const used = new Set<string>();
  for (const step of steps(data)) {
    used.add(step.region);
    if (!regionNames.has(step.region)) {
      report('unknown-region', step.path, `step ${step.region}.${step.method}: ${step.region} is not a region`);
      continue;
    }
    const type = regionTypes.get(step.region);
    if (typeof type === 'string' && methodsOf(type).length && !methodsOf(type).includes(step.method)) {
      report('unknown-method', step.path, `${step.region} is a ${type}, which has no method ${step.method} (it has ${methodsOf(type).join(', ')})`, step.region);
    }
    const key = `${step.layer}/${step.region}`;
    const first = chainOf.get(key);
    if (first === undefined) chainOf.set(key, step.chain);
    else if (first !== step.chain && !twoChains.has(key)) {
      twoChains.add(key);
      report('region-in-two-chains', step.path, `${step.region} is in chains ${first} and ${step.chain} of ${step.layerName}; chains run concurrently`, step.region);
    }
  }

  // Inject and delivery.
  const injected = new Set<string>(); // regions something is sent to from outside
  if (Array.isArray(data.inject)) {
    data.inject.forEach((item, i) => {
      if (!isRecord(item) || item.to === undefined) return;
      injected.add(String(item.to));
      if (!isRegion(item.to)) report('unknown-region', ['inject', i, 'to'], `inject ${i + 1} is sent to ${String(item.to)}, which is not a region`);
    });
  }
  if (isRecord(data.delivery)) {
    const { undeliverable, reroute_to: rerouteTo } = data.delivery;
    if (undeliverable === 'reroute' && !rerouteTo) {
      report('missing-reroute-target', ['delivery'], '`undeliverable: reroute` needs `reroute_to`');
    }
    if (typeof rerouteTo === 'string') injected.add(rerouteTo);
    if (rerouteTo !== undefined && rerouteTo !== null && !isRegion(rerouteTo)) {
      report('unknown-region', ['delivery', 'reroute_to'], `reroute_to ${String(rerouteTo)} is not a region`);
    }
  }

  // A machine: waits (a person's message goes to the region), conditions and routes name regions.
  for (const plan of plans(data)) {
    plan.items.forEach((layer, li) => {
      const wait = isRecord(layer) && isRecord(layer.wait) ? layer.wait : undefined;
      if (wait === undefined || wait.for === undefined) return;
      injected.add(String(wait.for));
      if (!isRegion(wait.for)) report('unknown-region', [...plan.path, li, 'wait', 'for'], `${layerName(plan, li)} waits for a message to ${String(wait.for)}, which is not a region`);
    });
  }
  for (const [condition, path] of conditions(data)) {
    if (typeof condition.region === 'string' && !isRegion(condition.region)) {
      report('unknown-region', [...path, 'region'], `a condition tests ${condition.region}, which is not a region`);
    }
  }
  for (const [name, region] of regions) {
    if (region.type !== 'RouterRegion') continue;
    (Array.isArray(region.routes) ? region.routes : []).forEach((route, ri) => {
      if (isRecord(route) && route.to !== undefined && !isRegion(route.to)) report('unknown-region', ['regions', name, 'routes', ri, 'to'], `${name} routes to ${String(route.to)}, which is not a region`);
    });
    if (region.default !== undefined && !isRegion(region.default)) report('unknown-region', ['regions', name, 'default'], `${name}'s default route ${String(region.default)} is not a region`);
  }

  machineRuleProblems(data, report);
  crossChainMessages(steps(data), regions, report);
  endpointSafety(data, report);
  toolRules(data, regions, report);

  // Warnings: regions the plan never uses (a region asked as a tool is used); replies nobody can ask for.
  for (const [, tool] of tools) if ('region' in tool) used.add(String(tool.region));
  for (const [name, region] of regions) {
    // A listener taps traffic passively; it needs no step.
    if (!used.has(name) && region.type !== 'ListenerRegion') report('unused-region', ['regions', name], `${name} is in no plan step`);
  }
  const warnedReplies = new Set<string>();
  for (const step of steps(data)) {
    if (step.method !== 'make_replies' || !regionNames.has(step.region) || warnedReplies.has(step.region)) continue;
    if (!incoming.has(step.region) && !injected.has(step.region)) {
      warnedReplies.add(step.region);
      report('unreachable-replies', step.path, `${step.region}.make_replies: no region connects to ${step.region} and nothing is injected to it`, step.region);
    }
  }
  return problems;
}
