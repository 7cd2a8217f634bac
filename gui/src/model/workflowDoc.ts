/**
 * The workflow file as an editable YAML document.
 *
 * Every edit goes through the `yaml` package's document model, so the comments, key order and
 * flow/block style of the parts an edit does not touch survive a load/save round trip. The
 * functions here mutate the document in place; callers re-render from `toData()`.
 */
import {
  Document,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  Scalar,
  visit,
  YAMLMap,
  YAMLSeq,
  type Node as YamlNode,
  type Pair,
} from 'yaml';
import { TASK_REQUIRED, TYPE_ONLY_KEYS } from './methods';
import { mergeFormatting } from './preserve';

/**
 * How far aliases may expand before the document counts as an alias bomb (billion laughs).
 * `yaml` counts alias expansions, the Python loader nodes, so the two limits are alike, not equal.
 */
const MAX_ALIAS_COUNT = 10_000;

/** What `regions verify`'s loader refuses beyond YAML syntax (same rule ids). */
export interface LoadProblem {
  rule: 'non-string-key' | 'recursive-alias' | 'alias-bomb';
  message: string;
  path: PathKey[];
}

/** Options used for every save: no line folding, `[a, b]` rather than `[ a, b ]`. */
export const STRINGIFY_OPTIONS = { lineWidth: 0, flowCollectionPadding: false } as const;

export const REGION_NAME = /^[A-Za-z_][A-Za-z0-9_-]*$/;

export interface Position {
  x: number;
  y: number;
}

/** A plan step as written: `Region.method`, or `{step: Region.method, ...policy}`. */
export interface StepRef {
  region: string;
  method: string;
  /** True when the step is written as a mapping with a policy (timeout, retries...). */
  hasPolicy: boolean;
}

export type PathKey = string | number;

export class WorkflowDoc {
  readonly doc: Document;
  readonly lineCounter: LineCounter;
  /** The text as loaded, and the `yaml` package's rendering of it (see preserve.ts). */
  private readonly original: string;
  private readonly rendered: string;

  private constructor(doc: Document, lineCounter: LineCounter, original: string) {
    this.doc = doc;
    this.lineCounter = lineCounter;
    this.original = original;
    this.rendered = doc.errors.length ? original : doc.toString(STRINGIFY_OPTIONS);
  }

  /** Parse `text`. Syntax errors are kept in `errors` (the document may be partial). */
  static parse(text: string): WorkflowDoc {
    const lineCounter = new LineCounter();
    const doc = parseDocument(text, { lineCounter, keepSourceTokens: false, uniqueKeys: true });
    return new WorkflowDoc(doc, lineCounter, text);
  }

  /** Why the document cannot be edited: YAML syntax errors, then what the loader refuses. */
  get errors(): string[] {
    if (this.doc.errors.length) return this.doc.errors.map((e) => e.message.split('\n')[0]);
    return this.loadProblems().map((p) => p.message);
  }

  /**
   * Keys that are not strings and aliases that cannot be expanded: YAML allows them, a workflow
   * does not. The editor then works on no data, as `regions verify` does.
   */
  loadProblems(): LoadProblem[] {
    if (this.doc.errors.length) return [];
    const out: LoadProblem[] = [];
    const doc = this.doc;
    visit(doc, {
      Pair(_key, pair, ancestors) {
        // Keys an edit created are plain strings; loaded ones are scalar nodes.
        const key = pair.key;
        if (typeof key === 'string' || (isScalar(key) && typeof key.value === 'string')) return;
        const shown = isScalar(key) ? String(key.value) : 'a collection';
        out.push({ rule: 'non-string-key', message: `key ${shown} is not a string (quote it)`, path: pathOf(ancestors) });
      },
      Alias(_key, alias, ancestors) {
        const target = alias.resolve(doc);
        if (target !== undefined && ancestors.includes(target)) {
          out.push({ rule: 'recursive-alias', message: `alias *${alias.source} refers to a node that contains it`, path: pathOf(ancestors) });
        }
      },
    });
    if (out.some((p) => p.rule === 'recursive-alias')) return out;
    try {
      doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch {
      out.push({ rule: 'alias-bomb', message: 'aliases expand past the safety limit (billion laughs); refusing to expand them', path: [] });
    }
    return out;
  }

  /**
   * The document as text: the original text where no edit reached, the new rendering where
   * one did. A document with syntax errors is returned as loaded (edits are refused then).
   */
  toString(): string {
    if (this.errors.length) return this.original;
    const after = this.doc.toString(STRINGIFY_OPTIONS);
    const merged = mergeFormatting(this.original, this.rendered, after);
    if (merged === null || merged === after) return after;
    // Only ever hand back a merge that means exactly what the edited document means.
    const check = parseDocument(merged, { uniqueKeys: true });
    const same = check.errors.length === 0 && JSON.stringify(check.toJS()) === JSON.stringify(this.doc.toJS());
    return same ? merged : after;
  }

  /** The document as plain data (what the validator and the views read). */
  toData(): Record<string, unknown> {
    // A recursive or exploding alias has no finite data to show.
    if (this.loadProblems().some((p) => p.rule !== 'non-string-key')) return {};
    const data = this.doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) as unknown;
    return isRecord(data) ? data : {};
  }

