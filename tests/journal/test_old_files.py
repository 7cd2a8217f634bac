"""Run files and cassettes written before deliveries followed plan order (run file version 1,
cassette version 1; the fixtures in ``fixtures/v1`` were written by that regions): ``show``,
``runs`` and ``replay`` still read them; continuing such a run is refused with one line that
says why and what to do; an old cassette still answers what it has, and a miss says to record
again."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from journal_helpers import FIXTURES
from test_runs_cli import regions

V1 = FIXTURES / "v1"


@pytest.fixture
def old(tmp_path: Path) -> Path:
    """A folder with the workflow and copies of the version-1 files (they get written to)."""
    shutil.copy(FIXTURES / "ask_answer.yaml", tmp_path / "ask_answer.yaml")
    for path in V1.iterdir():
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def test_the_fixtures_are_version_1() -> None:
    for name in ("v1-partial.db", "v1-finished.db"):
        conn = sqlite3.connect(V1 / name)
        (version,) = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        conn.close()
        assert version == "1"
    assert (V1 / "v1.cassette.jsonl").read_text().startswith('{"cassette": 1,')


def test_show_replay_and_runs_read_an_old_run_file(old: Path) -> None:
    code, out, err = regions("show", str(old / "v1-finished.db"))
    assert code == 0 and "ask_answer" in out, err
    code, out, err = regions("replay", str(old / "v1-finished.db"), "--json")
    assert code == 0, err
    assert [json.loads(line)["kind"] for line in out.splitlines()][-1] == "run_finished"
    code, out, err = regions("replay", str(old / "v1-finished.db"), "--no-live")
    assert code == 0, err
    assert "The Zebras were led by Ada." in out
    assert "\ncalls      2\n" in out  # counted from the recorded calls
    code, out, err = regions("runs", str(old))
    assert code == 0 and "v1-finished" in out and "v1-partial" in out, err


@pytest.mark.parametrize(
    ("args", "exit_code"),
    [
        (("run", "ask_answer.yaml", "--resume", "v1-partial.db", "--no-live"), 2),
        (("step", "ask_answer.yaml", "--run", "v1-partial.db"), 2),
        (("inject", "--run", "v1-partial.db", "--to", "Historian", "More, please."), 1),
    ],
    ids=["resume", "step", "inject"],
)
def test_continuing_an_old_run_is_refused_in_one_line(
    old: Path, args: tuple[str, ...], exit_code: int
) -> None:
    before = (old / "v1-partial.db").read_bytes()
    code, _, err = regions(*args, cwd=old)
    assert code == exit_code, err
    assert len(err.strip().splitlines()) == 1
    assert "recorded by an earlier regions (run file version 1)" in err
    assert "start a new run" in err
    assert (old / "v1-partial.db").read_bytes() == before  # nothing was written


def test_an_old_cassette_still_answers_what_it_recorded(old: Path) -> None:
    code, out, err = regions(
        "run", "ask_answer.yaml", "--replay", "v1.cassette.jsonl", "--no-live", cwd=old
    )
    assert code == 0, err
    assert "\nEcho: Who led the Zebras?\n" in out  # recorded with --llm default=scripted


def test_an_old_cassette_that_cannot_match_says_to_record_again(old: Path) -> None:
    workflow = old / "ask_answer.yaml"
    workflow.write_text(workflow.read_text().replace("Know the facts about the Zebras.", "Know."))
    code, out, _ = regions(
        "run", "ask_answer.yaml", "--replay", "v1.cassette.jsonl", "--no-live", cwd=old
    )
    assert code == 3
    (failed,) = [line for line in out.splitlines() if line.startswith("failed     ")]
    assert "recorded by an earlier regions (cassette version 1)" in failed
    assert failed.endswith("record it again with `regions run --record v1.cassette.jsonl`")
