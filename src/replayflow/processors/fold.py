"""The fold shell: commands into one partition's store, for the orchestrator (RocksDB)
and the test engine (in memory) alike.

One entry, `fold()`: the command's entity (core/entities.py) picks the fold that
loads that entity, decides and stages its writes and records. Timers fire from the
store's timer index through the same entry. Nothing here talks to Kafka; a batch ends
with `committed()` (the store takes the staged writes and the changelog offset in one
write) or `aborted()` (everything staged is forgotten). The orchestrator produces the
records and commits in between (see orchestrator.py for the order)."""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from replayflow import codec
from replayflow.core.callseq import Calls
from replayflow.core.decide import Decider
from replayflow.core.decision import Decision
from replayflow.core.entities import Entity, route
from replayflow.core.limiter import LimiterState
from replayflow.core.messages import (
    AcquireSlot,
    Command,
    DeadLetter,
    FireTimer,
    GrantSlot,
    ReleaseSlot,
)
from replayflow.core.state import CallKind, InstanceState, Status
from replayflow.kafka.partition import murmur2_partition
from replayflow.processors.admission import fold_limiter, is_shard_key, load_limiter
from replayflow.store import counts, keys, serde
from replayflow.store.pending import Pending
from replayflow.store.protocol import Store
from replayflow.telemetry.orchestrator import NULL_OBSERVER, FoldObserver

log = logging.getLogger("replayflow.orchestrator")

# The largest record a decision may produce. topics.yaml allows 8 MiB per record; the
# rest is room for the envelope. A decision that would exceed it is refused (its command
# goes to the dead-letter topic) instead of failing the transaction again and again.
MAX_RECORD_BYTES = 7 * 1024 * 1024

Source = tuple[str, int, int, bytes | None, bytes | None]


@dataclass(frozen=True)
class Record:
    """One record to produce: `partition` None means by key (murmur2). `message` is
    the object `value` encodes, for readers in the same process (the test engine)."""

    topic: str  # logical topic name: commands, history, tasks, completions, dlq, state
    key: bytes | None
    value: bytes | None
    partition: int | None
    message: Any = field(default=None, compare=False, repr=False)


def _record(topic: str, key: bytes | None, message: Any, partition: int | None) -> Record:
    return Record(topic, key, codec.encode(message), partition, message)