  /** 1-based line of the node at `path` in the text last parsed (undefined if unknown). */
  lineOf(path: readonly PathKey[]): number | undefined {
    for (let n = path.length; n >= 0; n--) {
      const node = this.doc.getIn(path.slice(0, n), true) as YamlNode | undefined;
      if (node && typeof node === 'object' && 'range' in node && node.range) {
        return this.lineCounter.linePos(node.range[0]).line;
      }
    }
    return undefined;
  }

  // ---- regions ---------------------------------------------------------------------------

  regionNames(): string[] {
    const regions = this.doc.get('regions');
    return isMap(regions) ? regions.items.map((p) => keyOf(p)) : [];
  }

  region(name: string): Record<string, unknown> | undefined {
    const value = this.toData().regions;
    if (!isRecord(value)) return undefined;
    const region = value[name];
    return isRecord(region) ? region : undefined;
  }

  /** A name like `Region_3` that no region uses yet. */
  freshName(prefix: string): string {
    const taken = new Set(this.regionNames());
    for (let i = 1; ; i++) {
      const name = `${prefix}_${i}`;
      if (!taken.has(name)) return name;
    }
  }

  /** Add a region of `type` with the fields it needs; returns its name. */
  addRegion(type: string, position?: Position, name?: string): string {
    const prefix = type === 'RAGRegion' ? 'RAG' : type.replace(/Region$/, '') || 'Region';
    const regionName = name ?? this.freshName(prefix);
    if (this.regionNames().includes(regionName)) throw new Error(`region ${regionName} already exists`);
    const body: Record<string, unknown> = { type };
    if (TASK_REQUIRED.has(type)) body.task = 'Describe what this region does.';
    if (type === 'RAGRegion') {
      const rags = this.doc.get('rags');
      if (isMap(rags) && rags.items.length > 0) body.rag = keyOf(rags.items[0]);
    }
    if (!isMap(this.doc.get('regions'))) this.doc.set('regions', this.doc.createNode({}));
    (this.doc.get('regions') as YAMLMap).add(this.doc.createPair(regionName, body));
    if (position) this.setPosition(regionName, position);
    return regionName;
  }

  /**
   * Set (or, with `undefined` / empty string, remove) one field of a region. Changing `type`
   * drops the keys that do not apply to the new type.
   */
  setRegionField(name: string, key: string, value: unknown): void {
    const region = this.doc.getIn(['regions', name]);
    if (!isMap(region)) throw new Error(`no region ${name}`);
    if (value === undefined || value === '' || (Array.isArray(value) && value.length === 0 && key === 'taps')) {
      region.delete(key);
    } else {
      setKeepingStyle(this.doc, region, key, value);
    }
    if (key === 'type' && typeof value === 'string') {
      for (const [field, types] of Object.entries(TYPE_ONLY_KEYS)) {
        if (!types.has(value)) region.delete(field);
      }
      if (TASK_REQUIRED.has(value) && !region.has('task')) {
        region.set('task', 'Describe what this region does.');
      }
    }
  }

  /** Set or remove one prompt template override (`prompts:`); an empty prompts map is removed. */
  setPrompt(name: string, prompt: string, text: string | undefined): void {
    const region = this.doc.getIn(['regions', name]);
    if (!isMap(region)) throw new Error(`no region ${name}`);
    if (text === undefined || text === '') {
      const prompts = region.get('prompts');
      if (isMap(prompts)) {
        prompts.delete(prompt);
        if (prompts.items.length === 0) region.delete('prompts');
      }
      return;
    }
    if (!isMap(region.get('prompts'))) region.set('prompts', this.doc.createNode({}));
    setKeepingStyle(this.doc, region.get('prompts') as YAMLMap, prompt, text);
  }

