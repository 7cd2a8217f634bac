"""`Region` and `FeedForwardRegion`: the regions that think with a language model."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, ClassVar

from regions_cli.engine.contracts import REPAIR_NOTE, SCHEMA_NOTE, contract_for
from regions_cli.engine.regions.base import (
    BaseRegion,
    Entry,
    Outcome,
    RegionContext,
    StepFailed,
    entries_json,
)
from regions_cli.model import RegionConfig
from regions_cli.text import plural

#: The longest question `make_questions` asks for (characters): a question is a sentence.
MAX_QUESTION_CHARS = 160


def question_list_schema(recipients: Sequence[str]) -> dict[str, Any]:
    """The JSON Schema of ``make_questions``' answer: ``[{source, question}]`` to `recipients`.

    At most one question per recipient, each at most `MAX_QUESTION_CHARS` long: backends that
    enforce the schema with a grammar (the local one) then always close the list within a
    small ``max_tokens`` (about 50 tokens a question) instead of being cut off mid-document.
    """
    return {
        "type": "array",
        "maxItems": len(recipients),
        "items": {
            "type": "object",
            "properties": {
                "source": {"type": "string", "enum": list(recipients)},
                "question": {"type": "string", "minLength": 1, "maxLength": MAX_QUESTION_CHARS},
            },
            "required": ["source", "question"],
        },
    }


@lru_cache(maxsize=1024)
def _pretty_json(items: tuple[tuple[str, str], ...]) -> str:
    """``json.dumps(dict(items), indent=2)``, kept: every run of a workflow renders the same
    connections again (``indent`` takes json's pure-Python encoder), before its first request
    can leave."""
    return json.dumps(dict(items), indent=2)


def last_json_array(text: str) -> list[Any] | None:
    """The last top-level JSON array in `text` (fences and prose around it are ignored).

    Unlike the original, ``[]`` counts (an empty list of questions is a valid answer) and an
    array nested inside a bigger one is not mistaken for the answer.
    """
    decoder = json.JSONDecoder()
    found: list[Any] | None = None
    pos = text.find("[")
    while pos != -1:
        try:
            value, end = decoder.raw_decode(text, pos)
        except ValueError:
            pos = text.find("[", pos + 1)
            continue
        if isinstance(value, list):
            found = value
        pos = text.find("[", end)
    return found


class Region(BaseRegion):
    """An LLM region: answers requests, asks its connections, summarises what it knows.

    **Typed outputs.** With an ``output_schema``, each answer of `make_replies` (one model
    call per request, so one reply per request) is a JSON document valid against the schema,
    and that document is the content of the reply it sends. The prompt ends with the schema,
    the model is asked for it (`CompletionRequest.json_schema`: structured output on the
    openai backend, a grammar on the embedded model) and the answer is validated (a Markdown
    fence around it is dropped). An invalid answer gets one repair call (purpose ``repair``)
    whose prompt adds the bad answer and what is wrong; if that answer is invalid too, the
    step fails (`StepFailed`: rolled back, nothing sent) with the region, the path and the
    error. `make_questions` and `summarize_replies` have schemas of their own or send nothing.
    """

    _connections_json: str | None = None

    type_name: ClassVar[str] = "Region"

    def __init__(self, config: RegionConfig, context: RegionContext | None = None) -> None:
        super().__init__(config, context)
        # Compiled once, here at build time.
        self.output_contract = contract_for(
            config.output_schema, f"regions.{config.name}.output_schema"
        )

    # -- prompts ----------------------------------------------------------------------

    @property
    def connections_json(self) -> str:
        """The connections as prompts show them (rendered once: they do not change)."""
        if self._connections_json is None:
            self._connections_json = _pretty_json(tuple(self.connections.items()))
        return self._connections_json

    def system_prompt(self, pending: Sequence[Entry]) -> str:
        t = self.context.templates
        knowledge = t.render("knowledge", items=entries_json(self.replies)) if self.replies else ""
        requests = t.render("requests", items=entries_json(pending)) if pending else ""
        return t.render(
            "system",
            name=self.name,
            task=self.task,
            knowledge=knowledge,
            requests=requests,
            connections=self.connections_json,
        )

    # -- methods ----------------------------------------------------------------------

    async def make_replies(self) -> Outcome:
        """Answer every pending request, in arrival order; unanswered ones stay pending."""
        if not self.requests:
            return Outcome.nothing("no incoming requests")
        refusal = self._cannot_answer()
        if refusal:
            return Outcome.false(refusal)
        pending, self.requests = self.requests, []
        failed: list[Entry] = []
        for i, request in enumerate(pending):
            system = self.system_prompt(pending[i + 1 :])
            user = self.context.templates.render(
                "make_replies",
                name=self.name,
                task=self.task,
                question=request.content,
                source=request.source,
                connections=self.connections_json,
            )
            if self.output_contract is None:
                answer = await self.complete("make_replies", system, user)
            else:
                answer = await self.typed_answer("make_replies", system, user)
            if answer is None:
                failed.append(request)
            else:
                self.send_answer(request, answer)
        # A request whose answer failed is kept (in order, before any that arrived since).
        self.requests = failed + self.requests
        if failed:
            return Outcome.false(
                f"{len(failed)}/{plural(len(pending), 'request')} got no answer (kept pending)"
            )
        return Outcome.ok(f"answered {plural(len(pending), 'request')}")

    def _cannot_answer(self) -> str | None:
        return None

    async def typed_answer(self, purpose: str, system: str, user: str) -> str:
        """The answer to `user` as a JSON document valid against the ``output_schema``, after
        at most one repair call; raises `StepFailed` (region, path, error) if there is none."""
        contract = self.output_contract
        assert contract is not None
        user += SCHEMA_NOTE + contract.text
        answer = await self.complete(purpose, system, user, json_schema=contract.schema)
        document, problem = contract.read(answer)
        if problem is None:
            return document
        self.notice("warning", f"{purpose}: invalid answer ({problem}); one repair attempt")
        repair = user + REPAIR_NOTE.format(answer=answer or "", problem=problem)
        answer = await self.complete("repair", system, repair, json_schema=contract.schema)
        document, problem = contract.read(answer)
        if problem is None:
            return document
        raise StepFailed(
            f"the answer does not match {contract.where}, even after one repair: {problem}"
        )

    def send_answer(self, request: Entry, answer: str) -> None:
        """A Region answers the requester."""
        self.post(request.source, "reply", answer, cause=request.cause)

    async def make_questions(self) -> Outcome:
        """Ask connected regions questions (the model answers a JSON ``[{source, question}]``)."""
        if not self.connections:
            return Outcome.nothing("no connections to ask")
        t = self.context.templates
        user = t.render(
            "make_questions",
            name=self.name,
            task=self.task,
            connections=self.connections_json,
        )
        answer = await self.complete(
            "make_questions",
            self.system_prompt(self.requests),
            user,
            json_schema=question_list_schema(list(self.connections)),
        )
        if answer is None:
            return Outcome.false("the model gave no answer")
        items = last_json_array(answer)
        if items is None:
            self.notice("warning", f"make_questions: no JSON list in the answer: {answer[:200]!r}")
            return Outcome.false("no JSON list of questions in the model's answer")
        problems: list[str] = []
        asked = 0
        for item in items:
            problem = self._question_problem(item)
            if problem:
                problems.append(problem)
                self.notice("warning", f"make_questions: {problem}")
                continue
            assert isinstance(item, Mapping)
            self.post(str(item["source"]), "request", str(item["question"]))
            asked += 1
        if problems:
            return Outcome.false(
                f"asked {plural(asked, 'question')}; {len(problems)} invalid: {problems[0]}"
            )
        if not items:
            return Outcome.ok("the model asked no questions")
        return Outcome.ok(f"asked {plural(asked, 'question')}")

    def _question_problem(self, item: Any) -> str | None:
        if not isinstance(item, Mapping):
            return f"item {json.dumps(item)[:80]} is not an object"
        if "source" not in item or "question" not in item:
            return f"item {json.dumps(item)[:80]} needs `source` and `question`"
        if not isinstance(item["question"], str) or not item["question"].strip():
            return f"item for {item['source']!r} has no question text"
        if item["source"] not in self.connections:
            return f"{item['source']!r} is not a valid recipient (not a connection)"
        return None

    async def summarize_replies(self) -> Outcome:
        """Merge each source's replies into one summary; on failure keep that source's originals.

        Each source is summarised on its own: no other source's text enters its prompt.
        """
        if not self.replies:
            return Outcome.nothing("no replies to summarize")
        originals: dict[str, list[Entry]] = {}
        for entry in self.replies:
            originals.setdefault(entry.source, []).append(entry)
        result: list[Entry] = []
        failed: list[str] = []
        system = self.context.templates.render(
            "system", name=self.name, task=self.task, knowledge="", requests=""
        )
        for merged in self.consolidated_replies():
            user = self.context.templates.render(
                "summarize_replies",
                name=self.name,
                task=self.task,
                text=merged.content,
                source=merged.source,
            )
            summary = await self.complete("summarize_replies", system, user)
            if summary is None:
                failed.append(merged.source)
                result.extend(originals[merged.source])
            else:
                result.append(Entry(merged.source, summary, merged.cause))
        before = len(self.replies)
        # Replies that arrived while we were summarising (concurrent chains) are kept too.
        self.replies = result + self.replies[before:]
        if failed:
            return Outcome.false(
                f"could not summarize replies of {', '.join(failed)} (originals kept)"
            )
        return Outcome.ok(f"summarized {plural(before, 'reply', 'replies')} into {len(result)}")


class FeedForwardRegion(Region):
    """Like `Region`, but every answer goes to all its connections instead of the requester."""

    type_name: ClassVar[str] = "FeedForwardRegion"

    def _cannot_answer(self) -> str | None:
        if not self.connections:
            return "no connections to forward answers to (requests kept pending)"
        return None

    def send_answer(self, request: Entry, answer: str) -> None:
        for destination in self.connections:
            self.post(destination, "reply", answer, cause=request.cause)
