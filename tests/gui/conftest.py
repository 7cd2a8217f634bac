"""Fixtures for the `regions gui` tests: a real server on a free loopback port."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from gui_workflow import WORKFLOW

from regions_cli.gui_server import GuiServer


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    """A stand-in build of the editor (the API tests do not need the real bundle)."""
    folder = tmp_path / "dist"
    (folder / "assets").mkdir(parents=True)
    (folder / "index.html").write_text("<!doctype html><title>regions</title>", "utf-8")
    (folder / "assets" / "app-1234.js").write_text("console.log('editor');", "utf-8")
    return folder


@pytest.fixture
def workflow_file(tmp_path: Path) -> Path:
    path = tmp_path / "flows" / "demo.yaml"
    path.parent.mkdir()
    path.write_text(WORKFLOW, "utf-8")
    return path


def _serve(server: GuiServer) -> Iterator[GuiServer]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def server(workflow_file: Path, dist: Path) -> Iterator[GuiServer]:
    yield from _serve(GuiServer(workflow_file, dist=dist))


@pytest.fixture
def make_server(dist: Path) -> Iterator[object]:
    """Start servers for other files (or none); all are stopped at the end of the test."""
    started: list[Iterator[GuiServer]] = []

    def make(workflow: Path | None) -> GuiServer:
        serving = _serve(GuiServer(workflow, dist=dist))
        started.append(serving)
        return next(serving)

    yield make
    for serving in started:
        for _ in serving:
            pass


@pytest.fixture
def client(server: GuiServer) -> Iterator[httpx.Client]:
    headers = {"X-Regions-Token": server.token}
    with httpx.Client(base_url=server.base_url, timeout=30, headers=headers) as http:
        yield http
