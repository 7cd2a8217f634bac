"""Dependencies point one way: the CLI uses the core; the core never imports the CLI or a view.

Checked on the source (every ``import``/``from ... import``, including the ones inside
functions), so a lazy import cannot hide a wrong-way dependency.
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

#: package folder -> the regions_cli subpackages it must never import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "workflow": ("cli", "view", "engine", "llm", "rag", "http", "build", "runner", "run_journal"),
    "engine": ("cli", "view", "http", "build", "runner", "run_journal", "gui_server"),
    # The HTTP layer serves the LLM and embedder backends (both import it); it knows neither.
    "http": (
        "cli",
        "view",
        "engine",
        "workflow",
        "llm",
        "rag",
        "build",
        "runner",
        "run_journal",
        "gui_server",
    ),
    "llm": ("cli", "view", "engine", "rag", "build", "runner", "run_journal"),
    "rag": ("cli", "view", "engine", "llm", "build", "runner", "run_journal"),
    "view": ("cli", "build", "runner", "run_journal", "llm", "rag", "http"),
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_the_package_folders_exist() -> None:
    for folder in FORBIDDEN:
        assert (PACKAGE / folder / "__init__.py").is_file(), folder


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_imports_point_one_way(folder: str) -> None:
    wrong = []
    for path in sorted((PACKAGE / folder).rglob("*.py")):
        for module in imported_modules(path):
            parts = module.split(".")
            if parts[0] == "regions_cli" and len(parts) > 1 and parts[1] in FORBIDDEN[folder]:
                wrong.append(f"{path.relative_to(PACKAGE.parent)} imports {module}")
    assert wrong == []


def test_the_engine_sees_models_and_stores_only_through_their_protocols() -> None:
    allowed = {"regions_cli.llm.base", "regions_cli.rag.base"}
    wrong = [
        f"{path.relative_to(PACKAGE.parent)} imports {module}"
        for path in sorted((PACKAGE / "engine").rglob("*.py"))
        for module in imported_modules(path)
        if module.startswith(("regions_cli.llm", "regions_cli.rag")) and module not in allowed
    ]
    assert wrong == []


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
