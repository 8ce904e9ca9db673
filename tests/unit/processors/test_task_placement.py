"""Where a transaction's tasks go (processors/batch_records.TaskPlacement): one partition
per transaction, the next transaction's on the next, a large batch spread
`per_partition` tasks a partition."""

from __future__ import annotations

import pytest

from replayflow.processors.batch_records import TaskPlacement


def placed(placement: TaskPlacement, batches: list[int]) -> list[list[int]]:
    out = []
    for tasks in batches:
        placement.begin()
        out.append([placement.place() for _ in range(tasks)])
    return out


def test_a_transactions_tasks_share_one_partition_and_the_next_moves_on() -> None:
    assert placed(TaskPlacement(4), [3, 1, 2]) == [[0, 0, 0], [1], [2, 2]]


def test_the_rotation_wraps_around_the_partitions() -> None:
    assert placed(TaskPlacement(3, first=2), [1, 1, 1, 1]) == [[2], [0], [1], [2]]


def test_a_transaction_without_tasks_keeps_the_next_partition_where_it_was() -> None:
    assert placed(TaskPlacement(4), [1, 0, 0, 1]) == [[0], [], [], [1]]


def test_a_large_batch_spreads_per_partition_tasks_over_the_next_partitions() -> None:
    batches = placed(TaskPlacement(3, per_partition=2), [5, 1])
    assert batches == [[0, 0, 1, 1, 2], [0]]


def test_one_partition_takes_everything() -> None:
    assert placed(TaskPlacement(1, per_partition=2), [3, 1]) == [[0, 0, 0], [0]]


def test_every_partition_gets_its_share_over_many_transactions() -> None:
    counts = [0] * 5
    for batch in placed(TaskPlacement(5, first=3), [7] * 50):
        for partition in batch:
            counts[partition] += 1
    assert sum(counts) == 350
    assert max(counts) - min(counts) <= 7


@pytest.mark.parametrize(("partitions", "per_partition"), [(0, 64), (3, 0)])
def test_nonsense_is_refused(partitions: int, per_partition: int) -> None:
    with pytest.raises(ValueError, match="partition"):
        TaskPlacement(partitions, per_partition)
