import { describe, expect, it } from 'vitest';
import { WorkflowDoc } from '../src/model/workflowDoc';

const SOURCE = `# yaml-language-server: $schema=../schemas/workflow.schema.json
version: 1
name: lookup  # the run's name
description: Ask a historian.

rags:
  facts:
    path: facts.db
    documents:
      - {file: data/facts.txt, actors: [Facts]}

regions:
  # The one who asks and answers.
  Historian:
    type: Region
    task: Answer questions about history.
    connections: [Facts]   # who it may ask
  Facts:
    type: RAGRegion
    task: Provide facts.
    rag: facts
    connections: {Historian: "the asker"}
  Trace:
    type: ListenerRegion
    taps: [Historian, Facts]

inject:
  - {from: user, to: Historian, role: request, content: "Who led the Zebras?"}

delivery:
  undeliverable: reroute
  reroute_to: Historian

plan:
  - layer: ask   # first
    chains:
      main: [Historian.make_questions, Facts.make_replies]
      side:
        - {step: Historian.make_replies, timeout: 60}
  - chains:
      only: [Facts.clear_replies]

layout:
  Historian: {x: 10, y: 20}
  Facts: {x: 300, y: 20}
`;

describe('WorkflowDoc round trip', () => {
  it('saves an untouched document with every comment and key in place', () => {
    expect(WorkflowDoc.parse(SOURCE).toString()).toBe(SOURCE);
  });

  it('keeps comments and key order of untouched parts after edits', () => {
    const doc = WorkflowDoc.parse(SOURCE);
    doc.addRegion('Region', { x: 5, y: 6 }, 'Critic');
    doc.addConnection('Historian', 'Critic');
    doc.planOf().addStep(0, 'main', 'Critic.make_replies');
    doc.setPosition('Historian', { x: 11.4, y: 22.6 });
    const text = doc.toString();
    for (const comment of ['# The one who asks and answers.', "# the run's name", '# who it may ask', '# first']) {
      expect(text).toContain(comment);
    }
    const keys = text.split('\n').filter((l) => /^[a-z]+:/.test(l)).map((l) => l.split(':')[0]);
    expect(keys).toEqual(['version', 'name', 'description', 'rags', 'regions', 'inject', 'delivery', 'plan', 'layout']);
    // The edited line keeps the spacing before its comment.
    expect(text).toContain('connections: [Facts, Critic]   # who it may ask');
    expect(text).toContain('main: [Historian.make_questions, Facts.make_replies, Critic.make_replies]');
    expect(text).toContain('Historian: {x: 11, y: 23}');
    expect(text).toContain('Critic: {x: 5, y: 6}');
    const data = WorkflowDoc.parse(text).toData() as any;
    expect(data.regions.Critic).toEqual({ type: 'Region', task: 'Describe what this region does.' });
  });

  it('creates a layout block at the end when there is none', () => {
    const doc = WorkflowDoc.parse('version: 1\nname: x\nregions:\n  A: {type: Region, task: t}\nplan: []\n');
    doc.setPosition('A', { x: 1, y: 2 });
    expect(doc.toString().trimEnd().split('\n').slice(-2)).toEqual(['layout:', '  A: {x: 1, y: 2}']);
  });

  it('reports syntax errors without throwing, and gives the text back untouched', () => {
    const broken = 'regions: [a\n# a comment\n';
    const doc = WorkflowDoc.parse(broken);
    expect(doc.errors.length).toBeGreaterThan(0);
    expect(doc.toString()).toBe(broken);
  });

  it('opens a self-containing alias without hanging, shows no data and gives the text back', () => {
    const looped = 'version: 1\nregions: &all\n  A: {type: Region, task: t, loop: *all}\n';
    const doc = WorkflowDoc.parse(looped);
    expect(doc.loadProblems().map((p) => [p.rule, p.path])).toEqual([['recursive-alias', ['regions', 'A', 'loop']]]);
    expect(doc.errors).toEqual(['alias *all refers to a node that contains it']);
    expect(doc.toData()).toEqual({});
    expect(doc.toString()).toBe(looped);
  });

  it('names a key that is not a string where it is', () => {
    const doc = WorkflowDoc.parse('version: 1\nregions:\n  A: {type: Region, task: t, connections: {7: x}}\n');
    expect(doc.loadProblems()).toEqual([{ rule: 'non-string-key', message: 'key 7 is not a string (quote it)', path: ['regions', 'A', 'connections'] }]);
  });
});

