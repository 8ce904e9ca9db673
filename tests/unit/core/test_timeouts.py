"""Step timeouts (an attempt that does not report in time failed and is retried by the
same policy; its late result changes nothing) and the workflow timeout."""

from __future__ import annotations

import pytest

import replayflow as rf
from replayflow.core.messages import (
    CompleteStep,
    FireTimer,
    StartWorkflow,
    StepCompleted,
    StepFailed,
    StepScheduled,
    WorkflowTimedOut,
)
from replayflow.core.policy import Retry
from replayflow.core.state import CallStatus
from replayflow.testing import Environment

from .helpers import T0, Fold, kinds


@rf.step(
    name="t_slow", timeout="10s", retry=Retry(limit=2, delay="1s", backoff="constant", jitter=False)
)
def slow() -> str:
    return f"attempt {rf.current_step().attempt}"


@rf.workflow(name="t_slow_flow")
async def slow_flow(ctx: rf.Context) -> str:
    return str(await ctx.step("call", slow))


@rf.workflow(name="t_override_flow")
async def override_flow(ctx: rf.Context) -> str:
    return str(await ctx.step("call", slow, timeout="3s"))


@rf.workflow(name="t_bounded_flow", timeout="10s")
async def bounded_flow(ctx: rf.Context) -> str:
    await ctx.sleep("long", "1m")
    return "woke"


@rf.workflow(name="t_quick_flow", timeout="1h")
async def quick_flow(ctx: rf.Context) -> str:
    return str(await ctx.step("call", slow))


def test_an_attempt_that_does_not_report_in_time_fails_and_is_retried() -> None:
    env = Environment(slow_flow)
    env.hold_step("call")  # as if the worker died
    handle = env.start(slow_flow)
    (task,) = env.held
    assert (task.attempt, task.timeout_ms) == (1, 10_000)

    env.advance("10s")
    failed = [e for e in env.history(handle.id) if isinstance(e, StepFailed)]
    assert len(failed) == 1
    assert (failed[0].attempt, failed[0].error.type, failed[0].error.retryable) == (
        1,
        "StepTimeout",
        True,
    )
    assert failed[0].retry_at == failed[0].at + 1000
    assert env.states[handle.id].calls[0].status is CallStatus.BACKOFF

    env.advance("1s")  # the retry timer: attempt 2 goes out
    assert [t.attempt for t in env.held] == [1, 2]
    assert env.states[handle.id].calls[0].attempt == 2


def test_a_late_result_for_a_timed_out_attempt_changes_nothing() -> None:
    env = Environment(slow_flow)
    env.hold_step("call")
    handle = env.start(slow_flow)
    env.advance("11s")  # attempt 1 timed out, attempt 2 is out
    before_state, before_history = env.states[handle.id], env.history(handle.id)

    env.deliver(CompleteStep(instance_id=handle.id, step="call", attempt=1, result='"too late"'))
    assert env.states[handle.id] == before_state
    assert env.history(handle.id) == before_history
    assert not env.rejected

    env.deliver(CompleteStep(instance_id=handle.id, step="call", attempt=2, result='"in time"'))
    assert handle.result() == "in time"


def test_a_timeout_on_the_last_attempt_fails_the_step() -> None:
    env = Environment(slow_flow)
    env.hold_step("call")
    handle = env.start(slow_flow)
    with pytest.raises(rf.WorkflowError) as caught:
        handle.result()  # the virtual clock runs through both attempts' timeouts
    assert caught.value.error is not None and "StepTimeout" in caught.value.error.message
    failed = [e for e in env.history(handle.id) if isinstance(e, StepFailed)]
    assert [(f.attempt, f.error.type, f.retry_at is None) for f in failed] == [
        (1, "StepTimeout", False),
        (2, "StepTimeout", True),
    ]


def test_ctx_step_timeout_overrides_the_steps_own() -> None:
    env = Environment(override_flow)
    env.hold_step("call")
    env.start(override_flow)
    assert env.held[0].timeout_ms == 3000