class PartitionFolder:
    """The fold of one partition over a `Store`. Keeps recently used instance states in
    memory; states touched by the batch in flight are pinned until the batch commits or
    aborts. Keeps the status counts (store/counts.py) with the states they count."""

    def __init__(
        self,
        store: Store,
        decider: Decider,
        cache_size: int = 10_000,
        partitions: int | None = None,
    ) -> None:
        self.store = store
        self.partition = store.partition
        self.decider = decider
        # Given the partition count, admission commands between entities of this
        # partition (an instance and its limiter shard, processors/admission.py) are
        # delivered here, in the batch; without it every command leaves as a record.
        self.partitions = partitions
        self._inline: deque[Command] = deque()
        self._local_keys: dict[bytes, bool] = {}
        self._cache: OrderedDict[str, InstanceState] = OrderedDict()
        self._cache_size = cache_size
        self._folds: dict[Entity, Callable[[str, Any, int, Source | None], None]] = {
            Entity.INSTANCE: self._fold_instance,
            Entity.LIMITER: self._fold_limiter,
        }
        self.folded = 0
        self.observer: FoldObserver = NULL_OBSERVER  # telemetry, set by the orchestrator
        stored = counts.stored(store)
        self._counts_stored = stored is not None
        self._held = False  # whether the store holds any instance, when it had no counts
        if stored is None:
            stored, self._held = counts.count(store)
        self.counts: counts.Counts = stored  # as committed; replaced, never changed
        self._counts_dirty: bool = False
        self._reset()

    # -- one batch -------------------------------------------------------------------

    def fold(self, command: Command, now: int, source: Source | None = None) -> None:
        """Fold one decoded command into its entity. `source` (topic, partition, offset,
        key, value) lets a rejected command reach the dead-letter topic with its
        original bytes."""
        target = route(command)
        self._folds[target.entity](target.key, command, now, source)
        while self._inline:
            self._deliver(self._inline.popleft(), now)

    def _deliver(self, command: Command, now: int) -> None:
        """Fold a command a decision of this batch addressed to an entity here."""
        target = route(command)
        try:
            self._folds[target.entity](target.key, command, now, None)
        except Exception as exc:  # a bug must not stop the batch: park the command
            log.exception("delivering %s to %s failed", type(command).__name__, target.key)
            source = ("commands", self.partition, -1, target.record_key, codec.encode(command))
            self.dead_letter(
                source, f"the fold failed: {type(exc).__name__}: {exc}", "FoldError", now
            )

    def fire_due_timers(self, now: int, limit: int = 1000) -> int:
        """Fold every timer due at `now` (up to `limit`) as a FireTimer."""
        due = []
        for key, _ in self.store.scan(keys.TIMERS, end=keys.timers_due_before(now)):
            if key in self.pending.changes:
                continue  # fired or cancelled in this batch already
            due.append(key)
            if len(due) >= limit:
                break
        for key in due:
            try:
                self.fire_timer(key, now)
            except Exception as exc:  # a bug must not stop the loop: park the timer
                _, instance_id, timer_id = keys.parse_timer(key)
                log.exception("firing timer %s of %s failed", timer_id, instance_id)
                command = FireTimer(instance_id=instance_id, timer=timer_id)
                self.dead_letter(
                    ("timers", self.partition, -1, instance_id.encode(), codec.encode(command)),
                    f"firing timer {timer_id!r} failed: {type(exc).__name__}: {exc}",
                    "FoldError",
                    now,
                )
        return len(due)

    def fire_timer(self, key: bytes, now: int) -> FireTimer:
        """Take one timer off the index and fold it; a failing fold leaves it taken."""
        _, instance_id, timer_id = keys.parse_timer(key)
        self.pending.delete(key)
        command = FireTimer(instance_id=instance_id, timer=timer_id)
        self.fold(command, now)
        return command

    def next_timer(self) -> bytes | None:
        """The key of the earliest timer in the index that this batch has not taken."""
        for key, _ in self.store.scan(keys.TIMERS):
            if self.pending.changes.get(key, b"") is not None:
                return key
        return None

    def dead_letter(
        self,
        source: Source | None,
        reason: str,
        error_type: str,
        now: int,
    ) -> None:
        topic, partition, offset, key, value = source or ("", self.partition, -1, None, None)
        log.warning("dead letter from %s[%d]@%d: %s", topic, partition, offset, reason)
        record = DeadLetter(
            source_topic=topic,
            partition=partition,
            offset=offset,
            key=key,
            value=value,
            reason=reason,
            error_type=error_type,
            at=now,
        )
        self.records.append(_record("dlq", key, record, None))

    def changelog(self) -> list[Record]:
        """The batch's state changes as changelog records, in the order they apply."""
        changes = self.changes()
        return [Record("state", key, value, self.partition) for key, value in changes.items()]

    def staged(self) -> bool:
        """Whether the batch has anything to produce or write."""
        return bool(self.records or self.pending.changes or self._counts_dirty)

    def changes(self) -> dict[bytes, bytes | None]:
        """The batch's state changes (None deletes), in the order they apply; the status
        counts are written once per batch, here, however many decisions moved them."""
        if self._counts_dirty and self._batch_counts is not None:
            self.pending.put(keys.STATUS_COUNTS, counts.dump(self._batch_counts))
            self._counts_dirty = False
        return self.pending.changes

    def committed(self, changelog_offset: int | None) -> None:
        """The transaction committed: write the store, keep touched states cached."""
        changes = self.changes()
        if changes or changelog_offset is not None:
            self.store.write(changes, changelog_offset)
        if keys.STATUS_COUNTS in changes:
            self.counts = counts.load(changes[keys.STATUS_COUNTS] or b"{}")
            self._counts_stored = True
        for instance_id, state in self._touched.items():
            if state is None:
                self._cache.pop(instance_id, None)
            else:
                self._remember(instance_id, state)
        self.observer.committed()
        self._reset()

    def aborted(self) -> None:
        """The transaction aborted: forget everything the batch staged."""
        for instance_id in self._touched:
            self._cache.pop(instance_id, None)
            self.decider.forget(instance_id)
        self.observer.aborted()
        self._reset()

    def _reset(self) -> None:
        self.pending = Pending(self.store)
        self._inline.clear()
        self._touched: dict[str, InstanceState | None] = {}
        self.records: list[Record] = []
        self._queue_added: dict[str, list[tuple[int, str]]] = {}  # enqueued this batch
        self._batch_counts: counts.Counts | None = None
        self._counts_dirty = False
        if not self._counts_stored and self._held:
            # A store from before the counts: the first batch writes what was counted.
            self._stage_counts(dict(self.counts))

    def _stage_counts(self, batch_counts: counts.Counts) -> None:
        self._batch_counts = batch_counts
        self._counts_dirty = True

    # -- reading ---------------------------------------------------------------------

    def state(self, instance_id: str) -> InstanceState | None:
        """An instance's state, the batch's changes included."""
        return self._load(instance_id)

    def limiter(self, key: str) -> LimiterState | None:
        """A limiter's state, the batch's changes included."""
        return load_limiter(self.pending, key)

    def status_counts(self) -> counts.Counts:
        """Instances by gauge status, as committed."""
        return dict(self.counts)

    # -- instances -------------------------------------------------------------------

    def _fold_instance(
        self, instance_id: str, command: Command, now: int, source: Source | None
    ) -> None:
        state = self._load(instance_id)
        try:
            decision = self.decider.decide(state, command, now)
        except LookupError as exc:
            self.dead_letter(source, str(exc), "LookupError", now)
            return
        if decision.rejected is not None:
            self.dead_letter(source, decision.rejected, "Rejected", now)
            return
        too_large = self._apply(instance_id, state, decision)
        if too_large is not None:
            self.dead_letter(source, too_large, "RecordTooLarge", now)
            return
        self.folded += 1

    def _load(self, instance_id: str) -> InstanceState | None:
        if instance_id in self._touched:
            return self._touched[instance_id]
        state = self._cache.get(instance_id)
        if state is not None:
            self._cache.move_to_end(instance_id)
            return state
        raw = self.store.get(keys.info(instance_id))
        if raw is None:
            return None
        info = serde.load_info(raw, (self.store.get(keys.input(instance_id)) or b"null").decode())
        calls = Calls(
            [serde.load_call(value) for _, value in self.store.scan(keys.calls_prefix(instance_id))]
        )
        return InstanceState(info=info, calls=calls)

    def _apply(
        self, instance_id: str, before: InstanceState | None, decision: Decision
    ) -> str | None:
        """Stage the decision's writes and records; or, when one record would be too
        large for the log, stage nothing and say why."""
        state = decision.state
        if not decision.changed or state is None:
            self._emit_commands(decision.commands)
            return None
        writes: list[tuple[bytes, bytes | None]] = [
            (keys.info(instance_id), serde.dump_info(state.info))
        ]
        if before is None:
            writes.append((keys.input(instance_id), state.info.input.encode()))
        calls = state.calls
        writes += [
            (keys.call(instance_id, i), serde.dump_call(calls[i])) for i in decision.changed_calls
        ]
        writes += [(keys.call(instance_id, i), None) for i in decision.removed_calls]
        writes += [(keys.timer(due, instance_id, t), b"") for t, due in decision.timers_set]
        writes += [(keys.timer(due, instance_id, t), None) for t, due in decision.timers_cancelled]
        key = instance_id.encode()
        p = self.partition
        records = [_record("history", key, e, p) for e in decision.events]
        records += [_record("tasks", key, t, p) for t in decision.tasks]
        if decision.completion is not None:
            records.append(_record("completions", key, decision.completion, p))
        largest = max(
            [len(v) for _, v in writes if v is not None] + [len(r.value or b"") for r in records]
        )
        if largest > MAX_RECORD_BYTES:
            return (
                f"folding it would write a record of {largest} bytes, over the "
                f"{MAX_RECORD_BYTES}-byte limit of the log"
            )
        self._touched[instance_id] = state
        self.observer.decided(before, decision)
        for write_key, value in writes:
            if value is None:
                self.pending.delete(write_key)
            else:
                self.pending.put(write_key, value)
        self._count(before, state)
        self.records += records
        self._emit_commands(decision.commands)
        return None

    def _count(self, before: InstanceState | None, after: InstanceState) -> None:
        old, new = counts.classify(before), counts.classify(after)
        if old == new:
            return
        batch_counts = dict(self.counts) if self._batch_counts is None else self._batch_counts
        if old is not None:
            batch_counts[old] -= 1
        if new is not None:
            batch_counts[new] += 1
        self._stage_counts(batch_counts)

    def _emit_commands(self, commands: tuple[Command, ...], from_shard: bool = False) -> None:
        for command in commands:
            key = route(command).record_key
            if self._local(command, key, from_shard):
                self._inline.append(command)
            else:
                self.records.append(_record("commands", key, command, None))

    def _local(self, command: Command, key: bytes, from_shard: bool) -> bool:
        """Whether `command` goes between an instance and a limiter shard of this
        partition. (The one limiter of a limit below the partition count is
        addressed through Kafka as before, local or not: its queue is one order.)"""
        if self.partitions is None:
            return False
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

    def _remember(self, instance_id: str, state: InstanceState) -> None:
        if not _busy(state):
            # Finished, queued and merely waiting instances are rarely read again soon:
            # they cost disk, not memory, and a later command reads them back.
            self._cache.pop(instance_id, None)
            return
        self._cache[instance_id] = state
        self._cache.move_to_end(instance_id)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    # -- limiters --------------------------------------------------------------------

    def _fold_limiter(
        self, limiter: str, command: AcquireSlot | ReleaseSlot, now: int, source: Source | None
    ) -> None:
        added = self._queue_added.setdefault(limiter, [])
        decision = fold_limiter(self.pending, command, added)
        self._emit_commands(decision.grants, from_shard=is_shard_key(limiter))
        self.folded += 1


def _busy(state: InstanceState) -> bool:
    """Running with a step or child out: its next result comes soon."""
    if state.status is not Status.RUNNING:
        return False
    return any(
        c.kind in (CallKind.STEP, CallKind.CHILD) and c.status.is_pending
        for c in islice(reversed(state.calls), 64)  # pending calls sit at the end
    )