describe('WorkflowDoc rename', () => {
  it('follows every reference', () => {
    const doc = WorkflowDoc.parse(SOURCE);
    doc.renameRegion('Historian', 'Scholar');
    const text = doc.toString();
    expect(text).not.toMatch(/Historian/);
    const data = doc.toData() as any;
    expect(Object.keys(data.regions)).toEqual(['Scholar', 'Facts', 'Trace']);
    expect(data.regions.Facts.connections).toEqual({ Scholar: 'the asker' });
    expect(data.regions.Trace.taps).toEqual(['Scholar', 'Facts']);
    expect(data.plan[0].chains.main).toEqual(['Scholar.make_questions', 'Facts.make_replies']);
    expect(data.plan[0].chains.side).toEqual([{ step: 'Scholar.make_replies', timeout: 60 }]);
    expect(data.inject[0].to).toBe('Scholar');
    expect(data.delivery.reroute_to).toBe('Scholar');
    expect(data.layout.Scholar).toEqual({ x: 10, y: 20 });
    expect(text).toContain('  # The one who asks and answers.\n  Scholar:');
  });

  it('renames RAG document actors', () => {
    const doc = WorkflowDoc.parse(SOURCE);
    doc.renameRegion('Facts', 'Library');
    const data = doc.toData() as any;
    expect(data.rags.facts.documents[0].actors).toEqual(['Library']);
    expect(data.regions.Historian.connections).toEqual(['Library']);
  });

  it('refuses bad and duplicate names', () => {
    const doc = WorkflowDoc.parse(SOURCE);
    expect(() => doc.renameRegion('Historian', 'Facts')).toThrow(/already exists/);
    expect(() => doc.renameRegion('Historian', '1bad name')).toThrow(/not a valid/);
    expect(() => doc.renameRegion('Nobody', 'X')).toThrow(/no region/);
  });
});

