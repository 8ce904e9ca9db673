"""Sharded admission on the real broker: a limit of at least the partition count is
split over the partitions (processors/admission.py). The limit still holds across all
of them, every instance is queued, admitted and completed once, and no admission
command travels through Kafka: each partition admits its own instances in the batch."""

from __future__ import annotations

from pathlib import Path

import pytest

from replayflow.core.decide import limiter_key
from replayflow.core.messages import (
    AcquireSlot,
    GrantSlot,
    ReleaseSlot,
    WorkflowAdmitted,
    WorkflowCompleted,
    WorkflowQueued,
)
from replayflow.kafka.partition import murmur2_partition
from replayflow.settings import Settings
from replayflow.topics import Topics
from tests.chaos.workloads import read_topic
from tests.integration.test_admission import (
    _SPANS_LOCK,
    SPANS,
    by_instance,
    max_overlap,
    run_and_collect,
)

pytestmark = pytest.mark.kafka

PARTITIONS = 4
LIMIT = 6  # over 4 partitions: shares of 2, 2, 1, 1
STARTS = 80


def test_sharded_limit_holds_and_admission_stays_in_its_partition(
    settings: Settings, tmp_path: Path
) -> None:
    settings = settings.replace(partitions=PARTITIONS)
    ids, history_records = run_and_collect(
        settings, tmp_path, "unlimited", STARTS, concurrency={"unlimited": LIMIT}
    )
    history = by_instance(history_records)
    assert sorted(history) == sorted(ids)
    intervals = []
    shares = {p: LIMIT // PARTITIONS + (1 if p < LIMIT % PARTITIONS else 0) for p in range(4)}
    per_partition: dict[int, list[tuple[int, int]]] = {}
    for instance_id, events in history.items():
        kinds = [type(e).__name__ for e in events]
        assert kinds[:3] == ["WorkflowStarted", "WorkflowQueued", "WorkflowAdmitted"], kinds
        assert kinds.count("WorkflowAdmitted") == 1 and kinds.count("WorkflowCompleted") == 1
        [queued] = [e for e in events if isinstance(e, WorkflowQueued)]
        partition = murmur2_partition(instance_id.encode(), PARTITIONS)
        # The shard of the instance's own partition, whose key lands on that partition.
        assert queued.limiter.startswith(f"{limiter_key('unlimited')}@{partition}.")
        assert murmur2_partition(queued.limiter.encode(), PARTITIONS) == partition
        [admitted] = [e for e in events if isinstance(e, WorkflowAdmitted)]
        [completed] = [e for e in events if isinstance(e, WorkflowCompleted)]
        intervals.append((admitted.at, completed.at))
        per_partition.setdefault(partition, []).append((admitted.at, completed.at))
    assert max_overlap(intervals) <= LIMIT
    for partition, spans in per_partition.items():
        assert max_overlap(spans) <= shares[partition]
    with _SPANS_LOCK:
        assert max_overlap([(s, e) for s, e, _ in SPANS]) <= LIMIT
    commands = [r.decoded() for r in read_topic(settings, Topics(settings).commands)]
    assert not [c for c in commands if isinstance(c, AcquireSlot | ReleaseSlot | GrantSlot)]


def test_global_admission_keeps_one_limiter(settings: Settings, tmp_path: Path) -> None:
    """REPLAYFLOW_ADMISSION=global: the same limit through the one limiter, whose
    requests and grants travel through Kafka."""
    settings = settings.replace(partitions=PARTITIONS, admission="global")
    ids, history_records = run_and_collect(
        settings, tmp_path, "unlimited", STARTS, concurrency={"unlimited": LIMIT}
    )
    history = by_instance(history_records)
    assert sorted(history) == sorted(ids)
    intervals = []
    for events in history.values():
        [queued] = [e for e in events if isinstance(e, WorkflowQueued)]
        assert queued.limiter == limiter_key("unlimited")
        [admitted] = [e for e in events if isinstance(e, WorkflowAdmitted)]
        [completed] = [e for e in events if isinstance(e, WorkflowCompleted)]
        intervals.append((admitted.at, completed.at))
    assert max_overlap(intervals) <= LIMIT
    with _SPANS_LOCK:
        assert max_overlap([(s, e) for s, e, _ in SPANS]) <= LIMIT
    commands = [r.decoded() for r in read_topic(settings, Topics(settings).commands)]
    acquired = [c.instance_id for c in commands if isinstance(c, AcquireSlot)]
    assert sorted(acquired) == sorted(ids)  # every request went to the one limiter
    granted = [c.instance_id for c in commands if isinstance(c, GrantSlot)]
    assert sorted(granted) == sorted(ids)
