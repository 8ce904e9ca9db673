"""Admission in the orchestrator: which shard of a limiter an instance asks, and the
fold of a limiter (its state and queue in the store, through the batch's pending
writes). decide_limiter() (core/limiter.py) makes the decisions; this module only
picks shards, reads and stages.

A workflow's concurrency limit was one limiter entity on one partition: every start
and every end of a limited workflow sent a command there and waited for a grant back,
so that partition carried half of all commands and each admission cost two more
transactions. `LimiterShards` splits it: with a limit L at least the partition count
P, each partition holds a shard with L / P of the slots (the remainder to the lowest
partitions), and an instance asks the shard of its own partition. Shard and instance
then live in the same store, and the fold (fold.py) delivers their commands to each
other within the batch, without a round through Kafka: an ending instance frees its
slot and the next queued one starts in the same transaction. The limit holds exactly
(the shards' slots add up to L); admission is first in, first out per partition. A
limit below P keeps the one limiter (a shard of no slots would admit nothing).

Shard keys are chosen to hash (murmur2, as every record key) to their partition, so a
command for a shard sent through Kafka, as any limiter command may be, lands there.
"""

from __future__ import annotations

from replayflow.core.decide import LIMITER_PREFIX, limiter_key
from replayflow.core.decide.runner import Admission, one_limiter
from replayflow.core.decision import Outgoing
from replayflow.core.limiter import LimiterDecision, LimiterState, decide_limiter
from replayflow.core.messages import AcquireSlot, GrantSlot, ReleaseSlot
from replayflow.kafka.partition import murmur2_partition
from replayflow.store import keys, serde
from replayflow.store.pending import Pending


def is_shard_key(limiter: str) -> bool:
    return limiter.startswith(LIMITER_PREFIX) and "@" in limiter


class LimiterShards:
    """The orchestrator's `Admission` (core/decide/runner.py): a limited workflow's
    limiter sharded over the partitions, when its limit allows."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self._keys: dict[tuple[str, int], str] = {}

    def __call__(self, workflow: str, instance_id: str, limit: int) -> tuple[str, int]:
        count = self.partitions
        if count <= 1 or limit < count:
            return limiter_key(workflow), limit
        partition = murmur2_partition(instance_id.encode(), count)
        share = limit // count + (1 if partition < limit % count else 0)
        return self.shard_key(workflow, partition), share

    def share_of(self, limiter: str, limit: int) -> int:
        """The slots of `limiter` under a workflow limit of `limit`: its share for a
        shard key, the whole limit for the one limiter (a rebuild re-folds recorded
        admissions with it)."""
        if not is_shard_key(limiter) or self.partitions <= 1 or limit < self.partitions:
            return limit
        partition = int(limiter.rsplit("@", 1)[1].split(".", 1)[0])
        return limit // self.partitions + (1 if partition < limit % self.partitions else 0)

    def shard_key(self, workflow: str, partition: int) -> str:
        """`~limiter:<workflow>@<partition>.<n>`: the first n whose key lands there."""
        found = self._keys.get((workflow, partition))
        if found is None:
            base = f"{limiter_key(workflow)}@{partition}."
            n = 0
            while murmur2_partition(f"{base}{n}".encode(), self.partitions) != partition:
                n += 1
            found = self._keys[(workflow, partition)] = f"{base}{n}"
        return found


def admission_for(mode: str, partitions: int) -> Admission:
    """The orchestrator's admission for REPLAYFLOW_ADMISSION `mode` (settings.py):
    "sharded" (the limit split over the partitions) or "global" (one limiter, first in,
    first out across all partitions)."""
    if mode == "global":
        return one_limiter
    if mode == "sharded":
        return LimiterShards(partitions)
    raise ValueError(f"unknown admission mode {mode!r}: use sharded or global")


class LocalAdmission:
    """Which admission commands a partition's fold delivers to itself, in the batch:
    those between an instance and a limiter shard of the same partition. (The one
    limiter of a limit below the partition count is addressed through Kafka as
    before, local or not: its queue is one order.)"""

    def __init__(self, partition: int, partitions: int) -> None:
        self.partition = partition
        self.partitions = partitions
        self._local_keys: dict[bytes, bool] = {}

    def __call__(self, command: Outgoing, key: bytes, from_shard: bool) -> bool:
        if isinstance(command, AcquireSlot | ReleaseSlot):
            if not is_shard_key(command.limiter):
                return False
        elif not (from_shard and isinstance(command, GrantSlot)):
            return False
        local = self._local_keys.get(key)
        if local is None:
            local = murmur2_partition(key, self.partitions) == self.partition
            if len(self._local_keys) >= 100_000:
                self._local_keys.clear()
            self._local_keys[key] = local
        return local


def load_limiter(pending: Pending, limiter: str) -> LimiterState | None:
    raw = pending.get(keys.limiter(limiter))
    return None if raw is None else serde.load_limiter(raw)


def fold_limiter(
    pending: Pending, command: AcquireSlot | ReleaseSlot, added: list[tuple[int, str]]
) -> LimiterDecision:
    """Decide and stage the limiter's writes. `added` lists the entries this batch has
    enqueued on the limiter so far, oldest first; the ones enqueued now join it."""
    queue = _StoredQueue(pending, command.limiter, added)
    decision = decide_limiter(load_limiter(pending, command.limiter), command, queue)
    pending.put(keys.limiter(command.limiter), serde.dump_limiter(decision.state))
    for ticket, instance_id in decision.enqueued:
        pending.put(keys.queue_entry(command.limiter, ticket), instance_id.encode())
        added.append((ticket, instance_id))
    for ticket in decision.dequeued:
        pending.delete(keys.queue_entry(command.limiter, ticket))
    return decision


class _StoredQueue:
    """An admission queue read from the store and the batch's pending writes.

    Reading starts at the limiter's head ticket, so entries dequeued earlier (and their
    tombstones) are never walked again; entries this batch enqueued are kept in order
    by the folder, so the pending writes are never scanned."""

    def __init__(self, pending: Pending, limiter: str, added: list[tuple[int, str]]) -> None:
        self._pending = pending
        self._limiter = limiter
        self._added = added

    def head(self, n: int, start: int) -> list[tuple[int, str]]:
        found: list[tuple[int, str]] = []
        prefix = keys.queue_prefix(self._limiter)
        changes = self._pending.changes
        for key, value in self._pending.store.scan(
            prefix, seek=keys.queue_entry(self._limiter, start)
        ):
            if len(found) >= n:
                return found
            if key in changes:
                continue  # dequeued in this batch
            found.append((keys.queue_ticket(key), value.decode()))
        for ticket, instance_id in self._added:
            if len(found) >= n:
                break
            if ticket >= start and changes.get(keys.queue_entry(self._limiter, ticket)):
                found.append((ticket, instance_id))
        return found
