// End-to-end test of the flow editor: a real `regions gui` process, Debian's chromium driven by
// playwright-core, and `regions verify` on the saved file.
//
// 1. Every example in workflows/ opens read-only (names taken from the file, so editing an
//    example never breaks this test). 2. The editing scenario runs on gui/e2e/lookup.yaml, the
//    test's own copy of workflows/lookup.yaml, whose saved text it checks line by line. 3. A live
//    run shows the same messages as `regions run --json` and lights the edges they travel.
//
//   node e2e/run.mjs            (from gui/; needs the build in regions_cli/gui_dist)
//
// Environment: REGIONS_PYTHON (the Python with regions installed; default python3),
// CHROMIUM (default /usr/bin/chromium). Screenshots go to gui/test-results/.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { parse } from 'yaml';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const python = process.env.REGIONS_PYTHON ?? 'python3';
const results = join(repo, 'gui', 'test-results');
rmSync(results, { recursive: true, force: true }); // no screenshot of an earlier run is left to mislead
mkdirSync(results, { recursive: true });

/** Start `regions gui FILE --no-browser`; resolves with its URL once it prints it. */
function startGui(file) {
  const child = spawn(python, ['-m', 'regions_cli', 'gui', file, '--no-browser'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const url = new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', (line) => {
      const match = /(http:\/\/127\.0\.0\.1:\d+\/\?token=\S+)/.exec(line);
      if (match) resolve(match[1]);
      else reject(new Error(`unexpected first line from regions gui: ${line}`));
    });
    child.once('exit', (code) => reject(new Error(`regions gui exited with ${code}: ${stderr}`)));
  });
  return { child, url };
}

/** The events `regions run --json FILE` prints, parsed. */
function runJson(file) {
  const result = spawnSync(python, ['-m', 'regions_cli', 'run', '--json', file], { encoding: 'utf8' });
  assert.equal(result.status, 0, `regions run --json ${file}:\n${result.stderr}`);
  return result.stdout.trim().split('\n').map((line) => JSON.parse(line));
}

/** Pairs of node boxes that overlap on screen. */
function overlapping(boxes) {
  const out = [];
  boxes.forEach(([a, p], i) => {
    for (const [b, q] of boxes.slice(i + 1)) {
      if (p.x < q.x + q.width && q.x < p.x + p.width && p.y < q.y + q.height && q.y < p.y + p.height) out.push(`${a}/${b}`);
    }
  });
  return out;
}

function verify(file) {
  const result = spawnSync(python, ['-m', 'regions_cli', 'verify', file], { encoding: 'utf8' });
  return { code: result.status, output: `${result.stdout}${result.stderr}` };
}

