"""A limited workflow's limiter sharded over the partitions (processors/admission.py):
each partition admits its own instances from its share of the limit, within the
batch, and the shares add up to the limit."""

from __future__ import annotations

import pytest

import replayflow as rf
from replayflow import codec
from replayflow.core.decide import Decider, limiter_key
from replayflow.core.messages import (
    AcquireSlot,
    CompleteStep,
    GrantSlot,
    ReleaseSlot,
    StartWorkflow,
    Task,
    WorkflowAdmitted,
    WorkflowQueued,
    WorkflowStarted,
)
from replayflow.core.replay import replay
from replayflow.core.state import Status
from replayflow.kafka.partition import murmur2_partition
from replayflow.processors.admission import LimiterShards
from replayflow.processors.fold import PartitionFolder
from replayflow.processors.rebuild_compare import compare
from replayflow.processors.rebuild_run import RebuildPlan, rebuild
from replayflow.store.memory import MemoryStore

PARTITIONS = 4


@rf.step(name="shard_touch")
def touch(n: int) -> int:
    return n + 1


@rf.workflow(name="shard_limited", concurrency=6)
async def limited(ctx: rf.Context, n: int) -> int:
    return await ctx.step("touch", touch, n)


def registry() -> rf.Registry:
    found = rf.Registry()
    found.add(limited)
    found.add(touch)
    return found


class Partitions:
    """One folder per partition, as an orchestrator holding all of them."""

    def __init__(self, count: int = PARTITIONS) -> None:
        self.count = count
        self.decider = Decider(registry(), admission=LimiterShards(count))
        self.folders = [
            PartitionFolder(MemoryStore(p), self.decider, partitions=count) for p in range(count)
        ]
        self.history: dict[str, list[object]] = {}
        self.facts: dict[int, list[object]] = {p: [] for p in range(count)}  # offset order

    def folder(self, instance_id: str) -> PartitionFolder:
        return self.folders[murmur2_partition(instance_id.encode(), self.count)]

    def fold(self, command: StartWorkflow | CompleteStep) -> None:
        self.folder(command.instance_id).fold(command, 1000)

    def commit(self) -> list[object]:
        """Commit every partition's batch; the records it produced, decoded."""
        out = []
        for folder in self.folders:
            for record in folder.records:
                message = codec.decode(record.value or b"")
                out.append(message)
                if record.topic == "history":
                    self.history.setdefault(message.instance_id, []).append(message)
                    self.facts[folder.partition].append(message)
            folder.committed(None)
        return out


def _running(folder: PartitionFolder) -> int:
    count = 0
    for key, _ in folder.store.scan(b"i/"):
        if key.endswith(b"\0info"):
            state = folder.state(key[2:-5].decode())
            if state is not None and state.status is Status.RUNNING:
                count += 1
    return count


def test_shard_keys_land_on_their_partition_and_shares_add_up() -> None:
    shards = LimiterShards(12)
    seen = {}
    for n in range(500):
        key, share = shards("w", f"i-{n}", 100)
        partition = murmur2_partition(key.encode(), 12)
        assert partition == murmur2_partition(f"i-{n}".encode(), 12)
        seen[partition] = share
    assert sum(seen.values()) == 100 and set(seen) == set(range(12))
    # A limit below the partition count keeps the one limiter.
    assert shards("w", "i-1", 5) == (limiter_key("w"), 5)
    assert LimiterShards(1)("w", "i-1", 50) == (limiter_key("w"), 50)


