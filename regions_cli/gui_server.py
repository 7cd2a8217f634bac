"""`regions gui`: serves the built flow editor and a small local JSON API on 127.0.0.1.

The editor (``gui/``, built into ``regions_cli/gui_dist/``) is a static page; everything it
needs from the machine goes through these endpoints:

=====================  ====================================================================
``GET  /api/file``     the workflow file: ``{path, text, exists, hash, schema_ref}``
``PUT  /api/file``     save ``{text, base_hash}``; 409 if the file changed on disk since
``GET  /api/schema``   the workflow JSON Schema
``POST /api/verify``   ``{text}`` -> the findings of `regions verify` for that text
``POST /api/import``   ``{files: {name: json text}}`` -> ``{text, warnings}`` (``regions import``)
``POST /api/export``   ``{text}`` -> ``{files: {name: json text}, dropped}`` (``regions export``)
``POST /api/run``      run the saved file as ``regions run --json`` does; 409 while one runs
``POST /api/answer``   ``{region, text}``: the last run waits at a ``wait:``; inject the text
                       to the region and resume it (as ``regions inject`` + ``run --resume``)
``GET  /api/events``   server-sent events: every ``--json`` line of the current or last run
=====================  ====================================================================

Only loopback clients can reach it, and every ``/api/`` call needs the random token of this
start (`GuiServer.token`): the URL `regions gui` prints and opens carries it once
(``/?token=...``), and the server answers with a ``SameSite=Strict`` HttpOnly cookie and a
redirect to ``/``, as Jupyter does; a program may send it as the ``X-Regions-Token`` header.
So another local program, or another user of the machine, cannot read the workflow, save over
it or start a run. It also refuses a ``Host`` or ``Origin`` that is not exactly this server
(DNS rebinding, cross-site forms), a body that is not exactly ``application/json``, and being
framed (``X-Frame-Options: DENY``, ``frame-ancestors 'none'``). Each connection gets
`SOCKET_TIMEOUT` seconds to send its request, and at most `MAX_CONNECTIONS` are served at once
(more are closed at once), so half-sent requests cannot pile up threads. Handlers run in
threads (`ThreadingHTTPServer`); a run executes in its own thread with its own event loop, and
each event-stream client blocks on its own queue.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import mimetypes
import os
import queue
import secrets
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from regions_cli.exit_codes import ExitCode

#: Where the build of ``gui/`` lives inside the package.
DIST = Path(__file__).resolve().parent / "gui_dist"

MAX_BODY = 8 * 1024 * 1024  # an import may carry a large full-state JSON
MAX_WORKFLOW = 1024 * 1024  # the loader's own limit for a workflow file
RUN_HISTORY = 20_000  # events kept for a page that connects mid-run
SOCKET_TIMEOUT = 10.0  # seconds a connection may take to send a request (and idle between)
MAX_CONNECTIONS = 32  # connections served at once; more are closed at once
TOKEN_COOKIE = "regions_token"
#: Sent with every answer: never framed, never sniffed, never leaking the URL (and token).
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class ApiError(Exception):
    """A request the API refuses: its HTTP status and a one-line message."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


