"""Cancel raises rf.Cancelled at the current await so cleanup can run; terminate stops at
once. Both record why."""

from __future__ import annotations

import pytest

import replayflow as rf
from replayflow.core.messages import (
    CallDropped,
    CancelRequested,
    CancelWorkflow,
    CompleteStep,
    FireTimer,
    StartWorkflow,
    StepCompleted,
    StepScheduled,
    TerminateWorkflow,
    WorkflowCancelled,
    WorkflowTerminated,
)
from replayflow.core.policy import Retry
from replayflow.core.state import CallStatus
from replayflow.testing import Environment

from .helpers import T0, Fold, kinds


@rf.step(
    name="ct_work",
    timeout="1m",
    retry=Retry(limit=3, delay="10s", backoff="constant", jitter=False),
)
def work() -> str:
    return "worked"


@rf.step(name="ct_undo")
def undo(what: str) -> str:
    return f"undid {what}"


@rf.workflow(name="ct_with_cleanup")
async def with_cleanup(ctx: rf.Context) -> str:
    try:
        await ctx.step("work", work)
        await ctx.sleep("rest", "1h")
        return "finished"
    except rf.Cancelled as exc:
        await ctx.step("undo", undo, exc.reason)
        raise


@rf.workflow(name="ct_swallows")
async def swallows(ctx: rf.Context) -> str:
    try:
        await ctx.wait_for_event("never")
    except rf.Cancelled:
        return "carried on"
    return "event"


@rf.workflow(name="ct_parallel")
async def parallel(ctx: rf.Context) -> object:
    try:
        return await ctx.all([ctx.step("a", work), ctx.step("b", work), ctx.wait_for_event("e")])
    except rf.Cancelled:
        return "cancelled"


def test_cancel_raises_at_the_current_await_and_cleanup_runs() -> None:
    env = Environment(with_cleanup)
    handle = env.start(with_cleanup)
    assert env.states[handle.id].calls[-1].key == "rest"  # asleep for an hour
    env.cancel(handle.id, "customer asked")
    with pytest.raises(rf.WorkflowError) as caught:
        handle.result()
    assert caught.value.status == rf.Status.CANCELLED
    history = env.history(handle.id)
    assert kinds(history)[-5:] == [
        "CancelRequested",
        "CallDropped",  # the sleep the cancel interrupted
        "StepScheduled",
        "StepCompleted",
        "WorkflowCancelled",
    ]
    requested = [e for e in history if isinstance(e, CancelRequested)]
    assert [r.reason for r in requested] == ["customer asked"]
    undo_result = [e for e in history if isinstance(e, StepCompleted) and e.step == "undo"]
    assert [e.result for e in undo_result] == ['"undid customer asked"']
    assert isinstance(history[-1], WorkflowCancelled)
    assert history[-1].reason == "customer asked"
    state = env.states[handle.id]
    assert state.info.reason == "customer asked"
    assert state.calls[1].status is CallStatus.CANCELLED  # the sleep
    assert state.info.timers == ()
    assert env.completions[handle.id].status == "CANCELLED"
    assert env.now == T0  # the hour-long sleep was not waited out


def test_cancel_during_a_step_cancels_it_and_its_late_result_is_ignored() -> None:
    env = Environment(with_cleanup)
    env.hold_step("work")
    handle = env.start(with_cleanup)
    env.cancel(handle.id, "stop")
    state = env.states[handle.id]
    assert state.calls[0].status is CallStatus.CANCELLED
    assert "step/work/timeout/1" not in dict(state.info.timers)
    env.release_held()  # the worker reports after all
    with pytest.raises(rf.WorkflowError):
        handle.result()
    assert [e.step for e in env.history(handle.id) if isinstance(e, StepCompleted)] == ["undo"]


def test_cancel_during_a_retry_backoff_cancels_the_retry() -> None:
    env = Environment(with_cleanup)
    env.fail_step("work", times=1)
    handle = env.start(with_cleanup)
    assert env.states[handle.id].calls[0].status is CallStatus.BACKOFF
    env.cancel(handle.id, "stop")
    assert "step/work/retry/1" not in dict(env.states[handle.id].info.timers)
    env.advance("1m")
    assert (
        sum(1 for e in env.history(handle.id) if isinstance(e, StepScheduled) and e.step == "work")
        == 1
    )


