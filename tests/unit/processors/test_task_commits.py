"""The worker's offset commits: what is due is sent at once after a quiet spell, at most
once per `every` while results keep coming, and at once on `at_once` (the worker's
last turn before it stops)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import TopicPartition

from replayflow.processors.task_commits import TaskCommits
from replayflow.processors.task_offsets import CommitPoint, TaskOffsets


class RecordingConsumer:
    """Stands in for a consumer's commit: keeps what each call committed."""

    def __init__(self) -> None:
        self.commits: list[list[tuple[int, int]]] = []

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> None:
        assert not asynchronous
        self.commits.append(sorted((tp.partition, tp.offset) for tp in offsets))


@pytest.fixture
def offsets() -> TaskOffsets:
    return TaskOffsets()


@pytest.fixture
def commits(offsets: TaskOffsets) -> Iterator[TaskCommits]:
    commits = TaskCommits("tasks", offsets, every=0.05)
    yield commits
    commits.close()


def finish(offsets: TaskOffsets, partition: int, offset: int) -> None:
    offsets.begin(partition, offset)
    offsets.end(partition, offset)


def turn(commits: TaskCommits, consumer: RecordingConsumer, now: float, **kw: Any) -> None:
    assert commits.turn(consumer, now, **kw) is None  # type: ignore[arg-type]


def test_the_first_result_after_a_quiet_spell_is_committed_at_once(
    offsets: TaskOffsets, commits: TaskCommits
) -> None:
    consumer = RecordingConsumer()
    turn(commits, consumer, 100.0)
    assert consumer.commits == []  # nothing acknowledged, nothing sent
    finish(offsets, 0, 7)
    assert commits.deferred(100.0) is None
    turn(commits, consumer, 100.0)
    assert consumer.commits == [[(0, 8)]]


def test_results_within_every_of_a_commit_wait_for_one_commit_after_it(
    offsets: TaskOffsets, commits: TaskCommits
) -> None:
    consumer = RecordingConsumer()
    finish(offsets, 0, 7)
    turn(commits, consumer, 100.0)
    finish(offsets, 0, 8)
    finish(offsets, 2, 3)
    turn(commits, consumer, 100.01)
    turn(commits, consumer, 100.04)
    assert consumer.commits == [[(0, 8)]]
    assert commits.deferred(100.04) == pytest.approx(0.01)
    turn(commits, consumer, 100.06)
    assert consumer.commits == [[(0, 8)], [(0, 9), (2, 4)]]
    assert commits.deferred(100.06) is None  # nothing left to commit
    turn(commits, consumer, 100.2)
    assert len(consumer.commits) == 2  # a turn with nothing new sends nothing


def test_at_once_commits_inside_the_interval(offsets: TaskOffsets, commits: TaskCommits) -> None:
    consumer = RecordingConsumer()
    finish(offsets, 1, 0)
    turn(commits, consumer, 100.0)
    finish(offsets, 1, 1)
    turn(commits, consumer, 100.001, at_once=True)
    assert consumer.commits == [[(1, 1)], [(1, 2)]]


def test_every_zero_commits_in_every_turn_that_has_a_result(offsets: TaskOffsets) -> None:
    commits = TaskCommits("tasks", offsets, every=0.0)
    consumer = RecordingConsumer()
    try:
        for offset in range(3):
            finish(offsets, 0, offset)
            turn(commits, consumer, 100.0)
            assert commits.deferred(100.0) is None
    finally:
        commits.close()
    assert consumer.commits == [[(0, 1)], [(0, 2)], [(0, 3)]]


def test_a_first_task_where_nothing_was_committed_commits_the_position_before_it(
    offsets: TaskOffsets, commits: TaskCommits
) -> None:
    consumer = RecordingConsumer()
    offsets.restore(4, -1001, None)  # assigned with no committed offset
    commits.committed[4] = CommitPoint(-1001, "")
    turn(commits, consumer, 100.0)
    assert consumer.commits == []
    assert offsets.begin(4, 5)  # read, still running: no result yet
    turn(commits, consumer, 100.0)
    assert consumer.commits == [[(4, 5)]]
    offsets.begin(4, 6)
    turn(commits, consumer, 100.1)
    assert len(consumer.commits) == 1  # the point stays below the running task
