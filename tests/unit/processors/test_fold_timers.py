"""The timer index is read only when a timer can be due, and from a floor below which
every timer has fired: the loop asks every few milliseconds, and a read from the start
of the index would walk the tombstones of every timer fired since RocksDB last
compacted. Whatever the floor and the next due time skip, each timer still fires once,
at its time: set in the same batch, set below the floor, or fired by a batch that
aborted."""

from __future__ import annotations

from collections.abc import Iterator

import replayflow as rf
from replayflow.core.decide import Decider
from replayflow.core.messages import StartWorkflow
from replayflow.processors.fold import PartitionFolder
from replayflow.store import keys
from replayflow.store.memory import MemoryStore

T = 1_767_225_600_000


@rf.workflow(name="ft_napper")
async def napper(ctx: rf.Context, seconds: int) -> int:
    await ctx.sleep("nap", f"{seconds}s")
    return seconds


class CountingStore(MemoryStore):
    """The in-memory store, counting reads of the timer index."""

    def __init__(self) -> None:
        super().__init__()
        self.timer_reads = 0

    def scan(
        self, prefix: bytes, end: bytes | None = None, seek: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        if prefix == keys.TIMERS:
            self.timer_reads += 1
        return super().scan(prefix, end, seek)


def folder() -> tuple[PartitionFolder, CountingStore]:
    store = CountingStore()
    return PartitionFolder(store, Decider(rf.Registry.of(napper))), store


def start(f: PartitionFolder, name: str, seconds: int, now: int) -> None:
    f.fold(StartWorkflow(instance_id=name, workflow="ft_napper", input=str(seconds)), now)


def fired(f: PartitionFolder, now: int) -> int:
    count = f.fire_due_timers(now)
    f.committed(None)
    return count


def test_the_index_is_not_read_before_the_next_due_time() -> None:
    f, store = folder()
    start(f, "a", 10, T)
    f.committed(None)
    assert fired(f, T + 1000) == 0
    reads = store.timer_reads
    for ms in range(2000, 10_000, 50):  # the loop's polls until the nap is due
        assert fired(f, T + ms) == 0
    assert store.timer_reads == reads  # no read while nothing can be due
    assert fired(f, T + 10_000) == 1
    assert f.state("a") is not None and f.state("a").status.is_final  # type: ignore[union-attr]


def test_a_timer_set_in_the_batch_that_read_the_index_fires_in_the_next() -> None:
    f, _ = folder()
    start(f, "a", 0, T)  # due at T, set in this batch: not in the index yet
    assert f.fire_due_timers(T + 5000) == 0
    f.committed(None)
    assert fired(f, T + 5000) == 1


def test_a_timer_set_below_the_floor_still_fires() -> None:
    f, _ = folder()
    assert fired(f, T + 100_000) == 0  # the floor is past T + 100 s now
    start(f, "a", 0, T + 50_000)  # due at T + 50 s, below the floor
    f.committed(None)
    assert fired(f, T + 100_000) == 1


def test_timers_fired_by_an_aborted_batch_fire_again() -> None:
    f, _ = folder()
    start(f, "a", 1, T)
    f.committed(None)
    assert f.fire_due_timers(T + 1000) == 1
    f.aborted()
    assert fired(f, T + 1000) == 1
    assert fired(f, T + 2000) == 0


def test_more_due_than_the_limit_are_fired_over_several_reads() -> None:
    f, _ = folder()
    for n in range(5):
        start(f, f"i{n}", 1, T)
    f.committed(None)
    counts = []
    for _ in range(4):
        counts.append(f.fire_due_timers(T + 1000, limit=2))
        f.committed(None)
    assert counts == [2, 2, 1, 0]