  /**
   * Rename a region; every reference follows: connections, listener taps, plan steps (of
   * every state), waits, conditions, routes, inject `to`/`from`, `delivery.reroute_to`, RAG
   * document actors and the layout entry.
   */
  renameRegion(oldName: string, newName: string): void {
    if (oldName === newName) return;
    if (!REGION_NAME.test(newName)) throw new Error(`"${newName}" is not a valid region name`);
    const names = this.regionNames();
    if (!names.includes(oldName)) throw new Error(`no region ${oldName}`);
    if (names.includes(newName)) throw new Error(`region ${newName} already exists`);

    renameKey(this.doc.get('regions'), oldName, newName);
    for (const region of mapValues(this.doc.get('regions'))) {
      if (!isMap(region)) continue;
      renameNameList(region.get('connections', true), oldName, newName);
      renameNameList(region.get('taps', true), oldName, newName);
    }
    this.forEachStepScalar((scalar) => {
      const ref = parseStep(String(scalar.value));
      if (ref && ref.region === oldName) scalar.value = `${newName}.${ref.method}`;
    });
    const inject = this.doc.get('inject');
    if (isSeq(inject)) {
      for (const item of inject.items) {
        if (!isMap(item)) continue;
        for (const key of ['to', 'from']) renameScalarAt(item, key, oldName, newName);
      }
    }
    const delivery = this.doc.get('delivery');
    if (isMap(delivery)) renameScalarAt(delivery, 'reroute_to', oldName, newName);
    for (const rag of mapValues(this.doc.get('rags'))) {
      if (!isMap(rag)) continue;
      const documents = rag.get('documents');
      if (!isSeq(documents)) continue;
      for (const document of documents.items) {
        if (isMap(document)) renameNameList(document.get('actors', true), oldName, newName);
      }
    }
    renameKey(this.doc.get('layout'), oldName, newName);
    this.forEachConditionMap((condition) => renameScalarAt(condition, 'region', oldName, newName));
    for (const plan of this.allPlans()) plan.forEachWait((wait) => renameScalarAt(wait, 'for', oldName, newName));
    for (const region of mapValues(this.doc.get('regions'))) {
      if (!isMap(region)) continue;
      renameScalarAt(region, 'default', oldName, newName);
      const routes = region.get('routes');
      if (isSeq(routes)) for (const route of routes.items) if (isMap(route)) renameScalarAt(route, 'to', oldName, newName);
    }
  }

  /**
   * Delete a region with its connections, taps, plan steps (emptied chains go too) and layout
   * entry. Injections, `delivery.reroute_to`, waits, conditions and routes that name it are
   * kept so the problems list shows them rather than silently dropping what the user wrote.
   */
  deleteRegion(name: string): void {
    const regions = this.doc.get('regions');
    if (!isMap(regions) || !regions.has(name)) throw new Error(`no region ${name}`);
    regions.delete(name);
    for (const region of mapValues(regions)) {
      if (!isMap(region)) continue;
      removeFromNameList(region, 'connections', name);
      removeFromNameList(region, 'taps', name);
    }
    this.forEachChain((chains, chainKey, steps) => {
      steps.items = steps.items.filter((item) => stepRefOf(item)?.region !== name);
      if (steps.items.length === 0) chains.delete(chainKey);
    });
    const layout = this.doc.get('layout');
    if (isMap(layout)) {
      layout.delete(name);
      if (layout.items.length === 0) this.doc.delete('layout');
    }
  }

  // ---- connections -----------------------------------------------------------------------

  /** Directed connections `[source, target]` in document order. */
  connections(): Array<[string, string]> {
    const out: Array<[string, string]> = [];
    const regions = this.doc.get('regions');
    if (!isMap(regions)) return out;
    for (const pair of regions.items) {
      const region = pair.value;
      if (!isMap(region)) continue;
      for (const target of nameListOf(region.get('connections', true))) out.push([keyOf(pair), target]);
    }
    return out;
  }

  /**
   * Connect `source` to `target`. A list of names gets the name; a mapping gets the name with
   * the target's task as its description (as the original editor does).
   */
  addConnection(source: string, target: string): void {
    const region = this.doc.getIn(['regions', source]);
    if (!isMap(region)) throw new Error(`no region ${source}`);
    const current = region.get('connections', true);
    if (nameListOf(current).includes(target)) return;
    if (isMap(current)) {
      const task = this.region(target)?.task;
      current.add(this.doc.createPair(target, typeof task === 'string' ? task : ''));
    } else if (isSeq(current)) {
      current.add(this.doc.createNode(target));
    } else {
      const seq = this.doc.createNode([target]) as YAMLSeq;
      seq.flow = true;
      region.set('connections', seq);
    }
  }

