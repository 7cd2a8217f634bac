"""How a run looks: views fed the engine's events (`regions_cli.engine.events`).

* `live.LiveView`: on a terminal, a rich Live view redrawn on a timer;
* `plain.PlainView`: off a terminal, one plain line per event;
* `jsonl.JsonlView`: ``--json``, one JSON object per event per line.

Each is a context manager around the run and an `EventBus` subscriber; `report()` prints the
run's output messages and summary at the end (nothing for ``--json``). `state.RunState` is the
model they share: the events folded into what a person watching wants to see.
"""
