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
from typing import Any

from replayflow import codec
from replayflow.core.callseq import Calls
from replayflow.core.clip import MAX_ECHO, clip, clip_traceback
from replayflow.core.decide import Decider
from replayflow.core.decision import Decision, Outgoing
from replayflow.core.entities import AnyCommand, Entity, route, timer_command
from replayflow.core.limiter import LimiterState
from replayflow.core.messages import AcquireSlot, Command, CompleteStep, FireTimer, ReleaseSlot
from replayflow.core.schedule_messages import FireSchedule, ScheduleCommand
from replayflow.core.schedule_state import ScheduleState
from replayflow.core.state import InstanceState
from replayflow.processors import schedules
from replayflow.processors.admission import (
    LocalAdmission,
    fold_limiter,
    is_shard_key,
    load_limiter,
)
from replayflow.processors.fold_records import (
    MAX_LOGGED_REASON,
    MAX_RECORD_BYTES,
    Outcome,
    Record,
    Source,
    dead_letter_record,
    largest_value,
    make_record,
    outcome_of,
    reply_record,
    stream_accepted,
    stream_end,
    unencoded_record,
)
from replayflow.store import counts, keys, serde
from replayflow.store.pending import Pending
from replayflow.store.protocol import Store
from replayflow.telemetry.orchestrator import NULL_OBSERVER, FoldObserver

log = logging.getLogger("replayflow.orchestrator")