def test_a_result_in_time_cancels_the_attempt_timeout() -> None:
    fold = Fold.of(slow_flow, slow)
    first = fold(StartWorkflow(instance_id="s", workflow="t_slow_flow"), at=T0)
    assert first.timers_set == (("step/call/timeout/1", T0 + 10_000),)
    done = fold(CompleteStep(instance_id="s", step="call", attempt=1, result='"x"'), at=T0 + 500)
    assert done.timers_cancelled == (("step/call/timeout/1", T0 + 10_000),)
    assert fold.status == "COMPLETED"
    # The timer may still fire if the cancel lost the race: nothing happens.
    late = fold(FireTimer(instance_id="s", timer="step/call/timeout/1"), at=T0 + 10_000)
    assert not late.changed and late.events == () and late.state == done.state


def test_a_timer_for_an_attempt_that_already_reported_changes_nothing() -> None:
    fold = Fold.of(slow_flow, slow)
    fold(StartWorkflow(instance_id="s", workflow="t_slow_flow"), at=T0)
    fold(FireTimer(instance_id="s", timer="step/call/timeout/1"), at=T0 + 10_000)
    fold(FireTimer(instance_id="s", timer="step/call/retry/1"), at=T0 + 11_000)
    assert fold.state is not None and fold.state.calls[0].attempt == 2
    # An attempt-1 timer again (the index may deliver twice) is stale: no new failure.
    again = fold(FireTimer(instance_id="s", timer="step/call/timeout/1"), at=T0 + 11_500)
    assert not again.changed and again.events == ()
    assert kinds(fold.history).count("StepFailed") == 1


def test_the_workflow_timeout_ends_the_whole_instance() -> None:
    env = Environment(bounded_flow)
    handle = env.start(bounded_flow)
    with pytest.raises(rf.WorkflowError) as caught:
        handle.result()
    assert caught.value.status == rf.Status.TIMED_OUT
    history = env.history(handle.id)
    assert isinstance(history[-1], WorkflowTimedOut)
    assert history[-1].at - history[0].at == 10_000
    state = env.states[handle.id]
    assert state.info.timers == ()  # the sleep's timer went with it
    assert env.completions[handle.id].status == "TIMED_OUT"


def test_the_workflow_timeout_is_cancelled_when_the_instance_ends_first() -> None:
    fold = Fold.of(quick_flow, slow)
    started = fold(StartWorkflow(instance_id="q", workflow="t_quick_flow"), at=T0)
    assert ("workflow/timeout", T0 + 3_600_000) in started.timers_set
    done = fold(CompleteStep(instance_id="q", step="call", attempt=1, result='"r"'))
    assert ("workflow/timeout", T0 + 3_600_000) in done.timers_cancelled
    assert fold.timers == {}
    late = fold(FireTimer(instance_id="q", timer="workflow/timeout"), at=T0 + 3_600_000)
    assert not late.changed and fold.status == "COMPLETED"


def test_virtual_time_passes_only_when_asked() -> None:
    env = Environment(bounded_flow)
    handle = env.start(bounded_flow)
    env.advance("9999ms")
    assert env.status(handle.id) == rf.Status.RUNNING
    env.advance("1ms")
    assert env.status(handle.id) == rf.Status.TIMED_OUT


def test_a_completed_steps_cancelled_timeout_does_not_move_the_clock() -> None:
    @rf.workflow(name="t_then_wait")
    async def then_wait(ctx: rf.Context) -> object:
        await ctx.step("call", slow)  # completes at once; its 10s timeout is cancelled
        return await ctx.wait_for_event("go")

    env = Environment(then_wait)
    handle = env.start(then_wait)
    with pytest.raises(Exception, match="waiting for event 'go'"):
        handle.result()
    assert env.now == T0  # no stale timer was "fired" on the way to the deadlock
    env.send_event(handle.id, "go", 1)
    assert handle.result() == 1
    completed = [e for e in env.history(handle.id) if isinstance(e, StepCompleted)]
    assert completed[0].at == T0
    assert [e.timeout_ms for e in env.history(handle.id) if isinstance(e, StepScheduled)] == [
        10_000
    ]
