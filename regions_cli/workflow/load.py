"""Read a workflow file into plain data plus the line and column of every node.

Every problem becomes a `Finding` (never an exception): unreadable or oversized files, bad
encodings, YAML syntax errors, duplicate keys, non-mapping documents, alias bombs, and
``${VAR}`` interpolation problems.

Guards against hostile input:

* files over `MAX_BYTES` (1 MiB) are refused before parsing;
* YAML aliases are never expanded while parsing (ruamel shares the aliased object); before the
  data is copied into plain containers we count the nodes the aliases *would* produce and refuse
  a document whose aliases add more than `MAX_ALIAS_EXPANSION` nodes (billion laughs), or whose
  aliases refer to a node containing them.

``${VAR}`` and ``${VAR:-default}`` are replaced in string values (not keys) from the
environment; ``$${`` stands for a literal ``${``. An unset variable without a default becomes an
empty string and an ``unset-variable`` finding.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from regions_cli.workflow.findings import Finding

#: Largest workflow file accepted, in bytes.
MAX_BYTES = 1024 * 1024
#: Most nodes that YAML aliases may add to the document when expanded.
MAX_ALIAS_EXPANSION = 10_000
#: Deepest nesting accepted (a real workflow needs about 8 levels).
MAX_DEPTH = 64

PathT = tuple[str | int, ...]
Pos = tuple[int, int]  # 1-based line and column


@dataclass
class Positions:
    """Where each node of a document sits in the file (1-based line and column).

    `values` maps a path (keys and list indices from the root) to where its value starts,
    `keys` maps a path to where its key is written. `text_offsets` holds, for one-line scalars,
    the column offset from the node's start to its first character (1 for quoted strings), so a
    finding can point inside a string.
    """

    values: dict[PathT, Pos] = field(default_factory=dict)
    keys: dict[PathT, Pos] = field(default_factory=dict)
    text_offsets: dict[PathT, int] = field(default_factory=dict)

    def value(self, path: PathT, char: int | None = None) -> Pos:
        """Where the value at `path` starts (or the nearest enclosing node that has a position).

        With `char`, point at that character of a one-line string value, when that is known.
        """
        for cut in range(len(path), -1, -1):
            pos = self.values.get(path[:cut])
            if pos is not None:
                if char is not None and cut == len(path) and path in self.text_offsets:
                    return pos[0], pos[1] + self.text_offsets[path] + char
                return pos
        return 1, 1

    def key(self, path: PathT) -> Pos:
        """Where the key of `path` is written (falls back to the value's position)."""
        pos = self.keys.get(path)
        return pos if pos is not None else self.value(path)


@dataclass
class Document:
    """A workflow file after reading: plain data (or None when unusable) and its findings.

    `data` has ``${VAR}`` replaced; `raw` is the same data before replacement, for quoting
    values in messages without revealing secrets. `unset_variables` maps each string value that
    contained an unset variable to those variables (NAME, where it is written); `variables`
    every ``${NAME}`` found: (value path, NAME, its offset in the value).
    """

    file: str
    text: str = ""
    data: dict[str, Any] | None = None
    raw: dict[str, Any] | None = None
    positions: Positions = field(default_factory=Positions)
    findings: list[Finding] = field(default_factory=list)
    base_dir: Path = Path(".")
    unset_variables: dict[PathT, list[tuple[str, Pos]]] = field(default_factory=dict)
    variables: list[tuple[PathT, str, int]] = field(default_factory=list)
    _lines: list[str] | None = field(default=None, repr=False, compare=False)

    def finding(
        self,
        rule: str,
        message: str,
        pos: Pos = (1, 1),
        *,
        hint: str | None = None,
        severity: str = "error",
        end: Pos | None = None,
    ) -> Finding:
        """A finding in this file at `pos` (``(0, 0)``: the whole file), spanning to `end`."""
        return Finding(
            file=self.file,
            line=pos[0],
            col=pos[1],
            rule=rule,
            severity="warning" if severity == "warning" else "error",
            message=message,
            hint=hint,
            end_line=end[0] if end else None,
            end_col=end[1] if end else None,
        )

    def add(
        self,
        rule: str,
        message: str,
        pos: Pos = (1, 1),
        *,
        hint: str | None = None,
        severity: str = "error",
        end: Pos | None = None,
    ) -> None:
        """Record a finding of the reading stage (see `finding`)."""
        self.findings.append(
            self.finding(rule, message, pos, hint=hint, severity=severity, end=end)
        )

    def span_end(self, pos: Pos, value: Any) -> Pos | None:
        """Where `value` ends when it is written at `pos` on one line (None if it is not).

        Lets a finding underline a whole name rather than its first character; the source text
        is checked, so a value written differently (escaped, folded) just gets no end.
        """
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            return None
        if self._lines is None:
            self._lines = self.text.splitlines()
        line, col = pos
        if not 0 < line <= len(self._lines):
            return None
        source = self._lines[line - 1][col - 1 :]
        text = str(value)
        for written in (text, f'"{text}"', f"'{text}'"):
            if written and source.startswith(written):
                return line, col + len(written)
        return None


# --- reading ---------------------------------------------------------------------------------


def load_file(
    path: str | os.PathLike[str],
    *,
    env: Mapping[str, str] | None = None,
    strict: bool = False,
) -> Document:
    """Read, decode and parse the workflow at `path`; problems end up in ``.findings``."""
    file = os.fspath(path)
    p = Path(file)
    doc = Document(file=file, base_dir=p.parent)
    try:
        if p.is_dir():
            doc.add("io-error", f"cannot read {file}: it is a directory", (0, 0))
            return doc
        if p.exists() and not p.is_file():
            doc.add("io-error", f"cannot read {file}: not a regular file", (0, 0))
            return doc
        with p.open("rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        doc.add("io-error", f"cannot read {file}: {reason}", (0, 0))
        return doc
    return _parse(doc, data, env=env, strict=strict)


def load_bytes(
    data: bytes,
    *,
    file: str = "<string>",
    base_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    strict: bool = False,
) -> Document:
    """Parse workflow bytes that did not come from a file (the GUI, tests)."""
    doc = Document(file=file, base_dir=base_dir if base_dir is not None else Path("."))
    return _parse(doc, data, env=env, strict=strict)


def load_text(
    text: str,
    *,
    file: str = "<string>",
    base_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    strict: bool = False,
) -> Document:
    """Parse workflow text (see `load_bytes`)."""
    return load_bytes(
        text.encode("utf-8", "surrogatepass"), file=file, base_dir=base_dir, env=env, strict=strict
    )


def _line_col_of_byte(data: bytes, offset: int) -> Pos:
    line_start = data.rfind(b"\n", 0, offset) + 1
    col = len(data[line_start:offset].decode("utf-8", "replace")) + 1
    return data.count(b"\n", 0, offset) + 1, col


def _decode(doc: Document, data: bytes) -> str | None:
    if len(data) > MAX_BYTES:
        doc.add(
            "file-too-large",
            f"the file is larger than {MAX_BYTES // 1024} KiB; workflow files are limited to 1 MiB",
            (0, 0),
            hint="move large texts into files referenced by `documents:` or `inject: file:`",
        )
        return None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        doc.add(
            "bad-encoding",
            "the file is UTF-16 (or UTF-32); workflow files must be UTF-8",
            hint="save the file as UTF-8",
        )
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        byte = data[exc.start : exc.start + 1].hex()
        doc.add(
            "bad-encoding",
            f"the file is not valid UTF-8 (byte 0x{byte} at offset {exc.start})",
            _line_col_of_byte(data, exc.start),
            hint="save the file as UTF-8",
        )
        return None


def _parse(doc: Document, data: bytes, *, env: Mapping[str, str] | None, strict: bool) -> Document:
    text = _decode(doc, data)
    if text is None:
        return doc
    doc.text = text
    root = _yaml_load(doc, text)
    if root is _FAILED:
        return doc
    if root is None:
        doc.add(
            "not-a-mapping",
            "the file is empty; a workflow is a mapping with version, name, regions and plan",
            hint="start with `version: 1`, `name:`, `regions:` and `plan:` (the README's "
            "complete example, also on the package's PyPI page, shows them all)",
        )
        return doc
    if not isinstance(root, dict):
        kind = "a list" if isinstance(root, list) else "a single value"
        doc.add(
            "not-a-mapping",
            f"the document is {kind}, not a mapping of keys to values",
            _lc(root) or (1, 1),
            hint="a workflow is a mapping with version, name, regions and plan",
        )
        return doc
    converter = _Converter(doc)
    raw = converter.convert(root, (), (1, 1))
    if converter.failed:
        return doc
    assert isinstance(raw, dict)
    doc.raw = raw
    interpolated = _Interpolator(doc, os.environ if env is None else env, strict).walk(raw, ())
    assert isinstance(interpolated, dict)
    doc.data = interpolated
    return doc


# --- YAML ------------------------------------------------------------------------------------

_FAILED: Any = object()


def _mark_pos(mark: Any) -> Pos:
    return int(mark.line) + 1, int(mark.column) + 1


def _yaml_load(doc: Document, text: str) -> Any:
    from ruamel.yaml import YAML
    from ruamel.yaml.constructor import DuplicateKeyError
    from ruamel.yaml.error import MarkedYAMLError
    from ruamel.yaml.reader import ReaderError

    yaml = YAML(typ="rt", pure=True)
    yaml.preserve_quotes = True
    yaml.allow_duplicate_keys = False
    try:
        with warnings.catch_warnings():
            # ruamel warns (on stderr) about legal oddities such as a reused anchor name.
            warnings.simplefilter("ignore")
            node = yaml.compose(text)
            if node is None:
                return None
            if not _check_aliases(doc, node):
                return _FAILED
            return yaml.constructor.construct_document(node)
    except DuplicateKeyError as exc:
        key = re.search(r'found duplicate key "(.*?)"', str(exc))
        name = f"'{key.group(1)}' " if key else ""
        first = exc.context_mark
        where = f" (first at line {first.line + 1})" if first is not None else ""
        doc.add(
            "duplicate-key",
            f"duplicate key {name}in this mapping{where}",
            _mark_pos(exc.problem_mark) if exc.problem_mark else (1, 1),
            hint="a key may appear once per mapping; remove or rename one of them",
        )
    except MarkedYAMLError as exc:
        message, pos, hint = _explain_syntax_error(exc, text)
        doc.add("yaml-syntax", message, pos, hint=hint)
    except ReaderError as exc:
        pos = _offset_pos(text, int(exc.position))
        doc.add(
            "yaml-syntax",
            f"character {exc.character!r} is not allowed in YAML",
            pos,
            hint="remove control characters from the file",
        )
    except RecursionError:
        doc.add("yaml-syntax", "the document is nested too deeply")
    except Exception as exc:  # ruamel raises plain ValueError/TypeError for some bad scalars
        doc.add("yaml-syntax", f"cannot parse the document: {exc}")
    return _FAILED


#: How the parser names what it found, in words.
_TOKEN_WORDS = {
    "<block mapping start>": "a key",
    "<block sequence start>": "a list",
    "<block end>": "the end of a block",
    "<scalar>": "a value",
    "<document start>": "'---'",
    "<document end>": "'...'",
    "<stream end>": "the end of the file",
    "<alias>": "an alias",
    "<anchor>": "an anchor",
    "<tag>": "a tag",
}


def _words(parser_text: str) -> str:
    """The parser's wording with its token names (sometimes a Python tuple of one) in words."""
    text = re.sub(r"\('(<[a-z ]+>|[^']*)',\)", r"'\1'", parser_text)
    for token, words in _TOKEN_WORDS.items():
        text = text.replace(f"'{token}'", words).replace(token, words)
    return text


def _explain_syntax_error(exc: Any, text: str) -> tuple[str, Pos, str]:
    """(message, position, hint) for a YAML syntax error: where the mistake is (not where the
    parser noticed it) and what it is, in plain words."""
    problem_mark, context_mark = exc.problem_mark, exc.context_mark
    problem = exc.problem or exc.context or "invalid YAML"
    where = _mark_pos(problem_mark or context_mark) if problem_mark or context_mark else (1, 1)
    hint = "check indentation, quotes and brackets around this position"
    if "expected a single document" in str(exc):
        return "the file holds more than one YAML document", where, hint
    if "'\\t'" in problem:
        hint = "indent with spaces: YAML does not allow tabs for indentation"
        return _words(problem), where, hint
    if "while scanning a quoted scalar" in (exc.context or "") and context_mark is not None:
        quote = text.splitlines()[context_mark.line][context_mark.column : context_mark.column + 1]
        return (
            f"this quoted string is never closed: its closing {quote} is missing",
            _mark_pos(context_mark),
            f"end the string with {quote} on the line where it should end",
        )
    runaway = _runaway_string(text, problem_mark)
    if runaway is not None:
        (line, col), quote, end_line = runaway
        return (
            f"the string opened here runs on to line {end_line}; is its closing {quote} missing?",
            (line, col),
            f"close the string with {quote} on this line",
        )
    if "expected '<document start>'" in problem:
        first = _first_content_line(text)
        if first is not None and first[1] > 1:
            below = where[0]
            return (
                f"this first key is indented (column {first[1]}), and line {below} is not; "
                "the top-level keys must all start in one column",
                first,
                "start every top-level key in column 1",
            )
    if "expected <block end>" in problem and context_mark is not None:
        found = _words(problem.split("but found", 1)[-1].strip())
        column = context_mark.column + 1
        return (
            f"{found} cannot start here: this line is indented differently from the block it "
            f"belongs to (its keys start in column {column}, line {context_mark.line + 1})",
            where,
            f"align it with the keys in column {column}, or indent it under a key ending in ':'",
        )
    context = f" ({exc.context})" if exc.context and exc.problem else ""
    return _words(f"{problem}{context}"), where, hint


def _runaway_string(text: str, problem_mark: Any) -> tuple[Pos, str, int] | None:
    """(where it opens, its quote, the line it ends on) of a quoted string that spans lines and
    ends on the line of `problem_mark`: most likely a string whose closing quote is missing,
    which swallowed the lines after it."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError
    from ruamel.yaml.tokens import ScalarToken

    if problem_mark is None:
        return None
    found = None
    try:
        for token in YAML(typ="rt", pure=True).scan(text):
            if token.start_mark.index >= problem_mark.index:
                break
            if (
                isinstance(token, ScalarToken)
                and token.style in ("'", '"')
                and token.start_mark.line != token.end_mark.line
            ):
                found = token
    except YAMLError:
        pass
    if found is None or found.end_mark.line != problem_mark.line:
        return None
    return _mark_pos(found.start_mark), str(found.style), found.end_mark.line + 1


def _first_content_line(text: str) -> Pos | None:
    """Where the first line that is neither blank nor a comment starts."""
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.lstrip(" ")
        if stripped and not stripped.startswith("#"):
            return number, len(line) - len(stripped) + 1
    return None


def _offset_pos(text: str, offset: int) -> Pos:
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1, offset - line_start + 1


def _lc(node: Any) -> Pos | None:
    lc = getattr(node, "lc", None)
    if lc is None or lc.line is None:
        return None
    return int(lc.line) + 1, int(lc.col) + 1


def _child_positions(node: Any, key: Any) -> tuple[Pos | None, Pos | None]:
    """(key position, value position) of `key` in a ruamel mapping or list."""
    lc = getattr(node, "lc", None)
    if lc is None:
        return None, None
    try:
        if isinstance(node, dict):
            kl, kc = lc.key(key)
            vl, vc = lc.value(key)
            return (kl + 1, kc + 1), (vl + 1, vc + 1)
        line, col = lc.item(key)
        return None, (line + 1, col + 1)
    except (KeyError, TypeError, IndexError, AttributeError):
        return None, None  # merged (<<) entries have no position of their own


def _check_aliases(doc: Document, root: Any) -> bool:
    """Refuse alias bombs and self-containing aliases before anything is constructed.

    In the composed node graph an alias is a second reference to the anchored node, so the
    graph is as small as the file; expanding it (constructing, copying, validating) is what
    explodes. Sizes are memoised per node, so this walk is linear in the size of the file.
    """
    from ruamel.yaml.nodes import MappingNode, SequenceNode

    sizes: dict[int, int] = {}
    active: set[int] = set()
    culprit: list[Pos] = []

    def size(node: Any) -> int | None:
        if not isinstance(node, (MappingNode, SequenceNode)):
            return 1
        ident = id(node)
        if ident in sizes:
            return sizes[ident]
        if ident in active:
            doc.add(
                "recursive-alias",
                "an alias refers to a node that contains it; the document would be infinite",
                _mark_pos(node.start_mark),
                hint="aliases (*name) may only refer to nodes outside themselves",
            )
            return None
        active.add(ident)
        total = 1
        children = (
            [n for pair in node.value for n in pair]
            if isinstance(node, MappingNode)
            else node.value
        )
        for child in children:
            n = size(child)
            if n is None:
                return None
            total += n
        active.discard(ident)
        sizes[ident] = total
        if total > MAX_ALIAS_EXPANSION and not culprit:
            culprit.append(_mark_pos(node.start_mark))
        return total

    expanded = size(root)
    if expanded is None:
        return False
    written = _count_written(root)
    if expanded - written > MAX_ALIAS_EXPANSION:
        doc.add(
            "alias-bomb",
            f"YAML aliases expand this document to {expanded:,} nodes, more than "
            f"{MAX_ALIAS_EXPANSION:,} beyond the {written:,} written; refusing to expand it",
            culprit[0] if culprit else (1, 1),
            hint="write the repeated content out, or reuse it with fewer nested aliases",
        )
        return False
    return True


def _count_written(root: Any) -> int:
    """Node positions the file spells out: every node once, plus one per alias (``*name``)."""
    from ruamel.yaml.nodes import MappingNode, SequenceNode

    seen: set[int] = set()
    references = 0
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        children: list[Any] = []
        if isinstance(node, MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, SequenceNode):
            children = list(node.value)
        references += len(children)
        stack.extend(children)
    return references + 1


class _Converter:
    """Copy ruamel's round-trip objects into plain dict/list/str/int/float/bool/None,
    recording where each node sits."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.failed = False
        self.lines = doc.text.splitlines()

    def convert(self, node: Any, path: PathT, pos: Pos) -> Any:
        from ruamel.yaml.comments import TaggedScalar
        from ruamel.yaml.scalarbool import ScalarBoolean
        from ruamel.yaml.scalarstring import (
            DoubleQuotedScalarString,
            LiteralScalarString,
            SingleQuotedScalarString,
        )

        positions = self.doc.positions
        positions.values[path] = pos
        if len(path) > MAX_DEPTH and not self.failed:
            self.doc.add(
                "yaml-syntax", f"the document is nested more than {MAX_DEPTH} levels deep", pos
            )
            self.failed = True
        if self.failed and len(path) > MAX_DEPTH:
            return None
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            for key, value in node.items():
                key_pos, value_pos = _child_positions(node, key)
                if not isinstance(key, str) or isinstance(key, TaggedScalar):
                    self.doc.add(
                        "non-string-key",
                        f"key {key!r} is not a string",
                        key_pos or pos,
                        hint=f"quote it: '{key}'" if not isinstance(key, tuple) else None,
                    )
                    self.failed = True
                    continue
                name = str(key)
                child = (*path, name)
                positions.keys[child] = key_pos or pos
                out[name] = self.convert(value, child, value_pos or key_pos or pos)
            return out
        if isinstance(node, list):
            items = []
            for index, value in enumerate(node):
                _, value_pos = _child_positions(node, index)
                items.append(self.convert(value, (*path, index), value_pos or pos))
            return items
        if isinstance(node, TaggedScalar):
            self.doc.add(
                "yaml-syntax",
                f"unsupported YAML tag {node.tag.value!s}",
                pos,
                hint="remove the tag; workflows use plain YAML values",
            )
            self.failed = True
            return None
        if isinstance(node, (bool, ScalarBoolean)):
            return bool(node)
        if isinstance(node, int):
            return int(node)
        if isinstance(node, float):
            return float(node)
        if isinstance(node, str):
            text = str(node)
            if not isinstance(node, LiteralScalarString):
                quoted = isinstance(node, (DoubleQuotedScalarString, SingleQuotedScalarString))
                offset = 1 if quoted else 0
                line, col = pos
                source = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
                start = col - 1 + offset
                if source[start : start + len(text)] == text:
                    positions.text_offsets[path] = offset
            return text
        if isinstance(node, (_dt.date, _dt.datetime)):
            return node.isoformat()
        if node is None:
            return None
        return str(node)


# --- ${VAR} interpolation --------------------------------------------------------------------

_TOKEN = re.compile(
    r"\$\$\{"  # escaped: a literal "${"
    r"|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}"
    r"|\$\{"  # anything else after "${" is malformed
)


class _Interpolator:
    def __init__(self, doc: Document, env: Mapping[str, str], strict: bool) -> None:
        self.doc = doc
        self.env = env
        self.strict = strict

    def walk(self, node: Any, path: PathT) -> Any:
        if isinstance(node, dict):
            return {k: self.walk(v, (*path, k)) for k, v in node.items()}
        if isinstance(node, list):
            return [self.walk(v, (*path, i)) for i, v in enumerate(node)]
        if isinstance(node, str) and "${" in node:
            return self.substitute(node, path)
        return node

    def substitute(self, text: str, path: PathT) -> str:
        out: list[str] = []
        last = 0
        for match in _TOKEN.finditer(text):
            out.append(text[last : match.start()])
            last = match.end()
            token = match.group(0)
            if token == "$${":
                out.append("${")
                continue
            name = match.group("name")
            pos = self.doc.positions.value(path, match.start())
            if name is None:
                self.doc.add(
                    "bad-interpolation",
                    "malformed '${': expected ${NAME} or ${NAME:-default}",
                    pos,
                    hint="write $${ for a literal '${'",
                )
                out.append(token)
                continue
            self.doc.variables.append((path, name, match.start()))
            value = self.env.get(name)
            if value is None:
                default = match.group("default")
                if default is not None:
                    value = default
                else:
                    self.doc.add(
                        "unset-variable",
                        f"environment variable {name} is not set; using an empty string",
                        pos,
                        hint=f"export {name}=... or write ${{{name}:-default}}",
                        severity="error" if self.strict else "warning",
                    )
                    self.doc.unset_variables.setdefault(path, []).append((name, pos))
                    value = ""
            out.append(value)
        out.append(text[last:])
        return "".join(out)
