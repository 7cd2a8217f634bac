"""`Finding`: one problem in a workflow file, and the formatters `regions verify` prints.

A finding always carries a stable rule id (see `workflow.rules.RULES`), a severity, a one-line
message, the file and a 1-based line and column. ``line == 0`` means "the whole file" (the file
could not be read at all), so no position is shown.

Formats:

* ``text``: ``file:line:col: error[rule-id] message``, the source line, a caret under the
  column, then ``  = hint: ...`` (coloured only when writing to a terminal);
* ``json``: a list of finding objects;
* ``sarif``: SARIF 2.1.0, as GitHub code scanning and most IDEs read it;
* ``github``: GitHub Actions workflow commands (``::error file=...``), shown as annotations.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import total_ordering
from pathlib import Path
from typing import Any, Literal

from regions_cli.text import plural

Severity = Literal["error", "warning"]

#: Output formats `format_findings` knows.
FORMATS = ("text", "json", "sarif", "github")

SARIF_SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
TOOL_URI = "https://pypi.org/project/regions-cli/"


@total_ordering
@dataclass(frozen=True)
class Finding:
    """One problem found in a workflow file.

    Ordered by file, then position, so sorting a list gives reading order.
    """

    file: str
    line: int  # 1-based; 0 = the whole file (no position)
    col: int  # 1-based; 0 when line is 0
    rule: str  # a kebab-case id from `workflow.rules.RULES`
    severity: Severity
    message: str
    hint: str | None = None
    end_line: int | None = None
    end_col: int | None = None

    def _sort_key(self) -> tuple[str, int, int, str, str, str, str, int, int]:
        return (
            self.file,
            self.line,
            self.col,
            self.rule,
            self.severity,
            self.message,
            self.hint or "",  # None sorts like "" (a plain tuple would refuse to compare them)
            self.end_line or 0,
            self.end_col or 0,
        )

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Finding):
            return NotImplemented
        return self._sort_key() < other._sort_key()

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (the ``--format json`` shape)."""
        return asdict(self)

    def location(self) -> str:
        """``file:line:col`` (or just ``file`` when the finding has no position)."""
        if self.line <= 0:
            return self.file
        return f"{self.file}:{self.line}:{self.col}"


def count(findings: Iterable[Finding]) -> tuple[int, int]:
    """(errors, warnings) in `findings`."""
    errors = warnings = 0
    for finding in findings:
        if finding.is_error:
            errors += 1
        else:
            warnings += 1
    return errors, warnings


# --- text ------------------------------------------------------------------------------------

_RED, _YELLOW, _BLUE, _BOLD, _RESET = "\033[31m", "\033[33m", "\033[34m", "\033[1m", "\033[0m"


# C0 controls and DEL as their Unicode "control picture" (U+2400...), one column each, so a
# binary or hostile file cannot drive the terminal and the caret stays under its column.
_VISIBLE = {**{c: 0x2400 + c for c in range(0x20) if c != 0x09}, 0x7F: 0x2421}


def _read_lines(file: str) -> list[str]:
    try:
        return Path(file).read_text(encoding="utf-8-sig", errors="replace").splitlines()
    except (OSError, ValueError):
        return []


