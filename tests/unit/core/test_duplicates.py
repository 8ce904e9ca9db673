"""Duplicates and stragglers change nothing: a second result for an attempt, a result
for an attempt that is not current, an event for a finished instance, a second start."""

from __future__ import annotations

import pytest

import replayflow as rf
from replayflow.core.decision import Decision
from replayflow.core.messages import (
    CancelWorkflow,
    Command,
    CompleteStep,
    ErrorInfo,
    FailStep,
    FireTimer,
    GrantSlot,
    SendEvent,
    StartWorkflow,
    TerminateWorkflow,
)
from replayflow.core.policy import Retry
from replayflow.testing import Environment

from .helpers import T0, Fold, kinds


@rf.step(name="dup_work", retry=Retry(limit=3, delay="1s", backoff="constant", jitter=False))
def work(x: int) -> int:
    return x * 10


@rf.step(name="dup_cleanup")
def tidy() -> str:
    return "tidy"


@rf.workflow(name="dup_flow")
async def flow(ctx: rf.Context, x: int) -> dict[str, object]:
    first, second = await ctx.all([ctx.step("first", work, x), ctx.step("second", work, x)])
    event = await ctx.wait_for_event("go")
    return {"first": first, "second": second, "event": event}


@rf.workflow(name="dup_cancellable")
async def cancellable(ctx: rf.Context) -> None:
    try:
        await ctx.wait_for_event("never")
    except rf.Cancelled:
        await ctx.step("cleanup", tidy)
        raise


ERROR = ErrorInfo(type="Boom", message="boom")


def started(x: int = 1, instance_id: str = "i") -> Fold:
    fold = Fold.of(flow, work)
    fold(StartWorkflow(instance_id=instance_id, workflow="dup_flow", input=str(x)), at=T0)
    return fold


def assert_no_change(fold: Fold, command: Command) -> Decision:
    before = fold.state
    decision = fold(command)
    assert not decision.changed
    assert decision.events == () and decision.tasks == () and decision.commands == ()
    assert decision.timers_set == () and decision.timers_cancelled == ()
    assert decision.completion is None and decision.rejected is None
    assert decision.state == before
    return decision


def test_a_second_result_for_the_same_attempt_changes_nothing() -> None:
    fold = started()
    result = CompleteStep(instance_id="i", step="first", attempt=1, result="10")
    assert fold(result).changed
    assert_no_change(fold, result)
    # Another value for the same attempt (a retried worker that ran twice): still nothing.
    assert_no_change(fold, CompleteStep(instance_id="i", step="first", attempt=1, result="999"))
    assert fold.state is not None and fold.state.calls[0].result == "10"


def test_a_second_failure_for_the_same_attempt_changes_nothing() -> None:
    fold = started()
    failure = FailStep(instance_id="i", step="first", attempt=1, error=ERROR)
    assert kinds(fold(failure).events) == ["StepFailed"]
    assert_no_change(fold, failure)
    # A success for the attempt that already failed is a straggler too.
    assert_no_change(fold, CompleteStep(instance_id="i", step="first", attempt=1, result="10"))


def test_results_for_attempts_that_are_not_current_change_nothing() -> None:
    fold = started()
    assert_no_change(fold, CompleteStep(instance_id="i", step="first", attempt=2, result="1"))
    assert_no_change(fold, CompleteStep(instance_id="i", step="nope", attempt=1, result="1"))
    assert_no_change(fold, FailStep(instance_id="i", step="second", attempt=0, error=ERROR))
    fold(FailStep(instance_id="i", step="first", attempt=1, error=ERROR))
    fold(FireTimer(instance_id="i", timer="step/first/retry/1"), at=T0 + 1000)
    assert fold.state is not None and fold.state.calls[0].attempt == 2
    assert_no_change(fold, CompleteStep(instance_id="i", step="first", attempt=1, result="10"))


def test_a_result_for_an_unknown_instance_changes_nothing() -> None:
    fold = Fold.of(flow, work)
    decision = fold(CompleteStep(instance_id="ghost", step="first", attempt=1, result="1"))
    assert decision.state is None and not decision.changed and decision.rejected is None