def text_hash(text: str) -> str:
    """The hash the editor sends back on save to detect a file changed meanwhile."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def missing_build_message(dist: Path | None = None) -> str | None:
    """Why the editor cannot be served (no build in the package), or None if it can."""
    dist = DIST if dist is None else dist
    if (dist / "index.html").is_file():
        return None
    return (
        f"the flow editor is not built ({dist / 'index.html'} is missing): "
        "run `npm ci && npm run build` in gui/, or install a released wheel"
    )


@dataclass
class RunHub:
    """The live run: starts it in a thread and fans its events (the lines of ``--json``) out
    to listeners.

    A listener is a `queue.Queue` per event-stream client; `None` in it means "the server is
    closing". Events of the current (or last) run are kept so a page that connects late sees
    the whole run.
    """

    lock: threading.Lock = field(default_factory=threading.Lock)
    listeners: list[queue.Queue[str | None]] = field(default_factory=list)
    history: list[str] = field(default_factory=list)
    thread: threading.Thread | None = None
    runs: int = 0
    #: the run file of the last run and how it ended (None while it runs or before any)
    run_file: Path | None = None
    status: str | None = None

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def subscribe(self) -> queue.Queue[str | None]:
        listener: queue.Queue[str | None] = queue.Queue()
        with self.lock:
            for line in self.history:
                listener.put(line)
            self.listeners.append(listener)
        return listener

    def unsubscribe(self, listener: queue.Queue[str | None]) -> None:
        with self.lock:
            if listener in self.listeners:
                self.listeners.remove(listener)

    def publish(self, line: str) -> None:
        with self.lock:
            self.history.append(line)
            del self.history[:-RUN_HISTORY]
            for listener in self.listeners:
                listener.put(line)

    def close(self) -> None:
        with self.lock:
            for listener in self.listeners:
                listener.put(None)

    def start(self, workflow: Path, *, resume: Path | None = None) -> int:
        """Run `workflow` as ``regions run --json`` in a thread (with `resume`: continue that
        run file, as ``regions run --resume``); returns the run's number.

        A resumed run's events follow the earlier ones in the history, so the page shows the
        whole run."""
        with self.lock:
            if self.running:
                raise ApiError(HTTPStatus.CONFLICT, "a run is already in progress")
            self.runs += 1
            if resume is None:
                self.history.clear()
            self.run_file, self.status = None, None
            number = self.runs
            self.thread = threading.Thread(
                target=self._run,
                args=(workflow, resume),
                name=f"regions-gui-run-{number}",
                daemon=True,
            )
            self.thread.start()
        return number

    def _run(self, workflow: Path, resume: Path | None) -> None:
        ended = _Ended()
        try:
            code = asyncio.run(_run_workflow(workflow, self.publish, ended, resume=resume))
        except Exception as exc:  # a bug in the engine must not kill the server silently
            self.publish(_line("error", text=f"the run crashed: {type(exc).__name__}: {exc}"))
            code = ExitCode.FAILED
        with self.lock:
            self.run_file, self.status = ended.run_file, ended.status
        self.publish(_line("run_exit", exit_code=code))

    def answer(self, workflow: Path, region: str, text: str) -> int:
        """The last run waits for a person: queue `text` for `region` in its run file and resume
        it; returns the resumed run's number."""
        from regions_cli.runs.store import RunFile, RunFileError

        with self.lock:
            if self.running:
                raise ApiError(HTTPStatus.CONFLICT, "a run is in progress; answer when it waits")
            run_file, status = self.run_file, self.status
        if run_file is None or status != "waiting":
            raise ApiError(HTTPStatus.CONFLICT, "the last run is not waiting for an answer")
        if not text.strip():
            raise ApiError(HTTPStatus.BAD_REQUEST, "the answer is empty")
        try:
            with RunFile.open(run_file) as opened:
                problem = opened.workflow.injection_problem(region, "request")
                if problem is not None:
                    raise ApiError(HTTPStatus.UNPROCESSABLE_ENTITY, problem)
                opened.add_injection("user", region, "request", text)
        except RunFileError as exc:
            raise ApiError(HTTPStatus.CONFLICT, str(exc)) from exc
        return self.start(workflow, resume=run_file)


def _line(kind: str, **fields: Any) -> str:
    return json.dumps({"kind": kind, "t": time.time(), **fields})


@dataclass
class _Ended:
    """What a finished run leaves for the next request: its run file and status."""

    run_file: Path | None = None
    status: str | None = None


async def _run_workflow(
    path: Path, publish: Callable[[str], None], ended: _Ended, *, resume: Path | None = None
) -> int:
    """Verify and run `path` as ``regions run --json`` would (``--resume`` with `resume`),
    publishing the same lines (the findings if any, then every event); returns the exit code
    and fills `ended`."""
    from regions_cli.runs.run import Run, RunError
    from regions_cli.view.jsonl import encode, event_line
    from regions_cli.workflow.api import load
    from regions_cli.workflow.findings import findings_record

    loaded = load(path)
    if loaded.findings:
        publish(encode(findings_record(loaded.findings)))
    if loaded.workflow is None:
        return ExitCode.INVALID
    refusal = loaded.outside_paths_problem()
    if refusal is not None:
        publish(_line("error", text=refusal))
        return ExitCode.USAGE
    try:
        with Run.open(loaded.workflow, loaded.document, resume=resume) as run:
            run.subscribe(lambda event: publish(event_line(event)))
            finished = await run.execute()
            ended.run_file, ended.status = run.path, finished.status
            return finished.exit_code
    except RunError as exc:
        publish(_line("error", text=str(exc)))
        return exc.exit_code


