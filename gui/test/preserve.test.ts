import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { mergeFormatting } from '../src/model/preserve';
import { WorkflowDoc } from '../src/model/workflowDoc';

const FOLDED = `version: 1
name: demo
description: >-
  A description folded by hand over
  two lines.

regions:
  A:
    type: Region
    task: >-
      A long task that the author folded
      at their own width.
    connections: [B]    # spaced comment
  B:
    type: Region
    task: Short.
plan:
- layer: one
  chains:
    main: [A.make_questions]
- chains:
    main: [B.make_replies]
`;

describe('formatting of untouched parts', () => {
  it('keeps folded text and comment spacing of blocks an edit did not reach', () => {
    const doc = WorkflowDoc.parse(FOLDED);
    doc.addConnection('B', 'A');
    const text = doc.toString();
    expect(text).toContain('description: >-\n  A description folded by hand over\n  two lines.\n');
    expect(text).toContain('    task: >-\n      A long task that the author folded\n      at their own width.\n    connections: [B]    # spaced comment\n');
    expect(text).toContain('  B:\n    type: Region\n    task: Short.\n    connections: [A]\n');
    expect(parse(text)).toEqual(doc.toData());
  });

  it("keeps list items written at their key's indentation", () => {
    const doc = WorkflowDoc.parse(FOLDED);
    doc.planOf().addStep(1, 'main', 'A.make_replies');
    const text = doc.toString();
    expect(text).toContain('plan:\n- layer: one\n  chains:\n    main: [A.make_questions]\n');
    expect(text).toContain('main: [B.make_replies, A.make_replies]');
    expect(text.slice(0, text.indexOf('plan:'))).toBe(FOLDED.slice(0, FOLDED.indexOf('plan:')));
    expect(parse(text)).toEqual(doc.toData());
  });

  it('re-renders only the block that changed inside a block scalar owner', () => {
    const source = 'regions:\n  A:\n    type: Region\n    task: |\n      line one\n\n      key: not a key\n    connections:   [B]\n';
    const doc = WorkflowDoc.parse(source);
    doc.setRegionField('A', 'type', 'FeedForwardRegion');
    const text = doc.toString();
    expect(text).toContain('    task: |\n      line one\n\n      key: not a key\n    connections:   [B]\n');
    expect(parse(text)).toEqual(doc.toData());
  });

  it('gives up (null) when the texts do not line up', () => {
    expect(mergeFormatting('a: 1\n', 'b: 1\n', 'b: 2\n')).toBeNull();
    expect(mergeFormatting('same: 1\n', 'same: 1\n', 'same: 1\n')).toBe('same: 1\n');
  });

  const examples = new URL('../../workflows/', import.meta.url);
  const files = readdirSync(examples).filter((f) => f.endsWith('.yaml'));
  for (const file of files) {
    it(`round-trips ${file} byte for byte and keeps untouched blocks after edits`, () => {
      const source = readFileSync(new URL(file, examples), 'utf8');
      expect(WorkflowDoc.parse(source).toString()).toBe(source);
      const doc = WorkflowDoc.parse(source);
      const first = doc.regionNames()[0];
      doc.addRegion('Region', { x: 1, y: 2 }, 'Added');
      doc.addConnection(first, 'Added');
      // The first plan with a layer of chains: the workflow's, or a machine's first state's.
      const plan = doc.allPlans().find((p) => p.layers()[0]?.chains.length)!;
      plan.addStep(0, plan.layers()[0].chains[0].name, 'Added.make_replies');
      const text = doc.toString();
      expect(parse(text)).toEqual(doc.toData());
      // Everything above `regions:` is untouched by these edits: the same bytes.
      expect(text.slice(0, text.indexOf('\nregions:'))).toBe(source.slice(0, source.indexOf('\nregions:')));
      for (const line of source.split('\n').filter((l) => l.trimStart().startsWith('#'))) expect(text).toContain(line);
    });
  }
});