def test_a_timer_that_fired_already_changes_nothing() -> None:
    fold = started()
    fold(FailStep(instance_id="i", step="first", attempt=1, error=ERROR))
    fire = FireTimer(instance_id="i", timer="step/first/retry/1")
    assert fold(fire, at=T0 + 1000).changed
    assert_no_change(fold, fire)
    assert_no_change(fold, FireTimer(instance_id="i", timer="no/such/timer"))


def test_an_event_for_a_finished_instance_changes_nothing() -> None:
    fold = started()
    fold(CompleteStep(instance_id="i", step="first", attempt=1, result="10"))
    fold(CompleteStep(instance_id="i", step="second", attempt=1, result="10"))
    fold(SendEvent(instance_id="i", name="go", payload='"now"'))
    assert fold.status == "COMPLETED"
    assert_no_change(fold, SendEvent(instance_id="i", name="go", payload='"again"'))
    assert_no_change(fold, SendEvent(instance_id="i", name="other"))


def test_commands_for_a_finished_instance_change_nothing() -> None:
    fold = started()
    fold(TerminateWorkflow(instance_id="i", reason="stop"))
    for command in (
        CompleteStep(instance_id="i", step="first", attempt=1, result="10"),
        FailStep(instance_id="i", step="second", attempt=1, error=ERROR),
        CancelWorkflow(instance_id="i", reason="late"),
        TerminateWorkflow(instance_id="i", reason="again"),
        GrantSlot(instance_id="i"),
        StartWorkflow(instance_id="i", workflow="dup_flow", input="2"),
    ):
        assert_no_change(fold, command)
    assert fold.state is not None and fold.state.info.reason == "stop"


def test_a_start_for_an_id_that_exists_changes_nothing_and_the_first_wins() -> None:
    fold = started(x=1)
    assert_no_change(fold, StartWorkflow(instance_id="i", workflow="dup_flow", input="2"))
    assert_no_change(fold, StartWorkflow(instance_id="i", workflow="dup_flow", input="1"))
    assert fold.state is not None and fold.state.info.input == "1"
    assert kinds(fold.history).count("WorkflowStarted") == 1


def test_duplicate_start_in_the_environment_keeps_the_first_input() -> None:
    env = Environment(flow)
    env.start(flow, 1, id="same")
    env.start(flow, 2, id="same")
    env.send_event("same", "go", "x")
    assert env.result("same") == {"first": 10, "second": 10, "event": "x"}
    assert len(env.histories["same"]) == len(set(e.seq for e in env.histories["same"]))


@pytest.mark.parametrize("reason", ["first", ""])
def test_a_second_cancel_does_not_interrupt_the_cleanup(reason: str) -> None:
    env = Environment(cancellable)
    env.hold_step("cleanup")
    handle = env.start(cancellable)
    env.cancel(handle.id, reason)
    before = env.states[handle.id]
    env.cancel(handle.id, "again")  # a client retrying its request
    assert env.states[handle.id] == before
    env.release_held()
    with pytest.raises(rf.WorkflowError) as caught:
        handle.result()
    assert caught.value.status == rf.Status.CANCELLED
    history = env.history(handle.id)
    assert kinds(history) == [
        "WorkflowStarted",
        "EventAwaited",
        "CancelRequested",
        "CallDropped",  # the wait the cancel interrupted
        "StepScheduled",
        "StepCompleted",
        "WorkflowCancelled",
    ]
    assert env.states[handle.id].info.reason == reason


def test_a_duplicate_grant_changes_nothing() -> None:
    @rf.workflow(name="dup_limited", concurrency=1)
    async def limited(ctx: rf.Context) -> object:
        return await ctx.wait_for_event("go")

    fold = Fold.of(limited)
    fold(StartWorkflow(instance_id="l", workflow="dup_limited"))
    assert fold.status == "QUEUED"
    assert kinds(fold(GrantSlot(instance_id="l")).events) == ["WorkflowAdmitted", "EventAwaited"]
    assert_no_change(fold, GrantSlot(instance_id="l"))