class GuiServer(ThreadingHTTPServer):
    """The HTTP server of `regions gui`: static editor + API for one workflow file."""

    daemon_threads = True

    def __init__(self, workflow: Path | None, *, port: int = 0, dist: Path | None = None) -> None:
        self.workflow = workflow.resolve() if workflow is not None else None
        self.dist = (DIST if dist is None else dist).resolve()
        self.hub = RunHub()
        self.token = secrets.token_urlsafe(32)
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__(("127.0.0.1", port), _Handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def url(self) -> str:
        """The address to open: it carries the token once (the page then keeps a cookie)."""
        return f"{self.base_url}?token={self.token}"

    def authorized(self, header: str | None, cookies: str | None) -> bool:
        """Whether a request carries this start's token (header or cookie)."""
        offered = [header or ""]
        for part in (cookies or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == TOKEN_COOKIE:
                offered.append(value)
        return any(hmac.compare_digest(o.encode(), self.token.encode()) for o in offered if o)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve a connection in a thread, unless `MAX_CONNECTIONS` are served already."""
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def server_close(self) -> None:
        self.hub.close()
        super().server_close()

    # -- the API's work, independent of HTTP ------------------------------------------------

    def file_state(self) -> dict[str, Any]:
        """The file's text and hash, and the ``$schema`` path a new file there should use."""
        from regions_cli.interop.original.to_yaml import schema_reference

        path = self.workflow
        state: dict[str, Any] = {"path": None, "text": "", "exists": False, "hash": None}
        state["schema_ref"] = schema_reference(path)
        if path is None:
            return state
        state["path"] = str(path)
        if path.exists():
            text = _read_text(path)
            state.update(text=text, exists=True, hash=text_hash(text))
        return state

    def save(self, text: str, base_hash: str | None) -> dict[str, Any]:
        path = self.workflow
        if path is None:
            raise ApiError(HTTPStatus.CONFLICT, "no file: start `regions gui FILE` to save")
        if len(text.encode("utf-8")) > MAX_WORKFLOW:
            raise ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "the workflow is over 1 MiB")
        if path.exists():
            current = text_hash(_read_text(path))
            if base_hash != current:
                raise ApiError(
                    HTTPStatus.CONFLICT,
                    f"{path} changed on disk since it was opened; reload the page to see it "
                    "(your edits are still in the editor: export them first)",
                )
        _write_atomically(path, text)
        return {"path": str(path), "hash": text_hash(text)}

    def verify(self, text: str) -> dict[str, Any]:
        """Findings of the Python verifier for `text`, as if it were the workflow file."""
        from regions_cli.workflow import api

        folder = self.workflow.parent if self.workflow is not None else Path.cwd()
        shown = self.workflow.name if self.workflow is not None else "workflow.yaml"
        # Checked as if it were the file, so relative paths (stores, documents) resolve the same.
        findings = [f.to_dict() for f in api.verify_text(text, file=shown, base_dir=folder)]
        ok = not any(f["severity"] == "error" for f in findings)
        return {"ok": ok, "findings": findings}

    def import_json(self, files: dict[str, str]) -> dict[str, Any]:
        """The original's JSON files -> our YAML, by `regions import`'s rules."""
        from regions_cli.interop.original.to_yaml import import_files

        if not 1 <= len(files) <= 2:
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                "give a full-state file, a registry, or a registry and a plan",
            )
        with tempfile.TemporaryDirectory(prefix="regions-gui-import-") as folder:
            paths = []
            for name, text in files.items():
                path = Path(folder) / (Path(name).name or "import.json")
                path.write_text(text, encoding="utf-8")
                paths.append(path)
            # The registry (a JSON list) goes first, as `regions import REGIONS PLAN` wants.
            paths.sort(key=lambda p: not p.read_text(encoding="utf-8").lstrip().startswith("["))
            try:
                result = import_files(paths, output=self.workflow)
            except (ValueError, OSError) as exc:
                raise ApiError(HTTPStatus.BAD_REQUEST, str(exc)) from exc
            return {"text": result.dump(), "warnings": list(result.warnings)}

    def export_json(self, text: str) -> dict[str, Any]:
        """`text` as the original's registry and plan JSON (``regions export``'s rules)."""
        from regions_cli.interop.original.export import export_workflow
        from regions_cli.workflow.api import check_document
        from regions_cli.workflow.convert import build_workflow
        from regions_cli.workflow.load import load_text

        folder = self.workflow.parent if self.workflow is not None else Path.cwd()
        shown = self.workflow.name if self.workflow is not None else "workflow.yaml"
        doc = load_text(text, file=shown, base_dir=folder)
        errors = [f for f in check_document(doc) if f.is_error]
        if errors or doc.data is None:
            first = f"{errors[0].location()}: {errors[0].message}" if errors else "no data"
            raise ApiError(HTTPStatus.UNPROCESSABLE_ENTITY, f"fix the workflow first: {first}")
        try:
            result = export_workflow(build_workflow(doc.data, base_dir=folder))
        except (ValueError, OSError) as exc:
            raise ApiError(HTTPStatus.UNPROCESSABLE_ENTITY, f"cannot export: {exc}") from exc
        files = {
            f"{result.name}_regions.json": result.regions,
            f"{result.name}_executions.json": result.executions,
        }
        return {
            "files": {
                name: json.dumps(data, indent=2, ensure_ascii=False) + "\n"
                for name, data in files.items()
            },
            "dropped": list(result.dropped),
        }

    def run(self) -> dict[str, Any]:
        return {"run": self.hub.start(self._saved_workflow())}

    def answer(self, region: str, text: str) -> dict[str, Any]:
        """Answer the wait the last run stopped at and resume it."""
        return {"run": self.hub.answer(self._saved_workflow(), region, text)}

    def _saved_workflow(self) -> Path:
        path = self.workflow
        if path is None or not path.exists():
            raise ApiError(HTTPStatus.CONFLICT, "save the workflow to a file before running it")
        return path

    def schema(self) -> Any:
        schema = Path(__file__).resolve().parent / "workflow" / "workflow.schema.json"
        return json.loads(schema.read_text(encoding="utf-8"))


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(HTTPStatus.UNPROCESSABLE_ENTITY, f"{path}: not UTF-8 text") from exc
    except OSError as exc:
        raise ApiError(HTTPStatus.INTERNAL_SERVER_ERROR, f"{path}: {exc.strerror}") from exc


