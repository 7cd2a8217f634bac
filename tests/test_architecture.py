"""Dependencies point one way, for every module of the package (folders and top-level modules).

Checked on the source (every ``import``/``from ... import``, including the ones inside
functions and under ``TYPE_CHECKING``), so a lazy import cannot hide a wrong-way dependency.
The layout and its directions are described in docs/architecture.md.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "regions_cli"

#: unit (a folder or a top-level module of regions_cli) -> the units it may import
ALLOWED: dict[str, frozenset[str]] = {
    name: frozenset(allowed)
    for name, allowed in {
        "__init__": {"workflow", "runs", "exit_codes"},  # the public API
        "__main__": {"cli"},
        "cli": {
            "runs", "view", "workflow", "model", "engine", "llm", "rag", "http", "exit_codes",
            "private_files", "gui_server", "interop", "text", "tools", "distributed",
        },
        "gui_server": {
            "runs", "view", "workflow", "model", "engine", "exit_codes", "interop", "text",
        },
        "runs": {
            "build", "engine", "model", "workflow", "llm", "exit_codes", "private_files", "text",
            "distributed", "http",
        },
        "build": {"engine", "llm", "rag", "model", "workflow", "tools"},  # workflow: sub-workflows
        "http": {"text"},  # serves the LLM and embedder backends, knows neither
        "engine": {"model", "llm", "rag", "tools", "exit_codes", "private_files", "text"},
        "workflow": {"model", "private_files", "text"},
        "interop": {"model", "workflow", "text"},  # other frameworks' files <-> our model
        "llm": {"model", "http", "private_files", "text", "tools"},  # tools.base only (below)
        "rag": {"model", "http", "private_files", "text"},
        "view": {"engine", "runs", "model", "exit_codes", "text"},
        "tools": {"model", "rag"},  # tool kinds; a RAG store only through rag.base
        # steps as jobs: the worker verifies and builds workflows, the runner plugs into the
        # executor (the NATS transport comes on top)
        "distributed": {"engine", "llm", "build", "workflow", "model", "http"},
        "model": {"text"},
        "text": set(),  # words for people (plurals, did-you-mean): a leaf every layer may use
        "exit_codes": set(),
        "private_files": set(),
    }.items()
}  # fmt: skip


def unit_of(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_place_in_the_layout() -> None:
    assert sorted({unit_of(path) for path in MODULES} - set(ALLOWED)) == []


@pytest.mark.parametrize("unit", sorted(ALLOWED))
def test_imports_point_one_way(unit: str) -> None:
    wrong = []
    for path in MODULES:
        if unit_of(path) != unit:
            continue
        for module in imported_modules(path):
            parts = module.split(".")
            if parts[0] != "regions_cli" or len(parts) == 1 or parts[1] == unit:
                continue
            if parts[1] not in ALLOWED[unit]:
                wrong.append(f"{path.relative_to(PACKAGE.parent)} imports {module}")
    assert wrong == []


def test_nothing_imports_the_cli() -> None:
    assert [unit for unit, allowed in ALLOWED.items() if "cli" in allowed] == ["__main__"]


def imports_past_protocols(unit: str, units: tuple[str, ...]) -> list[str]:
    """The imports of `unit`'s modules that reach into one of `units` other than by its
    protocol module (``regions_cli.UNIT.base``)."""
    inside = tuple(f"regions_cli.{name}" for name in units)
    return [
        f"{path.relative_to(PACKAGE.parent)} imports {module}"
        for path in sorted((PACKAGE / unit).rglob("*.py"))
        for module in imported_modules(path)
        if module.startswith(inside) and not module.endswith(".base")
    ]


def test_the_engine_sees_models_and_stores_only_through_their_protocols() -> None:
    assert imports_past_protocols("engine", ("llm", "rag")) == []


def test_the_engine_sees_tools_only_through_their_protocol() -> None:
    """The tool loop, ToolRegion and the region tool speak `Tool`/`ToolTape`; the tool kinds
    (a subprocess, an MCP client) are built by `regions_cli.build`."""
    wrong = [
        f"{path.relative_to(PACKAGE.parent)} imports {module}"
        for path in sorted((PACKAGE / "engine").rglob("*.py"))
        for module in imported_modules(path)
        if module.startswith("regions_cli.tools") and module != "regions_cli.tools.base"
    ]
    assert wrong == []


def test_tools_see_stores_only_through_their_protocol() -> None:
    assert imports_past_protocols("tools", ("rag",)) == []


def test_models_see_tools_only_through_their_protocol() -> None:
    """Cassettes record and replay tool results (`ToolTape`, `ToolResult`); no tool kind."""
    assert imports_past_protocols("llm", ("tools",)) == []


def _distribution(requirement: str) -> str:
    """``httpx>=0.27,<1`` -> ``httpx``; names compared as PyPI does (``ruamel.yaml`` =
    ``ruamel-yaml``)."""
    name = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert name, requirement
    return re.sub(r"[-_.]+", "-", name.group()).lower()


def test_every_third_party_import_is_a_declared_dependency() -> None:
    """What the package imports is what `pip install` gives it (httpx's own httpcore is not)."""
    project = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + [
        r for extra in project["optional-dependencies"].values() for r in extra
    ]
    declared = {_distribution(r) for r in requirements}
    providers = importlib.metadata.packages_distributions()
    undeclared = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for module in imported_modules(path):
            top = module.split(".")[0]
            if top in sys.stdlib_module_names or top in ("regions_cli", "__future__"):
                continue
            if not {_distribution(d) for d in providers.get(top, [top])} & declared:
                undeclared.append(f"{path.relative_to(PACKAGE.parent)} imports {module}")
    assert undeclared == []


def test_the_http_layer_imports_only_httpx_and_the_standard_library() -> None:
    outside = {
        module
        for path in (PACKAGE / "http").rglob("*.py")
        for module in imported_modules(path)
        if module.split(".")[0] not in (*sys.stdlib_module_names, "httpx", "regions_cli")
    }
    assert outside == set()


def test_every_dependency_has_a_sensible_upper_bound() -> None:
    """A new major version of a dependency is a change to review, not an install surprise."""
    project = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + [
        r for extra in project["optional-dependencies"].values() for r in extra
    ]
    unbounded = [r for r in requirements if "<" not in r and "==" not in r]
    assert unbounded == []
