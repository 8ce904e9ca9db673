"""The reader's view of a stream (core/streams.py): which values count."""

from __future__ import annotations

from replayflow.core.stream_records import (
    StreamAttemptEnded,
    StreamClosed,
    StreamEnded,
    StreamValue,
)
from replayflow.core.streams import StreamView

INSTANCE = "inst-1"


def value(step: str, attempt: int, index: int, text: str, stream: str = "s") -> StreamValue:
    return StreamValue(INSTANCE, stream, step, attempt, index, f'"{text}"', 0)


def ended(step: str, attempt: int, ok: bool) -> StreamAttemptEnded:
    return StreamAttemptEnded(INSTANCE, step, attempt, "COMPLETED" if ok else "FAILED", 0)


def fold(view: StreamView, records: list[object]) -> list[tuple[str, object]]:
    out = []
    for offset, record in enumerate(records):
        for item in view.feed(offset, record):
            out.append((item.kind, item.value if item.kind == "value" else item.reason))
    return out


def test_a_later_attempt_voids_an_attempt_whose_worker_died() -> None:
    records = [value("a", 1, 0, "x"), value("a", 2, 0, "y"), ended("a", 2, True)]
    assert fold(StreamView(INSTANCE, "s"), records) == [
        ("value", "x"),
        ("retracted", "RETRIED"),
        ("value", "y"),
    ]
    assert fold(StreamView(INSTANCE, "s", settled=True), records) == [("value", "y")]


def test_a_close_counts_only_once_its_attempt_completed() -> None:
    records = [
        value("a", 1, 0, "x"),
        StreamClosed(INSTANCE, "s", "a", 1, 0),
        ended("a", 1, False),
        value("a", 2, 0, "y"),
        StreamClosed(INSTANCE, "s", "a", 2, 0),
        ended("a", 2, True),
        value("b", 1, 0, "never read"),
    ]
    view = StreamView(INSTANCE, "s")
    assert fold(view, records) == [
        ("value", "x"),
        ("retracted", "FAILED"),
        ("value", "y"),
        ("closed", ""),
    ]
    assert view.done


def test_the_end_of_the_instance_voids_open_attempts_and_ends_the_stream() -> None:
    records = [
        value("a", 1, 0, "x"),
        StreamEnded(INSTANCE, "CANCELLED", 0),
        value("a", 1, 1, "late"),
    ]
    assert fold(StreamView(INSTANCE, "s"), records) == [
        ("value", "x"),
        ("retracted", "UNFINISHED"),
        ("ended", "CANCELLED"),
    ]


def test_other_streams_and_instances_are_not_shown() -> None:
    records = [
        value("a", 1, 0, "other", stream="t"),
        StreamValue("inst-2", "s", "a", 1, 0, '"other"', 0),
        value("a", 1, 0, "mine"),
        ended("a", 1, True),
    ]
    assert fold(StreamView(INSTANCE, "s"), records) == [("value", "mine")]


def test_a_settled_reader_resumes_at_the_first_record_of_an_open_attempt() -> None:
    view = StreamView(INSTANCE, "s", settled=True)
    fold(view, [value("a", 1, 0, "x"), value("b", 1, 0, "y"), ended("b", 1, True)])
    assert view.resume_offset(3) == 0
    view.feed(3, ended("a", 1, True))
    assert view.resume_offset(4) == 4
