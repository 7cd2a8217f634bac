"""`RunState`: how events fold into what the views show."""

from __future__ import annotations

import dataclasses

import view_events as sample

from regions_cli.engine.events import MessageDelivered, RegionStatus, TokenStreamed
from regions_cli.engine.message import Message
from regions_cli.view.state import RunState, first_line, seconds


def test_the_sample_run_adds_up() -> None:
    state = RunState()
    for event in sample.whole_run():
        state.apply(event)
    assert (state.steps_ok, state.steps_failed, state.messages, state.rejected) == (4, 0, 3, 1)
    assert (state.prompt_tokens, state.completion_tokens) == (530, 70)
    assert state.outputs == [sample.ANSWER]
    assert state.layers_done == 2 and state.streams == {}
    historian = state.regions["Historian"]
    assert (historian.sent, historian.received, historian.calls, historian.tokens) == (2, 1, 3, 600)
    assert historian.last_call == "210+40"  # tokens per call: the last one's, prompt+completion


def test_first_token_means_the_region_is_replying() -> None:
    state = RunState()
    state.apply(sample.started())
    state.apply(RegionStatus(region="Facts", status="waiting_llm"))
    state.apply(TokenStreamed(region="Facts", text="The "))
    state.apply(TokenStreamed(region="Facts", text="Zebras"))
    assert state.regions["Facts"].status == "replying"
    assert state.streams == {"Facts": "The Zebras"}
    state.apply(MessageDelivered(message=Message("Facts", "Historian", "reply", "The Zebras")))
    assert state.streams == {}  # the streamed text became a message


def test_a_cc_counts_for_the_listener_not_as_sent_again() -> None:
    state = RunState()
    state.apply(sample.started())
    message = Message("Historian", "Facts", "request", "q")
    state.apply(MessageDelivered(message=message))
    state.apply(MessageDelivered(message=message, delivery="cc", recipient="Trace"))
    rows = state.regions
    assert (rows["Historian"].sent, rows["Facts"].received, rows["Trace"].received) == (1, 1, 1)
    assert state.outputs == []
    assert state.messages == 1  # the footer's count: the copy is the same message


def test_a_message_to_an_external_address_is_output_whatever_its_delivery_label() -> None:
    state = RunState()
    state.apply(sample.started())
    state.apply(MessageDelivered(message=Message("Historian", "user", "reply", "hi")))
    assert [m.content for m in state.outputs] == ["hi"]


def test_a_resumed_run_counts_the_layers_before_it_as_done() -> None:
    state = RunState()
    state.apply(dataclasses.replace(sample.started(), resumed_from_layer=1))
    assert [layer.state for layer in state.layers] == ["skipped", "pending"]
    assert state.layers_done == 1


def test_first_line_and_seconds() -> None:
    assert first_line("\n\n  hello\x1b[31m world  \nmore\n") == "hello world (+1 line)"
    assert first_line("") == "(empty)"
    assert first_line("x" * 200, limit=10) == "xxxxxxxxx…"
    assert [seconds(v) for v in (0.0042, 12.34, 125)] == ["0.004s", "12.3s", "2m05s"]
