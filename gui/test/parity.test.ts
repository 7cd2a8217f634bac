/**
 * The editor and `regions verify` agree: for the valid workflow and every broken variant of
 * it, both report the same rule ids (rules that need the disk or the environment aside).
 *
 * Needs a Python with regions installed: REGIONS_PYTHON (required when set), else python3 if
 * it can import regions_cli (skipped otherwise).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { WorkflowDoc } from '../src/model/workflowDoc';
import { validate } from '../src/validate';
import { RULE_SEVERITY } from '../src/validate/rules';
import { BASE, CASES } from './cases';

const python = process.env.REGIONS_PYTHON ?? 'python3';
const available = process.env.REGIONS_PYTHON !== undefined || spawnSync(python, ['-c', 'import regions_cli'], { stdio: 'ignore' }).status === 0;

/**
 * Rules only the Python side can check (files on disk, sub-workflows among them, the environment, the loader's limits).
 * `command-not-found` looks a command tool's program up on the machine's PATH and beside the workflow file: the
 * browser sees neither.
 */
const PYTHON_ONLY = new Set(['missing-file', 'unset-variable', 'variable-outside-secrets', 'path-outside-workflow', 'io-error', 'file-too-large', 'bad-encoding', 'internal-error', 'invalid-sub-workflow', 'recursive-workflow', 'unknown-entry', 'command-not-found']);

/** Rule ids the editor reports before the cross-reference rules (src/validate/index.ts, schema.ts). */
const LOADER_AND_SCHEMA = ['yaml-syntax', 'duplicate-key', 'not-a-mapping', 'non-string-key', 'recursive-alias', 'alias-bomb', 'unknown-key', 'key-not-for-type', 'missing-key', 'wrong-type', 'invalid-value'];

describe.skipIf(!available)('parity with regions verify', () => {
  it('knows every rule of regions verify, with the same severity', () => {
    const code = 'import json; from regions_cli.workflow.rules import RULES; print(json.dumps({k: v.severity for k, v in RULES.items()}))';
    const run = spawnSync(python, ['-c', code], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    const catalogue = JSON.parse(run.stdout) as Record<string, string>;
    // A rule added to regions_cli/workflow/rules.py fails here until the editor checks it too
    // (or it is listed in PYTHON_ONLY with the reason the browser cannot check it).
    expect(Object.keys(catalogue).sort()).toEqual([...LOADER_AND_SCHEMA, ...Object.keys(RULE_SEVERITY), ...PYTHON_ONLY].sort());
    for (const [rule, severity] of Object.entries(RULE_SEVERITY)) expect([rule, catalogue[rule]]).toEqual([rule, severity]);
    // …and the cases below break the workflow once for each of them.
    expect(new Set(CASES.map(([rule]) => rule))).toEqual(new Set([...LOADER_AND_SCHEMA, ...Object.keys(RULE_SEVERITY)]));
  });

  it('reports the same rule ids for every case', () => {
    const folder = mkdtempSync(join(tmpdir(), 'regions-parity-'));
    try {
      const examples = new URL('../../workflows/', import.meta.url);
      const variants: Array<[string, string]> = [
        ['valid', BASE],
        ...CASES.map(([rule, change]): [string, string] => [rule, change(BASE)]),
        ['unused-listener', BASE.replace('Trace.start, ', '')],
        ['escaped-interpolation', BASE.replace('task: Provide facts.', 'task: "costs $${price}"')],
        ['three-chains', `${BASE}      side: [Historian.summarize_replies, Historian.clear_replies]\n      more: [Facts.clear_replies, Historian.clear_replies]\n`],
        ['tool-unknown-rag', BASE.replace('regions:\n', 'tools:\n  search: {rag: stories}\nregions:\n').replace('    connections: [Facts]\n', '    connections: [Facts]\n    tools: [search]\n')],
        ['tool-unknown-region', BASE.replace('regions:\n', 'tools:\n  ask: {region: Nobody}\nregions:\n').replace('    connections: [Facts]\n', '    connections: [Facts]\n    tools: [ask]\n')],
        ['tool-invalid-parameters', BASE.replace('regions:\n', 'tools:\n  look: {command: [python3, look.py], parameters: {type: 5}}\n  list: {command: [python3, list.py], parameters: {type: array}}\nregions:\n').replace('    connections: [Facts]\n', '    connections: [Facts]\n    tools: [look, list]\n')],
        ['region-used-as-tool', BASE.replace('regions:\n', 'tools:\n  ask: {region: Idle}\nregions:\n').replace('    connections: [Facts]\n', '    connections: [Facts]\n    tools: [ask]\n').replace('  Trace:\n', '  Idle: {type: Region, task: Nothing.}\n  Trace:\n')],
        ['mcp-terminal-tools', BASE.replace('regions:\n', 'tools:\n  clock: {mcp: {command: [mcp-server-time]}}\nregions:\n').replace('    connections: [Facts]\n', '    connections: [Facts]\n    tools: [clock]\n    tool_loop: {terminal_tools: [get_time]}\n')],
        ['mapping-steps', BASE.replace('main: [', 'other:\n        - {step: Nobody.make_replies, timeout: 5}\n        - {step: Facts.fly}\n      main: [')],
        ...readdirSync(examples)
          .filter((f) => f.endsWith('.yaml'))
          .map((f): [string, string] => [`example-${f.replace(/\.yaml$/, '')}`, readFileSync(new URL(f, examples), 'utf8')]),
      ];
      const files = variants.map(([name, text]) => {
        const file = join(folder, `${name}.yaml`);
        writeFileSync(file, text);
        return file;
      });
      const run = spawnSync(python, ['-m', 'regions_cli', 'verify', '--format', 'json', ...files], { encoding: 'utf8' });
      expect(run.error).toBeUndefined();
      const findings = JSON.parse(run.stdout) as Array<{ file: string; rule: string }>;
      const editor: Record<string, string[]> = {};
      const cli: Record<string, string[]> = {};
      for (const [name, text] of variants) {
        const file = join(folder, `${name}.yaml`);
        const fromPython = [...new Set(findings.filter((f) => f.file === file || f.file.endsWith(`/${name}.yaml`)).map((f) => f.rule))]
          .filter((rule) => !PYTHON_ONLY.has(rule))
          .sort();
        const doc = WorkflowDoc.parse(text);
        const fromEditor = [...new Set(validate(doc.toData(), doc).map((p) => p.rule))].sort();
        editor[name] = fromEditor;
        cli[name] = fromPython;
      }
      expect(editor).toEqual(cli);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
});
