"""Limits with clear errors: awaits per instance (25,000 by default) and payload size
(1 MiB by default). Name and id formats are in test_durations_names.py."""

from __future__ import annotations

import pytest

import replayflow as rf
from replayflow.core.decide import Limits
from replayflow.core.messages import (
    CompleteStep,
    SendEvent,
    StartWorkflow,
    StepFailed,
    StepScheduled,
)
from replayflow.core.payloads import DEFAULT_MAX_PAYLOAD
from replayflow.testing import Environment

from .helpers import Fold, kinds

SMALL = Limits(max_calls=3, max_payload=64)


@rf.step(name="lim_echo")
def echo(value: object) -> object:
    return value


@rf.step(name="lim_big")
def big() -> str:
    return "x" * 100


@rf.workflow(name="lim_loop")
async def loop(ctx: rf.Context, n: int) -> int:
    for i in range(n):
        await ctx.step(f"s{i}", echo, i)
    return n


@rf.workflow(name="lim_fan_out")
async def fan_out(ctx: rf.Context, n: int) -> list[object]:
    return list(await ctx.all([ctx.step(f"s{i}", echo, i) for i in range(n)]))


@rf.workflow(name="lim_big_result")
async def big_result(ctx: rf.Context) -> object:
    try:
        return await ctx.step("big", big)
    except rf.StepFailed as exc:
        return {"failed": exc.error.type}


@rf.workflow(name="lim_big_output")
async def big_output(ctx: rf.Context) -> str:
    return "y" * 100


@rf.workflow(name="lim_big_step_input")
async def big_step_input(ctx: rf.Context) -> str:
    try:
        await ctx.step("echo", echo, "z" * 100)
    except rf.PayloadError as exc:
        return "caught" if "the input of step 'echo'" in str(exc) else "other"
    return "sent"


@rf.workflow(name="lim_event")
async def event(ctx: rf.Context) -> object:
    return await ctx.wait_for_event("e")


def test_defaults() -> None:
    assert Limits().max_calls == 25_000
    assert Limits().max_payload == DEFAULT_MAX_PAYLOAD == 1024 * 1024


def test_an_instance_may_make_exactly_max_calls_awaits() -> None:
    env = Environment(loop, limits=SMALL)
    assert env.start(loop, 3).result() == 3


def test_one_await_past_the_limit_fails_the_instance_with_limit_exceeded() -> None:
    env = Environment(loop, limits=SMALL)
    handle = env.start(loop, 5)
    with pytest.raises(rf.WorkflowError) as caught:
        handle.result()
    error = caught.value.error
    assert caught.value.status == rf.Status.FAILED
    assert error is not None and error.type == "LimitExceeded"
    assert "limit of 3 awaits" in error.message
    assert sum(isinstance(e, StepScheduled) for e in env.history(handle.id)) == 3


def test_the_limit_counts_every_member_of_ctx_all() -> None:
    env = Environment(fan_out, limits=SMALL)
    with pytest.raises(rf.WorkflowError) as caught:
        env.start(fan_out, 4).result()
    assert caught.value.error is not None and caught.value.error.type == "LimitExceeded"


def test_a_start_with_an_oversized_input_is_rejected() -> None:
    fold = Fold.of(event, limits=SMALL)
    decision = fold(StartWorkflow(instance_id="i", workflow="lim_event", input=f'"{"a" * 70}"'))
    assert decision.state is None and decision.rejected is not None
    assert "over the payload limit of 64" in decision.rejected
    env = Environment(event, limits=SMALL)
    with pytest.raises(rf.PayloadError, match="over the payload limit"):
        env.start(event, "a" * 70)


def test_an_oversized_step_result_fails_the_step_for_good() -> None:
    env = Environment(big_result, limits=SMALL)
    handle = env.start(big_result)
    assert handle.result() == {"failed": "PayloadError"}
    (failed,) = [e for e in env.history(handle.id) if isinstance(e, StepFailed)]
    assert not failed.error.retryable and failed.retry_at is None


def test_an_oversized_result_from_a_worker_is_checked_by_the_fold() -> None:
    fold = Fold.of(big_result, big, limits=SMALL)
    fold(StartWorkflow(instance_id="i", workflow="lim_big_result"))
    decision = fold(CompleteStep(instance_id="i", step="big", attempt=1, result=f'"{"r" * 100}"'))
    assert kinds(decision.events) == ["StepFailed", "WorkflowCompleted"]
    assert fold.state is not None and fold.state.info.output == '{"failed":"PayloadError"}'


def test_an_oversized_event_is_rejected() -> None:
    fold = Fold.of(event, limits=SMALL)
    fold(StartWorkflow(instance_id="i", workflow="lim_event"))
    decision = fold(SendEvent(instance_id="i", name="e", payload=f'"{"p" * 70}"'))
    assert decision.rejected is not None and "over the payload limit" in decision.rejected
    assert fold.status == "RUNNING"
    env = Environment(event, limits=SMALL)
    handle = env.start(event)
    with pytest.raises(rf.PayloadError):
        env.send_event(handle.id, "e", "p" * 70)


def test_an_oversized_output_fails_the_instance_with_the_error_recorded() -> None:
    env = Environment(big_output, limits=SMALL)
    handle = env.start(big_output)
    with pytest.raises(rf.WorkflowError) as caught:
        handle.result()
    assert caught.value.error is not None and caught.value.error.type == "PayloadError"
    assert env.states[handle.id].info.error == caught.value.error
    assert env.completions[handle.id].error == caught.value.error


def test_an_oversized_step_input_raises_payload_error_at_the_call() -> None:
    env = Environment(big_step_input, limits=SMALL)
    assert env.start(big_step_input).result() == "caught"


def test_payloads_at_the_limit_pass() -> None:
    limits = Limits(max_payload=64)
    env = Environment(event, limits=limits)
    handle = env.start(event, "a" * 62)  # 64 bytes of JSON with the quotes
    env.send_event(handle.id, "e", "b" * 62)
    assert handle.result() == "b" * 62


def test_events_kept_for_a_later_wait_are_bounded() -> None:
    import replayflow as rf
    from replayflow.core.decide import Limits
    from replayflow.testing import Environment

    @rf.workflow(name="never-waits")
    async def never_waits(ctx: rf.Context) -> None:
        await ctx.sleep("long", "1d")

    env = Environment(never_waits, limits=Limits(max_payload=100, max_inbox=250))
    env.start(never_waits, id="inbox")
    env.send_event("inbox", "e", "x" * 90)
    env.send_event("inbox", "e", "y" * 90)
    with pytest.raises(rf.ValidationError, match="inbox limit"):
        env.send_event("inbox", "e", "z" * 90)
    assert len(env.states["inbox"].info.inbox) == 2