  /** The descriptions of `source`'s connections when written as a mapping (else undefined). */
  connectionDescriptions(source: string): Record<string, string> | undefined {
    const raw = this.region(source)?.connections;
    if (!isRecord(raw)) return undefined;
    return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, v === null || v === undefined ? '' : String(v)]));
  }

  /** Set what a mapping-style connection is for (shown to the LLM). */
  setConnectionDescription(source: string, target: string, text: string): void {
    const connections = this.doc.getIn(['regions', source, 'connections']);
    if (!isMap(connections) || !connections.has(target)) throw new Error(`${source} has no described connection to ${target}`);
    setKeepingStyle(this.doc, connections, target, text);
  }

  deleteConnection(source: string, target: string): void {
    const region = this.doc.getIn(['regions', source]);
    if (isMap(region)) removeFromNameList(region, 'connections', target);
  }

  // ---- plans -----------------------------------------------------------------------------

  /** The plan of `state` (a state's name), or the top-level `plan:` when `state` is undefined. */
  planOf(state?: string): PlanEdit {
    return new PlanEdit(this.doc, state === undefined ? ['plan'] : ['states', state, 'plan']);
  }

  /** Every plan of the document: the top-level one and each state's. */
  allPlans(): PlanEdit[] {
    return [this.planOf(), ...this.stateNames().map((name) => this.planOf(name))];
  }

  // ---- states (a `states:` machine) -------------------------------------------------------

  /** True when the workflow is a machine of `states:` rather than one `plan:`. */
  isMachine(): boolean {
    return this.doc.has('states');
  }

  stateNames(): string[] {
    const states = this.doc.get('states');
    return isMap(states) ? states.items.map((p) => keyOf(p)) : [];
  }

  /** The states as the views show them, in declaration order. */
  states(): StateInfo[] {
    const states = this.toData().states;
    if (!isRecord(states)) return [];
    return Object.entries(states).map(([name, raw]) => {
      const spec = isRecord(raw) ? raw : {};
      const next = Array.isArray(spec.next) ? spec.next : [];
      return {
        name,
        maxVisits: typeof spec.max_visits === 'number' ? spec.max_visits : undefined,
        onExhausted: typeof spec.on_exhausted === 'string' ? spec.on_exhausted : undefined,
        next: next.map((t) => (isRecord(t) ? { to: String(t.to ?? ''), when: t.when ?? undefined } : { to: '' })),
      };
    });
  }

  /** The state the machine starts in: `start:`, else the first state. */
  startState(): string | undefined {
    const start = this.doc.get('start');
    return typeof start === 'string' && start ? start : this.stateNames()[0];
  }

  /** Turn a plain `plan:` into a machine of one state `name` holding that plan. */
  useStates(name = 'main'): void {
    if (this.isMachine()) throw new Error('the workflow already has states');
    checkStateName(name);
    const plan = this.doc.get('plan', true) ?? this.doc.createNode([]);
    const state = new YAMLMap();
    state.set('plan', plan);
    const states = new YAMLMap();
    states.set(name, state);
    this.doc.set('states', states);
    this.doc.delete('plan');
  }

  /** Add a state with one empty layer; returns its name. */
  addState(name?: string): string {
    const taken = new Set(this.stateNames());
    let stateName = name;
    for (let i = 1; stateName === undefined; i++) if (!taken.has(`state_${i}`)) stateName = `state_${i}`;
    checkStateName(stateName);
    if (taken.has(stateName)) throw new Error(`state ${stateName} already exists`);
    if (!isMap(this.doc.get('states'))) this.doc.set('states', new YAMLMap());
    (this.doc.get('states') as YAMLMap).set(stateName, new YAMLMap());
    this.planOf(stateName).addLayer();
    return stateName;
  }

  /** Rename a state; `start:`, every transition's `to` and every `on_exhausted` follow. */
  renameState(oldName: string, newName: string): void {
    if (oldName === newName) return;
    checkStateName(newName);
    const names = this.stateNames();
    if (!names.includes(oldName)) throw new Error(`no state ${oldName}`);
    if (names.includes(newName)) throw new Error(`state ${newName} already exists`);
    renameKey(this.doc.get('states'), oldName, newName);
    renameScalarAt(this.doc.contents as YAMLMap, 'start', oldName, newName);
    for (const state of mapValues(this.doc.get('states'))) {
      if (!isMap(state)) continue;
      renameScalarAt(state, 'on_exhausted', oldName, newName);
      const next = state.get('next');
      if (isSeq(next)) for (const t of next.items) if (isMap(t)) renameScalarAt(t, 'to', oldName, newName);
    }
  }

  /**
   * Delete a state. Transitions to it go too, an `on_exhausted` naming it falls back to the
   * default (fail) and a `start:` naming it is removed (the first state starts then).
   */
  deleteState(name: string): void {
    const states = this.doc.get('states');
    if (!isMap(states) || !states.has(name)) throw new Error(`no state ${name}`);
    states.delete(name);
    const start = this.doc.get('start');
    if (start === name) this.doc.delete('start');
    for (const state of mapValues(states)) {
      if (!isMap(state)) continue;
      if (state.get('on_exhausted') === name) state.delete('on_exhausted');
      const next = state.get('next');
      if (!isSeq(next)) continue;
      next.items = next.items.filter((t) => !(isMap(t) && t.get('to') === name));
      if (next.items.length === 0) state.delete('next');
    }
  }

  /** Set (or with `undefined` / '' remove) `max_visits` or `on_exhausted` of a state. */
  setStateField(name: string, key: 'max_visits' | 'on_exhausted', value: string | number | undefined): void {
    const state = this.stateMap(name);
    if (value === undefined || value === '' || (typeof value === 'number' && Number.isNaN(value))) {
      state.delete(key);
    } else if (state.has(key)) {
      setKeepingStyle(this.doc, state, key, value);
    } else {
      // A new key goes where the format writes it: max_visits, on_exhausted, plan, next.
      const later = STATE_KEYS.slice(STATE_KEYS.indexOf(key) + 1);
      const at = state.items.findIndex((pair) => later.includes(keyOf(pair)));
      const pair = this.doc.createPair(key, value);
      if (at < 0) state.items.push(pair);
      else state.items.splice(at, 0, pair);
    }
  }

  /** Make `name` the start state (`start:` is left out when it is the first state anyway). */
  setStart(name: string): void {
    if (!this.stateNames().includes(name)) throw new Error(`no state ${name}`);
    if (this.doc.has('start') || this.stateNames()[0] !== name) setKeepingStyle(this.doc, this.doc.contents as YAMLMap, 'start', name);
  }

  /** Append a transition (no `when`: always) to a state's `next:`; returns its index. */
  addTransition(state: string, to: string, when?: unknown): number {
    const map = this.stateMap(state);
    if (!isSeq(map.get('next'))) map.set('next', new YAMLSeq());
    const next = map.get('next') as YAMLSeq;
    const item = new YAMLMap();
    if (when !== undefined) item.set('when', flowNode(this.doc, when));
    item.set('to', to);
    next.add(item);
    return next.items.length - 1;
  }

  setTransitionTarget(state: string, index: number, to: string): void {
    setKeepingStyle(this.doc, this.transitionMap(state, index), 'to', to);
  }

  /** Set a transition's condition (`undefined`: always), leaving the rest of the file as it is. */
  setCondition(state: string, index: number, when: unknown): void {
    const transition = this.transitionMap(state, index);
    if (when === undefined) {
      transition.delete('when');
      return;
    }
    const node = flowNode(this.doc, when);
    const current = transition.get('when', true);
    if (isMap(current)) {
      // Keep the comments written on the condition.
      node.commentBefore = current.commentBefore;
      node.comment = current.comment;
      transition.set('when', node);
    } else if (transition.has('when')) {
      transition.set('when', node); // `when:` written empty or as a scalar
    } else {
      // `when` reads best before `to`.
      transition.items.unshift(this.doc.createPair('when', node));
    }
  }

  deleteTransition(state: string, index: number): void {
    const map = this.stateMap(state);
    const next = map.get('next');
    if (!isSeq(next)) return;
    next.items.splice(index, 1);
    if (next.items.length === 0) map.delete('next');
  }

  moveTransition(state: string, index: number, delta: number): void {
    const next = this.stateMap(state).get('next');
    if (isSeq(next)) moveItem(next.items, index, delta);
  }

  // ---- a RouterRegion's routes ------------------------------------------------------------

  /** Append a route `{when: {says: REGEX}, to: REGION}` to a router. */
  addRoute(region: string, says: string, to: string): void {
    const map = this.doc.getIn(['regions', region]);
    if (!isMap(map)) throw new Error(`no region ${region}`);
    if (!isSeq(map.get('routes'))) map.set('routes', new YAMLSeq());
    const route = this.doc.createNode({ when: { says }, to }) as YAMLMap;
    route.flow = true;
    (map.get('routes') as YAMLSeq).add(route);
  }

  /** Change one route's pattern or target, keeping the rest of the list as written. */
  setRoute(region: string, index: number, change: { says?: string; to?: string }): void {
    const route = this.doc.getIn(['regions', region, 'routes', index]);
    if (!isMap(route)) throw new Error(`${region} has no route ${index + 1}`);
    if (change.to !== undefined) setKeepingStyle(this.doc, route, 'to', change.to);
    if (change.says !== undefined) {
      if (!isMap(route.get('when'))) route.set('when', flowNode(this.doc, {}));
      setKeepingStyle(this.doc, route.get('when') as YAMLMap, 'says', change.says);
    }
  }

  deleteRoute(region: string, index: number): void {
    const map = this.doc.getIn(['regions', region]);
    if (!isMap(map)) return;
    const routes = map.get('routes');
    if (!isSeq(routes)) return;
    routes.items.splice(index, 1);
    if (routes.items.length === 0) map.delete('routes');
  }

  // ---- layout ----------------------------------------------------------------------------

  positions(): Record<string, Position> {
    const layout = this.toData().layout;
    const out: Record<string, Position> = {};
    if (!isRecord(layout)) return out;
    for (const [name, pos] of Object.entries(layout)) {
      if (isRecord(pos) && typeof pos.x === 'number' && typeof pos.y === 'number') {
        out[name] = { x: pos.x, y: pos.y };
      }
    }
    return out;
  }

  /** Store a node position in `layout:` (created at the end of the file when absent). */
  setPosition(name: string, position: Position): void {
    if (!isMap(this.doc.get('layout'))) this.doc.set('layout', new YAMLMap());
    const layout = this.doc.get('layout') as YAMLMap;
    const entry = this.doc.createNode({ x: Math.round(position.x), y: Math.round(position.y) }) as YAMLMap;
    entry.flow = true;
    layout.set(name, entry);
  }

  // ---- internals -------------------------------------------------------------------------

  private stateMap(name: string): YAMLMap {
    const state = this.doc.getIn(['states', name]);
    if (!isMap(state)) throw new Error(`no state ${name}`);
    return state;
  }

  private transitionMap(state: string, index: number): YAMLMap {
    const transition = this.doc.getIn(['states', state, 'next', index]);
    if (!isMap(transition)) throw new Error(`state ${state} has no transition ${index + 1}`);
    return transition;
  }

  /** Every condition node (`when:` of transitions, nested ones included) and wait item. */
  private forEachConditionMap(visit: (condition: YAMLMap) => void): void {
    const walk = (node: unknown): void => {
      if (!isMap(node)) return;
      visit(node);
      for (const key of ['all', 'any']) {
        const list = node.get(key);
        if (isSeq(list)) list.items.forEach(walk);
      }
      walk(node.get('not'));
    };
    for (const state of mapValues(this.doc.get('states'))) {
      if (!isMap(state)) continue;
      const next = state.get('next');
      if (isSeq(next)) for (const t of next.items) if (isMap(t)) walk(t.get('when'));
    }
  }

  private forEachChain(visit: (chains: YAMLMap, chainKey: unknown, steps: YAMLSeq) => void): void {
    for (const plan of this.allPlans()) plan.forEachChain(visit);
  }

  /** Visit the scalar holding `Region.method` of every step, in either written form. */
  private forEachStepScalar(visit: (scalar: Scalar) => void): void {
    this.forEachChain((_chains, _key, steps) => {
      for (const item of steps.items) {
        if (isScalar(item)) visit(item);
        else if (isMap(item)) {
          const step = item.get('step', true);
          if (isScalar(step)) visit(step);
        }
      }
    });
  }
}

