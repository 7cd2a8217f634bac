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
import { BASE, CASES } from './cases';

const python = process.env.REGIONS_PYTHON ?? 'python3';
const available = process.env.REGIONS_PYTHON !== undefined || spawnSync(python, ['-c', 'import regions_cli'], { stdio: 'ignore' }).status === 0;

/** Rules only the Python side can check (files on disk, the environment, the loader's limits). */
const PYTHON_ONLY = new Set(['missing-file', 'unset-variable', 'io-error', 'file-too-large', 'bad-encoding', 'internal-error']);

describe.skipIf(!available)('parity with regions verify', () => {
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