/** The text after `#` of every comment line, whitespace-normalised. */
function comments(text) {
  return text
    .split('\n')
    .map((line) => /(?:^|\s)#(.*)$/.exec(line)?.[1]?.trim())
    .filter((c) => c !== undefined);
}

async function nodeBox(page, name) {
  const box = await page.locator(`[data-testid="rf__node-${name}"]`).boundingBox();
  assert.ok(box, `node ${name} is on the canvas`);
  return box;
}

/** A node's position in flow coordinates (React Flow's transform), independent of zoom/pan. */
async function flowPosition(page, name) {
  const transform = await page.locator(`[data-testid="rf__node-${name}"]`).evaluate((el) => el.style.transform);
  const match = /translate\((-?[\d.]+)px, *(-?[\d.]+)px\)/.exec(transform);
  assert.ok(match, `node ${name} has a position (${transform})`);
  return { x: Number(match[1]), y: Number(match[2]) };
}

async function dragConnect(page, source, target) {
  const from = await page.locator(`[data-testid="rf__node-${source}"] .react-flow__handle.source`).boundingBox();
  const to = await page.locator(`[data-testid="rf__node-${target}"] .react-flow__handle.target`).boundingBox();
  assert.ok(from && to, 'both handles are visible');
  await page.mouse.move(from.x + from.width / 2, from.y + from.height / 2);
  await page.mouse.down();
  await page.mouse.move((from.x + to.x) / 2, (from.y + to.y) / 2, { steps: 5 });
  await page.mouse.move(to.x + to.width / 2, to.y + to.height / 2, { steps: 5 });
  await page.mouse.up();
}

// The scripted workflow the Python gui tests run too (no model needed).
const SCRIPTED = readFileSync(join(repo, 'tests', 'gui', 'scripted.yaml'), 'utf8');

const work = mkdtempSync(join(tmpdir(), 'regions-gui-e2e-'));
const servers = [];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
let failed = false;
let current; // the page in use, for a screenshot when a step fails
const pageErrors = [];
try {
  // Every example in workflows/ opens as it is: a node per region (names read from the file),
  // the verdict of regions verify, all nodes in view and none on another, nothing written.
  cpSync(join(repo, 'workflows'), join(work, 'workflows'), { recursive: true });
  const typeLooks = new Map(); // region type -> "colour icon-path"
  const examples = readdirSync(join(work, 'workflows')).filter((f) => f.endsWith('.yaml')).sort();
  assert.ok(examples.length > 0, 'workflows/ has examples');
  for (const name of examples) {
    const example = join(work, 'workflows', name);
    const text = readFileSync(example, 'utf8');
    const data = parse(text);
    assert.equal(verify(example).code, 0, `${name} verifies`);
    const gui = startGui(example);
    servers.push(gui.child);
    const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    current = page;
    page.on('pageerror', (error) => pageErrors.push(`${name}: ${error.message}`));
    await page.goto(await gui.url);
    const regions = Object.keys(data.regions);
    await page.locator(`[data-testid="rf__node-${regions[0]}"]`).waitFor();
    const ids = await page.locator('.react-flow__node').evaluateAll((nodes) => nodes.map((n) => n.getAttribute('data-id')));
    assert.deepEqual(ids.sort(), [...regions].sort(), `${name}: a node per region`);
    assert.equal(await page.locator('[data-testid="problem-count"]').innerText(), '✓ valid', name);
    // Colour and icon by type: one look per type, across all the examples.
    const looks = await page.locator('.react-flow__node').evaluateAll((nodes) =>
      nodes.map((n) => {
        const head = n.querySelector('.region-node-head');
        return [n.getAttribute('data-id'), `${getComputedStyle(head).backgroundColor} ${head.querySelector('svg path')?.getAttribute('d')}`];
      }),
    );
    for (const [id, look] of looks) {
      const type = data.regions[id].type;
      assert.equal(typeLooks.get(type) ?? look, look, `${name}: ${id} looks like the other ${type}s`);
      typeLooks.set(type, look);
    }
    // The view fits the diagram once the nodes are measured: wait for every node to be inside.
    await page.waitForFunction(() => {
      const pane = document.querySelector('.react-flow').getBoundingClientRect();
      return [...document.querySelectorAll('.react-flow__node')].every((n) => {
        const r = n.getBoundingClientRect();
        return r.width > 0 && r.left >= pane.left && r.right <= pane.right && r.top >= pane.top && r.bottom <= pane.bottom;
      });
    }, undefined, { timeout: 5_000 }).catch(() => assert.fail(`${name}: some nodes are outside the view`));
    if (data.layout === undefined) {
      const boxes = await page.locator('.react-flow__node').evaluateAll((nodes) => nodes.map((n) => [n.getAttribute('data-id'), n.getBoundingClientRect().toJSON()]));
      assert.deepEqual(overlapping(boxes), [], `${name}: the automatic layout puts no node on another`);
    }
    await page.screenshot({ path: join(results, `example-${name.replace(/\.yaml$/, '')}.png`) });
    await page.close();
    gui.child.kill('SIGTERM');
    assert.equal(readFileSync(example, 'utf8'), text, `${name}: opening writes nothing`);
  }

  assert.ok(typeLooks.size >= 4, `the examples use several region types: ${[...typeLooks.keys()]}`);
  assert.equal(new Set(typeLooks.values()).size, typeLooks.size, 'each region type has its own colour and icon');

  // The editing scenario works on the test's own copy of workflows/lookup.yaml (see its header).
  const file = join(work, 'lookup.yaml');
  cpSync(join(repo, 'gui', 'e2e', 'lookup.yaml'), file);
  const original = readFileSync(file, 'utf8');
  const before = verify(file);
  assert.equal(before.code, 0, `the fixture verifies before editing:\n${before.output}`);

  const gui = startGui(file);
  servers.push(gui.child);
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  current = page;
  page.on('pageerror', (error) => pageErrors.push(error.message));
  await page.goto(await gui.url);
  await page.locator('[data-testid="rf__node-Historian"]').waitFor();
  assert.match(await page.locator('[data-testid="file-name"]').innerText(), /lookup\.yaml/);
  assert.equal(await page.locator('.react-flow__node').count(), 3);
  await page.screenshot({ path: join(results, '01-opened.png') });

  // Add a region and rename it: the node follows.
  await page.locator('[data-testid="add-type"]').selectOption('Region');
  await page.locator('[data-testid="add-region"]').click();
  await page.locator('[data-testid="rf__node-Region_1"]').waitFor();
  await page.locator('[data-testid="field-name"]').fill('Critic');
  await page.locator('[data-testid="field-name"]').press('Enter');
  await page.locator('[data-testid="rf__node-Critic"]').waitFor();
  // A name that is taken is refused in one line and the field shows the current name again.
  await page.locator('[data-testid="field-name"]').fill('Historian');
  await page.locator('[data-testid="field-name"]').press('Enter');
  await page.locator('[data-testid="status"]', { hasText: 'region Historian already exists' }).waitFor();
  assert.equal(await page.locator('[data-testid="field-name"]').inputValue(), 'Critic');
  await page.locator('[data-testid="field-task"]').fill('Check the answer for mistakes.');
  await page.locator('[data-testid="field-task"]').blur();

  // Connect it: drag Historian -> Critic on the canvas, and Critic -> Historian in the panel.
  await dragConnect(page, 'Historian', 'Critic');
  await page.locator('[data-testid="rf__edge-Historian->Critic"]').waitFor({ state: 'attached' });
  await page.locator('[data-testid="rf__node-Critic"]').click();
  await page.locator('[data-testid="connect-to"]').selectOption('Historian');
  await page.locator('[data-testid="connect-add"]').click();
  await page.locator('[data-testid="rf__edge-Critic->Historian"]').waitFor({ state: 'attached' });

  // Delete: a region with its connections, and a single connection from the side panel.
  await page.locator('[data-testid="add-type"]').selectOption('BroadcastRegion');
  await page.locator('[data-testid="add-region"]').click();
  await page.locator('[data-testid="rf__node-Broadcast_1"]').waitFor();
  await page.locator('[data-testid="connect-to"]').selectOption('Critic');
  await page.locator('[data-testid="connect-add"]').click();
  await page.locator('[data-testid="rf__edge-Broadcast_1->Critic"]').waitFor({ state: 'attached' });
  await page.locator('[data-testid="delete-region"]').click();
  await page.locator('[data-testid="rf__node-Broadcast_1"]').waitFor({ state: 'detached' });
  assert.equal(await page.locator('[data-testid="rf__edge-Broadcast_1->Critic"]').count(), 0);
  await page.locator('[data-testid="rf__node-Critic"]').click();
  await page.locator('[data-testid="connect-to"]').selectOption('HistoricalFacts');
  await page.locator('[data-testid="connect-add"]').click();
  await page.locator('[data-testid="rf__edge-Critic->HistoricalFacts"]').waitFor({ state: 'attached' });
  await page.locator('button[title="Delete the connection to HistoricalFacts"]').click();
  await page.locator('[data-testid="rf__edge-Critic->HistoricalFacts"]').waitFor({ state: 'detached' });

  // Add a step: the method picker offers only a Region's methods.
  const adder = page.locator('[data-testid="add-step-2-chain0"]');
  await adder.locator('select[aria-label="step region"]').selectOption('Critic');
  const methods = await adder.locator('select[aria-label="step method"] option').allInnerTexts();
  assert.deepEqual(methods.slice(1), ['make_questions', 'make_replies', 'summarize_replies', 'clear_replies', 'keep_last_reply_per_source']);
  await adder.locator('select[aria-label="step method"]').selectOption('make_replies');
  await page.locator('[data-testid="chain-2-chain0"] [data-testid="step-chip"]', { hasText: 'Critic.make_replies' }).waitFor();
  // A RAG region's picker has the RAG methods.
  await adder.locator('select[aria-label="step region"]').selectOption('Biography');
  const ragMethods = await adder.locator('select[aria-label="step method"] option').allInnerTexts();
  assert.deepEqual(ragMethods.slice(1), ['make_replies', 'make_updates', 'request_summaries', 'clear_replies', 'keep_last_reply_per_source']);
  await adder.locator('select[aria-label="step region"]').selectOption('');

  // Move the new node; its position goes to layout:.
  const box = await nodeBox(page, 'Critic');
  await page.mouse.move(box.x + 60, box.y + 12);
  await page.mouse.down();
  await page.mouse.move(box.x - 200, box.y + 122, { steps: 8 });
  await page.mouse.up();

  assert.equal(await page.locator('[data-testid="problem-count"]').innerText(), '✓ valid');
  await page.locator('[data-testid="save"]').click();
  await page.locator('[data-testid="status"]', { hasText: 'Saved' }).waitFor();
  await page.screenshot({ path: join(results, '02-edited.png') });

  const saved = readFileSync(file, 'utf8');
  const after = verify(file);
  assert.equal(after.code, 0, `the saved file verifies:\n${after.output}\n${saved}`);
  for (const comment of comments(original)) assert.ok(comments(saved).includes(comment), `comment kept: # ${comment}`);
  assert.match(saved, /^ {2}Critic:\n {4}type: Region\n {4}task: Check the answer for mistakes\.\n {4}connections: \[Historian\]$/m);
  assert.match(saved, /^ {6}chain0: \[Historian\.make_replies, Critic\.make_replies\]$/m);
  assert.match(saved, /^layout:\n {2}Critic: \{x: -?\d+, y: -?\d+\}$/m);
  assert.match(saved, /^ {6}Critic: Check the answer for mistakes\.$/m, 'the mapping-style connection got the target task');
  // Untouched parts are byte for byte the same: everything before `regions:`.
  assert.equal(saved.slice(0, saved.indexOf('\nregions:')), original.slice(0, original.indexOf('\nregions:')));

  // The side panel of a region whose connections are described: one input per connection.
  await page.locator('[data-testid="rf__node-Historian"]').click();
  // Each field's help is the published schema's description of that key, word for word.
  const descriptions = new Set();
  JSON.parse(readFileSync(join(repo, 'schemas', 'workflow.schema.json'), 'utf8'), (key, value) => (key === 'description' && descriptions.add(value), value));
  // (Those in the closed "Prompt overrides" section have no visible text.)
  const helps = (await page.locator('[data-testid="region-panel"] .field-help').allInnerTexts()).filter(Boolean);
  assert.ok(helps.filter((text) => descriptions.has(text)).length >= 4, `the panel has the schema's help under its fields: ${helps}`);
  // …all but the note on renaming, which is the editor's own.
  assert.deepEqual(helps.filter((text) => !descriptions.has(text)), [helps[0]]);
  assert.match(helps[0], /^Renaming updates every reference/);
  const described = await page.locator('[data-testid="connection-list"] input').evaluateAll((inputs) => inputs.map((i) => i.value));
  assert.deepEqual(described, ['Provide historical figure information', 'Provide historical event information', 'Check the answer for mistakes.']);
  await page.screenshot({ path: join(results, '06-panel.png') });

  // Reopen: the diagram comes back where it was.
  const placed = await flowPosition(page, 'Critic');
  const layout = /^ {2}Critic: \{x: (-?\d+), y: (-?\d+)\}$/m.exec(saved.slice(saved.indexOf('\nlayout:')));
  assert.deepEqual({ x: Number(layout[1]), y: Number(layout[2]) }, { x: Math.round(placed.x), y: Math.round(placed.y) });
  await page.reload();
  await page.locator('[data-testid="rf__node-Critic"]').waitFor();
  assert.deepEqual(await flowPosition(page, 'Critic'), { x: Math.round(placed.x), y: Math.round(placed.y) }, 'same position after reload');

  // Reorder and remove steps, move a layer: the chips and the source follow.
  const answer = page.locator('[data-testid="chain-2-chain0"] [data-testid="step-chip"]');
  await answer.filter({ hasText: 'Critic.make_replies' }).locator('button[title="Move left"]').click();
  assert.deepEqual(await answer.allInnerTexts().then((t) => t.map((c) => /\w+\.\w+/.exec(c)[0])), ['Critic.make_replies', 'Historian.make_replies']);
  await answer.filter({ hasText: 'Critic.make_replies' }).locator('button[title="Remove step"]').click();
  assert.equal(await answer.count(), 1);
  await page.locator('button[title="Move layer up"]').nth(1).click(); // look-up before ask
  await page.locator('[data-testid="tab-source"]').click();
  assert.match(await page.locator('[data-testid="source"]').inputValue(), /- layer: look-up[^\n]*\n[\s\S]*- layer: ask\n/);
  await page.locator('button[title="Move layer down"]').first().click(); // and back
  assert.equal(await page.locator('[data-testid="source"]').inputValue(), saved.replace('chain0: [Historian.make_replies, Critic.make_replies]', 'chain0: [Historian.make_replies]'));

  // A broken reference shows on the node and in the problems list, with regions verify's rule id.
  await page.locator('[data-testid="rf__node-Biography"]').click();
  await page.locator('[data-testid="field-type"]').selectOption('ListenerRegion');
  // As a listener it shows taps: tapping Historian draws a dashed arrow.
  await page.locator('.checks label', { hasText: 'Historian' }).locator('input').check();
  await page.locator('[data-testid="rf__edge-tap:Historian->Biography"]').waitFor({ state: 'attached' });
  await page.locator('[data-testid="tab-problems"]').click();
  await page.locator('[data-testid="problems"] code', { hasText: 'unknown-method' }).first().waitFor();
  assert.ok((await page.locator('[data-testid="rf__node-Biography"] .region-node-badge').innerText()) !== '');
  await page.screenshot({ path: join(results, '03-problems.png') });

  // A states: machine: the States view draws the states with their layers and the transitions
  // labelled with their conditions; a state and a transition are edited in the side panel, a
  // state is added and renamed; the saved file changes only where the edits were.
  const machineFile = join(work, 'machine.yaml');
  cpSync(join(repo, 'gui', 'e2e', 'machine.yaml'), machineFile);
  const machineText = readFileSync(machineFile, 'utf8');
  const machineGui = startGui(machineFile);
  servers.push(machineGui.child);
  const machinePage = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  current = machinePage;
  machinePage.on('pageerror', (error) => pageErrors.push(`machine: ${error.message}`));
  await machinePage.goto(await machineGui.url);
  await machinePage.locator('[data-testid="rf__node-Writer"]').waitFor(); // the regions first, as before
  await machinePage.locator('[data-testid="view-states"]').click();
  await machinePage.locator('[data-testid="state-review"]').waitFor();
  assert.match(await machinePage.locator('[data-testid="state-review"]').innerText(), /review[\s\S]*≤4[\s\S]*critique: c: Critic\.make_replies → Writer\.make_replies/);
  const labels = await machinePage.locator('.react-flow__edge-text').evaluateAll((texts) => texts.map((t) => t.textContent));
  assert.deepEqual(labels.sort(), ['1. Critic says /APPROVED/', '1. always', '2. always'].sort(), 'each transition is labelled with its order and condition');
  // The bottom panel shows the plan of the state in view.
  await machinePage.locator('[data-testid="plan-state-review"]').click();
  await machinePage.locator('[data-testid="chain-0-c"]').waitFor();
  // Edit the first transition of review: the critic's verdict field instead of its words.
  await machinePage.locator('[data-testid="state-review"]').click();
  const first = machinePage.locator('[data-testid="transition-0"]');
  await first.locator('[data-testid="condition-kind"]').selectOption('field');
  await first.locator('[data-testid="condition-region"]').selectOption('Critic');
  await first.locator('[data-testid="condition-path"]').fill('verdict');
  await first.locator('[data-testid="condition-value"]').fill('[yes, ok]');
  await first.locator('[data-testid="condition-test"]').selectOption('in');
  await first.locator('[data-testid="condition-apply"]').click();
  await machinePage.locator('.react-flow__edge-text', { hasText: '1. Critic.verdict in [yes, ok]' }).waitFor();
  // A bad regex is refused in one line, and nothing changes.
  const second = machinePage.locator('[data-testid="transition-1"]');
  await second.locator('[data-testid="condition-kind"]').selectOption('says');
  await second.locator('[data-testid="condition-region"]').selectOption('Critic');
  await second.locator('[data-testid="condition-pattern"]').fill('(');
  await second.locator('[data-testid="condition-apply"]').click();
  assert.match(await second.locator('[data-testid="condition-error"]').innerText(), /^says: not a regular expression/);
  await machinePage.locator('[data-testid="state-max-visits"]').fill('3');
  await machinePage.locator('[data-testid="state-max-visits"]').press('Enter');
  await machinePage.locator('[data-testid="state-on-exhausted"]').selectOption('end');
  // A new state, renamed, reached from review when the critic asks for a polish.
  await machinePage.locator('[data-testid="add-state"]').click();
  await machinePage.locator('[data-testid="state-state_1"]').waitFor();
  await machinePage.locator('[data-testid="state-name"]').fill('polish');
  await machinePage.locator('[data-testid="state-name"]').press('Enter');
  await machinePage.locator('[data-testid="state-polish"]').waitFor();
  await machinePage.locator('[data-testid="transition-new-to"]').selectOption('end');
  await machinePage.locator('[data-testid="transition-add"]').click();
  await machinePage.locator('[data-testid="plan-state-polish"]').click();
  await machinePage.locator('[data-testid="add-step-0-main"] select[aria-label="step region"]').selectOption('Writer');
  await machinePage.locator('[data-testid="add-step-0-main"] select[aria-label="step method"]').selectOption('make_replies');
  await machinePage.locator('[data-testid="add-wait"]').click();
  await machinePage.locator('[data-testid="wait-prompt-1"]').fill('Is it polished?');
  await machinePage.locator('[data-testid="wait-prompt-1"]').press('Enter');
  await machinePage.locator('[data-testid="state-polish"]', { hasText: 'wait for Writer' }).waitFor();
  await machinePage.screenshot({ path: join(results, '07-states.png') });
  await machinePage.locator('[data-testid="save"]').click();
  await machinePage.locator('[data-testid="status"]', { hasText: 'Saved' }).waitFor();
  const machineSaved = readFileSync(machineFile, 'utf8');
  for (const comment of comments(machineText)) assert.ok(comments(machineSaved).includes(comment), `comment kept: # ${comment}`);
  assert.equal(machineSaved.slice(0, machineSaved.indexOf('\nstates:')), machineText.slice(0, machineText.indexOf('\nstates:')), 'untouched parts are byte for byte the same');
  assert.match(machineSaved, /^ {4}max_visits: 3 {3}# bounded\n {4}on_exhausted: end\n/m);
  assert.match(machineSaved, /^ {6}- when: \{region: Critic, field: verdict, in: \[yes, ok\]\} {3}# the critic's word\n {8}to: end\n {6}- to: draft {3}# otherwise write again\n/m);
  const polish = parse(machineSaved).states.polish;
  assert.deepEqual(polish, { plan: [{ chains: { main: ['Writer.make_replies'] } }, { wait: { for: 'Writer', prompt: 'Is it polished?' } }], next: [{ to: 'end' }] });
  await machinePage.close();

  // Live run: a scripted workflow, its traffic in the feed and on the edges.
  const runFile = join(work, 'run.yaml');
  writeFileSync(runFile, SCRIPTED);
  const runGui = startGui(runFile);
  servers.push(runGui.child);
  const runPage = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  current = runPage;
  runPage.on('pageerror', (error) => pageErrors.push(error.message));
  await runPage.goto(await runGui.url);
  await runPage.locator('[data-testid="rf__node-Asker"]').waitFor();
  // What `regions run --json` reports for the same file: the page must show the same traffic.
  const cliMessages = runJson(runFile).filter((e) => e.kind === 'message').map((e) => e.message);
  const connections = Object.entries(parse(SCRIPTED).regions).flatMap(([source, r]) => r.connections.map((target) => `${source}->${target}`));
  // Every edge that lights up during the run, however briefly (each stays lit 1.5 s).
  await runPage.evaluate(() => {
    window.litEdges = new Set();
    const record = () => document.querySelectorAll('.react-flow__edge.lit').forEach((edge) => window.litEdges.add(edge.getAttribute('data-testid')));
    new MutationObserver(record).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['class'] });
  });
  await runPage.locator('[data-testid="run"]').click();
  await runPage.locator('[data-testid="run-result"]').waitFor({ timeout: 60_000 });
  assert.match(await runPage.locator('[data-testid="run-result"]').innerText(), /^Run ok/);
  // The feed lists the CLI's messages, in its order; the edges they travelled lit up.
  const feed = (await runPage.locator('.event-message').allInnerTexts()).map((line) => /^✉ (\S+) → (\S+) \((\w+)\)/.exec(line)?.slice(1));
  assert.deepEqual(feed, cliMessages.map((m) => [m.source, m.destination, m.role]), 'the feed has the messages of regions run --json');
  const travelled = [...new Set(cliMessages.map((m) => `${m.source}->${m.destination}`).filter((id) => connections.includes(id)))].sort();
  assert.ok(travelled.length >= 2, `messages went along connections: ${travelled}`);
  // React Flow redraws edges a frame after the app renders, so the last one may light up just
  // after the result shows: wait for it (each stays lit 1.5 s), then compare.
  const expectedLit = travelled.map((id) => `rf__edge-${id}`);
  await runPage.waitForFunction((ids) => ids.every((id) => window.litEdges.has(id)), expectedLit, { timeout: 5_000 }).catch(() => undefined);
  const lit = await runPage.evaluate(() => [...window.litEdges].sort());
  assert.deepEqual(lit, expectedLit, 'the edges the messages travelled lit up');
  await runPage.screenshot({ path: join(results, '04-run.png') });

  // Waiting for a person: the run tab shows the wait's prompt and an answer box; the answer is
  // injected to the region and the run resumes to its end.
  const waitFile = join(work, 'waiting.yaml');
  cpSync(join(repo, 'tests', 'gui', 'waiting.yaml'), waitFile);
  const waitGui = startGui(waitFile);
  servers.push(waitGui.child);
  const waitPage = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  current = waitPage;
  waitPage.on('pageerror', (error) => pageErrors.push(`wait: ${error.message}`));
  await waitPage.goto(await waitGui.url);
  await waitPage.locator('[data-testid="rf__node-Asker"]').waitFor();
  await waitPage.locator('[data-testid="run"]').click();
  const answerBox = waitPage.locator('[data-testid="wait-answer"]');
  await answerBox.waitFor({ timeout: 60_000 });
  assert.match(await waitPage.locator('[data-testid="run-result"]').innerText(), /^Run waiting/);
  assert.match(await answerBox.innerText(), /What should Asker be told\?/);
  await waitPage.screenshot({ path: join(results, '08-wait.png') });
  await waitPage.locator('[data-testid="wait-input"]').fill('Tell them 42.');
  await waitPage.locator('[data-testid="wait-send"]').click();
  await waitPage.locator('[data-testid="run-result"]', { hasText: /^Run ok/ }).waitFor({ timeout: 60_000 });
  await answerBox.waitFor({ state: 'detached' });
  const told = await waitPage.locator('.event-message').allInnerTexts();
  assert.ok(told.some((line) => line.startsWith('✉ user → Asker (request): Tell them 42.')), `the answer reached Asker: ${told}`);
  await waitPage.close();

  // Import the original framework's JSON (a registry and a plan), as `regions import` does.
  const registry = [
    { name: 'foo', type: 'Region', task: 'Important job', connections: { bar: 'Does things' } },
    { name: 'bar', type: 'Region', task: 'Does things', connections: {} },
  ];
  const plan = { layer_config: [{ chain0: ['foo'] }, { chain0: ['bar'] }], execution_config: [[['foo', 'make_questions']], [['bar', 'make_replies']]], execution_order: [0, 1] };
  await runPage.locator('input[type="file"]').setInputFiles([
    { name: 'demo_regions.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(registry)) },
    { name: 'demo_executions.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(plan)) },
  ]);
  await runPage.locator('[data-testid="rf__edge-foo->bar"]').waitFor({ state: 'attached' });
  assert.match(await runPage.locator('[data-testid="status"]').innerText(), /^Imported demo_regions\.json, demo_executions\.json/);
  assert.equal(await runPage.locator('[data-testid="problem-count"]').innerText(), '✓ valid');
  await runPage.screenshot({ path: join(results, '05-imported.png') });
  // …and export it back to the original's files (two downloads).
  const downloads = [];
  const bothDownloaded = new Promise((resolve) => {
    runPage.on('download', (download) => {
      downloads.push(download.suggestedFilename());
      if (downloads.length === 2) resolve();
    });
  });
  await runPage.getByRole('button', { name: 'Export JSON' }).click();
  await bothDownloaded;
  assert.deepEqual(downloads.sort(), ['demo_executions.json', 'demo_regions.json']);
  // Keyboard: select an arrow, press Delete; select a node, press Backspace.
  const from = await runPage.locator('[data-testid="rf__node-foo"] .react-flow__handle.source').boundingBox();
  const to = await runPage.locator('[data-testid="rf__node-bar"] .react-flow__handle.target').boundingBox();
  await runPage.mouse.click((from.x + to.x + to.width) / 2, from.y + from.height / 2);
  await runPage.keyboard.press('Delete');
  await runPage.locator('[data-testid="rf__edge-foo->bar"]').waitFor({ state: 'detached' });
  await runPage.locator('[data-testid="rf__node-bar"]').click();
  await runPage.keyboard.press('Backspace');
  await runPage.locator('[data-testid="rf__node-bar"]').waitFor({ state: 'detached' });
  const chips = await runPage.locator('[data-testid="step-chip"]').allInnerTexts();
  assert.ok(chips.length === 1 && chips[0].includes('foo.make_questions'), `bar's steps went with it: ${chips}`);
  assert.equal(readFileSync(runFile, 'utf8'), SCRIPTED, 'an import is not saved until the user saves');

  // Broken YAML typed in the source tab: one problem, edits refused until it parses again.
  const countBefore = await runPage.locator('[data-testid="problem-count"]').innerText();
  await runPage.locator('[data-testid="tab-source"]').click();
  const source = runPage.locator('[data-testid="source"]');
  const good = await source.inputValue();
  await source.fill(`${good}plan: [oops\n`);
  await runPage.getByRole('button', { name: 'Apply text' }).click();
  await runPage.locator('[data-testid="tab-problems"]').click();
  assert.deepEqual(await runPage.locator('[data-testid="problems"] code').allInnerTexts(), ['yaml-syntax']);
  await runPage.locator('[data-testid="add-region"]').click();
  await runPage.locator('[data-testid="status"]', { hasText: 'Fix the YAML first' }).waitFor();
  await runPage.locator('[data-testid="tab-source"]').click();
  await source.fill(good);
  await runPage.getByRole('button', { name: 'Apply text' }).click();
  assert.equal(await runPage.locator('[data-testid="problem-count"]').innerText(), countBefore);

  assert.deepEqual(pageErrors, [], 'no errors in the page');
  console.log('e2e: ok (screenshots in gui/test-results/)');
} catch (error) {
  failed = true;
  console.error(`e2e: FAILED: ${error instanceof Error ? error.stack : error}`);
  await current?.screenshot({ path: join(results, 'failure.png') }).catch(() => undefined);
} finally {
  await browser.close();
  for (const child of servers) child.kill('SIGTERM');
  rmSync(work, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
