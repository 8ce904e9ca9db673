"""ScheduleDecision, everything one schedule fold step produces, and the rules that
start, buffer or skip slots; the handlers in core/schedules.py use them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from replayflow.core.decision import Timer
from replayflow.core.messages import CancelWorkflow, Command, StartWorkflow, TerminateWorkflow
from replayflow.core.schedule_messages import (
    RunStopRequested,
    ScheduleEvent,
    ScheduleFired,
    SlotBuffered,
    SlotSkipped,
    SlotsMissed,
)
from replayflow.core.schedule_spec import (
    fire_time,
    next_fire_times,
    rerun_slot,
    slot_instance_id,
)
from replayflow.core.schedule_state import (
    MAX_BUFFERED,
    MAX_RECENT_RUNS,
    SCHEDULE_TIMER,
    FireKind,
    Overlap,
    RunRecord,
    ScheduleState,
)


@dataclass(frozen=True)
class ScheduleDecision:
    """The outcome of folding one command into one schedule.

    `state` is the schedule after the command (None: there is none; deleted: its
    tombstone, see ScheduleState.deleted). `changed` is False
    when the command changed nothing (a duplicate); `rejected` holds the reason when it
    was invalid (it goes to the dead-letter topic). `commands` go to replayflow.commands:
    StartWorkflow for runs, CancelWorkflow / TerminateWorkflow for cancel_other /
    terminate_other.
    """

    state: ScheduleState | None
    events: tuple[ScheduleEvent, ...] = ()
    commands: tuple[Command, ...] = ()
    timers_set: tuple[Timer, ...] = ()
    timers_cancelled: tuple[Timer, ...] = ()
    changed: bool = False
    rejected: str | None = None


def timer_due(state: ScheduleState | None) -> int | None:
    """When the schedule's timer is due; None: it holds none (paused, ended, deleted)."""
    if state is None or state.paused or state.deleted:
        return None
    return state.next_fire_ms


@dataclass
class ScheduleBuilder:
    state: ScheduleState
    now: int
    timer_before: int | None
    events: list[ScheduleEvent] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)

    def emit(self, event_type: type[Any], **fields: Any) -> None:
        seq = self.state.seq + len(self.events) + 1
        self.events.append(
            event_type(schedule_id=self.state.schedule_id, seq=seq, at=self.now, **fields)
        )

    def update(self, **changes: Any) -> None:
        self.state = self.state.with_changes(**changes)

    def refresh_next(self) -> None:
        state = self.state
        if state.spec.rerun_after_ms is not None:
            slot = _next_rerun(state)
        else:
            upcoming = next_fire_times(state.spec, state.handled_through_ms, 1)
            slot = upcoming[0] if upcoming else None
        fire = fire_time(state.spec, state.schedule_id, slot) if slot is not None else None
        self.update(next_slot_ms=slot, next_fire_ms=fire)

    def build(self, deleted: bool = False) -> ScheduleDecision:
        state = self.state.with_changes(seq=self.state.seq + len(self.events))
        if deleted:
            state = state.with_changes(
                deleted=True,
                paused=False,
                note="",
                next_slot_ms=None,
                next_fire_ms=None,
                running=(),
                stopping=(),
                buffered=(),
                recent=(),
            )
        after = timer_due(state)
        timers_set: tuple[Timer, ...] = ()
        timers_cancelled: tuple[Timer, ...] = ()
        if after != self.timer_before:
            if self.timer_before is not None:
                timers_cancelled = ((SCHEDULE_TIMER, self.timer_before),)
            if after is not None:
                timers_set = ((SCHEDULE_TIMER, after),)
        return ScheduleDecision(
            state=state,
            events=tuple(self.events),
            commands=tuple(self.commands),
            timers_set=timers_set,
            timers_cancelled=timers_cancelled,
            changed=bool(self.events or self.commands or timers_set or timers_cancelled),
        )


def _next_rerun(state: ScheduleState) -> int | None:
    """A rerun spec's next slot: none while a run is out or waits; the first at creation,
    then the delay after the last run ended."""
    if state.running or state.buffered:
        return None
    last = state.last_run
    if last is None:
        earliest = state.created_at
    elif last.ended_at is None:
        return None
    else:
        assert state.spec.rerun_after_ms is not None
        earliest = last.ended_at + state.spec.rerun_after_ms
    return rerun_slot(state.spec, earliest, state.handled_through_ms)


# -- firing due slots --------------------------------------------------------------------

MAX_SLOTS_PER_DECISION = 1000


