"""``--json``: one JSON object per event per line, exactly `Event.to_json()`."""

from __future__ import annotations

import io
import json
from collections.abc import Callable

import view_events as sample

from regions_cli.engine.events import MessageDelivered
from regions_cli.engine.message import Message
from regions_cli.view.jsonl import JsonlView, event_line

Snapshot = Callable[[str, str], None]


def test_whole_run_matches_snapshot(snapshot: Snapshot) -> None:
    out = io.StringIO()
    with JsonlView(out) as view:
        for event in sample.whole_run():
            view(event)
        view.report()  # adds nothing: run_finished is the summary
    snapshot("run.jsonl", out.getvalue())
    lines = out.getvalue().splitlines()
    assert len(lines) == len(sample.whole_run())
    # Each line is exactly the event's documented `to_json()`.
    expected = [json.loads(json.dumps(e.to_json())) for e in sample.whole_run()]
    assert [json.loads(line) for line in lines] == expected


def test_message_event_shape() -> None:
    data = json.loads(event_line(MessageDelivered(t=1.5, message=sample.ANSWER, delivery="output")))
    assert data["kind"] == "message" and data["t"] == 1.5 and data["delivery"] == "output"
    assert data["message"] == {
        "source": "Historian",
        "destination": "user",
        "role": "reply",
        "content": "Ada led the Zebras in 1848.\n\nSource: Facts.",
        "origin": {"layer": 1, "chain": "main", "step": 1, "ordinal": 0, "injected": False},
        "cause": None,
        "id": sample.ANSWER.id,
    }


def test_text_stays_on_one_line_and_keeps_unicode() -> None:
    message = Message("a", "b", "request", "line one\nzweite Zeile ü\u2028end")
    line = event_line(MessageDelivered(t=0.0, message=message))
    assert "\n" not in line and "ü" in line
    assert json.loads(line)["message"]["content"] == message.content


def test_extra_lines_are_json_too() -> None:
    out = io.StringIO()
    JsonlView(out).write({"kind": "findings", "errors": 1, "path": sample.RUN_FILE})
    assert json.loads(out.getvalue()) == {"kind": "findings", "errors": 1, "path": sample.RUN_FILE}


def test_an_ascii_stdout_gets_escapes_not_question_marks() -> None:
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="ascii")
    message = Message("a", "b", "request", "Zürich … 東京")
    JsonlView(out)(MessageDelivered(t=0.0, message=message))
    out.flush()
    line = raw.getvalue().decode("ascii")
    assert "\\u00fc" in line and "?" not in line
    assert json.loads(line)["message"]["content"] == "Zürich … 東京"  # lossless