/** A plan layer as the plan editor shows it: chains of steps, or a wait for a person. */
export interface PlanLayer {
  label: string | undefined;
  chains: Array<{ name: string; steps: StepRef[] }>;
  /** Set for a `- wait: {for: REGION, prompt: TEXT}` item (which has no chains). */
  wait?: { region: string; prompt: string };
}

/** A state of a machine, as the views show it (its plan: `WorkflowDoc.planOf(name)`). */
export interface StateInfo {
  name: string;
  maxVisits: number | undefined;
  onExhausted: string | undefined;
  /** The `next:` entries in order; `when` undefined: always. */
  next: Array<{ to: string; when?: unknown }>;
}

/** The transition target that finishes the run (not a state name). */
export const END = 'end';

/** The keys of a state, in the order the format writes them. */
const STATE_KEYS = ['max_visits', 'on_exhausted', 'plan', 'next'];

/**
 * One plan of the document (the top-level `plan:` or a state's), edited in place: layers as
 * rows, chains as lanes, steps as `Region.method` items, and `wait:` items.
 */
export class PlanEdit {
  constructor(
    private readonly doc: Document,
    /** Where the plan's list is: `['plan']` or `['states', NAME, 'plan']`. */
    readonly path: readonly PathKey[],
  ) {}

  layers(): PlanLayer[] {
    const plan = this.doc.getIn(this.path);
    if (!isSeq(plan)) return [];
    return plan.items.map((layer) => {
      if (!isMap(layer)) return { label: undefined, chains: [] };
      const label = layer.get('layer');
      const chains = layer.get('chains');
      const wait = layer.get('wait');
      return {
        label: label === undefined || label === null ? undefined : String(label),
        chains: isMap(chains)
          ? chains.items.map((pair) => ({
              name: keyOf(pair),
              steps: isSeq(pair.value)
                ? pair.value.items.map((s) => stepRefOf(s) ?? { region: '?', method: '?', hasPolicy: false })
                : [],
            }))
          : [],
        ...(isMap(wait) ? { wait: { region: String(wait.get('for') ?? ''), prompt: String(wait.get('prompt') ?? '') } } : {}),
      };
    });
  }

