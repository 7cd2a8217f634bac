"""A hand-made event sequence of a small run, with fixed timestamps, for the view tests.

Two layers: ``ask`` (chains ``main`` and ``side`` run side by side) and ``answer``. Historian asks
Facts a question, Facts replies, Historian answers the user (an external address, so the
run's output). It covers every event kind the engine emits, including a rejected message, a
retry, streamed tokens and a warning.
"""

from __future__ import annotations

from regions_cli.engine.events import (
    Event,
    LayerFinished,
    LayerStarted,
    LLMCalled,
    MessageDelivered,
    MessageRejected,
    Notice,
    RegionStatus,
    RunFinished,
    RunStarted,
    StepFinished,
    StepStarted,
    TokenStreamed,
)
from regions_cli.engine.message import Message, Origin

T0 = 1_700_000_000.0
RUN_FILE = "/tmp/wf/.regions/runs/lookup-20231114-221320.db"

QUESTION = Message(
    "Historian",
    "Facts",
    "request",
    "Who led the Zebras in 1848?\nAnswer briefly.",
    Origin(0, "main", 0),
)
FACT = Message(
    "Facts",
    "Historian",
    "reply",
    "The Zebras were led by Ada.",
    Origin(1, "main", 0),
    cause=QUESTION.id,
)
ANSWER = Message(
    "Historian",
    "user",
    "reply",
    "Ada led the Zebras in 1848.\n\nSource: Facts.",
    Origin(1, "main", 1),
)
STRAY = Message("Historian", "Nowhere", "request", "Anyone there?", Origin(0, "main", 0, 1))


def started() -> RunStarted:
    return RunStarted(
        t=T0,
        run_id="run-1",
        workflow="lookup",
        workflow_hash="abc123",
        run_file=RUN_FILE,
        layers=[
            {
                "label": "ask",
                "chains": {
                    "main": ["Historian.make_questions"],
                    "side": ["Trace.start"],
                },
            },
            {
                "label": "answer",
                "chains": {"main": ["Facts.make_replies", "Historian.make_replies"]},
            },
        ],
        regions={"Historian": "Region", "Facts": "RAGRegion", "Trace": "ListenerRegion"},
    )


def first_half() -> list[Event]:
    """The run up to the middle of layer 2, with Historian streaming its answer."""
    return [
        started(),
        LayerStarted(t=T0 + 0.001, layer=0, label="ask"),
        StepStarted(
            t=T0 + 0.002, layer=0, chain="main", step=0, region="Historian", method="make_questions"
        ),
        StepStarted(t=T0 + 0.002, layer=0, chain="side", step=0, region="Trace", method="start"),
        StepFinished(
            t=T0 + 0.003,
            layer=0,
            chain="side",
            step=0,
            region="Trace",
            method="start",
            outcome="ok",
            duration=0.001,
        ),
        RegionStatus(t=T0 + 0.003, region="Historian", status="waiting_llm"),
        LLMCalled(
            t=T0 + 0.150,
            region="Historian",
            llm="default",
            purpose="make_questions",
            prompt_tokens=120,
            completion_tokens=30,
            duration=0.147,
        ),
        MessageDelivered(t=T0 + 0.151, message=QUESTION),
        MessageRejected(
            t=T0 + 0.151,
            message=STRAY,
            rule="not-connected",
            reason="Historian has no connection to Nowhere",
            action="error",
        ),
        RegionStatus(t=T0 + 0.152, region="Historian", status="done"),
        StepFinished(
            t=T0 + 0.152,
            layer=0,
            chain="main",
            step=0,
            region="Historian",
            method="make_questions",
            outcome="ok",
            duration=0.150,
        ),
        LayerFinished(t=T0 + 0.153, layer=0, label="ask", ok=True, duration=0.152),
        LayerStarted(t=T0 + 0.154, layer=1, label="answer", index=1),
        StepStarted(
            t=T0 + 0.155, layer=1, chain="main", step=0, region="Facts", method="make_replies"
        ),
        RegionStatus(t=T0 + 0.156, region="Facts", status="replying"),
        MessageDelivered(t=T0 + 0.160, message=FACT),
        RegionStatus(t=T0 + 0.161, region="Facts", status="done"),
        StepFinished(
            t=T0 + 0.161,
            layer=1,
            chain="main",
            step=0,
            region="Facts",
            method="make_replies",
            outcome="ok",
            duration=0.006,
        ),
        StepStarted(
            t=T0 + 0.162, layer=1, chain="main", step=1, region="Historian", method="make_replies"
        ),
        RegionStatus(t=T0 + 0.162, region="Historian", status="waiting_llm"),
        LLMCalled(
            t=T0 + 0.200,
            region="Historian",
            llm="default",
            purpose="make_replies",
            prompt_tokens=200,
            completion_tokens=0,
            duration=0.038,
            error="HTTP 503 from http://127.0.0.1:8080/v1",
        ),
        Notice(t=T0 + 0.201, level="warning", text="retrying after HTTP 503", region="Historian"),
        StepStarted(
            t=T0 + 0.202,
            layer=1,
            chain="main",
            step=1,
            region="Historian",
            method="make_replies",
            attempt=2,
        ),
        RegionStatus(t=T0 + 0.210, region="Historian", status="replying"),
        TokenStreamed(t=T0 + 0.220, region="Historian", text="Ada led"),
        TokenStreamed(t=T0 + 0.230, region="Historian", text=" the Zebras"),
    ]


def second_half() -> list[Event]:
    """From the streamed answer to the end of the run."""
    return [
        LLMCalled(
            t=T0 + 0.300,
            region="Historian",
            llm="default",
            purpose="make_replies",
            prompt_tokens=210,
            completion_tokens=40,
            duration=0.098,
        ),
        MessageDelivered(t=T0 + 0.301, message=ANSWER, delivery="output"),
        RegionStatus(t=T0 + 0.302, region="Historian", status="done"),
        StepFinished(
            t=T0 + 0.302,
            layer=1,
            chain="main",
            step=1,
            region="Historian",
            method="make_replies",
            outcome="ok",
            duration=0.140,
        ),
        LayerFinished(t=T0 + 0.303, layer=1, label="answer", ok=True, duration=0.149),
        RunFinished(
            t=T0 + 0.304,
            status="ok",
            exit_code=0,
            layers_run=2,
            steps_ok=4,
            steps_failed=0,
            messages=3,
            prompt_tokens=530,
            completion_tokens=70,
            duration=0.304,
            run_file=RUN_FILE,
            region_tokens={"Historian": {"prompt_tokens": 530, "completion_tokens": 70}},
            llm_calls=3,
            cached_calls=0,
        ),
    ]


def whole_run() -> list[Event]:
    return first_half() + second_half()
