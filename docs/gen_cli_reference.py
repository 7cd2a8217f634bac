"""Write docs/cli.md, the command-line reference, from the commands themselves.

    python docs/gen_cli_reference.py          # rewrite docs/cli.md
    python docs/gen_cli_reference.py --check  # exit 1 if docs/cli.md is stale

It walks the click command tree typer builds from `regions_cli.cli.app.app` and writes, for
every command, its usage line, its help text and each argument and option with its help. So
the page cannot drift from the code: tests/test_docs_site.py fails when the committed page
differs from what this script writes now.
"""

from __future__ import annotations

import html
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer.main

from regions_cli.cli.app import app

PAGE = Path(__file__).resolve().parent / "cli.md"

HEADER = """\
# Command-line reference

Every command of `regions`, its arguments and its options, as `regions COMMAND --help` prints
them. This page is generated from the commands themselves by `docs/gen_cli_reference.py`
(`python docs/gen_cli_reference.py` rewrites it; a test fails when it is stale), so edit the
help texts in `regions_cli/cli/`, not this page.

`python -m regions_cli` works as well as `regions`. Every error, a usage error included, is
one line on stderr with a non-zero exit code; the pages on each subject list the codes.
"""


def commands(command: Any, ctx: Any) -> Iterator[tuple[Any, Any]]:
    """Every command of the tree under `command`, depth first, with its context."""
    yield command, ctx
    for name, sub in getattr(command, "commands", {}).items():
        if not sub.hidden:
            yield from commands(sub, sub.context_class(sub, info_name=name, parent=ctx))


def root_context() -> tuple[Any, Any]:
    """The `regions` command and its context."""
    root = typer.main.get_command(app)
    return root, root.context_class(root, info_name="regions")


def usage(command: Any, ctx: Any) -> str:
    """``regions run [OPTIONS] FILE``: the command path, then its options and arguments."""
    pieces = [ctx.command_path]
    if any(p.param_type_name == "option" for p in command.params):
        pieces.append("[OPTIONS]")
    for param in command.params:
        if param.param_type_name != "argument":
            continue
        name = param.metavar or param.name.upper()
        if param.nargs == -1:
            name += "..."
        if not param.required and not name.startswith("["):
            name = f"[{name}]"
        pieces.append(name)
    if getattr(command, "commands", None):
        pieces.append("COMMAND [ARGS]...")
    return " ".join(pieces)


def prose(text: str) -> str:
    """Help text as one Markdown line: ``<name>`` in it is shown, not read as an HTML tag."""
    return html.escape(" ".join(text.split()), quote=False)


def paragraph(text: str) -> str:
    """A paragraph of help: indented lines (an example) as a code block, the rest as prose."""
    lines = [line for line in text.splitlines() if line.strip()]
    if lines and all(line.startswith((" ", "\t")) for line in lines):
        return "```\n" + textwrap.dedent(text).strip("\n") + "\n```"
    return prose(text)


def parameter(param: Any, ctx: Any) -> str:
    """One bullet: the argument or option as written on the command line, then its help."""
    if param.param_type_name == "argument":
        name = param.metavar or param.name.upper()
    else:
        name = param.get_help_record(ctx)[0]
    help_text = prose(param.help or "")
    default = param.default
    if param.param_type_name == "option" and not param.is_flag and default not in (None, (), []):
        help_text += f" Default: `{default}`."
    if param.required:
        help_text += " Required."
    return f"- `{name}`: {help_text.strip()}"


def section(command: Any, ctx: Any) -> str:
    """A command's part of the page."""
    # `regions` and its commands are level 2, the commands of a group (`regions rag query`) 3.
    level = max(2, ctx.command_path.count(" ") + 1)
    lines = [f"{'#' * level} `{ctx.command_path}`", ""]
    lines += ["```", usage(command, ctx), "```", ""]
    help_text = "\n\n".join(t.strip("\n") for t in (command.help, command.epilog) if t)
    if help_text:
        paragraphs = [paragraph(p) for p in help_text.split("\n\n")]
        lines += ["\n\n".join(paragraphs), ""]
    params = [p for p in command.params if not getattr(p, "hidden", False)]
    if params:
        lines += [parameter(p, ctx) for p in params]
        lines.append("")
    subcommands = [
        (name, sub) for name, sub in getattr(command, "commands", {}).items() if not sub.hidden
    ]
    if subcommands:
        lines += ["Commands:", ""]
        for name, sub in subcommands:
            summary = prose((sub.help or "").split("\n\n")[0])
            lines.append(f"- `{ctx.command_path} {name}`: {summary}")
        lines.append("")
    return "\n".join(lines)


def page() -> str:
    """The whole reference page."""
    root, ctx = root_context()
    return HEADER + "\n" + "\n".join(section(c, x) for c, x in commands(root, ctx))


def main(argv: list[str]) -> int:
    text = page()
    if "--check" in argv:
        if PAGE.read_text(encoding="utf-8") != text:
            print(f"{PAGE} is stale: run python docs/gen_cli_reference.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
