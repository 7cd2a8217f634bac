"""What each example and imported seed workflow answers on the scripted backend.

`answers` runs a workflow in a real ``regions run`` process and returns its outputs (messages to
external addresses, in order) and every region's stored requests and replies (source and text).
``tests/fixtures/answers.json`` holds what the engine answered before deliveries followed plan
order (written by running this file as a script against that engine); `test_answers.py`
checks that nothing changed where the result did not depend on timing. Examples added since
(triage, subworkflow, and the control-flow and tool examples) were recorded with the engine
that added them; interview's answers are those up to its wait.

    python tests/answers.py OUT.json   # with the regions to measure importable
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from clirun import regions

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / "workflows"
SEED = ROOT.parent / "shared" / "seed-examples"
#: The seed examples as registry + plan pairs (paths relative to SEED).
SEED_PAIRS = {
    "lookup": ("lookup/lookup_regions.json", "lookup/lookup_executions.json"),
    "lit_crit": ("lit_crit/lit_demo_regions.json", "lit_crit/lit_demo_executions.json"),
    "double_hegel": (
        "double_hegel/double_hegel_regions.json",
        "double_hegel/double_hegel_executions.json",
    ),
}
# (The refine seed is left out: its plan gets no input, so it answers nothing; the refine
# example, made from it, has a question.)


def answers(workflow: Path) -> dict[str, Any]:
    """Run `workflow` (in its own folder) with every LLM scripted; its outputs and states."""
    import sqlite3

    run_file = workflow.parent / f"{workflow.stem}-answers.db"
    done = regions(
        "run",
        workflow.name,
        "--llm",
        "default=scripted",
        "--json",
        "--run",
        run_file.name,
        cwd=workflow.parent,
        timeout=300,
    )
    if done.code not in (0, 5):  # 5: it stopped at a wait for a person (its answers so far)
        raise RuntimeError(f"{workflow.name}: exit {done.code}: {done.err}")
    events = [json.loads(line) for line in done.out.splitlines()]
    outputs = [
        [e["message"]["source"], e["message"]["destination"], e["message"]["content"]]
        for e in events
        if e["kind"] == "message" and e["delivery"] == "output"
    ]
    conn = sqlite3.connect(run_file)
    states: dict[str, Any] = {}
    for region, state in conn.execute(
        "SELECT region, state FROM states s WHERE position = "
        "(SELECT MAX(position) FROM states WHERE region = s.region)"
    ):
        data = json.loads(state)
        states[region] = {
            kind: sorted([e["source"], e["content"]] for e in data.get(kind) or ())
            for kind in ("requests", "replies")
        }
    conn.close()
    return {"outputs": outputs, "states": states}


def example_copies(folder: Path) -> dict[str, Path]:
    """Every example workflow and imported seed workflow, written into `folder`."""
    shutil.copytree(WORKFLOWS, folder / "workflows", ignore=shutil.ignore_patterns(".regions"))
    out = {f"example-{p.stem}": p for p in sorted((folder / "workflows").glob("*.yaml"))}
    for name, files in SEED_PAIRS.items():
        target = folder / "workflows" / f"seed-{name}.yaml"
        done = regions(
            "import", *(str(SEED / f) for f in files), "-o", str(target), cwd=folder, timeout=300
        )
        if done.code != 0:
            raise RuntimeError(f"import {name}: {done.err}")
        out[f"seed-{name}"] = target
    return out


def all_answers() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        return {name: answers(path) for name, path in example_copies(Path(tmp)).items()}


if __name__ == "__main__":
    Path(sys.argv[1]).write_text(
        json.dumps(all_answers(), indent=1, sort_keys=True, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
