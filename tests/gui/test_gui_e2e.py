"""The flow editor end to end: `node gui/e2e/run.mjs` drives Debian's chromium (playwright-core)
against a real `regions gui` process: opens every workflows/ example, edits and saves a copy of
one (checked with `regions verify`), and watches a live run (see the script's header).

Needs node, `npm ci` in gui/ and /usr/bin/chromium. Without them the test is skipped, unless
REGIONS_GUI_E2E=1 (as in CI), where a missing piece is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def _missing() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed"
    if not (ROOT / "gui" / "node_modules" / "playwright-core").is_dir():
        return "gui/node_modules is missing (run `npm ci` in gui/)"
    if not Path(CHROMIUM).is_file():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    return None


@pytest.mark.gui
def test_edit_save_verify_and_run_in_chromium() -> None:
    missing = _missing()
    if missing is not None:
        if os.environ.get("REGIONS_GUI_E2E") == "1":
            pytest.fail(missing)
        pytest.skip(missing)
    result = subprocess.run(
        ["node", "e2e/run.mjs"],
        cwd=ROOT / "gui",
        env={**os.environ, "REGIONS_PYTHON": sys.executable, "CHROMIUM": CHROMIUM},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "e2e: ok" in result.stdout
    examples = [f"example-{path.stem}.png" for path in sorted((ROOT / "workflows").glob("*.yaml"))]
    shots = ["01-opened.png", "02-edited.png", "03-problems.png", "04-run.png", "07-states.png"]
    for shot in [*shots, "08-wait.png", *examples]:
        assert (ROOT / "gui" / "test-results" / shot).stat().st_size > 10_000, shot
