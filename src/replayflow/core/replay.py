"""Replay: fold an instance's recorded history through the current code and compare.

History interleaves input facts (what arrived: a start, a result, a fired timer, an
event, a cancel) with the decisions they caused. Replay turns the input facts back into
commands, folds them at their recorded times, and checks that the decisions come out
the same, event for event.

The commands go through a Decider exactly as in the live fold, and the instance's
coroutine stays alive from one decision to the next (the Decider's cache, idle waits
included), so a replay runs the workflow code once: linear in the history's length.
(Each decision still copies the instance's list of calls once, as in the live fold: a
flat copy, cheap next to running the code, but it grows with the list.)
Pass a Decider without a cache to rebuild the coroutine at every decision instead (the
path a cache miss takes in the live fold).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from replayflow.core.decide import Decider, limiter_key
from replayflow.core.decide.runner import Admission
from replayflow.core.definitions import Registry
from replayflow.core.messages import (
    CallDropped,
    CancelRequested,
    CancelWorkflow,
    Command,
    CompleteStep,
    ErrorInfo,
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
    StepScheduled,
    TerminateWorkflow,
    TimerFired,
    TimerStarted,
    UpgradeRefused,
    UpgradeWorkflow,
    WorkflowAdmitted,
    WorkflowPaused,
    WorkflowQueued,
    WorkflowRestarted,
    WorkflowResumed,
    WorkflowStarted,
    WorkflowTerminated,
    WorkflowUpgraded,
)
from replayflow.core.patching import HistoryMarkers
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
                    schedule_id=event.schedule_id,
                    schedule_slot=event.schedule_slot,
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
        elif isinstance(event, WorkflowUpgraded | UpgradeRefused):
            yield (
                UpgradeWorkflow(
                    instance_id=event.instance_id,
                    from_version=event.from_version,
                    to_version=event.to_version,
                    checked_seq=event.checked_seq,
                ),
                event.at,
            )
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
    if decider is not None:
        return _replay(recorded, decider)
    # One instance, so one live coroutine: the cache holds just it.
    own = Decider(
        registry,
        cache_size=1,
        keep_idle=True,
        recorded=HistoryMarkers(recorded),
        admission=_recorded_admission(recorded),
    )
    try:
        return _replay(recorded, own)
    finally:
        own.forget_all()  # closes the coroutine now: its finally blocks run here


def _replay(recorded: list[HistoryEvent], decider: Decider) -> ReplayReport:
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
    if recorded != produced and _is_legacy(recorded):
        old, new = _without_facts(recorded), _without_facts(produced)
        if len(old) == len(new) and all(
            w == g or w == _as_recorded(g, w) for w, g in zip(old, new, strict=True)
        ):
            return ReplayReport(True, tuple(produced), state)
    for position, (want, got) in enumerate(zip(recorded, produced, strict=False)):
        if want != got and want != _as_recorded(got, want):
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


# Fields a newer engine records that an older history lacks (None there): compared only
# when the history has them.
_ADDED_FIELDS: dict[type, tuple[str, ...]] = {
    TimerStarted: ("name",),
    StepScheduled: ("max_attempts",),
}


def _as_recorded(got: HistoryEvent, want: HistoryEvent) -> HistoryEvent:
    """`got` without what the recorded event could not hold: fields added to its schema
    since, error details a history without them never had, and tracebacks (file paths
    and line numbers say where code ran, not what it decided)."""
    if type(got) is not type(want):
        return got
    changes: dict[str, Any] = {
        name: None for name in _ADDED_FIELDS.get(type(got), ()) if getattr(want, name, None) is None
    }
    error, recorded = getattr(got, "error", None), getattr(want, "error", None)
    if (
        isinstance(error, ErrorInfo)
        and isinstance(recorded, ErrorInfo)
        and (recorded.details is None or _without_traceback(error) == _without_traceback(recorded))
    ):
        changes["error"] = replace(error, details=recorded.details)
    return replace(got, **changes) if changes else got


def _without_traceback(error: ErrorInfo) -> object:
    try:
        details = json.loads(error.details or "null")
    except ValueError:
        return error.details
    if isinstance(details, dict):
        details.pop("traceback", None)
        cause = details.get("cause")
        if isinstance(cause, dict):
            cause.pop("traceback", None)
    return details
