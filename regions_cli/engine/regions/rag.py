"""`RAGRegion`: answers from a knowledge store and edits it with the replies it receives."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from regions_cli.engine.regions.base import BaseRegion, Entry, Outcome
from regions_cli.rag.base import Hit, KnowledgeStore
from regions_cli.text import plural

#: The request `request_summaries` sends (the original's exact wording).
SUMMARY_REQUEST = "Summarize the knowledge you have."


class RAGRegion(BaseRegion):
    """A region with no model: a vector store behind the request/reply protocol.

    It replies to whoever asked (its "asked-by" set) and may ask those regions, and its
    connections, for summaries of what they know, which `make_updates` then writes back.
    """

    type_name: ClassVar[str] = "RAGRegion"
    #: Hits scoring within this much of the best one are near-duplicates that
    #: `make_updates` folds into the updated chunk.
    consolidate_threshold: ClassVar[float] = 0.1

    @property
    def store(self) -> KnowledgeStore | None:
        return self.context.store

    def _no_store(self) -> Outcome | None:
        if self.store is None:
            return Outcome.false(f"no knowledge store (rag: {self.config.rag!r})")
        return None

    async def _search(self, text: str) -> list[Hit]:
        assert self.store is not None
        return await self.store.search(
            text, k=self.config.max_results, threshold=self.config.threshold
        )

    def fragments(self, hits: list[Hit]) -> str:
        """The reply: a real JSON list of ``{"memory_fragment", "actors"?}``, best first."""
        items: list[dict[str, Any]] = []
        for hit in hits:
            item: dict[str, Any] = {"memory_fragment": hit.content}
            if self.config.reply_with_actors:
                item["actors"] = list(hit.actors)
            items.append(item)
        return json.dumps(items, ensure_ascii=False)

    async def make_replies(self) -> Outcome:
        """Answer each request with the matching fragments (``[]`` when nothing matches)."""
        if (missing := self._no_store()) is not None:
            return missing
        if not self.requests:
            return Outcome.nothing("no incoming requests")
        pending, self.requests = self.requests, []
        failed: list[Entry] = []
        empty = 0
        for request in pending:
            try:
                hits = await self._search(request.content)
            except Exception as exc:  # a store failure is recorded; the request stays
                self.notice("error", f"make_replies: search failed: {type(exc).__name__}: {exc}")
                failed.append(request)
                continue
            empty += not hits
            self.post(request.source, "reply", self.fragments(hits), cause=request.cause)
        self.requests = failed + self.requests
        if failed:
            return Outcome.false(
                f"{len(failed)}/{plural(len(pending), 'search', 'searches')} failed (kept pending)"
            )
        note = f" ({empty} with no match above {self.config.threshold})" if empty else ""
        return Outcome.ok(f"answered {plural(len(pending), 'request')}{note}")

    async def make_updates(self) -> Outcome:
        """Write every stored reply into the store, then forget the reply.

        The best hit is updated with the reply's text (keeping its actors) and the *other*
        near-duplicates are deleted; with no hit the text is added as a new chunk. A reply
        whose update failed is kept, so nothing is lost.
        """
        if (missing := self._no_store()) is not None:
            return missing
        if not self.replies:
            return Outcome.nothing("no replies to write")
        store = self.store
        assert store is not None
        pending, self.replies = self.replies, []
        kept: list[Entry] = []
        updated = added = deleted = 0
        for reply in pending:
            try:
                hits = await self._search(reply.content)
                if hits:
                    best = max(hits, key=lambda h: h.score)  # the first of the best scores
                    await store.update_chunk(best.chunk_id, reply.content, best.actors)
                    updated += 1
                    near = [
                        h.chunk_id
                        for h in hits
                        if h.chunk_id != best.chunk_id
                        and h.score > best.score - self.consolidate_threshold
                    ]
                    if near:
                        deleted += await store.delete_chunks(near)
                else:
                    await store.add_text(reply.content, (), document=reply.source)
                    added += 1
            except Exception as exc:
                self.notice(
                    "error",
                    f"make_updates: update from {reply.source} failed: {type(exc).__name__}: {exc}",
                )
                kept.append(reply)
        self.replies = kept + self.replies
        summary = f"updated {updated}, added {added}, removed {deleted} near-duplicates"
        if kept:
            return Outcome.false(
                f"{len(kept)}/{plural(len(pending), 'update')} failed (kept); {summary}"
            )
        return Outcome.ok(summary)

    async def request_summaries(self) -> Outcome:
        """Ask connections and every region that asked us to summarise what they know."""
        recipients = list(self.connections)
        recipients += [
            name
            for name in self.asked_by
            if name not in self.connections and self.context.is_region(name)
        ]
        if not recipients:
            self.notice("warning", "request_summaries: no connections and nobody has asked yet")
            return Outcome.nothing("nobody to ask for summaries")
        for name in recipients:
            self.post(name, "request", SUMMARY_REQUEST)
        return Outcome.ok(f"asked {plural(len(recipients), 'region')} for summaries")
