"""Replay: fold an instance's recorded history through the current code and compare.

History interleaves input facts (what arrived: a start, a result, a fired timer, an
event, a cancel) with the decisions they caused. Replay turns the input facts back into
commands, folds them at their recorded times, and checks that the decisions come out
the same, event for event.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace

from replayflow.core.decide import Decider, limiter_key
from replayflow.core.decide.runner import Admission
from replayflow.core.definitions import Registry
from replayflow.core.messages import (
    CallDropped,
    CancelRequested,
    CancelWorkflow,
    Command,
    CompleteStep,
    EventAwaited,
    EventDelivered,
    EventKept,
    EventReceived,
    FailStep,
    FireTimer,
    GrantSlot,
    HistoryEvent,
    PauseWorkflow,
    RestartWorkflow,
    ResumeWorkflow,
    SendEvent,
    StartWorkflow,
    StepCompleted,
    StepFailed,
    TerminateWorkflow,
    TimerFired,
    WorkflowAdmitted,
    WorkflowPaused,
    WorkflowQueued,
    WorkflowRestarted,
    WorkflowResumed,
    WorkflowStarted,
    WorkflowTerminated,
)
from replayflow.core.state import InstanceState


def input_commands(history: Sequence[HistoryEvent]) -> Iterator[tuple[Command, int]]:
    """The commands that produced a history, each with the time it was folded at."""
    fired: str | None = None  # a step timeout's StepFailed is caused by its TimerFired
    for event in history:
        if isinstance(event, WorkflowStarted):
            yield (
                StartWorkflow(
                    instance_id=event.instance_id,
                    workflow=event.workflow,
                    input=event.input,
                    version=event.version,
                    parent_id=event.parent_id,
                    parent_step=event.parent_step,
                ),
                event.at,
            )
        elif isinstance(event, WorkflowAdmitted):
            yield GrantSlot(instance_id=event.instance_id), event.at
        elif isinstance(event, StepCompleted):
            yield (
                CompleteStep(
                    instance_id=event.instance_id,
                    step=event.step,
                    attempt=event.attempt,
                    result=event.result,
                ),
                event.at,
            )
        elif isinstance(event, StepFailed):
            if fired != f"step/{event.step}/timeout/{event.attempt}":
                yield (
                    FailStep(
                        instance_id=event.instance_id,
                        step=event.step,
                        attempt=event.attempt,
                        error=event.error,
                    ),
                    event.at,
                )
        elif isinstance(event, TimerFired):
            yield FireTimer(instance_id=event.instance_id, timer=event.timer), event.at
        elif isinstance(event, EventReceived):
            yield (
                SendEvent(instance_id=event.instance_id, name=event.name, payload=event.payload),
                event.at,
            )
        elif isinstance(event, CancelRequested):
            yield CancelWorkflow(instance_id=event.instance_id, reason=event.reason), event.at
        elif isinstance(event, WorkflowPaused):
            yield PauseWorkflow(instance_id=event.instance_id, reason=event.reason), event.at
        elif isinstance(event, WorkflowResumed):
            yield ResumeWorkflow(instance_id=event.instance_id, reason=event.reason), event.at
        elif isinstance(event, WorkflowRestarted):
            yield (
                RestartWorkflow(
                    instance_id=event.instance_id, from_step=event.from_step, reason=event.reason
                ),
                event.at,
            )
        elif isinstance(event, WorkflowTerminated):
            yield TerminateWorkflow(instance_id=event.instance_id, reason=event.reason), event.at
        fired = event.timer if isinstance(event, TimerFired) else None


@dataclass(frozen=True)
class ReplayReport:
    identical: bool
    events: tuple[HistoryEvent, ...]  # what the current code decided
    state: InstanceState | None
    difference: str | None = None  # the first difference, in words
    position: int | None = None  # its index in the recorded history


def replay(
    history: Iterable[HistoryEvent], registry: Registry, decider: Decider | None = None
) -> ReplayReport:
    """Re-fold a recorded history with the current code; report the first difference."""
    recorded = list(history)
    decider = decider or Decider(registry, cache_size=0, admission=_recorded_admission(recorded))
    state: InstanceState | None = None
    produced: list[HistoryEvent] = []
    for command, at in input_commands(recorded):
        try:
            decision = decider.decide(state, command, at)
        except LookupError as exc:
            return ReplayReport(False, tuple(produced), state, str(exc), len(produced))
        if decision.rejected:
            return ReplayReport(
                False,
                tuple(produced),
                state,
                f"the current code rejects {type(command).__name__}: {decision.rejected}",
                len(produced),
            )
        state = decision.state
        produced.extend(decision.events)
    # A history recorded before the engine wrote its derived facts: compare the decisions
    # it did record, in order, leaving out the facts and the seqs they shift.
    if (
        recorded != produced
        and _is_legacy(recorded)
        and _without_facts(recorded) == _without_facts(produced)
    ):
        return ReplayReport(True, tuple(produced), state)
    for position, (want, got) in enumerate(zip(recorded, produced, strict=False)):
        if want != got:
            return ReplayReport(
                False,
                tuple(produced),
                state,
                f"event #{position + 1}: history has {want}, the current code gives {got}",
                position,
            )
    if len(recorded) != len(produced):
        position = min(len(recorded), len(produced))
        extra = (
            f"history has {recorded[position]} and the current code gives nothing more"
            if len(recorded) > len(produced)
            else f"the current code gives {produced[position]} beyond the history"
        )
        return ReplayReport(
            False, tuple(produced), state, f"event #{position + 1}: {extra}", position
        )
    return ReplayReport(True, tuple(produced), state)


def _recorded_admission(history: Sequence[HistoryEvent]) -> Admission:
    """The limiters the instance was queued for, in the order history recorded them:
    which shard of a limiter admits an instance is the engine's choice (it depends on
    the partition count), not the code's, so replay takes it from the record."""
    recorded = iter([e.limiter for e in history if isinstance(e, WorkflowQueued)])

    def admission(workflow: str, instance_id: str, limit: int) -> tuple[str, int]:
        key = next(recorded, None)
        return (limiter_key(workflow) if key is None else key), limit

    return admission


# Facts the engine records about its own decisions since EventAwaited v2. They are not
# inputs, and a history written before them replays without them.
_DERIVED_FACTS = (EventKept, EventDelivered, CallDropped)


def _is_legacy(history: Sequence[HistoryEvent]) -> bool:
    return not any(
        isinstance(e, _DERIVED_FACTS) or (isinstance(e, EventAwaited) and e.wait is not None)
        for e in history
    )


def _without_facts(history: Sequence[HistoryEvent]) -> list[HistoryEvent]:
    out: list[HistoryEvent] = []
    for event in history:
        if isinstance(event, _DERIVED_FACTS):
            continue
        if isinstance(event, EventAwaited):
            event = replace(event, wait=None)
        out.append(replace(event, seq=0))
    return out