  addLayer(label?: string): number {
    const chains = this.doc.createNode({ main: [] }) as YAMLMap;
    (chains.get('main') as YAMLSeq).flow = true;
    const layer = new YAMLMap();
    if (label) layer.set('layer', label);
    layer.set('chains', chains);
    return this.append(layer);
  }

  /** Append `- wait: {for: REGION, prompt: TEXT}`; returns its index. */
  addWait(region: string, prompt: string): number {
    const layer = new YAMLMap();
    layer.set('wait', flowNode(this.doc, { for: region, prompt }));
    return this.append(layer);
  }

  /** Change what a wait item waits for, or its prompt. */
  setWait(index: number, change: { region?: string; prompt?: string }): void {
    const wait = this.layerMap(index).get('wait');
    if (!isMap(wait)) throw new Error(`layer ${index + 1} is not a wait`);
    if (change.region !== undefined) setKeepingStyle(this.doc, wait, 'for', change.region);
    if (change.prompt !== undefined) {
      if (change.prompt) setKeepingStyle(this.doc, wait, 'prompt', change.prompt);
      else wait.delete('prompt');
    }
  }

  deleteLayer(index: number): void {
    const plan = this.doc.getIn(this.path);
    if (isSeq(plan)) plan.items.splice(index, 1);
  }

