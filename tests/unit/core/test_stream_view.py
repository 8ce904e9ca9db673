"""The reader's view of a stream (core/stream_view.py): which values count, and where a
reader that stops goes on."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from replayflow.core.stream_records import (
    StreamAttemptAccepted,
    StreamAttemptEnded,
    StreamClosed,
    StreamEnded,
    StreamValue,
)
from replayflow.core.streams import Cursor, StreamItem, StreamView

INSTANCE = "inst-1"


def value(step: str, attempt: int, index: int, text: str, stream: str = "s") -> StreamValue:
    return StreamValue(INSTANCE, stream, step, attempt, index, f'"{text}"', 0)


def ended(step: str, attempt: int, ok: bool) -> StreamAttemptEnded:
    return StreamAttemptEnded(INSTANCE, step, attempt, "COMPLETED" if ok else "FAILED", 0)


def accepted(step: str, attempt: int) -> StreamAttemptAccepted:
    return StreamAttemptAccepted(INSTANCE, step, attempt, 0)


def items(view: StreamView, records: list[object]) -> list[StreamItem]:
    return [
        item
        for offset, record in enumerate(records)
        if offset >= view.start
        for item in view.feed(offset, record)
    ]


def fold(view: StreamView, records: list[object]) -> list[tuple[str, object]]:
    return [
        (item.kind, item.value if item.kind == "value" else item.reason)
        for item in items(view, records)
    ]


def test_a_later_attempt_voids_an_attempt_whose_worker_died() -> None:
    records = [value("a", 1, 0, "x"), value("a", 2, 0, "y"), ended("a", 2, True), accepted("a", 2)]
    assert fold(StreamView(INSTANCE, "s"), records) == [
        ("value", "x"),
        ("retracted", "RETRIED"),
        ("value", "y"),
    ]
    assert fold(StreamView(INSTANCE, "s", settled=True), records) == [("value", "y")]


def test_a_close_counts_only_once_the_engine_accepted_its_attempt() -> None:
    records = [
        value("a", 1, 0, "x"),
        StreamClosed(INSTANCE, "s", "a", 1, 0),
        ended("a", 1, False),
        value("a", 2, 0, "y"),
        StreamClosed(INSTANCE, "s", "a", 2, 0),
        ended("a", 2, True),
        accepted("a", 2),
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


def test_a_settled_reader_waits_for_the_engine_not_the_worker() -> None:
    # Attempt 1 timed out in the engine; its worker finished later and said COMPLETED.
    records = [
        value("a", 1, 0, "late"),
        ended("a", 1, True),
        value("a", 2, 0, "counted"),
        ended("a", 2, True),
        accepted("a", 2),
    ]
    view = StreamView(INSTANCE, "s", settled=True)
    assert fold(view, records[:2]) == []
    assert fold(StreamView(INSTANCE, "s", settled=True), records) == [("value", "counted")]


def test_a_late_marker_or_value_of_an_attempt_that_is_over_changes_nothing() -> None:
    records = [
        value("a", 1, 0, "x"),
        ended("a", 1, False),  # the worker's timeout
        value("a", 1, 1, "zombie"),  # its thread went on writing
        ended("a", 1, True),
        accepted("a", 1),  # cannot happen; even so, the attempt is over
        value("a", 2, 0, "y"),
        ended("a", 2, True),
        accepted("a", 2),
    ]
    assert fold(StreamView(INSTANCE, "s"), records) == [
        ("value", "x"),
        ("retracted", "FAILED"),
        ("value", "y"),
    ]
    assert fold(StreamView(INSTANCE, "s", settled=True), records) == [("value", "y")]


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


def test_cursors_are_written_and_read_back() -> None:
    for text, cursor in [
        ("42", Cursor(42, 42)),
        ("42.3", Cursor(42, 42, 3)),
        ("40-42", Cursor(40, 42)),
        ("40-42.3", Cursor(40, 42, 3)),
    ]:
        assert Cursor.parse(text) == cursor and str(cursor) == text
    assert Cursor.parse(7) == Cursor(7, 7) and Cursor.parse(None) == Cursor(0, 0)
    assert Cursor.parse("50-42") == Cursor(42, 42)  # nothing to read before `at`
    for bad in ("", "-1", "a", "1-", "1.2.3", "1-2-3"):
        with pytest.raises(ValueError, match="not a stream cursor"):
            Cursor.parse(bad)


def test_a_settled_reader_resumed_inside_a_released_batch_repeats_nothing() -> None:
    # b's values are released by its acceptance while a (earlier on the log) is open.
    records = [
        value("a", 1, 0, "a0"),
        value("b", 1, 0, "b0"),
        value("b", 1, 1, "b1"),
        ended("b", 1, True),
        accepted("b", 1),
        value("a", 1, 1, "a1"),
        ended("a", 1, True),
        accepted("a", 1),
        StreamEnded(INSTANCE, "COMPLETED", 0),
    ]
    whole = items(StreamView(INSTANCE, "s", settled=True), records)
    assert [i.value for i in whole if i.kind == "value"] == ["b0", "b1", "a0", "a1"]
    first = whole[0]
    assert first.cursor == "0-4.1"  # a0 still held: read again from 0, skip b0
    rest = items(StreamView(INSTANCE, "s", settled=True, cursor=first.cursor), records)
    assert rest == whole[1:]


@st.composite
def logs(draw: st.DrawFn) -> list[object]:
    """A plausible log: steps whose attempts write, fail, die or are accepted."""
    records: list[object] = []
    for step in draw(st.lists(st.sampled_from("abc"), min_size=1, max_size=4, unique=True)):
        for attempt in range(1, draw(st.integers(1, 3)) + 1):
            for index in range(draw(st.integers(0, 3))):
                records.append(value(step, attempt, index, f"{step}{attempt}.{index}"))
            if draw(st.booleans()):
                records.append(StreamClosed(INSTANCE, "s", step, attempt, 0))
            fate = draw(st.sampled_from(["failed", "died", "accepted", "open"]))
            if fate == "failed":
                records.append(ended(step, attempt, False))
            elif fate == "accepted":
                records += [ended(step, attempt, True), accepted(step, attempt)]
                break
            elif fate == "open":
                break
    mixed = draw(st.permutations(records))  # steps run at once: interleave them...
    order = {id(r): n for n, r in enumerate(records)}
    # ...but each step's own records stay in the order written.
    by_step: dict[str, list[object]] = {}
    for record in records:
        by_step.setdefault(record.step, []).append(record)  # type: ignore[attr-defined]
    out = [by_step[r.step].pop(0) for r in mixed]  # type: ignore[attr-defined]
    assert len(out) == len(order)
    if draw(st.booleans()):
        out.append(StreamEnded(INSTANCE, "COMPLETED", 0))
    return out


@given(log=logs(), settled=st.booleans(), data=st.data())
def test_a_reader_resumed_at_any_item_goes_on_exactly_where_it_stopped(
    log: list[object], settled: bool, data: st.DataObject
) -> None:
    whole = items(StreamView(INSTANCE, "s", settled), log)
    if not whole:
        return
    stop = data.draw(st.integers(0, len(whole) - 1))
    rest = items(StreamView(INSTANCE, "s", settled, cursor=whole[stop].cursor), log)
    assert rest == whole[stop + 1 :]
