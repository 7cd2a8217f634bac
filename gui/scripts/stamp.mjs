// Writes (or, with --check, verifies) regions_cli/gui_dist/SOURCE_HASH: a sha256 over the
// editor's sources, so a test can tell when the committed build is older than gui/src.
// tests/gui/test_gui_cli.py (test_the_committed_build_matches_the_sources) computes the same
// hash in Python (keep the two in step).
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const INPUTS = ['gui/src', 'gui/index.html', 'gui/package-lock.json', 'gui/vite.config.ts', 'regions_cli/workflow/workflow.schema.json'];

function files(path) {
  const full = join(repo, path);
  if (!statSync(full).isDirectory()) return [path];
  return readdirSync(full).flatMap((name) => files(`${path}/${name}`));
}

const hash = createHash('sha256');
for (const file of INPUTS.flatMap(files).sort()) {
  hash.update(`${file}\0`);
  hash.update(readFileSync(join(repo, file)));
  hash.update('\0');
}
const digest = hash.digest('hex');
const stamp = join(repo, 'regions_cli/gui_dist/SOURCE_HASH');
if (process.argv.includes('--check')) {
  const stored = existsSync(stamp) ? readFileSync(stamp, 'utf8').trim() : '(none)';
  if (stored !== digest) {
    console.error(`regions_cli/gui_dist is stale (built from ${stored}, sources are ${digest}): run \`cd gui && npm run build\` and commit regions_cli/gui_dist with its SOURCE_HASH`);
    process.exit(1);
  }
  console.log(`gui_dist is fresh (${relative(repo, stamp)})`);
} else {
  writeFileSync(stamp, `${digest}\n`);
  console.log(`stamped ${digest}`);
}
