import { describe, expect, it } from 'vitest';
import { conditionOf, describeCondition, formOf } from '../src/model/conditions';
import { WorkflowDoc } from '../src/model/workflowDoc';
import { ruleProblems } from '../src/validate/rules';

const MACHINE = `# A writer and a critic, bounded.
version: 1
name: review  # the loop
llms:
  default: {backend: scripted}
regions:
  Writer:
    type: Region
    task: Write.
    connections: [Critic]
  Critic:
    type: Region
    task: Critique.   # strict
    output_schema: {type: object, properties: {verdict: {enum: [yes, no]}}}
  Desk:
    type: RouterRegion
    connections: [Writer, Critic]
    routes:
      - {when: {says: "draft"}, to: Writer}   # drafts go to the writer
    default: Critic
inject:
  - {from: user, to: Writer, role: request, content: "A poem."}

states:
  # First the draft.
  draft:
    plan:
      - layer: write
        chains: {w: [Writer.make_replies]}
    next:
      - to: review   # always
  review:
    max_visits: 4  # bounded
    on_exhausted: fail
    plan:
      - chains: {c: [Critic.make_replies]}
      - wait: {for: Writer, prompt: "Go on?"}   # ask the person
    next:
      # Approved: done.
      - when: {region: Critic, says: "APPROVED"}   # the critic's word
        to: end
      - to: draft   # otherwise write again
start: draft   # explicit
`;

/** The lines of `after` that are not in `before` and the other way round (a line diff). */
function changedLines(before: string, after: string): { removed: string[]; added: string[] } {
  const a = before.split('\n');
  const b = after.split('\n');
  return { removed: a.filter((line) => !b.includes(line)), added: b.filter((line) => !a.includes(line)) };
}

