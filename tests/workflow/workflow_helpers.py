"""Shared helpers for the workflow tests: fixture files and their ``# expect:`` headers."""

from __future__ import annotations

import json
import re
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
RULE_FIXTURES = FIXTURES / "rules"
VALID_FIXTURES = FIXTURES / "valid"

#: Environment used for ``${VAR}`` in fixtures (tests never depend on the real environment).
FIXTURE_ENV = {"TEST_API_KEY": "sk-test-secret-value"}

_EXPECT = re.compile(
    r"^# expect: (?P<rule>[a-z-]+) "
    r'(?:(?P<line>\d+):(?P<col>\d+)|(?P<text>".*")(?:\+(?P<plus>\d+))?)$'
)


def expectations(path: Path) -> set[tuple[str, int, int]]:
    """(rule, line, col) triples a fixture's ``# expect:`` header lines announce.

    ``# expect: RULE "TEXT"`` means: at the first occurrence of TEXT (a JSON string) in the
    file below the header, ``+N`` columns further; ``# expect: RULE L:C`` gives the position.
    The positions are found by searching the text, independently of the code under test.
    """
    raw = path.read_bytes().decode("utf-8", "replace")
    header, body_start = [], 0
    for line in raw.splitlines(keepends=True):
        if not line.startswith("# expect: "):
            break
        header.append(line.rstrip("\n"))
        body_start += len(line)
    out = set()
    for line in header:
        match = _EXPECT.match(line)
        assert match, f"{path.name}: bad expectation line {line!r}"
        if match["text"] is None:
            out.add((match["rule"], int(match["line"]), int(match["col"])))
            continue
        text = json.loads(match["text"])
        offset = raw.index(text, body_start) + int(match["plus"] or 0)
        line_no = raw.count("\n", 0, offset) + 1
        col = offset - (raw.rfind("\n", 0, offset) + 1) + 1
        out.add((match["rule"], line_no, col))
    return out