class PartitionFolder:
    """The fold of one partition over a `Store`. Keeps recently used instance states in
    memory; states touched by the batch in flight are pinned until the batch commits or
    aborts. Keeps the status counts (store/counts.py) with the states they count."""

    def __init__(
        self,
        store: Store,
        decider: Decider,
        cache_size: int = 10_000,
        *,
        encode: bool = True,
        cache_idle: bool = False,
        partitions: int | None = None,
    ) -> None:
        self.store = store
        # A re-fold of history (a rebuild) reads its records in this process and
        # produces nothing (encode=False: only the message, no size check), and reads
        # every instance again soon, whatever it waits for (cache_idle=True).
        self._record = make_record if encode else unencoded_record
        self._encode: Callable[[Any], bytes | None] = (
            codec.default_codec().encode if encode else _not_encoded
        )
        self._cache_idle = cache_idle
        self.partition = store.partition
        self.decider = decider
        # Given the partition count, admission commands between entities of this
        # partition (an instance and its limiter shard, processors/admission.py) are
        # delivered here, in the batch; without it every command leaves as a record.
        self._local = None if partitions is None else LocalAdmission(self.partition, partitions)
        self._inline: deque[Outgoing] = deque()
        self._cache: OrderedDict[str, InstanceState] = OrderedDict()
        self._cache_size = cache_size
        self._schedules = schedules.ScheduleFold()
        # Every timer of the index due before the floor has fired; none is due before
        # _next_due (None: unknown). Both only ever err low (an extra read).
        self._timer_floor = 0
        self._next_due: int | None = None
        self._staged_due: int = _NO_TIMER
        self._folds: dict[Entity, Callable[[str, Any, int, Source | None], Outcome]] = {
            Entity.INSTANCE: self._fold_instance,
            Entity.LIMITER: self._fold_limiter,
            Entity.SCHEDULE: self._fold_schedule,
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

    def fold(
        self,
        command: AnyCommand,
        now: int,
        source: Source | None = None,
        request_id: str | None = None,
    ) -> None:
        """Fold one decoded command into its entity. `source` (topic, partition, offset,
        key, value) lets a rejected command reach the dead-letter topic with its
        original bytes. A command with a `request_id` (its caller waits) is answered
        with a Reply instead: accepted, unchanged, or rejected with the reason."""
        target = route(command)
        outcome = self._folds[target.entity](target.key, command, now, source)
        if request_id is not None:
            self.reply(target.record_key, request_id, type(command).__name__, outcome, now)
        elif outcome.rejected is not None:
            self.dead_letter(source, outcome.rejected, outcome.dead_letter_type, now)
        while self._inline:
            self._deliver(self._inline.popleft(), now)

    def _deliver(self, command: Outgoing, now: int) -> None:
        """Fold a command a decision of this batch addressed to an entity here."""
        target = route(command)
        source = ("commands", self.partition, -1, target.record_key, codec.encode(command))
        try:
            outcome = self._folds[target.entity](target.key, command, now, None)
        except Exception as exc:  # a bug must not stop the batch: park the command
            log.error("delivering %s failed:\n%s", type(command).__name__, clip_traceback(exc))
            reason = f"the fold failed: {type(exc).__name__}: {exc}"
            self.dead_letter(source, reason, "FoldError", now)
            return
        if outcome.rejected is not None:  # as if it had come through Kafka
            self.dead_letter(source, outcome.rejected, outcome.dead_letter_type, now)

    def reply(
        self, key: bytes | None, request_id: str, command: str, outcome: Outcome, now: int
    ) -> None:
        """Answer a command whose caller waits (see Reply)."""
        if outcome.rejected is not None:
            log.info("rejected %s for %r: %s", command, key, outcome.rejected)
        self.records.append(reply_record(key, request_id, command, outcome, now, self.partition))

    def fire_due_timers(self, now: int, limit: int = 1000) -> int:
        """Fold every timer due at `now` (up to `limit`) as a FireTimer or FireSchedule.

        The loop asks every few milliseconds, so the index is not read while `now` is
        below the next due time known; and it is read from a floor below which every
        timer has fired, not from its start: fired timers leave tombstones in RocksDB
        that a read from the start would walk again and again until a compaction."""
        if self._next_due is not None and now < self._next_due:
            return 0
        due = []
        next_due: int | None = _NO_TIMER
        for key, _ in self.store.scan(keys.TIMERS, seek=keys.timers_from(self._timer_floor)):
            when = keys.timer_due(key)
            if when > now:
                next_due = when
                break
            if key in self.pending.changes:
                continue  # fired or cancelled in this batch already (or set by it)
            due.append(key)
            if len(due) >= limit:
                next_due = None  # more may be due: read again
                break
        if next_due is not None:
            self._timer_floor = max(self._timer_floor, now + 1)
            next_due = min(next_due, self._staged_due)
        # Timers this batch set are not in the index yet: the floor stays below them.
        self._timer_floor = min(self._timer_floor, self._staged_due)
        self._next_due = next_due
        for key in due:
            try:
                self.fire_timer(key, now)
            except Exception as exc:  # a bug must not stop the loop: park the timer
                _, owner, timer_id = keys.parse_timer(key)
                log.error(
                    "firing timer %s of %s failed:\n%s",
                    clip(timer_id, MAX_ECHO),
                    clip(owner, MAX_ECHO),
                    clip_traceback(exc),
                )
                command = timer_command(owner, timer_id)
                self.dead_letter(
                    ("timers", self.partition, -1, owner.encode(), codec.encode(command)),
                    f"firing timer {timer_id!r} failed: {type(exc).__name__}: {exc}",
                    "FoldError",
                    now,
                )
        return len(due)

    def _timer_staged(self, due: int) -> None:
        """A decision set a timer: it may be due before what the index was read for."""
        self._staged_due = min(self._staged_due, due)
        self._timer_floor = min(self._timer_floor, due)
        if self._next_due is not None:
            self._next_due = min(self._next_due, due)

    def fire_timer(self, key: bytes, now: int) -> FireTimer | FireSchedule:
        """Take one timer off the index and fold it (an instance's as FireTimer, a
        schedule's as FireSchedule); a failing fold leaves it taken."""
        _, owner, timer_id = keys.parse_timer(key)
        self.pending.delete(key)
        command = timer_command(owner, timer_id)
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
        """Park input on the dead-letter topic. The record is bounded whatever the input
        (see dead_letter_record), so parking never fails the transaction."""
        topic, partition, offset, key, value = source or ("", self.partition, -1, None, None)
        record = dead_letter_record(topic, partition, offset, key, value, reason, error_type, now)
        log.warning(
            "dead letter from %s[%d]@%d: %s: %s",
            clip(topic, MAX_ECHO),
            partition,
            offset,
            error_type,
            clip(record.reason, MAX_LOGGED_REASON),
        )
        self.records.append(self._record("dlq", record.key, record, None))

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
        self._schedules.committed()
        self.observer.committed()
        self._reset()

    def aborted(self) -> None:
        """The transaction aborted: forget everything the batch staged."""
        for instance_id in self._touched:
            self._cache.pop(instance_id, None)
            self.decider.forget(instance_id)
        self._schedules.aborted()
        self._timer_floor, self._next_due = 0, None  # what the batch fired is back
        self.observer.aborted()
        self._reset()

    def _reset(self) -> None:
        self.pending = Pending(self.store)
        self._inline.clear()
        self._touched: dict[str, InstanceState | None] = {}
        self.records: list[Record] = []
        self._queue_added: dict[str, list[tuple[int, str]]] = {}  # enqueued this batch
        self._staged_due = _NO_TIMER  # the earliest timer this batch set
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

    def schedule(self, schedule_id: str) -> ScheduleState | None:
        """A schedule's state, the batch's changes included."""
        return self._schedules.load(self.pending, schedule_id)

    def schedule_ids(self) -> list[str]:
        """The ids of the partition's schedule records, as committed (a deleted
        schedule's tombstone included)."""
        return schedules.schedule_ids(self.pending)

    def status_counts(self) -> counts.Counts:
        """Instances by gauge status, as committed."""
        return dict(self.counts)

    # -- instances -------------------------------------------------------------------

    def _fold_instance(
        self, instance_id: str, command: Command, now: int, source: Source | None
    ) -> Outcome:
        state = self._load(instance_id)
        try:
            decision = self.decider.decide(state, command, now)
        except LookupError as exc:
            return Outcome.refused(str(exc), "LookupError", "LookupError", state)
        if decision.rejected is not None:
            self._emit_commands(decision.commands)  # a schedule hears its run was refused
            return Outcome.refused(decision.rejected, decision.rejected_as, "Rejected", state)
        too_large = self._apply(instance_id, state, decision, command, now)
        if too_large is not None:
            return Outcome.refused(too_large, "RecordTooLarge", "RecordTooLarge", state)
        self.folded += 1
        after = decision.state
        return outcome_of(
            "ACCEPTED" if decision.changed else "UNCHANGED",
            None if after is None else after.info.status,
        )

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
        self,
        instance_id: str,
        before: InstanceState | None,
        decision: Decision,
        command: Command,
        now: int,
    ) -> str | None:
        """Stage the decision's writes and records; or, when one record would be too
        large for the log, stage nothing and say why."""
        state = decision.state
        if not decision.changed or state is None:
            self._emit_commands(decision.commands)
            return None
        # Per decision: the writes go in a dict of bytes (untracked by the cyclic
        # collector), the records are made here (two calls less each than make_record).
        writes: dict[bytes, bytes | None] = {keys.info(instance_id): serde.dump_info(state.info)}
        if before is None:
            writes[keys.input(instance_id)] = state.info.input.encode()
        calls = state.calls
        for i in decision.changed_calls:
            writes[keys.call(instance_id, i)] = serde.dump_call(calls[i])
        for i in decision.removed_calls:  # (empty for most decisions, as the timers)
            writes[keys.call(instance_id, i)] = None
        for t, due in decision.timers_set:
            writes[keys.timer(due, instance_id, t)] = b""
        for t, due in decision.timers_cancelled:
            writes[keys.timer(due, instance_id, t)] = None
        key = instance_id.encode()
        p = self.partition
        encode = self._encode
        records = [Record("history", key, encode(e), p, e) for e in decision.events]
        for task in decision.tasks:
            records.append(Record("tasks", key, encode(task), p, task))
        if type(command) is CompleteStep and command.streamed:
            records += stream_accepted(key, command, decision, now)
        completion = decision.completion
        if completion is not None:
            records.append(Record("completions", key, encode(completion), p, completion))
            records.append(stream_end(key, completion))
        largest = largest_value(writes, records)
        if largest > MAX_RECORD_BYTES:
            return (
                f"folding it would write a record of {largest} bytes, over the "
                f"{MAX_RECORD_BYTES}-byte limit of the log"
            )
        self._touched[instance_id] = state
        self.observer.decided(before, decision)
        self.pending.changes.update(writes)  # a None value deletes, as pending.delete()
        self._count(before, state)
        for _, due in decision.timers_set:
            self._timer_staged(due)
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

    def _emit_commands(self, commands: tuple[Outgoing, ...], from_shard: bool = False) -> None:
        local = self._local
        for command in commands:
            key = route(command).record_key
            if local is not None and local(command, key, from_shard):
                self._inline.append(command)
            else:
                self.records.append(self._record("commands", key, command, None))

    def _remember(self, instance_id: str, state: InstanceState) -> None:
        if not self._cache_idle and not state.has_work_out():
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
    ) -> Outcome:
        added = self._queue_added.setdefault(limiter, [])
        decision = fold_limiter(self.pending, command, added)
        self._emit_commands(decision.grants, from_shard=is_shard_key(limiter))
        self.folded += 1
        return Outcome(name="ACCEPTED")

    # -- schedules -------------------------------------------------------------------

    def _fold_schedule(
        self, key: str, command: ScheduleCommand, now: int, source: Source | None
    ) -> Outcome:
        decision = self._schedules.fold(self.pending, command, now, MAX_RECORD_BYTES)
        if decision.rejected is not None:
            return Outcome.refused(decision.rejected, "Invalid", "Rejected", None)
        for _, due in decision.timers_set:
            self._timer_staged(due)
        record_key = key.encode()
        p = self.partition
        self.records += [make_record("history", record_key, e, p) for e in decision.events]
        self._emit_commands(decision.commands)
        self.folded += 1
        return Outcome(name="ACCEPTED")


_NO_TIMER = 2**62  # the next due time of an empty index: never


def _not_encoded(message: Any) -> None:
    return None  # a re-fold keeps the message only (see unencoded_record)