def test_each_partition_admits_its_share_within_the_batch() -> None:
    engine = Partitions()
    ids = [f"lim-{n:03d}" for n in range(40)]
    for n, instance_id in enumerate(ids):
        engine.fold(StartWorkflow(instance_id=instance_id, workflow="shard_limited", input=str(n)))
    produced = engine.commit()
    # Admission never left the partition: no admission command went out as a record.
    assert not [m for m in produced if isinstance(m, AcquireSlot | GrantSlot | ReleaseSlot)]
    tasks = [m for m in produced if isinstance(m, Task)]
    shares = {p: 6 // PARTITIONS + (1 if p < 6 % PARTITIONS else 0) for p in range(PARTITIONS)}
    started: dict[int, int] = {}
    for instance_id in ids:
        p = murmur2_partition(instance_id.encode(), PARTITIONS)
        started[p] = started.get(p, 0) + 1
    admitted: dict[int, int] = {}
    for task in tasks:
        p = murmur2_partition(task.instance_id.encode(), PARTITIONS)
        admitted[p] = admitted.get(p, 0) + 1
    assert admitted == {p: min(shares[p], n) for p, n in started.items()}
    assert sum(admitted.values()) <= 6


def test_an_ending_instance_admits_the_next_of_its_partition_in_the_same_batch() -> None:
    engine = Partitions()
    ids = [f"next-{n:03d}" for n in range(40)]
    for n, instance_id in enumerate(ids):
        engine.fold(StartWorkflow(instance_id=instance_id, workflow="shard_limited", input=str(n)))
    tasks = [m for m in engine.commit() if isinstance(m, Task)]
    done = 0
    while tasks:
        for task in tasks:
            engine.fold(
                CompleteStep(
                    instance_id=task.instance_id, step=task.step, attempt=task.attempt, result="1"
                )
            )
        done += len(tasks)
        produced = engine.commit()
        # Each completion freed a slot that the same batch gave to a queued instance
        # of that partition, until the partition's queue ran dry.
        tasks = [m for m in produced if isinstance(m, Task)]
        assert len(tasks) <= 6
        assert sum(_running(f) for f in engine.folders) <= 6
    assert done == 40
    for instance_id in ids:
        events = engine.history[instance_id]
        kinds = [type(e) for e in events[:3]]
        assert kinds == [WorkflowStarted, WorkflowQueued, WorkflowAdmitted]
        queued = events[1]
        assert isinstance(queued, WorkflowQueued)
        assert queued.limiter.startswith(limiter_key("shard_limited") + "@")
        # Replay takes the shard from the record: the history replays identically.
        assert replay(events, registry()).identical  # type: ignore[arg-type]


def test_a_rebuild_takes_each_instance_s_shard_from_its_history() -> None:
    engine = Partitions()
    ids = [f"re-{n:03d}" for n in range(30)]
    for n, instance_id in enumerate(ids):
        engine.fold(StartWorkflow(instance_id=instance_id, workflow="shard_limited", input=str(n)))
    tasks = [m for m in engine.commit() if isinstance(m, Task)]
    for task in tasks[:4]:  # some end (their partitions admit the next), others still run
        engine.fold(
            CompleteStep(
                instance_id=task.instance_id, step=task.step, attempt=task.attempt, result="1"
            )
        )
    engine.commit()
    facts = engine.facts
    plan = RebuildPlan(partitions=tuple(range(PARTITIONS)), partition_count=PARTITIONS)
    result = rebuild(lambda p: enumerate(facts[p]), registry, plan)  # type: ignore[arg-type]
    assert result.divergences == [] and result.admissions > 0
    for p in range(PARTITIONS):
        # Instances, shards (their slots and queues) and counts as the live fold left them.
        assert compare(engine.folders[p].store, result.stores[p]) == []


def test_admission_for_each_mode() -> None:
    from replayflow.core.decide.runner import one_limiter
    from replayflow.processors.admission import admission_for

    sharded = admission_for("sharded", PARTITIONS)
    key, share = sharded("shard_limited", "some-id", 6)
    assert key.startswith(f"{limiter_key('shard_limited')}@") and share in (1, 2)
    assert admission_for("global", PARTITIONS) is one_limiter
    assert admission_for("global", PARTITIONS)("shard_limited", "some-id", 6) == (
        limiter_key("shard_limited"),
        6,
    )
    with pytest.raises(ValueError, match="unknown admission mode"):
        admission_for("fifo", PARTITIONS)
