"""The fold of schedules: schedule commands into their states in the store, through
the batch's pending writes. decide_schedule() (core/schedules.py) makes the decisions;
this module reads the states, stages their writes and timers, and hands back each
decision, whose facts and commands the folder turns into records.

A schedule's state is two records (store/schedule_serde.py): its definition, written
when it changes, and the rest. Recently used states stay in a small bounded cache: a
run's end comes back moments after its fire, and then the state is not read again
until the next slot. States the batch in flight changed are kept apart until it
commits (then cached) or aborts (then forgotten)."""

from __future__ import annotations

from collections import OrderedDict

from replayflow.core.schedule_messages import ScheduleCommand
from replayflow.core.schedule_state import ScheduleState, schedule_key
from replayflow.core.schedules import ScheduleDecision, decide_schedule
from replayflow.store import keys
from replayflow.store.pending import Pending
from replayflow.store.schedule_serde import dump_definition, dump_schedule, load_schedule

# States kept after their batch: enough for a run's end to find its schedule's state
# still cached (it comes moments after the fire), few enough that a hundred thousand
# schedules do not fill the heap the garbage collector walks (each state is some fifty
# small objects; a full collection over 30,000 cached states took 2 s).
CACHE_SIZE = 1024


class ScheduleFold:
    def __init__(self, cache_size: int = CACHE_SIZE) -> None:
        self._cache: OrderedDict[str, ScheduleState] = OrderedDict()
        self._cache_size = cache_size
        self._touched: dict[str, ScheduleState | None] = {}

    def load(self, pending: Pending, schedule_id: str) -> ScheduleState | None:
        """A schedule's state, the batch's changes included."""
        if schedule_id in self._touched:
            return self._touched[schedule_id]
        state = self._cache.get(schedule_id)
        if state is not None:
            self._cache.move_to_end(schedule_id)
            return state
        raw = pending.get(keys.schedule(schedule_id))
        if raw is None:
            return None
        definition = pending.get(keys.schedule_definition(schedule_id))
        assert definition is not None, f"schedule {schedule_id!r} has no definition record"
        return load_schedule(definition, raw)

    def fold(
        self, pending: Pending, command: ScheduleCommand, now: int, max_record: int
    ) -> ScheduleDecision:
        """Decide and stage the schedule's writes: its state and its one timer (in the
        index that holds the instances' timers, under the schedule's key). A decision
        that would write a record over `max_record` bytes is turned into a rejection,
        staging nothing."""
        schedule_id = command.schedule_id
        before = self.load(pending, schedule_id)
        decision = decide_schedule(before, command, now)
        after = decision.state
        if decision.rejected is not None or not decision.changed or after is None:
            return decision
        writes = [(keys.schedule(schedule_id), dump_schedule(after))]
        if before is None or (before.spec, before.action, before.policies) != (
            after.spec,
            after.action,
            after.policies,
        ):
            writes.append((keys.schedule_definition(schedule_id), dump_definition(after)))
        largest = max(len(raw) for _, raw in writes)
        if largest > max_record:
            return ScheduleDecision(
                state=before,
                rejected=(
                    f"the schedule's state would take {largest} bytes, over the "
                    f"{max_record}-byte limit of the log"
                ),
            )
        for key, raw in writes:
            pending.put(key, raw)
        owner = schedule_key(schedule_id)
        for timer_id, due in decision.timers_cancelled:
            pending.delete(keys.timer(due, owner, timer_id))
        for timer_id, due in decision.timers_set:
            pending.put(keys.timer(due, owner, timer_id), b"")
        self._touched[schedule_id] = after
        return decision

    def committed(self) -> None:
        for schedule_id, state in self._touched.items():
            if state is None or state.deleted:
                self._cache.pop(schedule_id, None)
                continue
            self._cache[schedule_id] = state
            self._cache.move_to_end(schedule_id)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        self._touched = {}

    def aborted(self) -> None:
        for schedule_id in self._touched:
            self._cache.pop(schedule_id, None)
        self._touched = {}


def schedule_ids(pending: Pending) -> list[str]:
    """Every schedule record of the partition (as committed; a deleted schedule's
    tombstone too)."""
    prefix = keys.SCHEDULES
    return [key[len(prefix) :].decode() for key, _ in pending.store.scan(prefix)]
