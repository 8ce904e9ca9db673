"""The worker's task offsets: what a commit says is done, and what the next owner of
the partition runs again."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from replayflow.processors.task_offsets import (
    MAX_METADATA,
    CommitPoint,
    TaskOffsets,
    decode,
    encode,
)


def test_the_commit_point_stays_below_a_running_task_and_names_those_done_above() -> None:
    offsets = TaskOffsets()
    for offset in (10, 12, 13, 15):
        assert offsets.begin(0, offset)
    offsets.end(0, 12)
    offsets.end(0, 13)
    assert offsets.commit_point(0) == CommitPoint(10, "done:2-3")
    offsets.end(0, 10)
    assert offsets.commit_point(0) == CommitPoint(15, "")
    offsets.end(0, 15)
    assert offsets.commit_point(0) == CommitPoint(16, "")


def test_a_task_is_done_only_when_ended_and_unknown_partitions_have_no_point() -> None:
    offsets = TaskOffsets()
    assert offsets.commit_point(3) is None
    offsets.begin(3, 0)
    offsets.end(3, 7)  # never read here: nothing changes
    assert offsets.commit_point(3) == CommitPoint(0, "")


def test_the_next_owner_skips_what_finished_and_runs_what_did_not() -> None:
    before = TaskOffsets()
    for offset in (20, 21, 22, 24):
        before.begin(1, offset)
    before.end(1, 21)
    before.end(1, 24)
    point = before.commit_point(1)
    assert point is not None
    after = TaskOffsets()
    after.restore(1, point.offset, point.metadata)
    assert [o for o in (20, 21, 22, 23, 24, 25) if after.begin(1, o)] == [20, 22, 23, 25]
    # Until the skipped ones fall below the point, they stay in the metadata.
    assert after.commit_point(1) == CommitPoint(20, "done:1,4")


def test_a_restored_partition_without_reads_keeps_its_commit() -> None:
    offsets = TaskOffsets()
    offsets.restore(0, 5, "done:2")
    assert offsets.commit_point(0) == CommitPoint(5, "done:2")
    offsets.restore(0, -1001, None)  # nothing committed yet
    assert offsets.commit_point(0) is None


def test_metadata_that_is_not_ours_names_nothing_done() -> None:
    for metadata in (None, "", "hello", "done:x", "done:5-2", "done:-3", "done:1-99999999999"):
        assert decode(100, metadata) == set()


def test_metadata_stays_under_the_broker_limit_by_leaving_the_highest_out() -> None:
    done = set(range(0, 100_000, 2))
    text = encode(0, done)
    assert len(text) <= MAX_METADATA
    kept = decode(0, text)
    assert kept and kept <= done
    assert max(kept) < 100_000 // 2  # the lowest ones are kept: they block the most


@given(
    count=st.integers(1, 40),
    ended=st.lists(st.integers(0, 39), unique=True),
    gaps=st.lists(st.integers(1, 3), min_size=40, max_size=40),
)
def test_a_takeover_runs_exactly_the_tasks_that_had_not_ended(
    count: int, ended: list[int], gaps: list[int]
) -> None:
    # Offsets with gaps (transaction markers take offsets too), ended in any order.
    positions = [100 + sum(gaps[:n]) for n in range(count)]
    before = TaskOffsets()
    for offset in positions:
        assert before.begin(2, offset)
    finished = {positions[n] for n in ended if n < count}
    for offset in finished:
        before.end(2, offset)
    point = before.commit_point(2)
    assert point is not None
    after = TaskOffsets()
    after.restore(2, point.offset, point.metadata)
    rerun = {o for o in positions if o >= point.offset and after.begin(2, o)}
    assert rerun == set(positions) - finished
