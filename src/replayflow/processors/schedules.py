"""The fold of a schedule: schedule commands into the schedule's state in the store,
through the batch's pending writes. decide_schedule() (core/schedules.py) makes the
decisions; this module reads the state, stages its writes and timer, and hands back the
decision, whose facts and commands the folder turns into records."""

from __future__ import annotations

from replayflow.core.schedule_messages import ScheduleCommand
from replayflow.core.schedule_state import ScheduleState, schedule_key
from replayflow.core.schedules import ScheduleDecision, decide_schedule
from replayflow.store import keys
from replayflow.store.pending import Pending
from replayflow.store.schedule_serde import dump_schedule, load_schedule


def load(pending: Pending, schedule_id: str) -> ScheduleState | None:
    """A schedule's state, the batch's changes included."""
    raw = pending.get(keys.schedule(schedule_id))
    return None if raw is None else load_schedule(raw)


def fold_schedule(
    pending: Pending, command: ScheduleCommand, now: int, max_record: int
) -> ScheduleDecision:
    """Decide and stage the schedule's writes: its state and its one timer (in the index
    that holds the instances' timers, under the schedule's key). A decision that would
    write a record over `max_record` bytes is turned into a rejection, staging nothing."""
    state = load(pending, command.schedule_id)
    decision = decide_schedule(state, command, now)
    if decision.rejected is not None or not decision.changed:
        return decision
    state_key = keys.schedule(command.schedule_id)
    owner = schedule_key(command.schedule_id)
    if decision.state is None:
        pending.delete(state_key)
    else:
        raw = dump_schedule(decision.state)
        if len(raw) > max_record:
            return ScheduleDecision(
                state=state,
                rejected=(
                    f"the schedule's state would take {len(raw)} bytes, over the "
                    f"{max_record}-byte limit of the log"
                ),
            )
        pending.put(state_key, raw)
    for timer_id, due in decision.timers_cancelled:
        pending.delete(keys.timer(due, owner, timer_id))
    for timer_id, due in decision.timers_set:
        pending.put(keys.timer(due, owner, timer_id), b"")
    return decision


def schedule_ids(pending: Pending) -> list[str]:
    """Every schedule of the partition (as committed)."""
    prefix = keys.SCHEDULES
    return [key[len(prefix) :].decode() for key, _ in pending.store.scan(prefix)]
