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
    StateEntered,
    StepFinished,
    StepStarted,
    TokenStreamed,
    TransitionTaken,
    WaitStarted,
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


# -- a state machine: draft -> review -> draft -> review, then it waits or ends ---------------

MACHINE_FILE = "/tmp/wf/.regions/runs/loop-20231114-221320.db"
DRAFT = Message("Writer", "Critic", "request", "Rain on the roof.", Origin(0, "w", 0))
VERDICT = Message("Critic", "Writer", "reply", "Revise: too short.", Origin(2, "c", 0))
APPROVAL = Message("Critic", "user", "reply", "APPROVED: Rain on the tin roof.", Origin(6, "c", 0))


def machine_started() -> RunStarted:
    return RunStarted(
        t=T0,
        run_id="loop-1",
        workflow="loop",
        workflow_hash="def456",
        run_file=MACHINE_FILE,
        layers=[
            {"label": "write", "chains": {"w": ["Writer.make_questions"]}, "state": "draft"},
            {"label": "wait-Critic", "chains": {}, "state": "review", "wait": "Critic"},
            {"label": "judge", "chains": {"c": ["Critic.make_replies"]}, "state": "review"},
        ],
        regions={"Writer": "Region", "Critic": "Region"},
    )


def _layer(
    t: float,
    position: int,
    index: int,
    label: str,
    step: tuple[str, str, str] | None,
    message: Message | None = None,
    delivery: str = "delivered",
) -> list[Event]:
    """The events of one layer at `position` (plan index `index`): its one step, if any."""
    events: list[Event] = [LayerStarted(t=t, layer=position, label=label, index=index)]
    if step is not None:
        chain, region, method = step
        events.append(
            StepStarted(t=t, layer=position, chain=chain, step=0, region=region, method=method)
        )
        if message is not None:
            events.append(MessageDelivered(t=t + 0.01, message=message, delivery=delivery))
        events.append(
            StepFinished(
                t=t + 0.02,
                layer=position,
                chain=chain,
                step=0,
                region=region,
                method=method,
                outcome="ok",
                duration=0.02,
            )
        )
    events.append(LayerFinished(t=t + 0.03, layer=position, label=label, ok=True, duration=0.03))
    return events


WRITE = ("w", "Writer", "make_questions")
JUDGE = ("c", "Critic", "make_replies")


def machine_two_visits() -> list[Event]:
    """Draft, review (its wait answered), draft again, and the second visit of review."""
    return [
        machine_started(),
        StateEntered(t=T0 + 0.001, state="draft", visit=1, layer=0),
        *_layer(T0 + 0.01, 0, 0, "write", WRITE, DRAFT),
        TransitionTaken(
            t=T0 + 0.05, state="draft", visit=1, to="review", rule=0, reason="always", transitions=1
        ),
        StateEntered(t=T0 + 0.05, state="review", visit=1, layer=1),
        *_layer(T0 + 0.06, 1, 1, "wait-Critic", None),
        *_layer(T0 + 0.10, 2, 2, "judge", JUDGE, VERDICT),
        TransitionTaken(
            t=T0 + 0.14, state="review", visit=1, to="draft", rule=1, reason="always", transitions=2
        ),
        StateEntered(t=T0 + 0.14, state="draft", visit=2, layer=3),
        *_layer(T0 + 0.15, 3, 0, "write", WRITE, DRAFT),
        TransitionTaken(
            t=T0 + 0.19, state="draft", visit=2, to="review", rule=0, reason="always", transitions=3
        ),
        StateEntered(t=T0 + 0.19, state="review", visit=2, layer=4),
    ]


def machine_finished(
    status: str, exit_code: int, layers_run: int, steps: int, t: float
) -> RunFinished:
    """The end of the machine's run: each of its `steps` posted one message."""
    return RunFinished(
        t=t,
        status=status,
        exit_code=exit_code,
        layers_run=layers_run,
        steps_ok=steps,
        steps_failed=0,
        messages=steps,
        prompt_tokens=0,
        completion_tokens=0,
        duration=t - T0,
        run_file=MACHINE_FILE,
        llm_calls=0,
        cached_calls=0,
    )


def machine_waits() -> list[Event]:
    """The second visit of review stops at its wait: nobody has answered yet."""
    return [
        *machine_two_visits(),
        WaitStarted(t=T0 + 0.2, region="Critic", prompt="Approve the draft?", layer=4),
        machine_finished("waiting", 5, 4, 3, T0 + 0.21),
    ]


def machine_ends() -> list[Event]:
    """The second visit of review is answered and the critic approves: the run ends."""
    return [
        *machine_two_visits(),
        *_layer(T0 + 0.2, 4, 1, "wait-Critic", None),
        *_layer(T0 + 0.24, 5, 2, "judge", JUDGE, APPROVAL, delivery="output"),
        TransitionTaken(
            t=T0 + 0.28,
            state="review",
            visit=2,
            to="end",
            rule=0,
            reason="Critic says /APPROVED/",
            transitions=4,
        ),
        machine_finished("ok", 0, 6, 4, T0 + 0.29),
    ]
