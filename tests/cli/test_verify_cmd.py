"""``regions verify`` / ``regions schema`` / ``regions graph`` from the command line: output
formats, exit codes (0 valid, 1 errors, 2 usage or I/O), no tracebacks, fast start-up."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from clirun import regions, regions_argv

from regions_cli.cli.app import app
from regions_cli.workflow.schema import schema_text

FIXTURES = Path(__file__).resolve().parents[1] / "workflow" / "fixtures"
VALID = FIXTURES / "valid" / "full.yaml"
IMPLIED = FIXTURES / "valid" / "implied-default.yaml"
ERRORS = FIXTURES / "rules" / "unknown-region.yaml"
WARNINGS = FIXTURES / "rules" / "unused-region.yaml"
UNSET = FIXTURES / "rules" / "unset-variable.yaml"
ENV = {"TEST_API_KEY": "sk-cli-secret"}


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ``regions`` here sees the key the fixtures name, and not the variable left unset."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("REGIONS_TEST_UNSET", raising=False)


def test_valid_file_exits_0() -> None:
    code, out, err = regions("verify", str(VALID), in_process=True)
    assert (code, out, err) == (0, "No problems found in 1 file.\n", "")


def test_warnings_alone_exit_0() -> None:
    code, out, _ = regions("verify", str(WARNINGS), in_process=True)
    assert code == 0
    assert "warning[unused-region]" in out and out.endswith("0 errors, 1 warning in 1 file.\n")


def test_errors_exit_1_and_every_file_is_reported() -> None:
    code, out, _ = regions("verify", str(VALID), str(ERRORS), str(WARNINGS), in_process=True)
    assert code == 1
    assert out.count("error[unknown-region]") == 6
    assert "warning[unused-region]" in out
    assert out.endswith("6 errors, 1 warning in 3 files.\n")


def test_strict_turns_unset_variables_into_errors() -> None:
    assert regions("verify", str(UNSET), in_process=True).code == 0
    code, out, _ = regions("verify", "--strict", str(UNSET), in_process=True)
    assert code == 1 and "error[unset-variable]" in out


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_unreadable_paths_exit_2(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "nope.yaml" if kind == "missing" else tmp_path
    code, out, _ = regions("verify", str(VALID), str(path), str(ERRORS), in_process=True)
    assert code == 2
    assert f"{path}: error[io-error] cannot read {path}" in out
    assert "error[unknown-region]" in out  # the other files are still checked


BAD_FILES = {
    # name: (content, exit code, rule, words of the message)
    "binary.yaml": (bytes(range(256)) * 8, 1, "bad-encoding", "not valid UTF-8"),
    "empty.yaml": (b"", 1, "not-a-mapping", "the file is empty"),
    "list.yaml": (b"- a\n- b\n", 1, "not-a-mapping", "is a list"),
    "big.yaml": (b"a: " + b"x" * (2 * 1024 * 1024) + b"\n", 1, "file-too-large", "1 MiB"),
}


@pytest.mark.parametrize("name", BAD_FILES)
def test_bad_files_get_one_finding_and_no_traceback(tmp_path: Path, name: str) -> None:
    content, exit_code, rule, words = BAD_FILES[name]
    path = tmp_path / name
    path.write_bytes(content)
    code, out, _ = regions("verify", str(path), in_process=True)
    assert code == exit_code
    first = out.splitlines()[0]
    assert first.startswith(f"{path}") and f"error[{rule}]" in first and words in first
    assert out.endswith("1 error, 0 warnings in 1 file.\n")


def test_control_characters_of_a_binary_file_are_not_echoed(tmp_path: Path) -> None:
    path = tmp_path / "escape.yaml"
    path.write_bytes(b"a: \x1b]0;pwned\x07\x1b[2J\xff\n")
    code, out, _ = regions("verify", str(path), in_process=True)
    assert code == 1 and "error[bad-encoding]" in out
    assert "\x1b" not in out and "\x07" not in out  # shown as visible symbols instead
    assert "\u241b]0;pwned\u2407\u241b[2J" in out


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX only")
def test_a_named_pipe_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer forever
    code, out, _ = regions("verify", str(fifo), in_process=True)
    assert code == 2 and "error[io-error]" in out and "not a regular file" in out


def test_a_file_without_read_permission_exits_2() -> None:
    """The file exists but may not be read: an io-error among the other files' findings.

    Root reads any file, so as root the check runs as user nobody (via util-linux setpriv).
    """
    with tempfile.TemporaryDirectory() as folder:
        os.chmod(folder, 0o711)  # nobody may pass through, not list
        locked = Path(folder) / "locked.yaml"
        locked.write_bytes(VALID.read_bytes())
        locked.chmod(0)
        command = regions_argv("verify", locked, ERRORS)
        if os.geteuid() == 0:
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                pytest.skip("running as root without setpriv: no way to make a file unreadable")
            command = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *command]
            probe = [*command[:4], sys.executable, "-c", "import regions_cli"]
            if subprocess.run(probe, capture_output=True, cwd="/", check=False).returncode:
                pytest.skip("user nobody cannot run this Python (its files are not readable)")
        result = subprocess.run(
            command, capture_output=True, text=True, cwd="/", timeout=60, check=False
        )
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout.startswith(f"{locked}: error[io-error] cannot read {locked}: Permission")
    assert "error[unknown-region]" in result.stdout  # the other file is still checked
    assert "Traceback" not in result.stdout + result.stderr


def test_usage_errors_exit_2() -> None:
    assert regions("verify", in_process=True).code == 2
    assert regions("verify", "--format", "xml", str(VALID), in_process=True).code == 2
    assert regions("graph", str(VALID), "--format", "png", in_process=True).code == 2


def test_json_format() -> None:
    code, out, _ = regions("verify", "--format", "json", str(ERRORS), in_process=True)
    assert code == 1
    items = json.loads(out)
    assert {item["rule"] for item in items} == {"unknown-region"}
    assert {"file", "line", "col", "rule", "severity", "message", "hint"} <= set(items[0])


def test_sarif_format() -> None:
    code, out, _ = regions("verify", "-f", "sarif", str(ERRORS), str(WARNINGS), in_process=True)
    log = json.loads(out)
    assert code == 1 and log["version"] == "2.1.0"
    assert len(log["runs"][0]["results"]) == 7


def test_github_format() -> None:
    code, out, _ = regions("verify", "-f", "github", str(WARNINGS), in_process=True)
    assert code == 0
    assert out.startswith(
        f"::warning file={WARNINGS},line=12,col=3,endLine=12,endColumn=4,title=unused-region::"
    )


def test_schema_prints_the_schema() -> None:
    code, out, err = regions("schema", in_process=True)
    assert code == 0 and out == schema_text() and err == ""
    assert json.loads(out)["title"] == "regions workflow"


def test_graph_mermaid_and_dot() -> None:
    code, out, _ = regions("graph", str(IMPLIED), in_process=True)
    assert code == 0 and out.startswith("flowchart LR\n")
    code, out, _ = regions("graph", "--format", "dot", str(IMPLIED), in_process=True)
    assert code == 0 and out.startswith('digraph "implied" {')


def test_graph_of_an_invalid_workflow_reports_and_exits_1(tmp_path: Path) -> None:
    result = regions("graph", ERRORS, in_process=True)
    assert result.code == 1
    assert "error[unknown-region]" in result.output and "flowchart" not in result.output
    assert regions("graph", tmp_path / "x.yaml", in_process=True).code == 2


def test_help_lists_every_command_on_one_line() -> None:
    import typer.main

    result = regions("--help", env={"COLUMNS": "80", "TERMINAL_WIDTH": "80"}, in_process=True)
    assert result.code == 0
    lines = result.lines
    start = lines.index("Commands:")
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    section = lines[start + 1 : end]
    wrapped = [row.strip() for row in section if row.startswith("   ")]  # no name: a 2nd line
    assert wrapped == [], "a command summary wraps at 80 columns"
    assert all(len(row) <= 80 for row in section)
    rows = dict(row.strip().split(maxsplit=1) for row in section)
    assert set(rows) == set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    for name, summary in rows.items():
        assert summary.endswith(".") and "…" not in summary, f"{name}: {summary!r}"


def test_version() -> None:
    from regions_cli import __version__

    version = regions("--version", in_process=True)
    assert (version.code, version.out, version.err) == (0, f"regions {__version__}\n", "")
    version = regions("--version")
    assert (version.code, version.out) == (0, f"regions {__version__}\n")


def test_real_process_exit_codes_and_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"version: 1\nname: [\n\xff")
    results = {
        "valid": regions("verify", str(VALID)),
        "errors": regions("verify", str(ERRORS)),
        "bad": regions("verify", str(bad)),
        "missing": regions("verify", str(tmp_path / "missing.yaml")),
        "usage": regions("verify", "--format", "nope", str(VALID)),
    }
    assert {k: r.code for k, r in results.items()} == {
        "valid": 0,
        "errors": 1,
        "bad": 1,
        "missing": 2,
        "usage": 2,
    }
    for result in results.values():
        assert "Traceback" not in result.output
    assert "sk-cli-secret" not in "".join(r.out + r.err for r in results.values())
    assert "error[bad-encoding]" in results["bad"].out
    assert "\033[" not in results["errors"].out  # not a terminal: no colour


#: What `regions --help` and `regions verify` must not load: heavy third-party packages and the
#: parts of regions that pull them in.
HEAVY = {"numpy", "httpx", "xllamacpp", "sqlite_utils", "onnxruntime", "tokenizers"}
HEAVY_OURS = ("regions_cli.engine", "regions_cli.llm", "regions_cli.rag", "regions_cli.build")


@pytest.mark.parametrize("args", [["--help"], ["verify", str(VALID)]], ids=["help", "verify"])
def test_start_up_imports_nothing_heavy(args: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "regions_cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **ENV},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    modules = {
        line.split("|")[-1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "regions_cli.cli.verify_cmd" in modules and "typer" in modules  # the probe works
    assert {name.split(".")[0] for name in modules}.isdisjoint(HEAVY)
    assert not [name for name in modules if name.startswith(HEAVY_OURS)]
    if args == ["--help"]:
        assert not [name for name in modules if name.startswith(("ruamel", "jsonschema"))]
    else:
        assert "ruamel.yaml" in modules and "regions_cli.workflow.rules" in modules


RUN_WOULD_REJECT = """\
version: 1
name: rejected
llms:
  default: {backend: openai, base_url: "${REGIONS_TEST_UNSET}", model: m}