describe('WorkflowDoc edits', () => {
  it('deletes a region with its connections, taps, steps and layout', () => {
    const doc = WorkflowDoc.parse(SOURCE);
    doc.deleteRegion('Facts');
    const data = doc.toData() as any;
    expect(Object.keys(data.regions)).toEqual(['Historian', 'Trace']);
    expect(data.regions.Historian.connections).toEqual([]);
    expect(data.regions.Trace.taps).toEqual(['Historian']);
    expect(data.plan[0].chains.main).toEqual(['Historian.make_questions']);
    expect(data.plan[1].chains).toEqual({});
    expect(Object.keys(data.layout)).toEqual(['Historian']);
  });

  it('adds and deletes connections in list and mapping form', () => {
    const doc = WorkflowDoc.parse(SOURCE);
    doc.addConnection('Facts', 'Trace');
    doc.addConnection('Trace', 'Facts');
    doc.addConnection('Historian', 'Facts'); // already there: no duplicate
    expect(doc.connections()).toEqual([
      ['Historian', 'Facts'],
      ['Facts', 'Historian'],
      ['Facts', 'Trace'],
      ['Trace', 'Facts'],
    ]);
    expect((doc.toData() as any).regions.Facts.connections.Trace).toBe('');
    doc.deleteConnection('Facts', 'Historian');
    doc.deleteConnection('Historian', 'Facts');
    expect(doc.connections()).toEqual([['Facts', 'Trace'], ['Trace', 'Facts']]);
  });

  it('edits what a described connection is for', () => {
    const doc = WorkflowDoc.parse(SOURCE);
    expect(doc.connectionDescriptions('Historian')).toBeUndefined();
    expect(doc.connectionDescriptions('Facts')).toEqual({ Historian: 'the asker' });
    doc.setConnectionDescription('Facts', 'Historian', 'who asks the questions');
    expect(doc.toString()).toContain('connections: {Historian: "who asks the questions"}');
    expect(() => doc.setConnectionDescription('Historian', 'Facts', 'x')).toThrow(/no described connection/);
  });

  it('edits the plan: layers, chains, steps', () => {
    const doc = WorkflowDoc.parse(SOURCE);
    doc.planOf().moveStep(0, 'main', 1, -1);
    expect(doc.planOf().layers()[0].chains[0].steps.map((s) => s.region)).toEqual(['Facts', 'Historian']);
    doc.planOf().removeStep(0, 'main', 0);
    const layer = doc.planOf().addLayer('summarize');
    doc.planOf().addStep(layer, 'main', 'Historian.summarize_replies');
    doc.planOf().addChain(layer, 'second');
    doc.planOf().addStep(layer, 'second', 'Facts.make_updates');
    expect(() => doc.planOf().addChain(layer, 'second')).toThrow(/already/);
    doc.planOf().moveLayer(layer, -1);
    doc.planOf().setLayerLabel(0, '');
    const data = doc.toData() as any;
    expect(data.plan[0]).toEqual({ chains: { main: ['Historian.make_questions'], side: [{ step: 'Historian.make_replies', timeout: 60 }] } });
    expect(data.plan[1]).toEqual({ layer: 'summarize', chains: { main: ['Historian.summarize_replies'], second: ['Facts.make_updates'] } });
    doc.planOf().deleteChain(1, 'second');
    doc.planOf().deleteLayer(2);
    expect(doc.planOf().layers().map((l) => l.label)).toEqual([undefined, 'summarize']);
  });

  it('sets fields and drops keys a new type does not have', () => {
    const doc = WorkflowDoc.parse(SOURCE);
    doc.setRegionField('Facts', 'threshold', 0.7);
    expect(doc.region('Facts')?.threshold).toBe(0.7);
    doc.setRegionField('Facts', 'type', 'Region');
    expect(doc.region('Facts')).toEqual({ type: 'Region', task: 'Provide facts.', connections: { Historian: 'the asker' } });
    doc.setRegionField('Facts', 'task', 'line one\nline two');
    expect(doc.toString()).toContain('task: |-\n      line one\n      line two');
    doc.setPrompt('Facts', 'system', 'Be brief.');
    expect(doc.region('Facts')?.prompts).toEqual({ system: 'Be brief.' });
    doc.setPrompt('Facts', 'system', '');
    expect(doc.region('Facts')?.prompts).toBeUndefined();
    doc.setRegionField('Facts', 'llm', '');
    expect('llm' in (doc.region('Facts') ?? {})).toBe(false);
  });

  it('adds regions with fresh names and the fields their type needs', () => {
    const doc = WorkflowDoc.parse(SOURCE);
    expect(doc.addRegion('RAGRegion')).toBe('RAG_1');
    expect(doc.region('RAG_1')).toEqual({ type: 'RAGRegion', task: 'Describe what this region does.', rag: 'facts' });
    expect(doc.addRegion('ListenerRegion')).toBe('Listener_1');
    expect(doc.region('Listener_1')).toEqual({ type: 'ListenerRegion' });
    expect(doc.addRegion('Region')).toBe('Region_1');
    expect(() => doc.addRegion('Region', undefined, 'Facts')).toThrow(/already exists/);
  });

  it('maps a path to its line', () => {
    const doc = WorkflowDoc.parse(SOURCE);
    expect(doc.lineOf(['regions', 'Facts', 'rag'])).toBe(SOURCE.split('\n').indexOf('    rag: facts') + 1);
  });
});
