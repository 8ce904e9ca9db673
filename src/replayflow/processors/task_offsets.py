"""Which tasks of replayflow.tasks a worker may count as consumed, per partition.

A worker runs many tasks at once and they finish out of order, but a Kafka offset
commit says only "everything below n is done". So the commit point is the lowest task
still running (or one past the last consumed), and the tasks that finished above it
travel in the commit's metadata, as ranges relative to that point (the broker keeps up
to offset.metadata.max.bytes, 4 KiB by default, with every committed offset). A worker
that takes the partition over starts at the commit point and skips those offsets: a
step whose result is on the log does not run again; one still running when its worker
died does (steps are at least once).

A task counts as done only once its result was acknowledged by the broker (or it had
nothing to report: an undecodable task), never merely when its function returned.
Pure bookkeeping: no Kafka here. The worker's rebalance callbacks run on its polling
thread while its event loop ends tasks, so every method holds a lock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

# Well under the broker's default offset.metadata.max.bytes (4096): done offsets that
# do not fit are left out, and those tasks run again after a takeover.
MAX_METADATA = 3000
_PREFIX = "done:"


@dataclass
class _Partition:
    next: int  # one past the highest offset consumed (or the committed offset)
    running: set[int] = field(default_factory=set)
    done: set[int] = field(default_factory=set)  # finished at or above the commit point


@dataclass(frozen=True)
class CommitPoint:
    offset: int
    metadata: str


class TaskOffsets:
    def __init__(self) -> None:
        self._partitions: dict[int, _Partition] = {}
        self._lock = threading.Lock()

    def restore(self, partition: int, committed: int, metadata: str | None) -> None:
        """A partition was assigned with this committed offset and metadata."""
        with self._lock:
            if committed < 0:  # nothing committed yet: known once the first task is read
                self._partitions.pop(partition, None)
                return
            done = decode(committed, metadata)
            self._partitions[partition] = _Partition(next=committed, done=done)

    def begin(self, partition: int, offset: int) -> bool:
        """A task was read: whether to run it (False: it finished before a takeover)."""
        with self._lock:
            state = self._partitions.setdefault(partition, _Partition(next=offset))
            state.next = max(state.next, offset + 1)
            if offset in state.done:
                return False
            state.running.add(offset)
            return True

    def end(self, partition: int, offset: int) -> None:
        """The task's result is on the log (or it had none to report)."""
        with self._lock:
            state = self._partitions.get(partition)
            if state is not None and offset in state.running:
                state.running.discard(offset)
                state.done.add(offset)

    def commit_point(self, partition: int) -> CommitPoint | None:
        with self._lock:
            return self._point(partition)

    def _point(self, partition: int) -> CommitPoint | None:
        state = self._partitions.get(partition)
        if state is None:
            return None
        point = min(state.running) if state.running else state.next
        state.done = {o for o in state.done if o >= point}
        return CommitPoint(point, encode(point, state.done))

    def commit_points(self) -> dict[int, CommitPoint]:
        with self._lock:
            points = {p: self._point(p) for p in list(self._partitions)}
        return {p: point for p, point in points.items() if point is not None}

    def forget(self, partition: int) -> None:
        with self._lock:
            self._partitions.pop(partition, None)

    def forget_all(self) -> None:
        with self._lock:
            self._partitions.clear()


def encode(point: int, done: set[int]) -> str:
    """ "done:2-4,10" for offsets point+2..point+4 and point+10."""
    ranges: list[str] = []
    length = len(_PREFIX)
    start = previous = None
    for offset in [*sorted(o - point for o in done if o >= point), None]:
        if start is not None and previous is not None and offset != previous + 1:
            text = str(start) if start == previous else f"{start}-{previous}"
            length += len(text) + 1
            if length > MAX_METADATA:
                break
            ranges.append(text)
            start = None
        if start is None:
            start = offset
        previous = offset
    return _PREFIX + ",".join(ranges) if ranges else ""


def decode(committed: int, metadata: str | None) -> set[int]:
    """The done offsets a commit at `committed` with this metadata names. Anything
    `encode` did not write (another tool's metadata, a damaged string) names none: those
    tasks run again, which is always safe."""
    if not metadata or not metadata.startswith(_PREFIX):
        return set()
    out: set[int] = set()
    try:
        for text in metadata[len(_PREFIX) :].split(","):
            low, _, high = text.partition("-")
            first, last = int(low), int(high or low)
            if not 0 <= first <= last < first + MAX_METADATA * 1000:
                return set()
            out.update(range(committed + first, committed + last + 1))
    except ValueError:
        return set()
    return out
