"""The limiters of a rebuild: admission commands folded after the instances.

A limiter has no history of its own: its state (who holds a slot, who waits in its
queue, in which order) is what the AcquireSlot and ReleaseSlot commands of the
instances' decisions made of it. The rebuild collects those commands with the order
they were sent in (time, partition, offset) and folds them here, through the same
fold shell, in that order. The limiter's grants are not sent on: the instances took
theirs from their own WorkflowAdmitted facts. One exception follows the engine: a
grant to an instance that ended while it waited in the queue is handed straight back
(the instance's fold answers such a grant with a ReleaseSlot and records nothing).

Order across partitions is the facts' time; within a partition, the offset. With one
orchestrator process that is the order the commands reached the limiter's partition.
With several, two instances queued in the same millisecond on different partitions
may swap places; the comparison then names the limiter (see docs/replay.md).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping

from replayflow.core.messages import AcquireSlot, GrantSlot, ReleaseSlot
from replayflow.processors.fold import PartitionFolder
from replayflow.processors.rebuild import Admission

BATCH = 5000


def fold_admissions(
    admissions: Iterable[Admission],
    folders: Mapping[int, PartitionFolder],
    partition_of: Callable[[str], int],
) -> int:
    """Fold the admission commands into their limiters' folders, in the order they
    were sent; returns how many commands were folded. Commits every folder it used."""
    ended_queued: set[str] = set()  # released while queued: their grant goes back
    folded = 0
    used: set[int] = set()
    for entry in sorted(admissions, key=lambda a: a.order):
        partition = partition_of(entry.command.limiter)
        folder = folders[partition]
        used.add(partition)
        waiting: deque[AcquireSlot | ReleaseSlot] = deque([entry.command])
        while waiting:
            command = waiting.popleft()
            if isinstance(command, AcquireSlot):
                ended_queued.discard(command.instance_id)
            else:
                state = folder.limiter(command.limiter)
                if state is None or command.instance_id not in state.running:
                    ended_queued.add(command.instance_id)
            start = len(folder.records)
            folder.fold(command, entry.at)
            folded += 1
            for record in folder.records[start:]:
                grant = record.message
                if isinstance(grant, GrantSlot) and grant.instance_id in ended_queued:
                    ended_queued.discard(grant.instance_id)
                    waiting.append(
                        ReleaseSlot(limiter=command.limiter, instance_id=grant.instance_id)
                    )
        if folded % BATCH == 0:
            for p in used:
                folders[p].committed(None)
    for p in used:
        folders[p].committed(None)
    return folded
