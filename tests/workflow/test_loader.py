"""The loader: positions, guards against hostile input, and ${VAR} interpolation."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest

from regions_cli.workflow import load
from regions_cli.workflow.load import MAX_BYTES, load_bytes, load_file, load_text


def rules_at(doc: load.Document) -> list[tuple[str, int, int]]:
    return [(f.rule, f.line, f.col) for f in doc.findings]


def test_positions_of_keys_values_and_items() -> None:
    doc = load_text("a: 1\nb:\n  c: \"x y\"\n  d: [p, 'q', {e: 1}]\n")
    assert doc.findings == []
    assert doc.data == {"a": 1, "b": {"c": "x y", "d": ["p", "q", {"e": 1}]}}
    pos = doc.positions
    assert pos.key(("b",)) == (2, 1)
    assert pos.value(("a",)) == (1, 4)
    assert pos.key(("b", "d")) == (4, 3)
    assert pos.value(("b", "d", 1)) == (4, 10)
    assert pos.key(("b", "d", 2, "e")) == (4, 16)
    # Inside a quoted string, a character offset skips the quote.
    assert pos.value(("b", "c"), 2) == (3, 9)
    # Unknown paths fall back to the nearest known ancestor.
    assert pos.value(("b", "nope", 3)) == pos.value(("b",))


def test_plain_types_only() -> None:
    doc = load_text("a: 2024-01-01\nb: &x yes\nc: *x\nd: 1.5\ne: true\nf: ~\ng: |\n  block\n")
    assert doc.data == {
        "a": "2024-01-01",
        "b": "yes",
        "c": "yes",
        "d": 1.5,
        "e": True,
        "f": None,
        "g": "block\n",
    }
    assert type(doc.data["e"]) is bool and type(doc.data["b"]) is str


def test_duplicate_key_points_at_the_second_one() -> None:
    doc = load_text("regions:\n  A: {type: Region}\n  A: {type: RAGRegion}\n")
    assert rules_at(doc) == [("duplicate-key", 3, 3)]
    assert "'A'" in doc.findings[0].message and "line 2" in doc.findings[0].message
    assert doc.data is None


@pytest.mark.parametrize(
    ("text", "rule", "pos"),
    [
        ("", "not-a-mapping", (1, 1)),
        ("# only a comment\n", "not-a-mapping", (1, 1)),
        ("just text\n", "not-a-mapping", (1, 1)),
        ("- a\n- b\n", "not-a-mapping", (1, 1)),
        ("a: [1\n", "yaml-syntax", (2, 1)),
        ("a: 1\n---\nb: 2\n", "yaml-syntax", (2, 1)),
        ("a: !custom x\n", "yaml-syntax", (1, 4)),
        ("a: !!int x\n", "yaml-syntax", (1, 1)),
        ("a: b\x07\n", "yaml-syntax", (1, 5)),
        ("? [1, 2]\n: x\n", "non-string-key", (1, 3)),
        ("null: x\n", "non-string-key", (1, 1)),
    ],
)
def test_bad_documents(text: str, rule: str, pos: tuple[int, int]) -> None:
    doc = load_text(text)
    assert rules_at(doc) == [(rule, *pos)]
    assert doc.data is None


def test_a_tab_indent_gets_its_own_hint() -> None:
    doc = load_text("regions:\n  A:\n\ttype: Region\n")
    assert rules_at(doc) == [("yaml-syntax", 3, 1)]
    assert doc.findings[0].hint == "indent with spaces: YAML does not allow tabs for indentation"
    assert "tabs" not in (load_text("a: [1\n").findings[0].hint or "")


def test_deep_nesting_is_refused_not_a_crash() -> None:
    doc = load_text("a: " + "[" * 100 + "]" * 100 + "\n")
    assert [f.rule for f in doc.findings] == ["yaml-syntax"]
    doc = load_text("[" * 600)
    assert [f.rule for f in doc.findings] == ["yaml-syntax"]


def test_bad_encodings() -> None:
    doc = load_bytes(b"a: ok\nb: caf\xe9\n")
    assert rules_at(doc) == [("bad-encoding", 2, 7)]
    doc = load_bytes("a: ü\n".encode("utf-16"))
    assert [f.rule for f in doc.findings] == ["bad-encoding"]
    assert "UTF-16" in doc.findings[0].message
    # A UTF-8 byte-order mark is fine.
    assert load_bytes(b"\xef\xbb\xbfa: 1\n").data == {"a": 1}


def billion_laughs(levels: int = 9) -> str:
    names = "abcdefghijklmnop"
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in itertools.pairwise(names[: levels + 1]):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_billion_laughs_fails_fast() -> None:
    start = time.perf_counter()
    doc = load_text(billion_laughs())
    elapsed = time.perf_counter() - start
    assert [f.rule for f in doc.findings] == ["alias-bomb"]
    assert doc.data is None
    # Expanding would take hours; the guard needs milliseconds. 5 s is a hang detector only.
    assert elapsed < 5


def test_modest_aliases_are_fine() -> None:
    text = "base: &base {type: Region, task: t}\nregions:\n  A: *base\n  B: *base\n"
    doc = load_text(text)
    assert doc.findings == []
    assert doc.data is not None and doc.data["regions"]["A"] == {"type": "Region", "task": "t"}
    # An alias of a scalar adds nothing: many of them are fine.
    many = "x: &x 1\nl: [" + ", ".join(["*x"] * 20_000) + "]\n"
    assert load_text(many).findings == []
    assert load_text("x: &x {a: 1}\ny: {<<: *x, b: 2}\n").data == {
        "x": {"a": 1},
        "y": {"a": 1, "b": 2},
    }


@pytest.mark.parametrize("text", ["x: &x {a: [*x]}\n", "&x [*x]\n", "a: &a {b: *a}\n"])
def test_recursive_aliases_are_refused(text: str) -> None:
    doc = load_text(text)
    assert [f.rule for f in doc.findings] == ["recursive-alias"]
    assert doc.data is None


def test_file_size_limit(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"a: " + b"x" * MAX_BYTES + b"\n")
    doc = load_file(big)
    assert [(f.rule, f.line) for f in doc.findings] == [("file-too-large", 0)]
    just_fits = tmp_path / "fits.yaml"
    just_fits.write_bytes(b"a: " + b"x" * (MAX_BYTES - 10) + b"\n")
    assert load_file(just_fits).findings == []


def test_unreadable_paths(tmp_path: Path) -> None:
    assert [f.rule for f in load_file(tmp_path / "missing.yaml").findings] == ["io-error"]
    assert [f.rule for f in load_file(tmp_path).findings] == ["io-error"]
    finding = load_file(tmp_path).findings[0]
    assert (finding.line, finding.col) == (0, 0) and "directory" in finding.message


def test_interpolation() -> None:
    env = {"HOST": "example.test", "EMPTY": ""}
    doc = load_text(
        "a: http://${HOST}:${PORT:-8080}/x\nb: ${EMPTY:-fallback}\nc: $${HOST}\nd: ['${HOST}']\n"
        "${HOST}: key-not-interpolated\n",
        env=env,
    )
    assert doc.findings == []
    assert doc.data == {
        "a": "http://example.test:8080/x",
        "b": "",  # set (even if empty) beats the default
        "c": "${HOST}",
        "d": ["example.test"],
        "${HOST}": "key-not-interpolated",
    }


def test_unset_variable_warns_then_errors_with_strict() -> None:
    doc = load_text("a: x ${NOPE} y\n", env={})
    assert rules_at(doc) == [("unset-variable", 1, 6)]
    assert doc.findings[0].severity == "warning"
    assert doc.data == {"a": "x  y"}
    strict = load_text("a: x ${NOPE} y\n", env={}, strict=True)
    assert strict.findings[0].severity == "error"


@pytest.mark.parametrize("text", ["a: ${}\n", "a: ${1X}\n", "a: ${X-y}\n", "a: ${X\n"])
def test_malformed_interpolation(text: str) -> None:
    doc = load_text(text, env={"X": "1"})
    assert rules_at(doc) == [("bad-interpolation", 1, 4)]


def test_secrets_stay_out_of_raw_data() -> None:
    doc = load_text("api_key: ${KEY}\n", env={"KEY": "sk-very-secret"})
    assert doc.data == {"api_key": "sk-very-secret"}
    assert doc.raw == {"api_key": "${KEY}"}
