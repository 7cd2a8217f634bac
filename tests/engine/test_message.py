"""Message ids: content hashes chained with cause and origin, stable across versions."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

from hypothesis import given
from hypothesis import strategies as st

from regions_cli.engine.message import Message, Origin, message_id

_text = st.text(max_size=20)
_origins = st.builds(
    Origin,
    st.none() | st.integers(0, 99),
    st.none() | _text,
    st.none() | st.integers(0, 9),
    st.integers(0, 9),
    st.booleans(),
)


@given(_text, _text, st.sampled_from(["request", "reply", "x"]), _text, _origins, st.none() | _text)
def test_id_is_the_documented_hash(
    source: str, dest: str, role: str, content: str, origin: Origin, cause: str | None
) -> None:
    message = Message(source, dest, role, content, origin=origin, cause=cause)
    payload = json.dumps(
        [source, dest, role, content, cause, asdict(origin)],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    assert message.id == message_id(message) == hashlib.sha256(payload.encode()).hexdigest()[:16]


def test_ids_differ_by_position_and_cause() -> None:
    a = Message("A", "B", "request", "same")
    assert a.id != Message("A", "B", "request", "same", origin=Origin(ordinal=1)).id
    assert a.id != Message("A", "B", "request", "same", cause="x").id
    assert Message.from_dict(a.to_dict()) == a
