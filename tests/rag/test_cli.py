"""`regions rag ...` end to end: real workflow files, real stores, exit codes, one-line errors."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
from clirun import regions

WORKFLOW = """\
version: 1
name: ragcli
embedders:
  default: {backend: hash, dimensions: 64}
rags:
  facts:
    path: facts.db
    chunk_size: 200
    overlap: 20
    documents:
      - {file: history.json}
      - {text: "Zebras are striped. Kiwis are birds.", actors: [Narrator]}
regions:
  Facts: {type: RAGRegion, task: Provide facts., rag: facts}
plan:
  - chains: {a: [Facts.make_replies]}
"""


@pytest.fixture
def wf(tmp_path: Path, seed_docs: Path) -> Path:
    shutil.copy(seed_docs / "demo_historical_docs.json", tmp_path / "history.json")
    shutil.copy(seed_docs / "demo_biography_docs.json", tmp_path / "bio.json")
    path = tmp_path / "wf.yaml"
    path.write_text(WORKFLOW, encoding="utf-8")
    return path


#: ``regions rag ARGS`` in this process: many quick cases, one process start would cost more.
rag = partial(regions, "rag", in_process=True)


def test_ingest_query_stats_delete(wf: Path) -> None:
    code, out, _ = rag("ingest", wf, "facts")
    assert code == 0 and "2 added, 0 replaced, 0 unchanged; 6 chunks written" in out
    code, out, _ = rag("ingest", wf, "facts", wf.parent / "bio.json", "-a", "Bio")
    assert code == 0 and "1 added, 0 replaced, 2 unchanged" in out and "10 chunks" in out

    code, out, _ = rag("query", wf, "facts", "zebra code name", "-k", "2")
    assert code == 0
    assert "score" in out and "actors" in out and "Razzle Dazzle" in out and "Zebra Forces" in out
    code, out, _ = rag("query", wf, "facts", "zebra code name", "-k", "3", "--json")
    hits = [json.loads(line) for line in out.splitlines()]
    assert len(hits) == 3 and hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"]
    code, out, _ = rag("query", wf, "facts", "zebra", "--actor", "Bio", "--json")
    assert code == 0 and all("Bio" in json.loads(line)["actors"] for line in out.splitlines())
    code, out, _ = rag("query", wf, "facts", "zebra", "--threshold", "1.5")
    assert code == 0 and "no chunk scores >= 1.5" in out

    code, out, _ = rag("stats", wf, "facts")
    assert code == 0 and "chunks     10" in out and "hash-v1 (64 dimensions)" in out
    identity = '["Zebras are striped. Kiwis are birds.", ["Narrator"]]'
    inline = "text-" + hashlib.sha256(identity.encode()).hexdigest()[:12]
    assert "bio.json" in out and inline in out
    stats = json.loads(rag("stats", wf, "facts", "--json").out)
    assert stats["documents"] == {"bio.json": 4, "history.json": 5, inline: 1}

    code, out, err = rag("delete", wf, "facts", "--chunk", str(hits[0]["id"]), "--chunk", "999")
    assert code == 1 and "deleted 1 of 2 chunks" in out and "1 of the chunk ids" in err
    code, out, err = rag("delete", wf, "facts", "--document", inline)
    assert code == 0 and "(1 chunk)" in out and "will be ingested again" in err
    assert json.loads(rag("stats", wf, "facts", "--json").out)["chunks"] == 8


def test_usage_errors_exit_2_with_one_line(wf: Path, tmp_path: Path) -> None:
    code, _, err = rag("query", wf, "nope", "x")
    assert (
        code == 2 and err.strip() == f"error: {wf}: no RAG store 'nope' under rags: (known: facts)"
    )
    code, _, err = rag("delete", wf, "facts")
    assert code == 2 and "either --chunk" in err
    code, _, err = rag("stats", tmp_path / "missing.yaml", "facts")
    assert code == 2 and "missing.yaml" in err and len(err.strip().splitlines()) == 1


def test_store_errors_exit_1_with_one_line(wf: Path) -> None:
    code, _, err = rag("stats", wf, "facts")
    assert code == 1 and "not built yet" in err
    (wf.parent / "facts.db").write_text("not a database")
    for command in ("query", "stats", "ingest"):
        code, out, err = rag(command, wf, "facts", *(["x"] if command == "query" else []))
        assert code == 1, out
        assert (
            err.strip()
            == f"error: {wf.parent / 'facts.db'}: not a sqlite database (not a regions RAG store)"
        )
    (wf.parent / "facts.db").unlink()
    (wf.parent / "history.json").write_text("[oops")
    code, _, err = rag("ingest", wf, "facts")
    assert code == 1 and "history.json:1:2: invalid JSON" in err


def test_the_installed_command_runs_without_a_traceback(wf: Path) -> None:
    regions = Path(sys.executable).with_name("regions")
    command = [str(regions)] if regions.exists() else [sys.executable, "-m", "regions_cli"]
    done = subprocess.run(
        [*command, "rag", "query", str(wf), "facts", "striped birds", "-k", "1", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["content"] == "Zebras are striped. Kiwis are birds."
    broken = subprocess.run(
        [*command, "rag", "delete", str(wf), "facts", "--document", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert broken.returncode == 1 and "Traceback" not in broken.stderr
    assert "no document named 'nope'" in broken.stderr


def test_by_hand_bad_inputs_get_one_line_and_the_right_code(wf: Path, tmp_path: Path) -> None:
    code, _, err = rag("query", tmp_path / "nothere.yaml", "facts", "x")
    assert (code, err) == (2, f"error: {tmp_path / 'nothere.yaml'}: no such workflow file\n")
    code, _, err = rag("query", wf, "facts", "   ")
    assert (code, err) == (2, "error: the query text is empty\n")
    (tmp_path / "facts.db").mkdir()
    code, _, err = rag("ingest", wf, "facts")
    assert (code, err) == (
        1,
        f"error: {tmp_path / 'facts.db'}: is a folder, not a RAG store file\n",
    )
    (tmp_path / "facts.db").rmdir()
    foreign = sqlite3.connect(tmp_path / "facts.db")
    foreign.execute("CREATE TABLE chunks (id INTEGER PRIMARY KEY, content TEXT)")
    foreign.close()
    code, _, err = rag("query", wf, "facts", "x")
    assert code == 1 and err.count("\n") == 1 and "another program (tables: chunks)" in err


def test_a_query_on_an_empty_store_says_so(wf: Path) -> None:
    lines = WORKFLOW.splitlines(keepends=True)
    kept = "".join(line for line in lines if not line.startswith("      - "))
    wf.write_text(kept.replace("documents:", "documents: []"))
    code, out, err = rag("query", wf, "facts", "zebra")
    assert code == 0 and out == ""
    assert err == (
        f"facts: the store holds no chunks yet; add documents with "
        f"`regions rag ingest {wf} facts FILES...`\n"
    )


def test_ingest_names_inline_texts_left_behind_by_an_edit(wf: Path) -> None:
    assert rag("ingest", wf, "facts").code == 0
    wf.write_text(WORKFLOW.replace("Kiwis are birds.", "Kiwis are flightless birds."))
    code, out, err = rag("ingest", wf, "facts")
    assert code == 0 and "1 added, 0 replaced, 1 unchanged" in out
    [old] = [n for n in json.loads(rag("stats", wf, "facts", "--json").out)["documents"]
             if n.startswith("text-") and n in err]  # fmt: skip
    assert err.startswith("note: 1 inline text no longer under rags.facts.documents")
    assert rag("delete", wf, "facts", "--document", old).code == 0
    assert rag("ingest", wf, "facts").err == ""  # nothing left behind
