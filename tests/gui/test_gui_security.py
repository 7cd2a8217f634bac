"""The editor's API answers only the page `regions gui` opened: every endpoint needs this
start's token, the Host and Origin must be exactly this server, a body exactly JSON; nothing is
framed; half-sent requests cannot pile up threads."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from regions_cli import gui_server
from regions_cli.gui_server import GuiServer

ENDPOINTS = [
    ("GET", "/api/file", None),
    ("PUT", "/api/file", {"text": "x", "base_hash": None}),
    ("GET", "/api/schema", None),
    ("POST", "/api/verify", {"text": "x"}),
    ("POST", "/api/import", {"files": {}}),
    ("POST", "/api/export", {"text": "x"}),
    ("POST", "/api/run", {}),
    ("POST", "/api/answer", {"region": "Asker", "text": "yes"}),
    ("GET", "/api/events", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
@pytest.mark.parametrize("token", [None, "wrong", "cookie-wrong"])
def test_every_endpoint_needs_the_token(
    server: GuiServer, workflow_file: Path, method: str, path: str, body: object, token: str | None
) -> None:
    before = workflow_file.read_text()
    headers = {}
    if token == "wrong":
        headers["X-Regions-Token"] = server.token[:-1] + "x"
    elif token == "cookie-wrong":
        headers["Cookie"] = f"{gui_server.TOKEN_COOKIE}=nope"
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        response = http.request(method, path, json=body, headers=headers)
    assert response.status_code == 403
    assert "token" in response.json()["error"]
    assert workflow_file.read_text() == before and not server.hub.running


def test_the_printed_address_gives_the_page_a_strict_cookie(server: GuiServer) -> None:
    with httpx.Client(timeout=10) as http:
        wrong = http.get(f"{server.base_url}?token=guess")
        assert wrong.status_code == 403
        taken = http.get(server.url)
        assert taken.status_code == 303 and taken.headers["location"] == "/"
        cookie = taken.headers["set-cookie"]
        assert cookie.startswith(f"{gui_server.TOKEN_COOKIE}={server.token};")
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert http.get(f"{server.base_url}api/file").status_code == 200  # the cookie works


@pytest.mark.parametrize(
    "origin",
    ["http://evil.example", "http://127.0.0.1:1", "null", "http://127.0.0.1:{port}.evil.example"],
)
def test_a_foreign_origin_is_refused_even_with_the_token(
    client: httpx.Client, server: GuiServer, origin: str
) -> None:
    response = client.get("/api/file", headers={"Origin": origin.format(port=server.port)})
    assert response.status_code == 403 and "cross-origin" in response.json()["error"]
    same = client.get("/api/file", headers={"Origin": f"http://127.0.0.1:{server.port}"})
    assert same.status_code == 200


@pytest.mark.parametrize(
    "kind",
    ["text/plain", "text/plain; application/json", "application/jsonx", "multipart/form-data"],
)
def test_a_body_must_be_exactly_json(client: httpx.Client, kind: str) -> None:
    response = client.post("/api/verify", content=b'{"text": "x"}', headers={"Content-Type": kind})
    assert response.status_code == 415
    ok = client.post(
        "/api/verify",
        content=b'{"text": "x"}',
        headers={"Content-Type": "Application/JSON; charset=utf-8"},
    )
    assert ok.status_code == 200


@pytest.mark.parametrize("path", ["/", "/api/file", "/api/nothing"])
def test_nothing_may_be_framed(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["content-security-policy"] == "frame-ancestors 'none'"


@pytest.fixture
def quick_timeouts(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(gui_server._Handler, "timeout", 1.0)
    yield


def test_half_sent_requests_are_bounded_and_dropped(
    quick_timeouts: None, server: GuiServer
) -> None:
    threads_before = threading.active_count()
    loris = []
    for _ in range(gui_server.MAX_CONNECTIONS + 40):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        sock.sendall(b"GET /api/file HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finished
        loris.append(sock)
    try:
        time.sleep(0.3)  # let the server take them all
        assert threading.active_count() <= threads_before + gui_server.MAX_CONNECTIONS + 2
        for sock in loris:  # every one is closed: at once (over the limit) or at its timeout
            sock.settimeout(5)
            try:
                assert sock.recv(1024) == b""
            except ConnectionResetError:  # closed with unread bytes: a reset, closed too
                pass
        deadline = time.monotonic() + 10
        while True:  # the slots are free again: a real request is served
            try:
                with httpx.Client(timeout=5) as http:
                    response = http.get(
                        f"{server.base_url}api/file", headers={"X-Regions-Token": server.token}
                    )
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert response.status_code == 200
    finally:
        for sock in loris:
            sock.close()
