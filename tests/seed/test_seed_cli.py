"""The ``regions import`` and ``regions export`` commands: files, messages and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clirun import regions
from ruamel.yaml import YAML
from seed_files import PAIRS, ROOT, STATES


def _safe(text: str) -> object:
    return YAML(typ="safe").load(text)


def test_import_prints_yaml_and_warns_on_stderr(seed: Path) -> None:
    result = regions("import", *(str(seed / f) for f in PAIRS["lit_crit"]), in_process=True)
    assert result.code == 0, result.err
    assert result.out.startswith("# yaml-language-server: $schema=")
    assert _safe(result.out)["name"] == "lit_demo"  # type: ignore[index]
    assert result.err.splitlines() == [
        "warning: layer 1: dropped Symbolism.make_replies, Imagery.make_replies (not in that "
        "layer's chains; the original skips them)",
        "warning: layer 3: dropped Context.make_replies, Commentate.make_replies (not in that "
        "layer's chains; the original skips them)",
    ]


def test_import_writes_a_file_that_verifies_and_never_overwrites(
    seed: Path, tmp_path: Path
) -> None:
    out = tmp_path / "sub" / "refine.yaml"
    result = regions("import", str(seed / STATES["refine"]), "-o", str(out), in_process=True)
    assert result.code == 0, result.err
    assert regions("verify", str(out), in_process=True).code == 0
    # No schema around the file: the line names one beside it (never the installed package's)
    # and stderr says how to write it.
    schema_ref = out.read_text().splitlines()[0].split("$schema=")[1]
    assert schema_ref == "workflow.schema.json"
    assert f"regions schema > {out.parent / 'workflow.schema.json'}" in result.err

    out.write_text("my edits")
    again = regions("import", str(seed / STATES["refine"]), "-o", str(out), in_process=True)
    assert again.code == 1
    assert again.err == f"{out}: exists (use --force to replace it)\n"
    assert out.read_text() == "my edits"
    forced = regions(
        "import", str(seed / STATES["refine"]), "-o", str(out), "--force", in_process=True
    )
    assert forced.code == 0
    assert out.read_text() != "my edits"


#: The issue's bad input classes, each as (registry text, plan text, the one stderr line).
_REG = [{"name": "A", "type": "Region", "task": "t"}]
BAD_INPUTS = {
    "not-json": ("[{'name': 'A'}]", None, "r.json: $: not JSON: Expecting property name"),
    "wrong-shape": (
        json.dumps(_REG),
        json.dumps({"layer_config": {"c": ["A"]}}),
        "p.json: $.layer_config: expected an array of layers, got an object",
    ),
    "unknown-region-type": (
        json.dumps([{"name": "A", "type": "MockRegion", "task": "t"}]),
        None,
        "r.json: $[0].type: unknown region type 'MockRegion'",
    ),
    "plan-names-a-missing-region": (
        json.dumps(_REG),
        json.dumps({"layer_config": [{"c": ["A", "Ghost"]}], "execution_config": [[]]}),
        "p.json: $.layer_config[0].c[1]: region 'Ghost' is not in the registry",
    ),
}


@pytest.mark.parametrize(("registry", "plan", "line"), BAD_INPUTS.values(), ids=list(BAD_INPUTS))
def test_each_bad_input_class_exits_1_with_one_line(
    tmp_path: Path, registry: str, plan: str | None, line: str
) -> None:
    files = [tmp_path / "r.json"]
    files[0].write_text(registry)
    if plan is not None:
        files.append(tmp_path / "p.json")
        files[1].write_text(plan)
    out = tmp_path / "w.yaml"
    result = regions("import", *map(str, files), "-o", str(out), in_process=True)
    assert result.code == 1
    assert result.out == ""
    assert result.err.startswith(line)
    assert result.err.count("\n") == 1
    assert not out.exists()


def test_bad_input_is_one_line_naming_file_and_path(tmp_path: Path) -> None:
    registry = tmp_path / "lookup_regions.json"
    registry.write_text(
        json.dumps(
            [
                {"name": "Historian", "type": "Region", "task": "t"},
                {"name": "Biography", "type": "RAGRegion", "task": "u"},
            ]
        )
    )
    plan = tmp_path / "lookup_executions.json"
    plan.write_text(
        json.dumps(
            {
                "layer_config": [{"chain0": ["Historian"]}, {"chain0": ["Bio"]}],
                "execution_config": [[["Historian", "make_questions"]], [["Bio", "make_replies"]]],
            }
        )
    )
    result = regions("import", str(registry), str(plan), in_process=True)
    assert result.code == 1
    assert result.out == ""
    assert result.err == (
        "lookup_executions.json: $.layer_config[1].chain0[0]: region 'Bio' is not in the registry\n"
    )
    garbage = tmp_path / "x.json"
    garbage.write_text("not json at all")
    result = regions("import", str(garbage), in_process=True)
    assert result.code == 1
    assert result.err.startswith("x.json: $: not JSON: ")
    assert len(result.err.splitlines()) == 1
    result = regions("import", str(garbage), str(garbage), str(garbage), in_process=True)
    assert result.code == 1
    assert "give REGIONS.json [PLAN.json], or one STATE.json" in result.err


def test_export_writes_both_files_and_names_what_it_drops(tmp_path: Path) -> None:
    result = regions(
        "export", str(ROOT / "workflows" / "lookup.yaml"), "-o", str(tmp_path), in_process=True
    )
    assert result.code == 0, result.err
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "lookup_executions.json",
        "lookup_regions.json",
    ]
    assert "dropped: inject: (1 message; the original injects in Python)" in result.err
    assert "dropped: rags: (historical, biography) and each RAGRegion's rag:" in result.err
    executions = json.loads((tmp_path / "lookup_executions.json").read_text())
    assert executions["execution_config"][1] == [
        ["Biography", "make_replies"],
        ["HistoricalFacts", "make_replies"],
    ]
    again = regions(
        "export", str(ROOT / "workflows" / "lookup.yaml"), "-o", str(tmp_path), in_process=True
    )
    assert again.code == 1
    assert "exists (use --force to replace it)" in again.err


def test_round_trip_through_the_commands(seed: Path, tmp_path: Path) -> None:
    first = tmp_path / "double_hegel.yaml"
    files = [str(seed / f) for f in PAIRS["double_hegel"]]
    assert regions("import", *files, "-o", str(first), in_process=True).code == 0
    assert regions("export", str(first), "-o", str(tmp_path / "out"), in_process=True).code == 0
    second = tmp_path / "again.yaml"
    exported = sorted(str(p) for p in (tmp_path / "out").iterdir())[::-1]  # regions, executions
    assert regions("import", *exported, "-o", str(second), in_process=True).code == 0
    assert _safe(second.read_text()) == _safe(first.read_text())


def test_export_refuses_invalid_and_inexpressible_workflows(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nname: bad\nregions: {}\nplan: []\n")
    result = regions("export", str(bad), "-o", str(tmp_path), in_process=True)
    assert result.code == 1
    assert "error[" in result.err
    interleaved = tmp_path / "mixed.yaml"
    interleaved.write_text(
        "version: 1\nname: mixed\nregions:\n"
        "  A: {type: Region, task: a, connections: [B]}\n"
        "  B: {type: Region, task: b}\n"
        "plan:\n  - chains:\n      c: [A.make_questions, B.make_replies, A.make_replies]\n"
    )
    result = regions("export", str(interleaved), "-o", str(tmp_path), in_process=True)
    assert result.code == 1
    assert result.err.startswith(f"{interleaved}: cannot export: layer layer-0, chain c:")
    assert not (tmp_path / "mixed_regions.json").exists()


def test_output_paths_of_the_wrong_kind(seed: Path, tmp_path: Path) -> None:
    state = str(seed / STATES["refine"])
    result = regions("import", state, "-o", str(tmp_path), in_process=True)
    assert result.code == 1
    assert result.err.startswith(f"{tmp_path}: is a folder; give the file to write")
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    result = regions(
        "export", str(ROOT / "workflows" / "hello.yaml"), "-o", str(a_file), in_process=True
    )
    assert result.code == 1
    assert (
        result.err == f"{a_file}: is a file; -o takes the folder to write the two JSON files into\n"
    )
    missing = regions("export", str(tmp_path / "nope.yaml"), "-o", str(tmp_path), in_process=True)
    assert missing.code == 2
    assert "nope.yaml" in missing.err
