"""The schedule entity as a fold: decide_schedule(state, command, now) -> ScheduleDecision.

A schedule is folded like an instance (keyed `schedule:<id>`, its next fire time in the
timer index), so no scheduler process exists apart from the orchestrator. Every slot
runs as instance `<schedule id>-<slot name>` (schedule_spec.slot_name), started by a
StartWorkflow that is idempotent by id; the schedule itself never starts one slot twice
(StartedSlots), so each slot runs exactly once across crashes, duplicates and rebalances.

Rules, one handler per command:
- FireSchedule: every slot after `handled_through_ms` whose fire time (slot + jitter)
  has come is due. Slots whose fire time is older than the catch-up window (the
  orchestrator was down across them) are recorded as missed (SlotsMissed) and never
  run; the rest are offered in order under the overlap policy. At most
  MAX_SLOTS_PER_DECISION are offered at once; the timer is then already due, so the
  rest follow in the next decision. A fire that arrives while paused does nothing:
  slots that fall in a pause are not run, and unpause continues from its own time.
- Overlap, when a run this schedule started is still running: skip, buffer_one (one
  slot waits, further ones are skipped), buffer_all (all wait, up to MAX_BUFFERED, and
  start one at a time as runs end), cancel_other / terminate_other (the running runs
  are asked to stop and the new one starts at once, not after they end: its id
  differs, so nothing conflicts), allow_all. When a batch of several slots is offered
  under cancel_other / terminate_other, only its latest slot starts; the earlier ones
  are skipped as superseded rather than started and stopped at once.
- TriggerSchedule starts a run for now (or the slot time the client gave), under the
  overlap policy or its override; it works while paused. Its instance id is that of a
  slot at that second, so a retried trigger runs once.
- BackfillSchedule offers every slot of [start, min(end, now)) in order, as one batch,
  under the overlap policy or its override (skip runs only the first slot when it is
  still running as the next is offered; buffer_all runs them one after another;
  allow_all runs them in parallel). Slots already started are skipped; slots the
  schedule once skipped (overlap, pause, missed) do run. No catch-up window applies.
- UpdateSchedule takes effect from the first slot after now. Slots already due under the
  old definition whose fire has not been folded yet (the timer fires later in the same
  batch, or no orchestrator ran) are fired first, under the old definition.
- ScheduleRunEnded closes the run; FAILED or TIMED_OUT pauses the schedule with a note
  when pause_on_failure is set. Then the first buffered slot starts if nothing runs
  and the schedule is not paused.
- DeleteSchedule removes the schedule and its timer; its runs go on.
- A rerun spec (`rerun_after_ms`, the DSL's `schedule.after`) has one slot at a time:
  the first when the schedule is created, each next one the delay after the previous
  run ended (whatever ended it). No catch-up window applies: a slot that came due while
  no orchestrator ran starts when one is back.
- A run whose start the instance refused (unknown workflow, the id taken by another
  start) ends at once as REJECTED, a failure for pause_on_failure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from replayflow.core.errors import ValidationError
from replayflow.core.schedule_decision import (
    MAX_SLOTS_PER_DECISION,
    ScheduleBuilder,
    ScheduleDecision,
    fire_due,
    is_due,
    offer,
    start_buffered,
    timer_due,
)
from replayflow.core.schedule_messages import (
    BackfillSchedule,
    CreateSchedule,
    DeleteSchedule,
    FireSchedule,
    PauseSchedule,
    ScheduleCommand,
    ScheduleCreated,
    ScheduleDeleted,
    SchedulePaused,
    ScheduleRunClosed,
    ScheduleRunEnded,
    ScheduleUnpaused,
    ScheduleUpdated,
    TriggerSchedule,
    UnpauseSchedule,
    UpdateSchedule,
)
from replayflow.core.schedule_spec import slots_between
from replayflow.core.schedule_state import (
    FAILED_STATUSES,
    FireKind,
    ScheduleState,
    check_schedule_id,
)

__all__ = ["MAX_SLOTS_PER_DECISION", "ScheduleDecision", "decide_schedule", "timer_due"]


def decide_schedule(
    state: ScheduleState | None, command: ScheduleCommand, now: int
) -> ScheduleDecision:
    handler = _HANDLERS.get(type(command))
    if handler is None:
        raise TypeError(f"decide_schedule() has no handler for {type(command).__name__}")
    exists = state is not None and not state.deleted
    if not exists and not isinstance(command, CreateSchedule):
        if isinstance(command, ScheduleRunEnded):
            return ScheduleDecision(state=state)  # a run of a deleted schedule: it goes on
        return ScheduleDecision(state=state, rejected=f"no schedule {command.schedule_id!r}")
    return handler(state, command, now)


# -- handlers ------------------------------------------------------------------------------


def _create(state: ScheduleState | None, cmd: CreateSchedule, now: int) -> ScheduleDecision:
    try:
        check_schedule_id(cmd.schedule_id)
    except ValidationError as exc:
        return ScheduleDecision(state=state, rejected=str(exc))
    if state is not None and not state.deleted:
        if cmd.upsert:
            update = UpdateSchedule(cmd.schedule_id, cmd.spec, cmd.action, cmd.policies)
            return _update(state, update, now)
        same = (state.spec, state.action, state.policies) == (cmd.spec, cmd.action, cmd.policies)
        if same:
            return ScheduleDecision(state=state)
        return ScheduleDecision(
            state=state,
            rejected=f"schedule {cmd.schedule_id!r} exists with another definition",
        )
    tombstone = state  # None, or what a deletion left
    created = ScheduleState(
        schedule_id=cmd.schedule_id,
        spec=cmd.spec,
        action=cmd.action,
        policies=cmd.policies,
        created_at=now,
        paused=cmd.paused,
        note=cmd.note,
        handled_through_ms=now,
    )
    if tombstone is not None:
        started = tombstone.started
        if tombstone.spec != cmd.spec:
            started = started.densified()
        created = replace(created, seq=tombstone.seq, started=started)
    b = ScheduleBuilder(created, now, timer_before=None)
    b.emit(
        ScheduleCreated,
        spec=cmd.spec,
        action=cmd.action,
        policies=cmd.policies,
        paused=cmd.paused,
        note=cmd.note,
    )
    b.refresh_next()
    return b.build()


def _update(state: ScheduleState, cmd: UpdateSchedule, now: int) -> ScheduleDecision:
    spec = cmd.spec or state.spec
    action = cmd.action or state.action
    policies = cmd.policies or state.policies
    if (spec, action, policies) == (state.spec, state.action, state.policies):
        return ScheduleDecision(state=state)
    b = ScheduleBuilder(state, now, timer_due(state))
    if is_due(state, now):
        # Slots that came due under the old definition (their fire not folded yet: the
        # timer fires later in this batch, or the orchestrator was down) run under it.
        fire_due(b)
    started = b.state.started if spec == state.spec else b.state.started.densified()
    b.update(
        spec=spec,
        action=action,
        policies=policies,
        started=started,
        handled_through_ms=max(b.state.handled_through_ms, now),
    )
    b.emit(ScheduleUpdated, spec=spec, action=action, policies=policies)
    b.refresh_next()
    return b.build()


def _delete(state: ScheduleState, cmd: DeleteSchedule, now: int) -> ScheduleDecision:
    b = ScheduleBuilder(state, now, timer_due(state))
    b.emit(ScheduleDeleted)
    return b.build(deleted=True)


def _pause(state: ScheduleState, cmd: PauseSchedule, now: int) -> ScheduleDecision:
    if state.paused and state.note == cmd.note:
        return ScheduleDecision(state=state)
    b = ScheduleBuilder(state, now, timer_due(state))
    b.update(paused=True, note=cmd.note)
    b.emit(SchedulePaused, note=cmd.note)
    return b.build()


def _unpause(state: ScheduleState, cmd: UnpauseSchedule, now: int) -> ScheduleDecision:
    if not state.paused:
        return ScheduleDecision(state=state)
    b = ScheduleBuilder(state, now, timer_due(state))
    b.update(paused=False, note=cmd.note, handled_through_ms=max(state.handled_through_ms, now))
    b.emit(ScheduleUnpaused, note=cmd.note)
    b.refresh_next()
    start_buffered(b)
    return b.build()


def _trigger(state: ScheduleState, cmd: TriggerSchedule, now: int) -> ScheduleDecision:
    at = now if cmd.at_ms is None else cmd.at_ms
    b = ScheduleBuilder(state, now, timer_due(state))
    offer(b, [at - at % 1000], FireKind.TRIGGER, cmd.overlap or state.policies.overlap)
    return b.build()


def _backfill(state: ScheduleState, cmd: BackfillSchedule, now: int) -> ScheduleDecision:
    try:
        if cmd.end_ms < cmd.start_ms:
            raise ValidationError(f"the range ends ({cmd.end_ms}) before it starts")
        # Slots after now are the schedule's own to fire when they come.
        slots = slots_between(state.spec, cmd.start_ms, max(cmd.start_ms, min(cmd.end_ms, now)))
    except ValidationError as exc:
        return ScheduleDecision(state=state, rejected=f"backfill: {exc}")
    b = ScheduleBuilder(state, now, timer_due(state))
    offer(b, slots, FireKind.BACKFILL, cmd.overlap or state.policies.overlap)
    return b.build()


def _fire(state: ScheduleState, cmd: FireSchedule, now: int) -> ScheduleDecision:
    if state.paused:
        return ScheduleDecision(state=state)
    # The fired timer has left the index: build() sets the next one, even if unchanged.
    b = ScheduleBuilder(state, now, timer_before=None)
    fire_due(b)
    return b.build()


def _run_ended(state: ScheduleState, cmd: ScheduleRunEnded, now: int) -> ScheduleDecision:
    if cmd.instance_id not in state.running:
        return ScheduleDecision(state=state)  # a duplicate, or a run this schedule forgot
    b = ScheduleBuilder(state, now, timer_due(state))
    recent = tuple(
        replace(run, status=cmd.status, ended_at=now) if run.instance_id == cmd.instance_id else run
        for run in state.recent
    )
    b.update(
        running=tuple(i for i in state.running if i != cmd.instance_id),
        stopping=tuple(i for i in state.stopping if i != cmd.instance_id),
        recent=recent,
    )
    b.emit(ScheduleRunClosed, instance_id=cmd.instance_id, status=cmd.status)
    if cmd.status in FAILED_STATUSES and state.policies.pause_on_failure and not state.paused:
        note = f"paused because run {cmd.instance_id} ended {cmd.status}"
        b.update(paused=True, note=note)
        b.emit(SchedulePaused, note=note)
    start_buffered(b)
    if state.spec.rerun_after_ms is not None:
        b.refresh_next()  # the next rerun counts from this end
    return b.build()


_HANDLERS: dict[type[Any], Callable[[Any, Any, int], ScheduleDecision]] = {
    CreateSchedule: _create,
    UpdateSchedule: _update,
    DeleteSchedule: _delete,
    PauseSchedule: _pause,
    UnpauseSchedule: _unpause,
    TriggerSchedule: _trigger,
    BackfillSchedule: _backfill,
    FireSchedule: _fire,
    ScheduleRunEnded: _run_ended,
}
