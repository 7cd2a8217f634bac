"""The documentation site stays true to the code: the CLI reference is what the commands say now,
every command and option is documented there with its help, the README's command table names
every command, and every page is in the site's navigation.

(`mkdocs build --strict`, run by CI, checks that every page builds and every link resolves.)
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _generator() -> ModuleType:
    path = DOCS / "gen_cli_reference.py"
    spec = importlib.util.spec_from_file_location("gen_cli_reference", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GEN = _generator()
REFERENCE = (DOCS / "cli.md").read_text(encoding="utf-8")


def _commands() -> list[tuple[Any, Any]]:
    root, ctx = GEN.root_context()
    return list(GEN.commands(root, ctx))


def _section(path: str) -> str:
    """The reference's part for one command, from its heading to the next heading."""
    match = re.search(rf"^#+ `{re.escape(path)}`\n(.*?)(?=^#+ `|\Z)", REFERENCE, re.M | re.S)
    assert match, f"`{path}` has no section in docs/cli.md"
    return match.group(1)


def test_the_cli_reference_is_current() -> None:
    assert GEN.page() == REFERENCE, "docs/cli.md is stale: run python docs/gen_cli_reference.py"


def test_the_generator_finds_every_command() -> None:
    paths = {ctx.command_path for _, ctx in _commands()}
    for expected in ("regions run", "regions verify", "regions rag query", "regions cache clear"):
        assert expected in paths
    assert len(paths) >= 20


@pytest.mark.parametrize("path", [ctx.command_path for _, ctx in _commands()])
def test_every_command_and_option_is_documented(path: str) -> None:
    """As sqlite-utils does: a command or option without help, or missing from the reference,
    fails here."""
    command, ctx = next((c, x) for c, x in _commands() if x.command_path == path)
    assert (command.help or "").strip(), f"`{path}` has no help text"
    section = _section(path)
    assert f"```\n{GEN.usage(command, ctx)}\n```" in section
    for param in command.params:
        if getattr(param, "hidden", False):
            continue
        assert (param.help or "").strip(), f"`{path}` {param.name} has no help text"
        if param.param_type_name == "option":
            for flag in [*param.opts, *param.secondary_opts]:
                assert re.search(rf"^- `[^`]*{re.escape(flag)}\b", section, re.M), (
                    f"`{path} {flag}` is not in docs/cli.md"
                )
        assert GEN.prose(param.help) in section
    for name, sub in getattr(command, "commands", {}).items():
        if not sub.hidden:
            assert f"- `{path} {name}`:" in section


#: The page that explains each command (by its first word after `regions`), in prose.
SUBJECT_PAGES = {
    "verify": "verify.md",
    "schema": "verify.md",
    "graph": "verify.md",
    "run": "running.md",
    "step": "run-files.md",
    "inject": "run-files.md",
    "show": "run-files.md",
    "replay": "run-files.md",
    "runs": "run-files.md",
    "import": "import-export.md",
    "export": "import-export.md",
    "gui": "editor.md",
    "rag": "rag.md",
    "llm": "backends.md",
    "cache": "backends.md",
    "tools": "tools.md",
    "worker": "scaling-out.md",
}


@pytest.mark.parametrize("path", [ctx.command_path for _, ctx in _commands()][1:])
def test_every_command_and_long_option_is_explained_on_its_page(path: str) -> None:
    """The generated reference lists everything; the page about the command says what each
    long option is for (a new command needs a row in SUBJECT_PAGES and a place in the docs)."""
    command, _ = next((c, x) for c, x in _commands() if x.command_path == path)
    words = path.split()
    assert words[1] in SUBJECT_PAGES, f"`{path}` has no page: add it to SUBJECT_PAGES"
    page = (DOCS / SUBJECT_PAGES[words[1]]).read_text(encoding="utf-8")
    assert f"regions {' '.join(words[1:])}" in page, f"`{path}` is not on its page"
    for param in command.params:
        if param.param_type_name == "option" and not getattr(param, "hidden", False):
            for flag in param.opts:
                if flag.startswith("--"):
                    assert flag in page, f"`{path} {flag}` is not explained on its page"


def test_the_readme_command_table_names_every_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    root, _ = GEN.root_context()
    for name, command in root.commands.items():
        assert f"`regions {name}" in table, f"the README's command table lacks `regions {name}`"
        for sub in getattr(command, "commands", {}):
            assert re.search(rf"`regions {name} [^`]*\b{sub}\b", table), f"regions {name} {sub}"


def test_the_readme_stays_short() -> None:
    """The README is what users read first (and the package's long description); the manual
    is the site."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= 200


def _nav_pages(nav: Any) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [page for item in nav for page in _nav_pages(item)]
    return [page for value in nav.values() for page in _nav_pages(value)]


def test_every_page_is_in_the_navigation_and_every_link_is_a_page() -> None:
    yaml = YAML(typ="rt")  # round-trip: the `!!python/name:` tag stays a tag, nothing is run
    config = yaml.load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    nav = _nav_pages(config["nav"])
    pages = sorted(p.name for p in DOCS.glob("*.md"))
    assert sorted(nav) == pages
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for target in re.findall(r"\]\(docs/([\w-]+\.md)", readme):
        assert (DOCS / target).is_file(), f"the README links to docs/{target}, which is missing"