describe('a states: machine in the editor', () => {
  it('saves an untouched machine byte for byte', () => {
    expect(WorkflowDoc.parse(MACHINE).toString()).toBe(MACHINE);
  });

  it('reads states, transitions, waits and the start state', () => {
    const doc = WorkflowDoc.parse(MACHINE);
    expect(doc.isMachine()).toBe(true);
    expect(doc.stateNames()).toEqual(['draft', 'review']);
    expect(doc.startState()).toBe('draft');
    const review = doc.states()[1];
    expect(review).toEqual({
      name: 'review',
      maxVisits: 4,
      onExhausted: 'fail',
      next: [{ to: 'end', when: { region: 'Critic', says: 'APPROVED' } }, { to: 'draft', when: undefined }],
    });
    const layers = doc.planOf('review').layers();
    expect(layers[0].chains).toEqual([{ name: 'c', steps: [{ region: 'Critic', method: 'make_replies', hasPolicy: false }] }]);
    expect(layers[1]).toEqual({ label: undefined, chains: [], wait: { region: 'Writer', prompt: 'Go on?' } });
    expect(WorkflowDoc.parse('version: 1\nplan: []\n').isMachine()).toBe(false);
  });

  it('edits one transition condition and changes nothing else, comments included', () => {
    const doc = WorkflowDoc.parse(MACHINE);
    doc.setCondition('review', 0, { region: 'Critic', field: 'verdict', equals: 'yes' });
    const out = doc.toString();
    expect(changedLines(MACHINE, out)).toEqual({
      removed: ['      - when: {region: Critic, says: "APPROVED"}   # the critic\'s word'],
      added: ['      - when: {region: Critic, field: verdict, equals: yes}   # the critic\'s word'],
    });
    expect(out.split('\n').length).toBe(MACHINE.split('\n').length);
  });

  it('retargets, adds, moves and deletes transitions keeping the comments', () => {
    const doc = WorkflowDoc.parse(MACHINE);
    doc.setTransitionTarget('review', 1, 'review');
    expect(changedLines(MACHINE, doc.toString())).toEqual({
      removed: ['      - to: draft   # otherwise write again'],
      added: ['      - to: review   # otherwise write again'],
    });
    const added = doc.addTransition('draft', 'end', { output: 'done' });
    expect(added).toBe(1);
    doc.moveTransition('draft', 1, -1);
    expect(doc.states()[0].next).toEqual([{ to: 'end', when: { output: 'done' } }, { to: 'review', when: undefined }]);
    doc.setCondition('draft', 1, { region: 'Writer', says: 'x' });
    doc.setCondition('draft', 0, undefined);
    doc.deleteTransition('draft', 0);
    const out = doc.toString();
    expect(out).toContain('      - when: {region: Writer, says: x}\n        to: review   # always\n');
    for (const comment of ['# First the draft.', '# bounded', '# Approved: done.', "# the critic's word", '# ask the person', '# explicit']) {
      expect(out).toContain(comment);
    }
  });

  it('sets a condition where `when:` was written empty', () => {
    const doc = WorkflowDoc.parse(MACHINE.replace('      - to: review   # always', '      - when:\n        to: review   # always'));
    doc.setCondition('draft', 0, { output: 'x' });
    expect(doc.states()[0].next).toEqual([{ to: 'review', when: { output: 'x' } }]);
    expect(doc.errors).toEqual([]);
    expect(WorkflowDoc.parse(doc.toString()).errors).toEqual([]);
  });

  it('adds, renames and deletes states; references follow', () => {
    const doc = WorkflowDoc.parse(MACHINE);
    expect(doc.addState()).toBe('state_1');
    expect(() => doc.addState('review')).toThrow(/already exists/);
    expect(() => doc.addState('end')).toThrow(/finishes the run/);
    doc.setStateField('review', 'on_exhausted', 'draft');
    doc.renameState('draft', 'write');
    expect(doc.startState()).toBe('write');
    expect(doc.states()[1]).toMatchObject({ onExhausted: 'write', next: [{ to: 'end' }, { to: 'write' }] });
    doc.setStateField('review', 'max_visits', 2);
    doc.setStart('review');
    expect(doc.startState()).toBe('review');
    doc.deleteState('write');
    expect(doc.stateNames()).toEqual(['review', 'state_1']);
    expect(doc.states()[0]).toMatchObject({ maxVisits: 2, onExhausted: undefined, next: [{ to: 'end' }] });
    expect(doc.toString()).toContain('    max_visits: 2  # bounded\n');
    doc.planOf('state_1').addStep(0, 'main', 'Writer.make_replies');
    expect(doc.planOf('state_1').layers()[0].chains[0].steps[0].region).toBe('Writer');
  });

  it('renaming a region renames it in steps of every state, conditions, waits and routes', () => {
    const doc = WorkflowDoc.parse(MACHINE);
    doc.renameRegion('Critic', 'Judge');
    doc.renameRegion('Writer', 'Poet');
    const out = doc.toString();
    expect(out).toContain('      - chains: {c: [Judge.make_replies]}\n');
    expect(out).toContain('      - when: {region: Judge, says: "APPROVED"}   # the critic\'s word\n');
    expect(out).toContain('      - wait: {for: Poet, prompt: "Go on?"}   # ask the person\n');
    expect(out).toContain('      - {when: {says: "draft"}, to: Poet}   # drafts go to the writer\n');
    expect(out).toContain('    default: Judge\n');
    expect(out).not.toMatch(/Critic\.|Writer\./);
  });

  it('edits waits, routes and a region schema', () => {
    const doc = WorkflowDoc.parse(MACHINE);
    doc.planOf('review').setWait(1, { prompt: 'Shall I go on?' });
    doc.setRoute('Desk', 0, { says: 'drafts?' });
    doc.addRoute('Desk', 'review', 'Critic');
    doc.setRegionField('Critic', 'output_schema', { type: 'object', required: ['verdict'] });
    const out = doc.toString();
    expect(out).toContain('      - wait: {for: Writer, prompt: "Shall I go on?"}   # ask the person\n');
    expect(out).toContain('      - {when: {says: "drafts?"}, to: Writer}   # drafts go to the writer\n');
    expect(doc.region('Desk')?.routes).toEqual([
      { when: { says: 'drafts?' }, to: 'Writer' },
      { when: { says: 'review' }, to: 'Critic' },
    ]);
    expect(doc.region('Critic')?.output_schema).toEqual({ type: 'object', required: ['verdict'] });
    expect(out).toContain('    task: Critique.   # strict\n');
    // A schema written in flow style stays in flow style.
    expect(out).toContain('    output_schema: {type: object, required: [verdict]}\n');
    doc.deleteRoute('Desk', 0);
    doc.deleteRoute('Desk', 0);
    expect(doc.region('Desk')?.routes).toBeUndefined();
    const waitAt = doc.planOf('draft').addWait('Critic', 'Well?');
    expect(doc.planOf('draft').layers()[waitAt].wait).toEqual({ region: 'Critic', prompt: 'Well?' });
  });

  it('turns a plain plan into a machine of one state', () => {
    const doc = WorkflowDoc.parse('version: 1\nname: x\nregions: {}\nplan:\n  - chains: {main: [A.make_replies]}  # one\n');
    doc.useStates('main');
    expect(doc.isMachine()).toBe(true);
    expect(doc.toData().plan).toBeUndefined();
    expect(doc.planOf('main').layers()[0].chains[0].steps[0].region).toBe('A');
    expect(doc.toString()).toContain('# one');
    expect(() => doc.useStates()).toThrow(/already has states/);
  });
});

