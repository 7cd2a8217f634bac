"""Documents to ingest: read from files (text, Markdown, JSON lists) or given inline.

A `Document` is a name plus one or more passages, each with its own actors. A ``.json`` file
holds a list of ``{"content": str, "actors": [str, ...]}`` objects (the seed examples' format):
each object is a passage. Any other file is read as UTF-8 text and is one passage.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from regions_cli.model import DocumentSource
from regions_cli.rag.base import RagError


@dataclass(frozen=True)
class Passage:
    """A run of text and the actors (free-form tags) its chunks carry."""

    content: str
    actors: tuple[str, ...] = ()


@dataclass(frozen=True)
class Document:
    """A named unit of ingestion: re-ingesting a name replaces that document's chunks."""

    name: str
    passages: tuple[Passage, ...]

    def fingerprint(self, *extra: object) -> str:
        """A sha256 of the passages (and `extra`, e.g. chunking settings): equal means unchanged."""
        payload = [[p.content, sorted(p.actors)] for p in self.passages]
        blob = json.dumps([payload, [str(x) for x in extra]], ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _merge_actors(*groups: Sequence[str]) -> tuple[str, ...]:
    """Actors in first-seen order without repeats."""
    return tuple(dict.fromkeys(a for group in groups for a in group))


def _actors(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(a, str) for a in value):
        return tuple(value)
    raise RagError(f"{where}: 'actors' must be a string or a list of strings")


def _json_passages(path: Path, text: str, actors: Sequence[str]) -> tuple[Passage, ...]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RagError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
    if not isinstance(data, list):
        raise RagError(f"{path}: expected a JSON list of {{content, actors}} objects")
    passages = []
    for i, item in enumerate(data):
        where = f"{path}: item {i}"
        if not isinstance(item, dict) or not isinstance(item.get("content"), str):
            raise RagError(f"{where}: expected an object with a string 'content'")
        passages.append(
            Passage(item["content"], _merge_actors(actors, _actors(item.get("actors"), where)))
        )
    return tuple(passages)


def load_file(path: Path, actors: Sequence[str] = (), name: str | None = None) -> Document:
    """Read one document file; `RagError` (naming the file) if it is missing or unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RagError(f"{path}: no such document file") from None
    except IsADirectoryError:
        raise RagError(f"{path}: is a folder, not a document file") from None
    except UnicodeDecodeError:
        raise RagError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise RagError(f"{path}: cannot read: {exc.strerror}") from None
    if path.suffix.lower() == ".json":
        passages = _json_passages(path, text, actors)
    else:
        passages = (Passage(text, tuple(actors)),)
    return Document(name or str(path), passages)


def document_name(path: Path, base_dir: Path) -> str:
    """How a file document is named in a store: relative to the workflow folder when inside it."""
    try:
        return path.resolve().relative_to(base_dir.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()


_INLINE_NAME = re.compile(r"text-[0-9a-f]{12}(-[0-9]+)?")


def is_inline_name(name: str) -> bool:
    """Whether `name` is one `source_names` gives an inline text without an ``id``."""
    return _INLINE_NAME.fullmatch(name) is not None


def source_names(sources: Sequence[DocumentSource], base_dir: Path) -> list[str]:
    """Each ``documents:`` entry's name in the store, in order.

    The name is the entry's ``id``, else the file's path (relative to the workflow), else
    ``text-`` and 12 hex digits of a sha256 of the text and its actors. A name derived from the
    content stays the same when entries are reordered or others are added, so re-ingesting
    rewrites nothing that did not change (a name by position would swap contents, re-embedding
    both and undoing edits made by `make_updates`). The same text for other actors is another
    document; an entry listed twice over is told apart as ``text-<hash>-2``, ``-3``, ...
    """
    names: list[str] = []
    repeats: Counter[str] = Counter()
    for source in sources:
        if source.id:
            name = source.id
        elif source.file is not None:
            name = document_name(source.file, base_dir)
        else:
            identity = json.dumps([source.text or "", sorted(source.actors)], ensure_ascii=False)
            name = "text-" + hashlib.sha256(identity.encode("utf-8")).hexdigest()[:12]
            repeats[name] += 1
            if repeats[name] > 1:
                name = f"{name}-{repeats[name]}"
        names.append(name)
    return names


def load_source(source: DocumentSource, name: str) -> Document:
    """Turn one ``documents:`` entry, named `name` in the store, into a `Document`."""
    if source.file is not None:
        return load_file(source.file, source.actors, name)
    return Document(name, (Passage(source.text or "", source.actors),))
