"""Help pages in the conventions of mature command-line tools, and plain usage errors.

typer's own help shows each parameter's Python type (``<bool>``, ``<list[Path]>``, ``<int
range> [x>=1]``) and marks arguments as ``{FILE}`` or ``[[DIR]]``. Here a help page is written
from the parameters' click attributes instead, the way ``git``, ``curl`` or ``ruff`` write
theirs::

    Usage: regions step [OPTIONS] FILE

      Run FILE's next layer ...

      Example:
        regions step workflows/hello.yaml

    Options:
      --layers N   How many layers to run. [default: 1]
      -h, --help   Show this message and exit.

An option shows its metavar (``FILE``, ``N``, ``NAME=URL``; the option's name in capitals when
none is declared, its choices as ``a|b|c``), a flag shows none. Indented lines of a docstring
(examples) are printed as written; other paragraphs are wrapped.

Use `Typer` instead of ``typer.Typer``: its groups and commands print these pages.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup
from typer.models import CommandFunctionType

#: How a usage error's validator wording reads in plain words (pattern -> replacement): click's
#: own, and pydantic's (typer from 0.29 validates with it).
_PLAIN_ERRORS: Sequence[tuple[str, str]] = (
    (r"(?:Value error, )?'([^']*)' is not one of (.*)\.$", r"'\1' is not one of \2"),
    (r"^'.*' is not a valid int(?:eger)?\.?$", "must be a whole number"),
    (r"^'.*' is not a valid float\.?$", "must be a number"),
    (r"^'.*' is not a valid boolean\.?$", "must be true or false"),
    (r"Input should be greater than or equal to (\S+)$", r"must be at least \1"),
    (r"Input should be less than or equal to (\S+)$", r"must be at most \1"),
    (r"Input should be greater than (\S+)$", r"must be more than \1"),
    (r"Input should be less than (\S+)$", r"must be less than \1"),
    (r"Input should be a valid integer.*$", "must be a whole number"),
    (r"Input should be a valid number.*$", "must be a number"),
    (r"Input should be a valid boolean.*$", "must be true or false"),
)


def plain_usage_error(message: str) -> str:
    """A click/typer usage error message without validator wording, on one line.

    ``Invalid value for '--layers': Input should be greater than or equal to 1`` becomes
    ``--layers must be at least 1``.
    """
    match = re.match(r"Invalid value for (.+?): (.*)$", message, re.S)
    if match is None:
        return " ".join(message.split())
    names = [name.strip("'") for name in match.group(1).split(" / ")]
    name = next((n for n in names if n.startswith("--")), names[0])
    problem = " ".join(match.group(2).split())
    bound = _range_problem(problem)
    if bound is not None:
        return f"{name} {bound}"
    for pattern, replacement in _PLAIN_ERRORS:
        problem, found = re.subn(pattern, replacement, problem)
        if found:
            return f"{name} {problem}" if problem.startswith("must") else f"{name}: {problem}"
    return f"{name}: {problem}"


def _range_problem(problem: str) -> str | None:
    """click's ``70000 is not in the range 0<=x<=65535.`` as ``must be at most 65535`` (the
    bound the value is beyond), or None for another problem."""
    match = re.match(r"(\S+) is not in the range (.+?)\.?$", problem)
    if match is None:
        return None
    value, bounds = match.groups()
    low = re.match(r"(-?[\d.]+)(<=?)x|x(>=?)(-?[\d.]+)$", bounds)
    high = re.search(r"x(<=?)(-?[\d.]+)$", bounds)
    try:
        number = float(value)
    except ValueError:
        return f"must be in the range {bounds}"
    if low is not None:
        sign, least = (low.group(2), low.group(1)) if low.group(1) else low.group(3, 4)
        closed = "=" in sign
        if number < float(least) or (not closed and number == float(least)):
            return f"must be {'at least' if closed else 'more than'} {least}"
    if high is not None:
        closed = "=" in high.group(1)
        return f"must be {'at most' if closed else 'less than'} {high.group(2)}"
    return f"must be in the range {bounds}"


def _metavar(param: Any) -> str:
    """What stands for the value of an option or argument on a help page."""
    if param.metavar:
        return str(param.metavar)
    choices = getattr(getattr(param, "type_descriptor", None), "choices", None) or getattr(
        param.type, "choices", None
    )
    if choices:
        return "|".join(str(getattr(c, "value", c)) for c in choices)
    return str(param.name).upper()


def _usage_piece(param: Any) -> str:
    name = _metavar(param) + ("..." if param.nargs == -1 else "")
    return name if param.required else f"[{name}]"


def _default(param: Any) -> str | None:
    """The ``[default: X]`` an option shows, if any."""
    if param.param_type_name != "option" or param.is_flag or param.show_default is False:
        return None
    default = param.default
    if default is None or default == "" or default == () or default == []:
        return None
    if isinstance(param.show_default, str):
        return param.show_default
    return str(getattr(default, "value", default))


def _params(command: Any, ctx: Any, kind: str) -> Iterator[tuple[str, str]]:
    for param in command.get_params(ctx):
        if param.param_type_name != kind or getattr(param, "hidden", False):
            continue
        if kind == "argument":
            yield _metavar(param) + ("..." if param.nargs == -1 else ""), param.help or ""
            continue
        names = ", ".join([*sorted(param.opts, key=len), *param.secondary_opts])
        term = names if param.is_flag else f"{names} {_metavar(param)}"
        default = _default(param)
        help_text = (param.help or "") + (f" [default: {default}]" if default else "")
        yield term, help_text


def _write_text(formatter: Any, text: str) -> None:
    """A docstring: indented lines (examples) as written, other paragraphs wrapped."""
    for number, paragraph in enumerate(re.split(r"\n\s*\n", text.strip())):
        if number:
            formatter.write_paragraph()
        lines = paragraph.splitlines()
        plain: list[str] = []
        with formatter.indentation():
            for line in lines:
                if line.startswith((" ", "\t")):
                    if plain:
                        formatter.write_text(" ".join(plain))
                        plain = []
                    formatter.write(f"{' ' * formatter.current_indent}  {line.strip()}\n")
                else:
                    plain.append(line.strip())
            if plain:
                formatter.write_text(" ".join(plain))


def _format_help(command: Any, ctx: Any, formatter: Any, extra: Callable[[], None]) -> None:
    pieces = (
        ["[OPTIONS]"]
        + (["COMMAND [ARGS]..."] if hasattr(command, "commands") else [])
        + [
            _usage_piece(p)
            for p in command.get_params(ctx)
            if p.param_type_name == "argument" and not getattr(p, "hidden", False)
        ]
    )
    formatter.write_usage(ctx.command_path, " ".join(pieces))
    formatter.write_paragraph()
    if command.help:
        _write_text(formatter, command.help)
    arguments = list(_params(command, ctx, "argument"))
    if arguments:
        with formatter.section("Arguments"):
            formatter.write_dl(arguments)
    with formatter.section("Options"):
        formatter.write_dl(list(_params(command, ctx, "option")))
    extra()
    if command.epilog:
        formatter.write_paragraph()
        _write_text(formatter, command.epilog)


class HelpCommand(TyperCommand):
    """A command whose help page is written by `_format_help`."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _format_help(self, ctx, formatter, lambda: None)


class HelpGroup(TyperGroup):
    """A group of commands whose help page is written by `_format_help`, then the commands."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        def commands() -> None:
            rows = []
            for name in self.list_commands(ctx):
                sub = self.get_command(ctx, name)
                if sub is not None and not sub.hidden:
                    rows.append((name, sub.get_short_help_str(limit=200)))
            if rows:
                with formatter.section("Commands"):
                    formatter.write_dl(rows)

        _format_help(self, ctx, formatter, commands)


class Typer(typer.Typer):
    """``typer.Typer`` whose groups and commands print `HelpGroup`/`HelpCommand` pages."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cls", HelpGroup)
        super().__init__(**kwargs)

    def command(
        self, name: str | None = None, **kwargs: Any
    ) -> Callable[[CommandFunctionType], CommandFunctionType]:
        kwargs.setdefault("cls", HelpCommand)
        return super().command(name, **kwargs)