regions:
  A:
    type: Region
    task: Answer.
    prompts: {system: "Cost 5$ total.", make_replies: "Do $tsak now."}
inject:
  - {to: A, content: "Who?"}
plan:
  - chains: {main: [A.make_replies]}
"""


def test_verify_rejects_what_run_would_reject_at_build_time(tmp_path: Path) -> None:
    path = tmp_path / "rejected.yaml"
    path.write_text(RUN_WOULD_REJECT, encoding="utf-8")
    verified = regions("verify", str(path))
    assert verified.code == 1, verified.out
    out = verified.out
    assert f"{path}:4:41: error[unset-variable] environment variable REGIONS_TEST_UNSET" in out
    assert "warning[unset-variable]" not in out  # the error replaces the warning
    assert f"{path}:9:30: error[bad-prompt-template]" in out and "starts no placeholder" in out
    assert f"{path}:9:59: error[bad-prompt-template]" in out
    assert "unknown placeholder $tsak (did you mean $task?)" in out
    assert out.endswith("3 errors, 0 warnings in 1 file.\n")
    # `run` stops on the same findings before it builds anything.
    ran = regions("run", "--no-live", str(path))
    assert ran.code == 1 and "Traceback" not in ran.err
    assert "error[bad-prompt-template]" in ran.out + ran.err


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        # A quote never closed: reported where it opens, not past the end of the file.
        ('version: 1\nname: x\nregions:\n  A: {type: Region, task: "abc}\n', "4:27", 'closing "'),
        # ...and one that swallows the lines below it until the next quote.
        (
            'version: 1\nname: x\nregions:\n  A:\n    type: Region\n    task: "Answer\n'
            'inject:\n  - {to: A, content: "Who?"}\n',
            "6:11",
            'runs on to line 8; is its closing " missing?',
        ),
        # An indented line after a comment at the top: the indented line is the mistake.
        ("# A workflow.\n  name: x\nversion: 1\n", "2:3", "this first key is indented"),
        # A key indented under a comment, deeper than its block.
        (
            "version: 1\nregions:\n  A:\n    type: Region\n    # the task\n      task: t\n",
            "6:7",
            "a key cannot start here",
        ),
    ],
    ids=["unclosed-quote", "runaway-quote", "indented-first-key", "indented-key"],
)
def test_syntax_errors_are_at_the_mistake_in_plain_words(
    tmp_path: Path, text: str, where: str, words: str
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    result = regions("verify", str(path))
    assert result.code == 1
    first = result.out.splitlines()[0]
    assert first.startswith(f"{path}:{where}: error[yaml-syntax] "), first
    assert words in first
    assert "<" not in first and "('" not in first  # no parser token names, no Python tuples


def test_an_unset_cassette_is_an_error_as_it_is_for_run(tmp_path: Path) -> None:
    path = tmp_path / "tape.yaml"
    path.write_text(
        RUN_WOULD_REJECT.replace(
            '{backend: openai, base_url: "${REGIONS_TEST_UNSET}", model: m}',
            '{backend: replay, cassette: "${REGIONS_TEST_UNSET}"}',
        ).replace('    prompts: {system: "Cost 5$ total.", make_replies: "Do $tsak now."}\n', ""),
        encoding="utf-8",
    )
    verified = regions("verify", str(path))
    assert verified.code == 1
    expected = (
        f"{path}:4:41: error[unset-variable] environment variable REGIONS_TEST_UNSET is not "
        "set, and 'cassette' in llm 'default' cannot do without it"
    )
    assert expected in verified.out, verified.out
    assert regions("run", "--no-live", str(path)).code == 1