def test_cancel_in_ctx_all_cancels_every_pending_branch() -> None:
    env = Environment(parallel)
    env.hold_step("a")
    handle = env.start(parallel)
    env.cancel(handle.id, "enough")
    assert handle.result() == "cancelled"
    statuses = [c.status for c in env.states[handle.id].calls]
    assert statuses == [CallStatus.CANCELLED, CallStatus.COMPLETED, CallStatus.CANCELLED]


def test_a_workflow_that_swallows_cancelled_completes() -> None:
    # Documented: catch Cancelled, clean up, re-raise (or let it go) to end CANCELLED.
    # Returning instead is the author's choice and completes the instance.
    env = Environment(swallows)
    handle = env.start(swallows)
    env.cancel(handle.id, "try")
    assert handle.result() == "carried on"
    assert env.states[handle.id].info.reason == "try"


def test_cancel_of_a_queued_instance_ends_it_at_once() -> None:
    @rf.workflow(name="ct_limited", concurrency=1)
    async def limited(ctx: rf.Context) -> object:
        return await ctx.wait_for_event("go")

    env = Environment(limited)
    first = env.start(limited)
    second = env.start(limited)
    assert env.status(second.id) == rf.Status.QUEUED
    env.cancel(second.id, "not needed")
    assert env.status(second.id) == rf.Status.CANCELLED
    assert kinds(env.history(second.id)) == [
        "WorkflowStarted",
        "WorkflowQueued",
        "CancelRequested",
        "WorkflowCancelled",
    ]
    env.send_event(first.id, "go", 1)
    assert first.result() == 1
    assert env.status(second.id) == rf.Status.CANCELLED  # its turn came; it stayed ended


def test_terminate_stops_at_once_without_cleanup() -> None:
    env = Environment(with_cleanup)
    env.hold_step("work")
    handle = env.start(with_cleanup)
    env.terminate(handle.id, "runaway")
    with pytest.raises(rf.WorkflowError) as caught:
        handle.result()
    assert caught.value.status == rf.Status.TERMINATED
    history = env.history(handle.id)
    assert kinds(history) == [
        "WorkflowStarted",
        "StepScheduled",
        "CallDropped",
        "WorkflowTerminated",
    ]
    assert isinstance(history[-1], WorkflowTerminated) and history[-1].reason == "runaway"
    dropped = history[2]
    assert isinstance(dropped, CallDropped)
    assert (dropped.kind, dropped.key, dropped.index, dropped.cause) == (
        "step",
        "work",
        0,
        "TERMINATED",
    )
    state = env.states[handle.id]
    assert state.info.reason == "runaway" and state.info.timers == ()
    env.release_held()
    assert env.history(handle.id) == history


def test_terminate_stops_a_running_cleanup() -> None:
    env = Environment(with_cleanup)
    handle = env.start(with_cleanup)
    env.hold_step("undo")
    env.cancel(handle.id, "first")
    env.terminate(handle.id, "cleanup hangs")
    assert env.status(handle.id) == rf.Status.TERMINATED
    assert env.states[handle.id].info.reason == "cleanup hangs"


def test_cancel_and_terminate_of_an_unknown_instance_are_rejected() -> None:
    fold = Fold.of(with_cleanup, work, undo)
    assert fold(CancelWorkflow(instance_id="ghost")).rejected
    assert fold(TerminateWorkflow(instance_id="ghost")).rejected
    env = Environment(with_cleanup)
    with pytest.raises(rf.ValidationError, match="no instance 'ghost'"):
        env.cancel("ghost", "why")


def test_cancelled_timers_firing_late_change_nothing() -> None:
    fold = Fold.of(with_cleanup, work, undo)
    fold(StartWorkflow(instance_id="c", workflow="ct_with_cleanup"), at=T0)
    fold(CompleteStep(instance_id="c", step="work", attempt=1, result='"w"'))
    fold(CancelWorkflow(instance_id="c", reason="r"))
    late = fold(FireTimer(instance_id="c", timer="sleep/1"), at=T0 + 3_600_000)
    assert not late.changed
