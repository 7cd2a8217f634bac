"""A run file whose rows were damaged (a state that is not an object, an event that is not
JSON, a value of the wrong type) gives `show`, `show --region`, `replay` and `runs` a one-line
error with exit 2, never a traceback. Hypothesis damages one row of a real run file at a time."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from clirun import regions
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from journal_helpers import FIXTURES

#: (table, column) pairs holding data the readers parse.
TARGETS = [
    ("events", "data"),
    ("states", "state"),
    ("messages", "content"),
    ("messages", "role"),
    ("messages", "delivery_seq"),
    ("messages", "layer"),
    ("steps", "outcome"),
    ("steps", "layer"),
    ("invocations", "finished"),
    ("meta", "value"),
]

GARBAGE = st.one_of(
    st.none(),
    st.integers(-5, 5),
    st.text(max_size=20),
    st.binary(max_size=20),
    st.sampled_from(
        ['"a string"', "[1, 2]", "{}", '{"type": 3}', '{"requests": 5}', "null", "{", "[{}]"]
    ),
)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("runs")
    shutil.copy(FIXTURES / "ask_answer.yaml", folder / "ask_answer.yaml")
    done = regions("run", "ask_answer.yaml", "--run", "ok.db", cwd=folder)
    assert done.code == 0, done.err
    return folder / "ok.db"


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(target=st.sampled_from(TARGETS), row=st.integers(0, 30), value=GARBAGE)
def test_a_damaged_row_is_one_line_and_exit_2(
    finished: Path,
    tmp_path_factory: pytest.TempPathFactory,
    target: tuple[str, str],
    row: int,
    value: object,
) -> None:
    damaged = tmp_path_factory.mktemp("damaged") / "run.db"
    shutil.copy(finished, damaged)
    table, column = target
    conn = sqlite3.connect(damaged)
    rowids = [r for (r,) in conn.execute(f"SELECT rowid FROM {table} ORDER BY rowid")]
    try:
        conn.execute(
            f"UPDATE {table} SET {column} = ? WHERE rowid = ?", (value, rowids[row % len(rowids)])
        )
    except sqlite3.IntegrityError:  # NOT NULL: sqlite itself keeps this one out
        conn.close()
        return
    conn.commit()
    conn.close()
    for args in (
        ["show", str(damaged)],
        ["show", str(damaged), "--region", "Facts"],
        ["replay", str(damaged), "--no-live"],
        ["replay", str(damaged), "--json"],
        ["runs", str(damaged.parent)],
    ):
        done = regions(*args, timeout=60)
        assert "Traceback" not in done.err, (args, target, value, done.err)
        assert done.code in (0, 1, 2), (args, target, value, done.err)
        if done.code:
            assert len(done.err.strip().splitlines()) == 1, done.err


def test_a_state_that_is_not_an_object_is_named(finished: Path, tmp_path: Path) -> None:
    damaged = tmp_path / "run.db"
    shutil.copy(finished, damaged)
    conn = sqlite3.connect(damaged)
    conn.execute("UPDATE states SET state = ?", (json.dumps([1, 2]),))
    conn.commit()
    conn.close()
    done = regions("show", damaged, timeout=60)
    assert done.code == 2
    assert done.err.startswith(f"error: {damaged}: corrupt run file (")
