"""Durable streams on every engine: read while written, read late from the start,
resumed after a reader restart, a failed attempt's values marked, closed by the writer
or by the end of the instance; the writes of a workflow body happen once."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

from replayflow.core.definitions import Registry
from replayflow.core.messages import StepScheduled
from replayflow.core.replay import replay
from replayflow.core.streams import StreamItem
from tests.streams import definitions as d

WORDS = ["durable ", "streams ", "on ", "Kafka"]


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def shown(items: list[StreamItem]) -> list[tuple[str, Any]]:
    return [
        (
            i.kind,
            i.value if i.kind == "value" else (i.attempt if i.kind == "retracted" else i.reason),
        )
        for i in items
    ]


def test_a_stream_is_read_while_it_is_written(engine: Any, tmp_path: Path) -> None:
    instance_id = new_id("live")
    gate = tmp_path / "first-word-seen"
    seen: list[StreamItem] = []
    first = threading.Event()

    def on_item(item: StreamItem) -> None:
        seen.append(item)
        if item.kind == "value" and not first.is_set():
            first.set()
            gate.touch()  # the step waits for this before writing the next word

    join = engine.watch(instance_id, "tokens", on_item)
    handle = engine.start(d.talker, {"words": WORDS, "gate": str(gate)}, id=instance_id)
    assert engine.result(handle) == len(WORDS)
    join()
    assert first.is_set(), "the reader saw the first word while the step still ran"
    assert shown(seen) == [*(("value", w) for w in WORDS), ("ended", "COMPLETED")]
    assert [i.index for i in seen[:-1]] == [0, 1, 2, 3]
    offsets = [i.offset for i in seen]
    assert offsets == sorted(offsets)


def test_a_late_reader_reads_from_the_start(engine: Any) -> None:
    handle = engine.start(d.talker, {"words": WORDS}, id=new_id("late"))
    engine.result(handle)
    items, _ = engine.read(handle.id, "tokens")
    assert shown(items) == [*(("value", w) for w in WORDS), ("ended", "COMPLETED")]
    status, _ = engine.read(handle.id, "status")
    assert shown(status) == [
        ("value", {"phase": "started"}),
        ("value", {"phase": "done", "words": 4}),
        ("ended", "COMPLETED"),
    ]


def test_a_restarted_reader_goes_on_where_it_stopped(engine: Any) -> None:
    handle = engine.start(d.talker, {"words": WORDS}, id=new_id("resume"))
    engine.result(handle)
    first, resume_at = engine.read(handle.id, "tokens", limit=2)
    rest, _ = engine.read(handle.id, "tokens", start=resume_at)
    assert shown(first) == [("value", "durable "), ("value", "streams ")]
    assert shown(rest) == [("value", "on "), ("value", "Kafka"), ("ended", "COMPLETED")]


def test_the_values_of_a_failed_attempt_are_marked(engine: Any) -> None:
    handle = engine.start(d.talker, {"words": WORDS, "fail_after": 2}, id=new_id("retry"))
    assert engine.result(handle) == len(WORDS)
    live, _ = engine.read(handle.id, "tokens")
    assert shown(live) == [
        ("value", "durable "),
        ("value", "streams "),
        ("retracted", 1),
        *(("value", w) for w in WORDS),
        ("ended", "COMPLETED"),
    ]
    assert live[2].reason == "FAILED" and live[2].step == "talk"
    assert [i.attempt for i in live if i.kind == "value"] == [1, 1, 2, 2, 2, 2]
    settled, _ = engine.read(handle.id, "tokens", settled=True)
    assert shown(settled) == [*(("value", w) for w in WORDS), ("ended", "COMPLETED")]


def test_the_writer_closes_a_stream_and_workflow_writes_happen_once(engine: Any) -> None:
    handle = engine.start(d.talker, {"words": ["x"], "close": True}, id=new_id("close"))
    engine.result(handle)
    items, _ = engine.read(handle.id, "status")
    assert [i.kind for i in items] == ["value", "value", "closed"]
    history = engine.history(handle.id)
    steps = [e.step for e in history if isinstance(e, StepScheduled)]
    assert steps == ["stream-status", "talk", "stream-status#2", "stream-status-close"]
    assert replay(history, Registry.of(d)).identical


def test_a_stream_ends_with_its_instance(engine: Any) -> None:
    handle = engine.start(d.talker, {"words": ["x"], "wait": True}, id=new_id("ends"))
    written, _ = engine.read(handle.id, "status", limit=2)  # the step ran, the wait began
    assert shown(written)[-1] == ("value", {"phase": "done", "words": 1})
    engine.terminate(handle.id)
    items, _ = engine.read(handle.id, "tokens")
    assert shown(items) == [("value", "x"), ("ended", "TERMINATED")]


def test_a_resumed_settled_reader_repeats_nothing_and_misses_nothing(
    engine: Any, tmp_path: Path
) -> None:
    # On Kafka the two parts run at once: b's values are released (its attempt is
    # accepted) while a, which wrote first, is still open; a reader that stops in
    # between must go on from before a's first value without showing b's again.
    gates = None
    if engine.name == "kafka":
        gates = {"a_started": str(tmp_path / "a"), "b_done": str(tmp_path / "b")}
    spec = {"a": ["a0", "a1", "a2"], "b": ["b0", "b1"], "gates": gates}
    handle = engine.start(d.chorus, spec, id=new_id("chorus"))
    assert engine.result(handle) == 5
    whole, _ = engine.read(handle.id, "tokens", settled=True)
    values = [i.value for i in whole if i.kind == "value"]
    if engine.name == "kafka":
        assert values == ["b0", "b1", "a0", "a1", "a2"]
    else:  # the test engine runs one step after the other
        assert values == ["a0", "a1", "a2", "b0", "b1"]
    assert whole[-1].kind == "ended"
    for stop in range(1, len(whole)):
        first, cursor = engine.read(handle.id, "tokens", settled=True, limit=stop)
        rest, _ = engine.read(handle.id, "tokens", settled=True, start=cursor)
        assert first + rest == whole, f"stopped after item {stop}, went on from {cursor}"
    # Unsettled readers resume the same way.
    live, _ = engine.read(handle.id, "tokens")
    for stop in range(1, len(live)):
        first, cursor = engine.read(handle.id, "tokens", limit=stop)
        rest, _ = engine.read(handle.id, "tokens", start=cursor)
        assert first + rest == live
