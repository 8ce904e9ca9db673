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
from replayflow.core.state import Call, InstanceState
from replayflow.store import keys, serde
from replayflow.store.partition import PartitionStore, Pending
from replayflow.telemetry.orchestrator import NULL_OBSERVER, FoldObserver

log = logging.getLogger("replayflow.orchestrator")


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
        self.folded = 0
        self.observer: FoldObserver = NULL_OBSERVER  # telemetry, set by the orchestrator

    # -- one batch -------------------------------------------------------------------

    def fold(
        self,
        command: Command,
        now: int,
        source: tuple[str, int, int, bytes | None, bytes | None] | None = None,
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
        self._apply(instance_id, state, decision)
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
            self.fold(FireTimer(instance_id=instance_id, timer=timer_id), now)
        return len(due)

    def dead_letter(
        self,
        source: tuple[str, int, int, bytes | None, bytes | None] | None,
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
        info = serde.load_info(raw)
        calls = tuple(
            serde.load_call(value) for _, value in self.store.scan(keys.calls_prefix(instance_id))
        )
        return InstanceState(info=info, calls=calls)

    def _apply(self, instance_id: str, before: InstanceState | None, decision: Decision) -> None:
        state = decision.state
        if not decision.changed or state is None:
            self._emit_commands(decision.commands)
            return
        self._touched[instance_id] = state
        self.observer.decided(before, decision)
        self.pending.put(keys.info(instance_id), serde.dump_info(state.info))
        calls: tuple[Call, ...] = state.calls
        for index in decision.changed_calls:
            self.pending.put(keys.call(instance_id, index), serde.dump_call(calls[index]))
        for index in decision.removed_calls:
            self.pending.delete(keys.call(instance_id, index))
        for timer_id, due in decision.timers_set:
            self.pending.put(keys.timer(due, instance_id, timer_id), b"")
        for timer_id, due in decision.timers_cancelled:
            self.pending.delete(keys.timer(due, instance_id, timer_id))
        key = instance_id.encode()
        p = self.partition
        for event in decision.events:
            self.records.append(Record("history", key, codec.encode(event), p))
        for task in decision.tasks:
            self.records.append(Record("tasks", key, codec.encode(task), p))
        if decision.completion is not None:
            self.records.append(Record("completions", key, codec.encode(decision.completion), p))
        self._emit_commands(decision.commands)

    def _emit_commands(self, commands: tuple[Command, ...]) -> None:
        for command in commands:
            target = (
                command.limiter
                if isinstance(command, AcquireSlot | ReleaseSlot)
                else command.instance_id
            )
            self.records.append(Record("commands", target.encode(), codec.encode(command), None))

    def _remember(self, instance_id: str, state: InstanceState) -> None:
        if state.status.is_final:
            # Finished instances are rarely read again; keep memory for running ones.
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
        decision = decide_limiter(state, command, _StoredQueue(self.pending, command.limiter))
        self.pending.put(keys.limiter(command.limiter), serde.dump_limiter(decision.state))
        for ticket, instance_id in decision.enqueued:
            self.pending.put(keys.queue_entry(command.limiter, ticket), instance_id.encode())
        for ticket in decision.dequeued:
            self.pending.delete(keys.queue_entry(command.limiter, ticket))
        self._emit_commands(decision.grants)
        self.folded += 1


class _StoredQueue:
    def __init__(self, pending: Pending, limiter: str) -> None:
        self._pending = pending
        self._prefix = keys.queue_prefix(limiter)

    def head(self, n: int) -> list[tuple[int, str]]:
        return [(keys.queue_ticket(k), v.decode()) for k, v in self._pending.scan(self._prefix, n)]