def format_text(
    findings: Sequence[Finding],
    *,
    color: bool = False,
    files: int | None = None,
    source: Callable[[str], Sequence[str]] | None = None,
) -> str:
    """Compiler-style output: location, ``error[rule]``, message, source line, caret, hint.

    `source` returns the lines of a file (default: read it from disk, once per file). `files`
    is how many files were checked, for the closing summary line.
    """

    def paint(code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if color else text

    cache: dict[str, Sequence[str]] = {}
    read = source or _read_lines
    out: list[str] = []
    for f in findings:
        sev = paint(_BOLD + (_RED if f.is_error else _YELLOW), f"{f.severity}[{f.rule}]")
        out.append(f"{paint(_BOLD, f.location())}: {sev} {f.message}")
        if f.line > 0:
            if f.file not in cache:
                cache[f.file] = read(f.file)
            lines = cache[f.file]
            if f.line <= len(lines):
                text = lines[f.line - 1].expandtabs(1).translate(_VISIBLE)
                gutter = str(f.line)
                pad = " " * len(gutter)
                width = 1
                if f.end_line == f.line and f.end_col is not None and f.end_col > f.col:
                    width = f.end_col - f.col
                caret = " " * max(f.col - 1, 0) + "^" * width
                out.append(f"{paint(_BLUE, pad + ' |')}")
                out.append(f"{paint(_BLUE, gutter + ' |')} {text}")
                out.append(f"{paint(_BLUE, pad + ' |')} {paint(_BOLD + _RED, caret)}")
        if f.hint:
            out.append(f"  {paint(_BLUE, '=')} hint: {f.hint}")
        out.append("")
    errors, warnings = count(findings)
    scope = "" if files is None else f" in {plural(files, 'file')}"
    if errors or warnings:
        out.append(f"{plural(errors, 'error')}, {plural(warnings, 'warning')}{scope}.")
    else:
        out.append(f"No problems found{scope}.")
    return "\n".join(out) + "\n"


# --- json ------------------------------------------------------------------------------------


def format_json(findings: Sequence[Finding]) -> str:
    """A JSON list of findings, one object each (keys as in `Finding`)."""
    return json.dumps([f.to_dict() for f in findings], indent=2) + "\n"


# --- sarif -----------------------------------------------------------------------------------


def _uri(file: str) -> str:
    """A relative file as a forward-slash URI reference (SARIF wants URIs, GitHub relative)."""
    path = Path(file)
    if path.is_absolute():
        return path.as_uri()
    return "/".join(path.parts)


def format_sarif(
    findings: Sequence[Finding],
    *,
    rules: Mapping[str, tuple[str, str]] | None = None,
    version: str | None = None,
) -> str:
    """SARIF 2.1.0 (one run, tool ``regions``), valid against the OASIS schema.

    `rules` maps rule id -> (severity, summary); defaults to `workflow.rules.RULES`.
    """
    if rules is None:
        from regions_cli.workflow.rules import RULES

        rules = {rid: (info.severity, info.summary) for rid, info in RULES.items()}
    if version is None:
        from regions_cli import __version__ as version

    used = sorted({f.rule for f in findings} | set(rules))
    index = {rid: i for i, rid in enumerate(used)}
    descriptors = []
    for rid in used:
        severity, summary = rules.get(rid, ("error", rid))
        descriptors.append(
            {
                "id": rid,
                "name": rid,
                "shortDescription": {"text": summary},
                "defaultConfiguration": {"level": severity},
            }
        )

    results = []
    for f in findings:
        physical: dict[str, Any] = {"artifactLocation": {"uri": _uri(f.file)}}
        if f.line > 0:
            region: dict[str, int] = {"startLine": f.line, "startColumn": max(f.col, 1)}
            if f.end_line is not None:
                region["endLine"] = f.end_line
            if f.end_col is not None:
                region["endColumn"] = f.end_col
            physical["region"] = region
        message = f.message if not f.hint else f"{f.message}\nhint: {f.hint}"
        results.append(
            {
                "ruleId": f.rule,
                "ruleIndex": index[f.rule],
                "level": f.severity,
                "message": {"text": message},
                "locations": [{"physicalLocation": physical}],
            }
        )

    log = {
        "$schema": SARIF_SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "regions",
                        "informationUri": TOOL_URI,
                        "version": version,
                        "rules": descriptors,
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }
    return json.dumps(log, indent=2) + "\n"


# --- github ----------------------------------------------------------------------------------


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def format_github(findings: Sequence[Finding]) -> str:
    """GitHub Actions workflow commands: each finding becomes an annotation on the file."""
    out = []
    for f in findings:
        props = [f"file={_escape_property(f.file)}"]
        if f.line > 0:
            props += [f"line={f.line}", f"col={f.col}"]
            if f.end_line is not None:
                props.append(f"endLine={f.end_line}")
            if f.end_col is not None:
                props.append(f"endColumn={f.end_col}")
        props.append(f"title={_escape_property(f.rule)}")
        message = f.message if not f.hint else f"{f.message}\nhint: {f.hint}"
        out.append(f"::{f.severity} {','.join(props)}::{_escape_data(message)}")
    return "".join(line + "\n" for line in out)


def format_findings(
    findings: Sequence[Finding], fmt: str, *, color: bool = False, files: int | None = None
) -> str:
    """Render `findings` in one of `FORMATS`."""
    if fmt == "text":
        return format_text(findings, color=color, files=files)
    if fmt == "json":
        return format_json(findings)
    if fmt == "sarif":
        return format_sarif(findings)
    if fmt == "github":
        return format_github(findings)
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def findings_record(findings: Sequence[Finding]) -> dict[str, Any]:
    """The ``findings`` line ``--json`` writes before a run when verification found anything
    (the editor's run tab reads the same line)."""
    errors, warnings = count(findings)
    return {
        "kind": "findings",
        "t": time.time(),
        "errors": errors,
        "warnings": warnings,
        "findings": [finding.to_dict() for finding in findings],
    }