  moveLayer(index: number, delta: number): void {
    const plan = this.doc.getIn(this.path);
    if (isSeq(plan)) moveItem(plan.items, index, delta);
  }

  setLayerLabel(index: number, label: string): void {
    const layer = this.layerMap(index);
    if (label) setKeepingStyle(this.doc, layer, 'layer', label);
    else layer.delete('layer');
  }

  addChain(layerIndex: number, name: string): void {
    const layer = this.layerMap(layerIndex);
    if (!isMap(layer.get('chains'))) layer.set('chains', new YAMLMap());
    const chains = layer.get('chains') as YAMLMap;
    if (chains.has(name)) throw new Error(`layer already has a chain ${name}`);
    const seq = new YAMLSeq();
    seq.flow = true;
    chains.set(name, seq);
  }

  deleteChain(layerIndex: number, name: string): void {
    const chains = this.layerMap(layerIndex).get('chains');
    if (isMap(chains)) chains.delete(name);
  }

  /** Append `Region.method` to a chain (or insert it at `at`). */
  addStep(layerIndex: number, chain: string, step: string, at?: number): void {
    const steps = this.chainSeq(layerIndex, chain);
    const node = this.doc.createNode(step);
    if (at === undefined) steps.items.push(node);
    else steps.items.splice(at, 0, node);
  }

  removeStep(layerIndex: number, chain: string, index: number): void {
    this.chainSeq(layerIndex, chain).items.splice(index, 1);
  }

  moveStep(layerIndex: number, chain: string, index: number, delta: number): void {
    moveItem(this.chainSeq(layerIndex, chain).items, index, delta);
  }

  forEachChain(visit: (chains: YAMLMap, chainKey: unknown, steps: YAMLSeq) => void): void {
    const plan = this.doc.getIn(this.path);
    if (!isSeq(plan)) return;
    for (const layer of plan.items) {
      if (!isMap(layer)) continue;
      const chains = layer.get('chains');
      if (!isMap(chains)) continue;
      for (const pair of [...chains.items]) {
        if (isSeq(pair.value)) visit(chains, pair.key, pair.value);
      }
    }
  }

  /** Visit the `{for, prompt}` mapping of every wait item. */
  forEachWait(visit: (wait: YAMLMap) => void): void {
    const plan = this.doc.getIn(this.path);
    if (!isSeq(plan)) return;
    for (const layer of plan.items) {
      const wait = isMap(layer) ? layer.get('wait') : undefined;
      if (isMap(wait)) visit(wait);
    }
  }

  private append(layer: YAMLMap): number {
    if (!isSeq(this.doc.getIn(this.path))) this.doc.setIn(this.path, new YAMLSeq());
    const plan = this.doc.getIn(this.path) as YAMLSeq;
    plan.add(layer);
    return plan.items.length - 1;
  }

  private layerMap(index: number): YAMLMap {
    const layer = this.doc.getIn([...this.path, index]);
    if (!isMap(layer)) throw new Error(`no plan layer ${index + 1}`);
    return layer;
  }

  private chainSeq(layerIndex: number, chain: string): YAMLSeq {
    const steps = this.doc.getIn([...this.path, layerIndex, 'chains', chain]);
    if (!isSeq(steps)) throw new Error(`no chain ${chain} in layer ${layerIndex + 1}`);
    return steps;
  }
}

// ---- helpers on yaml nodes ---------------------------------------------------------------

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function parseStep(text: string): { region: string; method: string } | undefined {
  const dot = text.indexOf('.');
  if (dot <= 0) return undefined;
  return { region: text.slice(0, dot), method: text.slice(dot + 1) };
}

function stepRefOf(item: unknown): StepRef | undefined {
  if (isScalar(item)) {
    const ref = parseStep(String(item.value));
    return ref && { ...ref, hasPolicy: false };
  }
  if (isMap(item)) {
    const ref = parseStep(String(item.get('step') ?? ''));
    return ref && { ...ref, hasPolicy: true };
  }
  return undefined;
}

