/**
 * Keep the user's own formatting for the parts of a file an edit did not touch.
 *
 * The `yaml` package re-emits a whole document from its model: comments and key order survive,
 * but folded (`>-`) text is re-wrapped, spacing before `#` is normalised and so on. To give
 * the user back their file byte for byte except where they edited it, we compare three texts
 * block by block (a block = one mapping key or one list item, with the comments above it):
 *
 *   original  - the text as loaded;
 *   before    - the `yaml` package's rendering of the document as loaded;
 *   after     - its rendering of the edited document.
 *
 * Where `before` and `after` agree the edit did not touch that block, so the original's text
 * for it is used; elsewhere the new rendering is used, recursing into nested blocks so only
 * the smallest changed block is re-rendered. `mergeFormatting` returns null when the texts do
 * not line up; callers then use `after` (and callers check the merge parses to the same data).
 */

interface Entry {
  key: string;
  /** Leading comment/blank lines, the entry's own line, then its nested lines. */
  lines: string[];
  /** Index in `lines` of the entry's own line. */
  own: number;
}

interface Split {
  entries: Entry[];
  /** Comment/blank lines after the last entry. */
  tail: string[];
}

const KEY_LINE = /^(\s*)(?:"(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s#'"\-?:,[\]{}][^:#]*?|-[^\s:#][^:#]*?)\s*:(?:\s|$)/;
const ITEM_LINE = /^(\s*)-(?:\s|$)/;
const BLOCK_SCALAR = /[|>][0-9+-]*\s*(#.*)?$/;

function indentOf(line: string): number {
  return line.length - line.trimStart().length;
}

function isFiller(line: string): boolean {
  const trimmed = line.trim();
  return trimmed === '' || trimmed.startsWith('#');
}

/** Split the lines of one block body into its entries; null if a line fits nowhere. */
function split(lines: string[]): Split | null {
  const first = lines.find((line) => !isFiller(line));
  if (first === undefined) return { entries: [], tail: [...lines] };
  const indent = indentOf(first);
  const entries: Entry[] = [];
  let pending: string[] = [];
  let items = 0;
  for (const line of lines) {
    if (isFiller(line)) {
      pending.push(line);
      continue;
    }
    const depth = indentOf(line);
    const last = entries[entries.length - 1];
    // `key:` followed by list items at the key's own indentation (`indentSeq: false` style).
    const itemUnderKey = ITEM_LINE.test(line) && last !== undefined && !last.key.startsWith('#') && opensBlock(last);
    if (depth === indent && !itemUnderKey && (ITEM_LINE.test(line) || KEY_LINE.test(line))) {
      const item = ITEM_LINE.exec(line);
      const key = item && item[1].length === indent ? `#${items++}` : (KEY_LINE.exec(line)?.[0] ?? line).trim().replace(/:$/, '').trim();
      entries.push({ key, lines: [...pending, line], own: pending.length });
      pending = [];
    } else if ((depth > indent || itemUnderKey) && last !== undefined) {
      last.lines.push(...pending, line);
      pending = [];
    } else {
      return null;
    }
  }
  return { entries, tail: pending };
}

function same(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((line, i) => line === b[i]);
}

/** Whether an entry's own line is `key:` with its value on the following lines. */
function opensBlock(entry: Entry): boolean {
  return /:\s*(#.*)?$/.test(entry.lines[entry.own]);
}

/** Whether an entry's nested lines are child blocks (not the text of a block scalar). */
function hasChildBlocks(entry: Entry): boolean {
  const own = entry.lines[entry.own];
  if (BLOCK_SCALAR.test(own)) return false;
  return ITEM_LINE.test(own) || opensBlock(entry);
}

/**
 * Re-rendered lines with the original's spacing before each trailing comment (`yaml` writes one
 * space before every `#`; the user may have lined their comments up). A rendered line takes the
 * spacing of the one original line of the block that ends with the same comment.
 */
function keepCommentSpacing(rendered: string[], original: string[] | undefined): string[] {
  if (!original) return rendered;
  return rendered.map((line) => {
    // From the last ` #` back: the trailing comment is the longest suffix an original line has.
    for (let at = line.lastIndexOf(' #'); at > 0; at = line.lastIndexOf(' #', at - 1)) {
      const comment = line.slice(at + 1);
      if (line.slice(0, at).trim() === '') return line; // a comment line of its own
      const owners = original.filter((o) => o.endsWith(comment) && /\S\s+$/.test(o.slice(0, -comment.length)));
      if (owners.length !== 1) continue;
      const spacing = /\s+$/.exec(owners[0].slice(0, -comment.length))![0];
      return `${line.slice(0, at)}${spacing}${comment}`;
    }
    return line;
  });
}

function mergeLines(original: string[], before: string[], after: string[]): string[] | null {
  if (same(before, after)) return original;
  const o = split(original);
  const a = split(before);
  const b = split(after);
  if (!o || !a || !b) return null;
  if (!same(o.entries.map((e) => e.key), a.entries.map((e) => e.key))) return null;
  const originalOf = new Map(o.entries.map((e) => [e.key, e]));
  const beforeOf = new Map(a.entries.map((e) => [e.key, e]));
  const out: string[] = [];
  for (const entry of b.entries) {
    const old = beforeOf.get(entry.key);
    const source = originalOf.get(entry.key);
    if (!old || !source) {
      out.push(...entry.lines);
    } else if (same(old.lines, entry.lines)) {
      out.push(...source.lines);
    } else if (same(old.lines.slice(0, old.own + 1), entry.lines.slice(0, entry.own + 1)) && hasChildBlocks(old) && hasChildBlocks(source)) {
      const nested = mergeLines(source.lines.slice(source.own + 1), old.lines.slice(old.own + 1), entry.lines.slice(entry.own + 1));
      out.push(...(nested ? [...source.lines.slice(0, source.own + 1), ...nested] : keepCommentSpacing(entry.lines, source.lines)));
    } else {
      out.push(...keepCommentSpacing(entry.lines, source.lines));
    }
  }
  out.push(...(same(a.tail, b.tail) ? o.tail : b.tail));
  return out;
}

/** The edited text with the original's formatting wherever the edit did not reach. */
export function mergeFormatting(original: string, before: string, after: string): string | null {
  const lines = (text: string) => text.replace(/\n$/, '').split('\n');
  const merged = mergeLines(lines(original), lines(before), lines(after));
  return merged === null ? null : `${merged.join('\n')}\n`;
}
