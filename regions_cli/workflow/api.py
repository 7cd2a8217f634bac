"""The workflow file's public API: `verify` a file, `load` it (findings and workflow at once),
or `load_workflow` it for a run.

Verification runs in three stages, each adding findings: reading and parsing (`load`), the JSON
Schema (`schema`), then the cross-reference rules (`rules`). All findings of all stages are
reported, so one run of ``regions verify`` shows every problem in a file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from regions_cli.model import Workflow
from regions_cli.workflow.convert import build_workflow
from regions_cli.workflow.findings import Finding
from regions_cli.workflow.load import Document, load_file, load_text

_UNSET = "unset-variable"


class WorkflowInvalid(Exception):
    """A workflow file has errors; `findings` lists them (errors only)."""

    def __init__(self, findings: Sequence[Finding]) -> None:
        self.findings = list(findings)
        first = self.findings[0] if self.findings else None
        summary = f"{first.location()}: {first.message}" if first else "invalid workflow"
        more = len(self.findings) - 1
        super().__init__(summary + (f" (and {more} more)" if more > 0 else ""))


def check_document(doc: Document) -> list[Finding]:
    """All findings for an already parsed document, in reading order."""
    from regions_cli.workflow.rules import run_checks
    from regions_cli.workflow.schema import validate

    findings = list(doc.findings)
    if doc.data is not None:
        findings += validate(doc)
        findings += run_checks(doc)
    # The schema stage may find that an unset ${VAR} stops a run (the value needs it): its
    # finding then replaces the loader's at the same place.
    replaced = {(f.line, f.col) for f in findings[len(doc.findings) :] if f.rule == _UNSET}
    loader = [f for f in doc.findings if f.rule != _UNSET or (f.line, f.col) not in replaced]
    return sorted(set(loader + findings[len(doc.findings) :]))


def verify(
    path: str | os.PathLike[str],
    *,
    strict: bool = False,
    env: Mapping[str, str] | None = None,
) -> list[Finding]:
    """Every finding (errors and warnings) for the workflow file at `path`.

    Never raises for a bad file: an unreadable path is an ``io-error`` finding. With `strict`,
    an unset ``${VAR}`` is an error instead of a warning. `env` replaces ``os.environ`` for
    ``${VAR}`` interpolation.
    """
    return check_document(load_file(path, env=env, strict=strict))


def verify_text(
    text: str,
    *,
    file: str = "<string>",
    base_dir: str | os.PathLike[str] | None = None,
    strict: bool = False,
    env: Mapping[str, str] | None = None,
) -> list[Finding]:
    """`verify` for workflow text that is not (yet) a file, e.g. the flow editor's buffer.

    Relative paths in it resolve against `base_dir` (default: the current folder).
    """
    base = Path(base_dir) if base_dir is not None else None
    return check_document(load_text(text, file=file, base_dir=base, env=env, strict=strict))


@dataclass(frozen=True)
class Loaded:
    """A workflow file, parsed, verified and (if it has no errors) built."""

    document: Document
    findings: list[Finding]  # errors and warnings, in reading order
    workflow: Workflow | None  # None when a finding is an error

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.is_error]

    def outside_paths_problem(self) -> str | None:
        """Why a run must refuse this workflow unless files outside its folder are allowed
        (``--allow-outside-paths``): one line, or None."""
        first = next((f for f in self.findings if f.rule == "path-outside-workflow"), None)
        if first is None:
            return None
        return (
            f"{first.location()}: {first.message}; a workflow may read and write only beside "
            "itself unless you run it with --allow-outside-paths"
        )


def load(
    path: str | os.PathLike[str],
    *,
    strict: bool = False,
    env: Mapping[str, str] | None = None,
) -> Loaded:
    """Parse and verify the workflow file at `path`, and build it if it has no errors.

    Never raises for a bad file: its problems are findings (as `verify` gives them). Relative
    paths in the workflow resolve against the file's folder.
    """
    doc = load_file(path, env=env, strict=strict)
    findings = check_document(doc)
    if doc.data is None or any(f.is_error for f in findings):
        return Loaded(doc, findings, None)
    source = Path(path).absolute()
    try:
        workflow = build_workflow(doc.data, source=source, base_dir=source.parent)
    except OSError as exc:  # e.g. an inject file that vanished or became unreadable since
        message = f"cannot read {exc.filename or 'a referenced file'}: {exc.strerror}"
        return Loaded(doc, sorted({*findings, doc.finding("io-error", message, (0, 0))}), None)
    return Loaded(doc, findings, workflow)


def load_workflow(
    path: str | os.PathLike[str],
    *,
    strict: bool = False,
    env: Mapping[str, str] | None = None,
) -> Workflow:
    """Load and validate the workflow at `path`; raise `WorkflowInvalid` if it has errors.

    Warnings do not stop loading (use `load` or `verify` to see them). Relative paths in the
    workflow resolve against the file's folder.
    """
    loaded = load(path, strict=strict, env=env)
    if loaded.workflow is None:
        raise WorkflowInvalid(loaded.errors)
    return loaded.workflow