function keyOf(pair: Pair): string {
  return String(isScalar(pair.key) ? pair.key.value : pair.key);
}

function mapValues(node: unknown): unknown[] {
  return isMap(node) ? node.items.map((p) => p.value) : [];
}

/** Names in a `connections`/`taps`/`actors` value: a list of names or a mapping keyed by name. */
function nameListOf(node: unknown): string[] {
  if (isSeq(node)) return node.items.map((i) => String(isScalar(i) ? i.value : i));
  if (isMap(node)) return node.items.map((p) => keyOf(p));
  return [];
}

function renameKey(node: unknown, oldName: string, newName: string): void {
  if (!isMap(node)) return;
  for (const pair of node.items) {
    if (keyOf(pair) !== oldName) continue;
    if (isScalar(pair.key)) pair.key.value = newName;
    else pair.key = new Scalar(newName);
  }
}

function renameNameList(node: unknown, oldName: string, newName: string): void {
  if (isMap(node)) renameKey(node, oldName, newName);
  else if (isSeq(node)) {
    node.items.forEach((item, i) => {
      if (isScalar(item) && item.value === oldName) item.value = newName;
      else if (item === oldName) node.items[i] = new Scalar(newName);
    });
  }
}

function renameScalarAt(map: YAMLMap, key: string, oldName: string, newName: string): void {
  const value = map.get(key, true);
  if (isScalar(value) && value.value === oldName) value.value = newName;
}

function removeFromNameList(region: YAMLMap, key: string, name: string): void {
  const node = region.get(key, true);
  if (isMap(node)) node.delete(name);
  else if (isSeq(node)) node.items = node.items.filter((i) => (isScalar(i) ? i.value : i) !== name);
}

/** Set a scalar value, keeping the existing node (its comment and quoting) when there is one. */
function setKeepingStyle(doc: Document, map: YAMLMap, key: string, value: unknown): void {
  const current = map.get(key, true);
  const isPlain = value === null || ['string', 'number', 'boolean'].includes(typeof value);
  if (isScalar(current) && isPlain) {
    current.value = value;
    // A multi-line text in a plain or quoted scalar reads better as a block literal.
    if (typeof value === 'string' && value.includes('\n')) current.type = Scalar.BLOCK_LITERAL;
    return;
  }
  const node = doc.createNode(value);
  if (isScalar(node) && typeof value === 'string' && value.includes('\n')) node.type = Scalar.BLOCK_LITERAL;
  if ((isSeq(node) || isMap(node)) && (isSeq(current) || isMap(current))) node.flow = current.flow;
  else if (isSeq(node)) node.flow = true;
  map.set(key, node);
}

/** A state name must be a plain name and not `end` (the transition target that ends the run). */
function checkStateName(name: string): void {
  if (!REGION_NAME.test(name)) throw new Error(`"${name}" is not a valid state name`);
  if (name === END) throw new Error('`end` finishes the run; it cannot name a state');
}

/** A mapping or list written in flow style (`{region: Critic, says: APPROVED}`). */
function flowNode(doc: Document, value: unknown): YAMLMap {
  const node = doc.createNode(value);
  if (isMap(node) || isSeq(node)) node.flow = true;
  return node as YAMLMap;
}

function moveItem<T>(items: T[], index: number, delta: number): void {
  const to = index + delta;
  if (index < 0 || index >= items.length || to < 0 || to >= items.length) return;
  const [item] = items.splice(index, 1);
  items.splice(to, 0, item);
}

/** A small valid workflow for "New". */
export const NEW_WORKFLOW = `# yaml-language-server: $schema=../schemas/workflow.schema.json
version: 1
name: untitled
description: A new workflow made in the flow editor.

llms:
  default:
    backend: scripted   # deterministic, no model; switch to local or openai to use a real LLM

regions:
  Assistant:
    type: Region
    task: Answer the user's questions.

inject:
  - {from: user, to: Assistant, role: request, content: "Hello!"}

plan:
  - layer: answer
    chains:
      main: [Assistant.make_replies]
`;

/** The template with the `$schema` comment pointing where the server says the schema is. */
export function newWorkflow(schemaRef?: string): string {
  return schemaRef ? NEW_WORKFLOW.replace('../schemas/workflow.schema.json', schemaRef) : NEW_WORKFLOW;
}

/** The keys leading to a node, from `visit`'s ancestors (pairs give keys, sequences indexes). */
function pathOf(ancestors: readonly unknown[]): PathKey[] {
  const path: PathKey[] = [];
  ancestors.forEach((node, i) => {
    const child = ancestors[i + 1];
    if (isPair(node)) path.push(isScalar(node.key) ? String(node.key.value) : String(node.key));
    else if (isSeq(node) && child !== undefined) path.push(node.items.indexOf(child as never));
  });
  return path;
}

