"""`regions verify`: what the checks cost over parsing alone, and that hostile input is cheap.

Rows:
* verify of an example vs a bare ruamel round-trip load of the same text (the checks' overhead);
* verify of a generated workflow with many regions vs its bare load (the checks scale linearly);
* refusing a billion-laughs file vs verifying the example (the alias guard never expands);
* a cold ``python -m regions_cli verify`` process (start-up imports nothing heavy).
"""

from __future__ import annotations

import io
import itertools
import subprocess
import sys
import time
from pathlib import Path

from common import Row, best_of

from regions_cli.workflow.api import verify_text

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "workflows" / "lookup.yaml"


def _bare_load(text: str) -> None:
    from ruamel.yaml import YAML

    YAML(typ="rt").load(io.StringIO(text))


def _many_regions(n: int) -> str:
    lines = ["version: 1", "name: many", "llms:", "  default: {backend: scripted}", "regions:"]
    for i in range(n):
        nxt = f"R{(i + 1) % n}"
        lines += [
            f"  R{i}:",
            "    type: Region",
            f"    task: Region number {i}.",
            f"    connections: [{nxt}]",
        ]
    lines += ["inject:", "  - {to: R0, content: go}", "plan:"]
    for i in range(0, n, 10):
        chain = ", ".join(f"R{j}.make_questions" for j in range(i, min(i + 10, n)))
        lines += ["  - chains:", f"      c: [{chain}]"]
        chain = ", ".join(f"R{j}.make_replies" for j in range(i, min(i + 10, n)))
        lines += ["  - chains:", f"      c: [{chain}]"]
    return "\n".join(lines) + "\n"


def _billion_laughs() -> str:
    names = "abcdefghij"
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in itertools.pairwise(names):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def main(quick: bool) -> list[Row]:
    repeats = 3 if quick else 10
    example = EXAMPLE.read_text(encoding="utf-8")
    base = EXAMPLE.parent

    def check_example() -> None:
        assert verify_text(example, base_dir=base) == []

    verify_s = best_of(repeats, check_example)
    load_s = best_of(repeats, lambda: _bare_load(example))

    many = _many_regions(100 if quick else 1000)
    many_verify = best_of(max(1, repeats // 3), lambda: verify_text(many))
    many_load = best_of(max(1, repeats // 3), lambda: _bare_load(many))

    bomb = _billion_laughs()

    def refuse() -> None:
        assert [f.rule for f in verify_text(bomb)] == ["alias-bomb"]

    bomb_s = best_of(repeats, refuse)

    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "regions_cli", "verify", str(EXAMPLE)],
        check=True,
        capture_output=True,
    )
    process_s = time.perf_counter() - start

    regions = 100 if quick else 1000
    return [
        Row(
            "verify: lookup example vs bare YAML load",
            verify_s * 1e3,
            "ms",
            baseline=load_s * 1e3,
            target=6,
        ),
        Row(
            f"verify: {regions} regions vs bare YAML load",
            many_verify * 1e3,
            "ms",
            baseline=many_load * 1e3,
            target=6,
        ),
        Row(
            "verify: refuse billion laughs (10^9 nodes) vs verify example",
            bomb_s * 1e3,
            "ms",
            baseline=verify_s * 1e3,
            target=1,
        ),
        Row("regions verify: cold process", process_s, "s", target=2.0),
    ]
