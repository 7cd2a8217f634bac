"""The small words of the output, as a user sees them in real processes: counts in the
singular when there is one, `rag query` saying the best score when nothing reaches the
threshold, the empty-file hint and the `$schema` line of `regions import` naming only what a
pip user has."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from clirun import regions

FIXTURES = Path(__file__).parent / "fixtures"
#: A registry of the original framework (as its minimal_regions.json).
REGISTRY = """[
  {"name": "foo", "type": "Region", "task": "Important job", "connections": {"bar": "Does things"}},
  {"name": "bar", "type": "RAGRegion", "task": "Does things", "connections": {}}
]"""

ONE_CHUNK = """\
version: 1
name: one
embedders:
  default: {backend: hash, dimensions: 64}
rags:
  facts:
    path: facts.db
    documents:
      - {text: "Zebras are striped."}
regions:
  Facts: {type: RAGRegion, task: Provide facts., rag: facts}
plan:
  - chains: {a: [Facts.make_replies]}
"""


def test_one_of_a_thing_is_singular(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "ask_answer.yaml", tmp_path)
    ran = regions("run", "--no-live", tmp_path / "ask_answer.yaml")
    assert ran.code == 0, ran.err
    assert "asked 1 question\n" in ran.out and "answered 1 request\n" in ran.out
    assert "(+1 line)" in ran.out
    (tmp_path / "one.yaml").write_text(ONE_CHUNK, encoding="utf-8")
    ingested = regions("rag", "ingest", tmp_path / "one.yaml", "facts")
    assert ingested.code == 0, ingested.err
    assert "; 1 chunk written; the store holds 1 chunk in 1 document (" in ingested.out
    # No "1 requests", "1 chunks", "1 lines" anywhere.
    everything = ran.out + ran.err + ingested.out + ingested.err
    assert re.search(r"(?<![\d,.])1 [a-z]+s\b", everything.replace("1 steps ok", "")) is None


def test_rag_query_below_the_threshold_says_the_best_score(tmp_path: Path) -> None:
    (tmp_path / "one.yaml").write_text(ONE_CHUNK, encoding="utf-8")
    best = regions("rag", "query", tmp_path / "one.yaml", "facts", "zebras", "--json")
    score = float(re.search(r'"score": ([\d.]+)', best.out).group(1))  # type: ignore[union-attr]
    done = regions("rag", "query", tmp_path / "one.yaml", "facts", "zebras", "-t", "1.5")
    assert done.code == 0
    assert done.out == (
        f"facts: no chunk scores >= 1.5; the best scores {score:.3f} (lower it with --threshold)\n"
    )


def test_the_empty_file_hint_names_no_folder_of_the_repository(tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text("", encoding="utf-8")
    done = regions("verify", tmp_path / "empty.yaml")
    assert done.code == 1 and "error[not-a-mapping] the file is empty" in done.out
    assert "hint: start with `version: 1`" in done.out
    assert "workflows/" not in done.out


def test_import_names_a_schema_the_user_has(tmp_path: Path) -> None:
    registry = tmp_path / "minimal_regions.json"
    registry.write_text(REGISTRY, encoding="utf-8")
    # Nothing around: the schema beside the file, and how to write it.
    out = tmp_path / "flows" / "minimal.yaml"
    done = regions("import", registry, "-o", out, cwd=tmp_path)
    assert done.code == 0, done.err
    first = out.read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=workflow.schema.json"
    assert f"regions schema > {out.parent / 'workflow.schema.json'}" in done.err
    assert "site-packages" not in out.read_text(encoding="utf-8")
    # A project with its schema in schemas/ (as `regions schema` writes it): a relative path.
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "workflow.schema.json").write_text(regions("schema").out)
    again = regions("import", registry, "-o", out, "--force", cwd=tmp_path)
    assert again.code == 0 and "regions schema >" not in again.err
    first = out.read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=../schemas/workflow.schema.json"
    assert regions("verify", out).code == 0
