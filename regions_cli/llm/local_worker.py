"""The embedded model's own process: llama.cpp's server engine (xllamacpp) behind a pipe.

`regions_cli.llm.local.LocalModel` starts ``python -m regions_cli.llm.local_worker CONFIG``
(CONFIG: a JSON object with ``model``, ``n_ctx``, ``n_parallel``, ``n_threads``) and talks to
it in JSON lines. Native code that faults (a corrupt GGUF, a CPU the build did not expect, out
of memory) kills this process, never the run.

Requests arrive on stdin, one JSON object a line::

    {"id": 1, "chat": {...an OpenAI chat completion body...}, "schema": {...} or null}
    {"id": 1, "cancel": true}
    {"id": 2, "count": "text"}            # how many tokens the model makes of a text

Answers go to stdout, one JSON object a line: first ``{"ready": true}`` (or ``{"error": ...}``
and exit 1 if the model cannot be loaded), then per request ``{"id", "token"}`` pieces as they
are generated, and one ``{"id", "done": {text, usage, finish_reason}}``, ``{"id", "count": N}``
or ``{"id", "error": "..."}``. Every request runs on its own thread; llama.cpp's server decodes
the requests of all its ``n_parallel`` slots together in one batch (continuous batching: a new
request joins the running batch at its next step).
"""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import IO, Any


class Worker:
    """Serves the requests of one parent over a pair of pipes."""

    def __init__(self, server: Any, out: IO[str]) -> None:
        self.server = server
        self.out = out
        self._write_lock = threading.Lock()
        self._cancelled: set[int] = set()

    def send(self, message: dict[str, Any]) -> None:
        line = json.dumps(message, ensure_ascii=False)
        with self._write_lock:
            self.out.write(line + "\n")
            self.out.flush()

    def handle(self, request: dict[str, Any]) -> None:
        number = int(request["id"])
        if request.get("cancel"):
            self._cancelled.add(number)
            return
        target = self._chat if "chat" in request else self._count
        threading.Thread(target=target, args=(number, request), daemon=True).start()

    def _chat(self, number: int, request: dict[str, Any]) -> None:
        body = dict(request["chat"], stream=True, stream_options={"include_usage": True})
        if request.get("schema") is not None:
            try:
                body["grammar"] = grammar_of(request["schema"])
            except Exception as exc:
                self.send(
                    {"id": number, "error": f"cannot turn the JSON schema into a grammar: {exc}"}
                )
                return
        pieces: list[str] = []
        finish: list[str] = []
        usage: dict[str, int] = {}

        def on_chunk(chunk: Any) -> bool:
            if isinstance(chunk, dict):
                if "error" in chunk:
                    raise RuntimeError(_error_text(chunk["error"]))
                for choice in chunk.get("choices") or ():
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:
                        pieces.append(piece)
                        self.send({"id": number, "token": piece})
                    if choice.get("finish_reason"):
                        finish.append(str(choice["finish_reason"]))
                if chunk.get("usage"):
                    usage.update(chunk["usage"])
            return number in self._cancelled  # True stops the generation

        try:
            result = self.server.handle_chat_completions(body, on_chunk)
            if isinstance(result, dict) and "error" in result:
                raise RuntimeError(_error_text(result["error"]))
        except Exception as exc:  # the request fails, the process goes on
            self.send({"id": number, "error": str(exc) or type(exc).__name__})
            return
        finally:
            self._cancelled.discard(number)
        done = {
            "text": "".join(pieces),
            "prompt_tokens": int(usage.get("prompt_tokens", 0)),
            "completion_tokens": int(usage.get("completion_tokens", len(pieces))),
            "finish_reason": finish[-1] if finish else None,
        }
        self.send({"id": number, "done": done})

    def _count(self, number: int, request: dict[str, Any]) -> None:
        try:
            result = self.server.handle_completions(
                {"prompt": str(request["count"]), "max_tokens": 1}
            )
            if "error" in result:
                raise RuntimeError(_error_text(result["error"]))
            self.send({"id": number, "count": int(result["usage"]["prompt_tokens"])})
        except Exception as exc:
            self.send({"id": number, "error": str(exc) or type(exc).__name__})


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(error)


def grammar_of(schema: dict[str, Any]) -> str:
    """llama.cpp's grammar (llguidance) for a JSON schema, writing compact JSON: a small model
    given free whitespace spends its tokens on indentation."""
    import xllamacpp

    compact = {"whitespace_flexible": False, "key_separator": ": ", "item_separator": ", "}
    return str(xllamacpp.json_schema_to_grammar(json.dumps({**schema, "x-guidance": compact})))


def load(config: dict[str, Any]) -> Any:
    """llama.cpp's server engine for `config` (each slot gets ``n_ctx`` tokens)."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(config["model"])
    params.n_parallel = int(config["n_parallel"])
    params.n_ctx = int(config["n_ctx"]) * params.n_parallel
    params.verbosity = -1  # the parent reports what matters; llama.cpp's log would drown it
    # No warm-up decode at load: the first request does the same work (measured: its first
    # token comes no later), and the load, which a run's first token waits for, is shorter.
    params.warmup = False
    if config.get("n_threads"):
        params.cpuparams.n_threads = int(config["n_threads"])
        params.cpuparams_batch.n_threads = int(config["n_threads"])
    return xllamacpp.Server(params)


def main(argv: list[str]) -> int:
    config = json.loads(argv[1])
    # The protocol gets stdout to itself: whatever native code prints goes to stderr.
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    worker = Worker(None, protocol)
    try:
        worker.server = load(config)
    except Exception as exc:
        worker.send({"error": f"{type(exc).__name__}: {exc}"})
        return 1
    worker.send({"ready": True})
    for line in sys.stdin:  # EOF: the parent is gone or done
        if line.strip():
            worker.handle(json.loads(line))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
