"""Folding commands into one partition's state: load, decide, stage writes, and collect
the records to produce. Nothing here talks to Kafka; the orchestrator produces the
records and commits (see orchestrator.py for the order)."""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass

from replayflow import codec
from replayflow.core.decide import Decider
from replayflow.core.decision import Decision
from replayflow.core.limiter import LimiterState, decide_limiter
from replayflow.core.messages import (
    AcquireSlot,
    Command,
    DeadLetter,
    FireTimer,
    ReleaseSlot,
)
from replayflow.core.state import Call, CallKind, InstanceState, Status
from replayflow.store import keys, serde
from replayflow.store.partition import PartitionStore, Pending
from replayflow.telemetry.orchestrator import NULL_OBSERVER, FoldObserver

log = logging.getLogger("replayflow.orchestrator")

# The largest record a decision may produce. topics.yaml allows 8 MiB per record; the
# rest is room for the envelope. A decision that would exceed it is refused (its command
# goes to the dead-letter topic) instead of failing the transaction again and again.
MAX_RECORD_BYTES = 7 * 1024 * 1024

Source = tuple[str, int, int, bytes | None, bytes | None]


@dataclass(frozen=True)
class Record:
    """One record to produce: `partition` None means by key (murmur2)."""

    topic: str  # logical topic name: commands, history, tasks, completions, dlq, state
    key: bytes | None
    value: bytes | None
    partition: int | None


class PartitionFolder:
    """The fold of one partition. Keeps recently used instance states in memory; states
    touched by the batch in flight are pinned until the batch commits or aborts."""

    def __init__(
        self,
        store: PartitionStore,
        decider: Decider,
        cache_size: int = 10_000,
    ) -> None:
        self.store = store
        self.partition = store.partition
        self.decider = decider
        self.pending = Pending(store)
        self._cache: OrderedDict[str, InstanceState] = OrderedDict()
        self._cache_size = cache_size
        self._touched: dict[str, InstanceState | None] = {}
        self.records: list[Record] = []
        self._queue_added: dict[str, list[tuple[int, str]]] = {}  # enqueued this batch
        self.folded = 0
        self.observer: FoldObserver = NULL_OBSERVER  # telemetry, set by the orchestrator

    # -- one batch -------------------------------------------------------------------

    def fold(
        self,
        command: Command,
        now: int,
        source: Source | None = None,
    ) -> None:
        """Fold one decoded command. `source` (topic, partition, offset, key, value)
        lets a rejected command reach the dead-letter topic with its original bytes."""
        if isinstance(command, AcquireSlot | ReleaseSlot):
            self._fold_limiter(command)
            return
        instance_id = command.instance_id
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
            _, instance_id, timer_id = keys.parse_timer(key)
            self.pending.delete(key)
            command = FireTimer(instance_id=instance_id, timer=timer_id)
            try:
                self.fold(command, now)
            except Exception as exc:  # a bug must not stop the loop: park the timer
                log.exception("firing timer %s of %s failed", timer_id, instance_id)
                self.dead_letter(
                    ("timers", self.partition, -1, instance_id.encode(), codec.encode(command)),
                    f"firing timer {timer_id!r} failed: {type(exc).__name__}: {exc}",
                    "FoldError",
                    now,
                )
        return len(due)

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
        self.records.append(Record("dlq", key, codec.encode(record), None))

    def changelog(self) -> list[Record]:
        """The batch's state changes as changelog records, in the order they apply."""
        return [
            Record("state", key, value, self.partition)
            for key, value in self.pending.changes.items()
        ]

    def committed(self, changelog_offset: int | None) -> None:
        """The transaction committed: write RocksDB, keep touched states in the cache."""
        if self.pending.changes or changelog_offset is not None:
            self.store.write(self.pending.changes, changelog_offset)
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
            self.decider.cache.drop(instance_id)
        self.observer.aborted()
        self._reset()

    def _reset(self) -> None:
        self.pending = Pending(self.store)
        self._touched = {}
        self.records = []
        self._queue_added = {}

    # -- instances -------------------------------------------------------------------

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
        calls = tuple(
            serde.load_call(value) for _, value in self.store.scan(keys.calls_prefix(instance_id))
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
        calls: tuple[Call, ...] = state.calls
        writes += [
            (keys.call(instance_id, i), serde.dump_call(calls[i])) for i in decision.changed_calls
        ]
        writes += [(keys.call(instance_id, i), None) for i in decision.removed_calls]
        writes += [(keys.timer(due, instance_id, t), b"") for t, due in decision.timers_set]
        writes += [(keys.timer(due, instance_id, t), None) for t, due in decision.timers_cancelled]
        key = instance_id.encode()
        p = self.partition
        records = [Record("history", key, codec.encode(e), p) for e in decision.events]
        records += [Record("tasks", key, codec.encode(t), p) for t in decision.tasks]
        if decision.completion is not None:
            records.append(Record("completions", key, codec.encode(decision.completion), p))
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
        self.records += records
        self._emit_commands(decision.commands)
        return None

    def _emit_commands(self, commands: tuple[Command, ...]) -> None:
        for command in commands:
            target = (
                command.limiter
                if isinstance(command, AcquireSlot | ReleaseSlot)
                else command.instance_id
            )
            self.records.append(Record("commands", target.encode(), codec.encode(command), None))

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

    # -- admission -------------------------------------------------------------------

    def _fold_limiter(self, command: AcquireSlot | ReleaseSlot) -> None:
        raw = self.pending.get(keys.limiter(command.limiter))
        state: LimiterState | None = None if raw is None else serde.load_limiter(raw)
        added = self._queue_added.setdefault(command.limiter, [])
        queue = _StoredQueue(self.pending, command.limiter, added)
        decision = decide_limiter(state, command, queue)
        self.pending.put(keys.limiter(command.limiter), serde.dump_limiter(decision.state))
        for ticket, instance_id in decision.enqueued:
            self.pending.put(keys.queue_entry(command.limiter, ticket), instance_id.encode())
            added.append((ticket, instance_id))
        for ticket in decision.dequeued:
            self.pending.delete(keys.queue_entry(command.limiter, ticket))
        self._emit_commands(decision.grants)
        self.folded += 1


def _busy(state: InstanceState) -> bool:
    """Running with a step or child out: its next result comes soon."""
    if state.status is not Status.RUNNING:
        return False
    return any(
        c.kind in (CallKind.STEP, CallKind.CHILD) and c.status.is_pending
        for c in reversed(state.calls[-64:])  # pending calls sit at the end
    )


class _StoredQueue:
    """An admission queue read from RocksDB and the batch's pending writes.

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
