"""Deterministic delivery changed no answer that did not depend on timing.

``tests/fixtures/answers.json`` was written by ``tests/answers.py`` with the engine from before
deliveries followed plan order; every example and imported seed workflow still gives the same
outputs and the same stored requests and replies per region (on the scripted backend).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from answers import all_answers

GOLDEN = Path(__file__).parent / "fixtures" / "answers.json"


@pytest.fixture(scope="module")
def now() -> dict[str, object]:
    return all_answers()


def test_every_example_and_seed_workflow_is_covered(now: dict[str, object]) -> None:
    names = set(json.loads(GOLDEN.read_text(encoding="utf-8")))
    assert set(now) == names
    assert {n for n in names if n.startswith("seed-")} and {
        n for n in names if n.startswith("example-")
    }


@pytest.mark.parametrize("name", sorted(json.loads(GOLDEN.read_text(encoding="utf-8"))))
def test_answers_are_unchanged(now: dict[str, object], name: str) -> None:
    before = json.loads(GOLDEN.read_text(encoding="utf-8"))[name]
    assert now[name] == before
    assert before["outputs"] or any(
        s["requests"] or s["replies"] for s in before["states"].values()
    ), "a workflow that answers nothing proves nothing"
