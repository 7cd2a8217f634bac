"""CI installs regions exactly as the README tells a newcomer: the quick start's commands are in
``.ci/run`` word for word, and ``.ci/run`` sets no build flag or environment a newcomer would
not have (what made a green CI hide a quick start that crashed on AVX-512 machines)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
CI = (ROOT / ".ci" / "run").read_text(encoding="utf-8")

#: Variables `.ci/run` may export: quiet apt and pip, and the e2e test's strictness.
ALLOWED_ENV = {"DEBIAN_FRONTEND", "PIP_DISABLE_PIP_VERSION_CHECK", "REGIONS_GUI_E2E"}


def quick_start_commands() -> list[str]:
    section = README.split("## Quick start", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert block, "the quick start has no bash block"
    commands = [line.split("  #", 1)[0].strip() for line in block.group(1).splitlines()]
    return [c for c in commands if c]


def test_the_quick_start_is_two_commands() -> None:
    commands = quick_start_commands()
    assert len(commands) == 2
    assert commands[0].startswith('pip install ".[local]" && regions run ')
    assert "pytest" in commands[1]


def test_ci_runs_the_quick_start_commands_word_for_word() -> None:
    ci_lines = {line.strip() for line in CI.splitlines()}
    for command in quick_start_commands():
        assert command in ci_lines, f".ci/run does not run the README's `{command}`"


def test_ci_sets_no_build_flags_or_environment() -> None:
    exported = set()
    for line in CI.splitlines():
        line = line.split("#", 1)[0]
        for name in re.findall(r"\bexport\s+((?:[A-Z_][A-Z0-9_]*=\S*\s*)+)", line):
            exported |= set(re.findall(r"([A-Z_][A-Z0-9_]*)=", name))
    assert exported <= ALLOWED_ENV, f".ci/run exports {sorted(exported - ALLOWED_ENV)}"
    for flag in ("CMAKE_ARGS", "FORCE_CMAKE", "--config-settings", "-C ", "--no-binary"):
        assert flag not in CI, f".ci/run uses {flag!r}, which a newcomer would not"
