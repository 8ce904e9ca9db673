"""A step attempt the engine timed out wrote values, and its thread (which no one can
stop) finished later and marked them COMPLETED. A settled reader must never show them:
values count only once the orchestrator accepts their attempt's result. Kafka only: the
test engine runs a step to its end before time moves, so no attempt of it times out."""

from __future__ import annotations

import uuid
from typing import Any

from replayflow.core.stream_records import StreamAttemptEnded, StreamValue
from replayflow.processors.stream_reader import StreamFollower
from tests.streams import definitions as d
from tests.streams.conftest import KafkaEngine
from tests.streams.test_streams import shown


def records_of(engine: KafkaEngine, instance_id: str) -> list[Any]:
    follower = StreamFollower(engine.settings, instance_id)
    try:
        end = follower.end()
        out: list[Any] = []
        while not follower.caught_up(end):
            out += [record for _, record in follower.poll(1.0)]
        return out
    finally:
        follower.close()


def test_a_settled_reader_never_shows_an_attempt_the_engine_timed_out(
    kafka_stream_engine: KafkaEngine,
) -> None:
    engine = kafka_stream_engine
    handle = engine.start(d.slow_talker, 1.6, id=f"timed-{uuid.uuid4().hex[:10]}")
    assert engine.result(handle) == "in time"

    # What the log holds: attempt 1's late COMPLETED, before attempt 2 wrote anything.
    log = [
        (type(r).__name__, r.attempt, getattr(r, "outcome", getattr(r, "value", None)))
        for r in records_of(engine, handle.id)
        if isinstance(r, StreamValue | StreamAttemptEnded)
    ]
    assert log[:3] == [
        ("StreamValue", 1, '"stale"'),
        ("StreamAttemptEnded", 1, "COMPLETED"),
        ("StreamValue", 2, '"fresh"'),
    ]

    settled, _ = engine.read(handle.id, "tokens", settled=True)
    assert shown(settled) == [("value", "fresh"), ("ended", "COMPLETED")]
    live, _ = engine.read(handle.id, "tokens")
    assert shown(live) == [
        ("value", "stale"),
        ("retracted", 1),
        ("value", "fresh"),
        ("ended", "COMPLETED"),
    ]
    assert live[1].reason == "RETRIED"