def fire_due(b: ScheduleBuilder) -> None:
    """Offer every slot whose fire time has come (see core/schedules.py for the rules),
    and work out the next one."""
    state, now = b.state, b.now
    spec, sid = state.spec, state.schedule_id
    if spec.rerun_after_ms is not None:
        slot = state.next_slot_ms
        if slot is not None and state.next_fire_ms is not None and state.next_fire_ms <= now:
            offer(b, [slot], FireKind.SPEC, state.policies.overlap)
            b.update(handled_through_ms=slot)
        b.refresh_next()
        return
    cutoff = now - state.policies.catchup_window_ms
    handled = state.handled_through_ms
    missed_through: int | None = None
    scan_from = handled
    first = next_fire_times(spec, handled, 1)
    if first and fire_time(spec, sid, first[0]) < cutoff:
        # Slots that far back are missed whatever their jitter: jump past them at once.
        scan_from = max(handled, cutoff - spec.jitter_ms - 1)
        if first[0] <= scan_from:
            missed_through = scan_from
    due: list[int] = []
    scanning = True
    size = 2  # most fires find one slot due: ask for few, more when they all are
    while scanning:
        batch = next_fire_times(spec, scan_from, size)
        scanning = len(batch) == size
        size = min(size * 4, 256)
        for slot in batch:
            fire = fire_time(spec, sid, slot)
            if fire > now or len(due) >= MAX_SLOTS_PER_DECISION:
                scanning = False
                break
            if fire < cutoff:
                missed_through = slot
            else:
                due.append(slot)
            scan_from = slot
    if missed_through is not None:
        b.emit(SlotsMissed, after_ms=handled, through_ms=missed_through)
        b.update(handled_through_ms=missed_through)
    if due:
        offer(b, due, FireKind.SPEC, state.policies.overlap)
        b.update(handled_through_ms=due[-1])
    b.refresh_next()


def is_due(state: ScheduleState, now: int) -> bool:
    return not state.paused and state.next_fire_ms is not None and state.next_fire_ms <= now


# -- starting runs -----------------------------------------------------------------------


def offer(b: ScheduleBuilder, slots: list[int], kind: FireKind, overlap: Overlap) -> None:
    """Offer slots in order: start, buffer or skip each under `overlap`."""
    if overlap in (Overlap.CANCEL_OTHER, Overlap.TERMINATE_OTHER) and len(slots) > 1:
        *earlier, latest = slots
        for slot in earlier:
            skip(b, slot, "superseded", f"a later slot of the same {kind.value} batch runs")
        slots = [latest]
    for slot in slots:
        state = b.state
        if state.started.contains(state.spec, slot) or slot in state.buffered:
            skip(b, slot, "already_started", slot_instance_id(state.schedule_id, slot))
        elif not state.running or overlap == Overlap.ALLOW_ALL:
            start(b, slot, kind)
        elif overlap == Overlap.SKIP:
            skip(b, slot, "overlap", f"{state.running[-1]} is still running")
        elif overlap == Overlap.BUFFER_ONE and state.buffered:
            skip(b, slot, "buffer_full", "buffer_one holds a slot already")
        elif overlap == Overlap.BUFFER_ALL and len(state.buffered) >= MAX_BUFFERED:
            skip(b, slot, "buffer_full", f"buffer_all holds {MAX_BUFFERED} slots")
        elif overlap in (Overlap.BUFFER_ONE, Overlap.BUFFER_ALL):
            b.update(buffered=(*state.buffered, slot))
            b.emit(SlotBuffered, slot_ms=slot, kind=kind)
        else:
            stop_running(b, terminate=overlap == Overlap.TERMINATE_OTHER)
            start(b, slot, kind)


def start(b: ScheduleBuilder, slot: int, kind: FireKind) -> None:
    state = b.state
    instance_id = slot_instance_id(state.schedule_id, slot)
    jitter = 0
    if kind == FireKind.SPEC:
        jitter = fire_time(state.spec, state.schedule_id, slot) - slot
    b.commands.append(
        StartWorkflow(
            instance_id=instance_id,
            workflow=state.action.workflow,
            input=state.action.input,
            version=state.action.version,
            schedule_id=state.schedule_id,
            schedule_slot=slot,
        )
    )
    run = RunRecord(slot_ms=slot, instance_id=instance_id, kind=kind, started_at=b.now)
    b.update(
        running=(*state.running, instance_id),
        started=state.started.add(state.spec, slot),
        recent=(*state.recent, run)[-MAX_RECENT_RUNS:],
    )
    b.emit(ScheduleFired, slot_ms=slot, instance_id=instance_id, kind=kind, jitter_ms=jitter)


def skip(b: ScheduleBuilder, slot: int, reason: str, detail: str) -> None:
    b.emit(SlotSkipped, slot_ms=slot, reason=reason, detail=detail)


def stop_running(b: ScheduleBuilder, terminate: bool) -> None:
    state = b.state
    for instance_id in state.running:
        if instance_id in state.stopping:
            continue
        reason = f"schedule {state.schedule_id}: a newer run starts"
        stop = TerminateWorkflow if terminate else CancelWorkflow
        b.commands.append(stop(instance_id=instance_id, reason=reason))
        b.emit(RunStopRequested, instance_id=instance_id, terminate=terminate)
    b.update(stopping=state.running)


def start_buffered(b: ScheduleBuilder) -> None:
    while b.state.buffered and not b.state.running and not b.state.paused:
        slot, *rest = b.state.buffered
        b.update(buffered=tuple(rest))
        if b.state.started.contains(b.state.spec, slot):
            skip(b, slot, "already_started", slot_instance_id(b.state.schedule_id, slot))
        else:
            start(b, slot, FireKind.BUFFERED)