def _write_atomically(path: Path, text: str) -> None:
    """Write via a temporary file and a rename, so a crash never leaves half a workflow."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        if path.exists():
            os.chmod(temp, path.stat().st_mode & 0o777)
        os.replace(temp, path)
    except OSError as exc:
        Path(temp).unlink(missing_ok=True)
        raise ApiError(HTTPStatus.INTERNAL_SERVER_ERROR, f"{path}: {exc.strerror}") from exc


class _Handler(BaseHTTPRequestHandler):
    server: GuiServer
    protocol_version = "HTTP/1.1"
    server_version = "regions-gui"
    timeout = SOCKET_TIMEOUT  # the socket's timeout: a half-sent request is dropped

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the terminal shows the URL, not every request."""

    # -- dispatch ------------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        try:
            self._check_origin(method)
            path, _, query = self.path.partition("?")
            if path.startswith("/api/"):
                if not self.server.authorized(
                    self.headers.get("X-Regions-Token"), self.headers.get("Cookie")
                ):
                    raise ApiError(
                        HTTPStatus.FORBIDDEN,
                        "no valid token: open the address `regions gui` printed",
                    )
                self._api(method, path)
            elif method == "GET" and path == "/" and query.startswith("token="):
                self._take_token(query.removeprefix("token="))
            elif method == "GET":
                self._static(path)
            else:
                raise ApiError(HTTPStatus.METHOD_NOT_ALLOWED, f"{method} {path} is not allowed")
        except ApiError as exc:
            # The request body may be unread: end the connection rather than misread it.
            self.close_connection = True
            self._json({"error": str(exc)}, exc.status)
        except (TimeoutError, BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # a bug: answer with one line rather than drop the connection
            self.close_connection = True
            self._json(
                {"error": f"internal error: {type(exc).__name__}: {exc}"},
                HTTPStatus.INTERNAL_SERVER_ERROR,
            )

    def _check_origin(self, method: str) -> None:
        port = self.server.port
        allowed = {f"127.0.0.1:{port}", f"localhost:{port}"}
        if self.headers.get("Host", "") not in allowed:
            raise ApiError(HTTPStatus.FORBIDDEN, "wrong Host header: only this machine may connect")
        origin = self.headers.get("Origin")
        if origin is not None and origin not in {f"http://{host}" for host in allowed}:
            raise ApiError(HTTPStatus.FORBIDDEN, f"cross-origin request from {origin} refused")
        media = self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if method != "GET" and media != "application/json":
            raise ApiError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send the body as application/json")

    def _take_token(self, offered: str) -> None:
        """``/?token=T``: keep T in a cookie and show the page at ``/`` (the token leaves the
        address bar and the history)."""
        if not hmac.compare_digest(offered.encode(), self.server.token.encode()):
            raise ApiError(
                HTTPStatus.FORBIDDEN, "wrong token: open the address `regions gui` printed"
            )
        self.send_response(HTTPStatus.SEE_OTHER)
        self.send_header(
            "Set-Cookie", f"{TOKEN_COOKIE}={self.server.token}; HttpOnly; SameSite=Strict; Path=/"
        )
        self.send_header("Location", "/")
        self.send_header("Content-Length", "0")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()

    def end_headers(self) -> None:
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        super().end_headers()

    def _api(self, method: str, path: str) -> None:
        server = self.server
        route = (method, path)
        if route == ("GET", "/api/file"):
            self._json(server.file_state())
        elif route == ("PUT", "/api/file"):
            body = self._body()
            base = body.get("base_hash")
            if base is not None and not isinstance(base, str):
                raise ApiError(HTTPStatus.BAD_REQUEST, "base_hash must be a string or null")
            self._json(server.save(_string(body, "text"), base))
        elif route == ("GET", "/api/schema"):
            self._json(server.schema())
        elif route == ("POST", "/api/verify"):
            self._json(server.verify(_string(self._body(), "text")))
        elif route == ("POST", "/api/import"):
            files = self._body().get("files")
            if not isinstance(files, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in files.items()
            ):
                raise ApiError(HTTPStatus.BAD_REQUEST, "files must map file names to JSON text")
            self._json(server.import_json(files))
        elif route == ("POST", "/api/export"):
            self._json(server.export_json(_string(self._body(), "text")))
        elif route == ("POST", "/api/run"):
            self._body()
            self._json(server.run(), HTTPStatus.ACCEPTED)
        elif route == ("POST", "/api/answer"):
            body = self._body()
            self._json(
                server.answer(_string(body, "region"), _string(body, "text")),
                HTTPStatus.ACCEPTED,
            )
        elif route == ("GET", "/api/events"):
            self._events()
        else:
            raise ApiError(HTTPStatus.NOT_FOUND, f"no endpoint {method} {path}")

    # -- bodies and responses ----------------------------------------------------------------

    def _body(self) -> dict[str, Any]:
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            raise ApiError(HTTPStatus.BAD_REQUEST, "bad Content-Length") from None
        if length > MAX_BODY:
            raise ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request body over 8 MiB")
        raw = self.rfile.read(length) if length > 0 else b"{}"
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ApiError(HTTPStatus.BAD_REQUEST, f"the body is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ApiError(HTTPStatus.BAD_REQUEST, "the body must be a JSON object")
        return data

    def _json(self, payload: Any, status: HTTPStatus = HTTPStatus.OK) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _static(self, path: str) -> None:
        dist = self.server.dist
        relative = path.lstrip("/") or "index.html"
        target = (dist / relative).resolve()
        if not target.is_relative_to(dist) or not target.is_file():
            raise ApiError(HTTPStatus.NOT_FOUND, f"no file {path}")
        body = target.read_bytes()
        kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if kind.startswith("text/") or kind == "application/javascript":
            kind += "; charset=utf-8"
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        # Built assets have content hashes in their names; the page itself must not be cached.
        immutable = target.parent.name == "assets"
        cache = "max-age=31536000, immutable" if immutable else "no-cache"
        self.send_header("Cache-Control", cache)
        self.end_headers()
        self.wfile.write(body)

    def _events(self) -> None:
        """Server-sent events: each ``--json`` line as one ``data:`` message."""
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        listener = self.server.hub.subscribe()
        try:
            self.wfile.write(b": connected\n\n")
            self.wfile.flush()
            while (line := listener.get()) is not None:
                self.wfile.write(f"data: {line}\n\n".encode())
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            self.server.hub.unsubscribe(listener)


def _string(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str):
        raise ApiError(HTTPStatus.BAD_REQUEST, f"`{key}` must be a string")
    return value


def serve(
    workflow: Path | None,
    *,
    port: int = 0,
    open_browser: bool = True,
    announce: Callable[[str], None] = print,
) -> None:
    """Serve the editor until Ctrl-C. Raises OSError if the port cannot be bound."""
    server = GuiServer(workflow, port=port)
    announce(f"regions gui: {server.url}  (Ctrl-C to stop)")
    if open_browser:
        import webbrowser

        threading.Thread(target=webbrowser.open, args=(server.url,), daemon=True).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