describe('conditions', () => {
  const cases: Array<[unknown, string]> = [
    [undefined, 'always'],
    [{ region: 'Critic', says: 'APPROVED' }, 'Critic says /APPROVED/'],
    [{ output: 'done' }, 'output ~ /done/'],
    [{ region: 'J', field: 'verdict', equals: 'yes' }, 'J.verdict = yes'],
    [{ region: 'J', field: 'scores.0', in: [1, 2] }, 'J.scores.0 in [1, 2]'],
    [{ region: 'J', field: 'why', matches: '^ok' }, 'J.why ~ /^ok/'],
    [{ all: [{ output: 'a' }, { not: { region: 'J', says: 'b' } }] }, '(output ~ /a/) and (not (J says /b/))'],
    [{ any: [{ output: 'a' }, { output: 'b' }] }, '(output ~ /a/) or (output ~ /b/)'],
  ];

  it.each(cases)('describes %j as %s and its form gives it back', (when, text) => {
    expect(describeCondition(when)).toBe(text);
    expect(conditionOf(formOf(when))).toEqual(when);
  });

  it('puts nested conditions in the YAML box and the flat ones in fields', () => {
    expect(formOf({ region: 'J', field: 'v', equals: 3 })).toMatchObject({ kind: 'field', test: 'equals', value: '3' });
    expect(formOf({ not: { output: 'x' } })).toMatchObject({ kind: 'nested', text: 'not:\n  output: x' });
  });

  it('refuses bad input with a one-line reason', () => {
    const base = formOf(undefined);
    expect(() => conditionOf({ ...base, kind: 'says', region: 'J', pattern: '(' })).toThrow(/says: not a regular expression/);
    expect(() => conditionOf({ ...base, kind: 'says', pattern: 'x' })).toThrow(/choose the region/);
    expect(() => conditionOf({ ...base, kind: 'field', region: 'J', path: 'a..b', value: '1' })).toThrow(/dotted path/);
    expect(() => conditionOf({ ...base, kind: 'field', region: 'J', path: 'a', test: 'in', value: 'yes' })).toThrow(/give a list/);
    expect(() => conditionOf({ ...base, kind: 'field', region: 'J', path: 'a', value: '{a: 1}' })).toThrow(/one value/);
    expect(() => conditionOf({ ...base, kind: 'nested', text: '[a' })).toThrow(/condition: not YAML/);
    expect(() => conditionOf({ ...base, kind: 'nested', text: '- a' })).toThrow(/a mapping/);
  });
});

describe('the cross-reference rules read every state', () => {
  const data = () => WorkflowDoc.parse(MACHINE).toData();
  const rules = (d: Record<string, unknown>) => ruleProblems(d).map((p) => `${p.rule} ${p.path.join('.')}`);

  it('finds nothing wrong in a valid machine but the router no step uses', () => {
    expect(rules(data())).toEqual(['unused-region regions.Desk']);
  });

  it('checks steps, layers, waits, conditions and routes inside states', () => {
    const text = MACHINE.replace('[Critic.make_replies]', '[Critic.make_replies, Nobody.make_replies]')
      .replace('{for: Writer,', '{for: Ghost,')
      .replace('{region: Critic, says', '{region: Judge, says')
      .replace('to: Writer}', 'to: Nowhere}')
      .replace('      - layer: write\n', '      - layer: write\n        chains: {}\n      - layer: write\n');
    const found = rules(WorkflowDoc.parse(text).toData());
    expect(found).toEqual(
      expect.arrayContaining([
        'unknown-region states.review.plan.0.chains.c.1',
        'unknown-region states.review.plan.1.wait.for',
        'unknown-region states.review.next.0.when.region',
        'unknown-region regions.Desk.routes.0.to',
        'empty-layer states.draft.plan.0.chains',
        'duplicate-layer-label states.draft.plan.1.layer',
      ]),
    );
  });

  it('reports an empty state plan and two chains of one layer of a state', () => {
    const d = data() as { states: Record<string, { plan: unknown[] }> };
    d.states.draft.plan = [];
    d.states.review.plan = [{ chains: { a: ['Critic.make_replies'], b: ['Critic.clear_replies'] } }];
    expect(rules(d)).toEqual(expect.arrayContaining(['empty-plan states.draft.plan', 'region-in-two-chains states.review.plan.0.chains.b.0']));
  });
});
