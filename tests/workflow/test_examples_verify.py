"""Every example under workflows/ verifies clean (an unset ${VAR} warning aside: examples may
read endpoints or keys from the environment)."""

from __future__ import annotations

from pathlib import Path

import pytest

from regions_cli.workflow.api import verify

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "workflows").glob("*.yaml"))


def test_there_are_examples() -> None:
    assert EXAMPLES, "workflows/ has no *.yaml examples"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_verifies_clean(path: Path) -> None:
    findings = [f for f in verify(path) if f.rule != "unset-variable"]
    assert findings == [], "\n".join(f"{f.location()}: {f.rule}: {f.message}" for f in findings)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_names_the_schema_for_editors(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=../schemas/workflow.schema.json"
