"""`regions gui` as a user starts it: a real process, its printed URL, its errors."""

from __future__ import annotations

import hashlib
import os
import select
import subprocess
from pathlib import Path

import httpx
import pytest
from clirun import regions, regions_argv, regions_env
from gui_workflow import WORKFLOW

from regions_cli import gui_server

ROOT = Path(__file__).resolve().parents[2]


def test_serves_the_built_editor_and_prints_its_url(tmp_path: Path) -> None:
    if gui_server.missing_build_message() is not None:
        pytest.fail(gui_server.missing_build_message() or "")
    workflow = tmp_path / "demo.yaml"
    workflow.write_text(WORKFLOW, "utf-8")
    process = subprocess.Popen(
        regions_argv("gui", workflow, "--no-browser"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=regions_env({"BROWSER": "false"}),
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("regions gui: http://127.0.0.1:"), line
        url = line.split()[2]
        assert "?token=" in url
        with httpx.Client(timeout=30, follow_redirects=True) as http:
            page = http.get(url)  # takes the token into a cookie, then shows the page at /
            assert page.status_code == 200
            assert '<div id="root">' in page.text
            script = page.text.split('src="./', 1)[1].split('"', 1)[0]
            base = url.split("?", 1)[0]
            bundle = http.get(f"{base}{script}")
            assert bundle.status_code == 200
            assert "javascript" in bundle.headers["content-type"]
            assert http.get(f"{base}api/file").json()["text"] == WORKFLOW
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_opens_the_browser_at_its_url_unless_told_not_to(tmp_path: Path) -> None:
    """`webbrowser` honours $BROWSER: a stand-in browser writes the URL it was given to a FIFO."""
    if gui_server.missing_build_message() is not None:
        pytest.fail(gui_server.missing_build_message() or "")
    opened = tmp_path / "opened"
    os.mkfifo(opened)
    browser = tmp_path / "browser"
    browser.write_text(f'#!/bin/sh\necho "$1" > {opened}\n', "utf-8")
    browser.chmod(0o755)
    # Opened non-blocking before the browser writes, so select() can wait with a deadline.
    reader = os.open(opened, os.O_RDONLY | os.O_NONBLOCK)
    process = subprocess.Popen(
        regions_argv("gui"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=regions_env({"BROWSER": f"{browser} %s"}),
        cwd=tmp_path,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split()[2]
        ready, _, _ = select.select([reader], [], [], 30)
        assert ready, "no browser was opened within 30 s"
        os.set_blocking(reader, True)  # then read up to the stand-in's end of file
        with os.fdopen(reader, "r") as fifo:
            assert fifo.read().strip() == url
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_without_a_build_it_says_so_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gui_server, "DIST", tmp_path / "no-build")
    result = regions("gui", "--no-browser", in_process=True)
    assert result.code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: the flow editor is not built")
    assert "npm run build" in lines[0]


def test_a_directory_is_refused(tmp_path: Path) -> None:
    result = regions("gui", str(tmp_path), "--no-browser", in_process=True)
    assert result.code == 2
    assert result.output.strip() == f"error: {tmp_path}: is a directory, not a workflow file"


def test_a_missing_folder_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "nope" / "x.yaml"
    result = regions("gui", str(target), "--no-browser", in_process=True)
    assert result.code == 2
    assert "does not exist" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_file_that_is_not_text_is_refused(tmp_path: Path) -> None:
    binary = tmp_path / "image.yaml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    result = regions("gui", str(binary), "--no-browser", in_process=True)
    assert result.code == 2
    assert result.output.strip() == f"error: {binary}: not UTF-8 text"


def test_a_busy_port_is_a_one_line_error(tmp_path: Path) -> None:
    busy = gui_server.GuiServer(None)
    try:
        result = regions("gui", "--no-browser", "--port", str(busy.port), in_process=True)
    finally:
        busy.server_close()
    assert result.code == 2
    assert result.output.startswith(f"error: cannot listen on 127.0.0.1:{busy.port}")
    assert len(result.output.strip().splitlines()) == 1


# The inputs of the build, as gui/scripts/stamp.mjs hashes them (keep the two in step).
BUILD_INPUTS = (
    "gui/src",
    "gui/index.html",
    "gui/package-lock.json",
    "gui/vite.config.ts",
    "regions_cli/workflow/workflow.schema.json",
)


def source_hash(root: Path) -> str:
    files: list[str] = []
    for entry in BUILD_INPUTS:
        path = root / entry
        if path.is_dir():
            files += [p.relative_to(root).as_posix() for p in path.rglob("*") if p.is_file()]
        else:
            files.append(entry)
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(f"{name}\0".encode())
        digest.update((root / name).read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def test_the_committed_build_matches_the_sources() -> None:
    """The wheel ships regions_cli/gui_dist; it must be built from the current gui/ sources.

    The bundle embeds the workflow schema too, so a schema edit also makes it stale.
    """
    if not (ROOT / "gui" / "src").is_dir():
        pytest.skip("not a source checkout")
    rebuild = (
        "rebuild it with `cd gui && npm run build` (run `npm ci` in gui/ once first) and commit "
        "regions_cli/gui_dist together with its SOURCE_HASH"
    )
    stamp = ROOT / "regions_cli" / "gui_dist" / "SOURCE_HASH"
    assert stamp.is_file(), f"regions_cli/gui_dist is not built: {rebuild}"
    built, current = stamp.read_text("utf-8").strip(), source_hash(ROOT)
    assert built == current, (
        f"regions_cli/gui_dist is stale: it was built from sources hashing to {built[:12]}, but "
        f"{', '.join(BUILD_INPUTS)} now hash to {current[:12]}; {rebuild}"
    )
