"""Events: delivered to a waiting workflow, kept in order when sent before the wait,
timed out with rf.EventTimeout, and checked at the boundary."""

from __future__ import annotations

import contextlib

import pytest

import replayflow as rf
from replayflow.core.messages import (
    EventAwaited,
    EventKept,
    EventReceived,
    FireTimer,
    SendEvent,
    StartWorkflow,
)
from replayflow.core.state import CallStatus
from replayflow.testing import Environment

from .helpers import T0, Fold, kinds


@rf.workflow(name="ev_one")
async def one(ctx: rf.Context) -> object:
    return await ctx.wait_for_event("approval")


@rf.workflow(name="ev_loop")
async def loop(ctx: rf.Context, count: int) -> list[object]:
    return [await ctx.wait_for_event("msg") for _ in range(count)]


@rf.workflow(name="ev_gated")
async def gated(ctx: rf.Context) -> dict[str, list[object]]:
    await ctx.wait_for_event("go")
    a = [await ctx.wait_for_event("a") for _ in range(2)]
    b = [await ctx.wait_for_event("b") for _ in range(2)]
    return {"a": a, "b": b}


@rf.workflow(name="ev_timeout")
async def with_timeout(ctx: rf.Context) -> object:
    try:
        return await ctx.wait_for_event("reply", timeout="30s")
    except rf.EventTimeout as exc:
        return f"timed out waiting for {exc.name}"


@rf.workflow(name="ev_both")
async def both(ctx: rf.Context) -> list[object]:
    return list(await ctx.all([ctx.wait_for_event("x"), ctx.wait_for_event("y")]))


@rf.workflow(name="ev_twice_at_once")
async def twice_at_once(ctx: rf.Context) -> list[object]:
    return list(await ctx.all([ctx.wait_for_event("x"), ctx.wait_for_event("x")]))


def test_an_event_is_delivered_to_the_waiting_workflow() -> None:
    env = Environment(one)
    handle = env.start(one)
    assert env.status(handle.id) == rf.Status.RUNNING
    env.advance("2m")
    env.send_event(handle.id, "approval", {"by": "ann", "ok": True})
    assert handle.result() == {"by": "ann", "ok": True}
    received = [e for e in env.history(handle.id) if isinstance(e, EventReceived)]
    assert [(r.name, r.payload, r.at) for r in received] == [
        ("approval", '{"by":"ann","ok":true}', T0 + 120_000)
    ]


def test_events_sent_before_the_wait_are_kept_and_delivered_in_order() -> None:
    env = Environment(gated)
    handle = env.start(gated)
    for name, payload in [("b", 1), ("a", 1), ("b", 2), ("a", 2)]:
        env.send_event(handle.id, name, payload)
    inbox = env.states[handle.id].info.inbox
    assert [(name, payload) for name, payload, _ in inbox] == [
        ("b", "1"),
        ("a", "1"),
        ("b", "2"),
        ("a", "2"),
    ]
    # Each kept event names its EventReceived, and the history says it was kept.
    history = env.history(handle.id)
    received = {e.seq: e.name for e in history if isinstance(e, EventReceived)}
    assert [received[seq] for _, _, seq in inbox] == ["b", "a", "b", "a"]
    kept = [e for e in history if isinstance(e, EventKept)]
    assert [k.received_seq for k in kept] == [seq for _, _, seq in inbox]
    env.send_event(handle.id, "go")
    assert handle.result() == {"a": [1, 2], "b": [1, 2]}
    assert env.states[handle.id].info.inbox == ()


def test_a_workflow_waiting_for_the_same_event_again_receives_each_one() -> None:
    # The second wait for "msg" is recorded as msg#2; events are still named "msg".
    env = Environment(loop)
    handle = env.start(loop, 3)
    for n in range(3):
        env.send_event(handle.id, "msg", n)
    assert handle.result() == [0, 1, 2]
    assert [c.key for c in env.states[handle.id].calls] == ["msg", "msg#2", "msg#3"]
    assert env.states[handle.id].info.inbox == ()


def test_two_waits_for_one_name_at_once_take_events_in_order() -> None:
    env = Environment(twice_at_once)
    handle = env.start(twice_at_once)
    env.send_event(handle.id, "x", "first")
    env.send_event(handle.id, "x", "second")
    assert handle.result() == ["first", "second"]


def test_an_event_wait_times_out_with_event_timeout() -> None:
    env = Environment(with_timeout)
    handle = env.start(with_timeout)
    awaited = [e for e in env.history(handle.id) if isinstance(e, EventAwaited)]
    assert awaited[0].deadline == T0 + 30_000
    env.advance("29s")
    assert env.status(handle.id) == rf.Status.RUNNING
    env.advance("1s")
    assert handle.result() == "timed out waiting for reply"
    assert env.states[handle.id].calls[0].status is CallStatus.TIMED_OUT


def test_an_event_in_time_cancels_the_timeout() -> None:
    fold = Fold.of(with_timeout)
    fold(StartWorkflow(instance_id="e", workflow="ev_timeout"), at=T0)
    assert fold.timers == {"event/0/timeout": T0 + 30_000}
    decision = fold(SendEvent(instance_id="e", name="reply", payload='"yes"'), at=T0 + 5)
    assert decision.timers_cancelled == (("event/0/timeout", T0 + 30_000),)
    assert fold.status == "COMPLETED" and fold.state is not None
    assert fold.state.info.output == '"yes"'
    assert not fold(FireTimer(instance_id="e", timer="event/0/timeout"), at=T0 + 30_000).changed


def test_an_event_after_the_timeout_is_not_delivered_to_the_timed_out_wait() -> None:
    @rf.workflow(name="ev_timeout_then_wait")
    async def timeout_then_wait(ctx: rf.Context) -> list[object]:
        try:
            first = await ctx.wait_for_event("reply", timeout="1s")
        except rf.EventTimeout:
            first = None
        await ctx.wait_for_event("go")
        return [first, await ctx.wait_for_event("reply")]

    env = Environment(timeout_then_wait)
    handle = env.start(timeout_then_wait)
    env.advance("1s")
    env.send_event(handle.id, "reply", "late")  # kept for the next wait for "reply"
    env.send_event(handle.id, "go")
    assert handle.result() == [None, "late"]


def test_all_over_two_events_in_either_order() -> None:
    for order in (["x", "y"], ["y", "x"]):
        env = Environment(both)
        handle = env.start(both)
        for name in order:
            env.send_event(handle.id, name, name.upper())
        assert handle.result() == ["X", "Y"]


def test_events_for_a_queued_instance_wait_for_its_admission() -> None:
    @rf.workflow(name="ev_limited", concurrency=1)
    async def limited(ctx: rf.Context) -> object:
        return await ctx.wait_for_event("approval")

    env = Environment(limited)
    first = env.start(limited)
    second = env.start(limited)
    env.send_event(second.id, "approval", "for second")
    assert env.status(second.id) == rf.Status.QUEUED
    env.send_event(first.id, "approval", "for first")
    assert first.result() == "for first"
    assert second.result() == "for second"


def test_events_for_unknown_instances_and_bad_events_are_rejected() -> None:
    fold = Fold.of(one)
    assert fold(SendEvent(instance_id="ghost", name="approval")).rejected
    fold(StartWorkflow(instance_id="e", workflow="ev_one"))
    for bad in (
        SendEvent(instance_id="e", name="approval", payload="{not json"),
        SendEvent(instance_id="e", name="bad name!", payload="1"),
        SendEvent(instance_id="e", name="", payload="1"),
    ):
        decision = fold(bad)
        assert decision.rejected and not decision.changed
        assert decision.state == fold.state
    assert fold.status == "RUNNING"
    assert kinds(fold.history) == ["WorkflowStarted", "EventAwaited"]


def test_the_environment_raises_at_the_boundary() -> None:
    env = Environment(one)
    handle = env.start(one)
    with pytest.raises(rf.PayloadError):
        env.send_event(handle.id, "approval", object())
    with pytest.raises(rf.ValidationError, match="no instance"):
        env.send_event("ghost", "approval", 1)
    with pytest.raises(rf.ValidationError, match="invalid event name"):
        env.send_event(handle.id, "not a name", 1)


def test_wait_for_event_checks_its_name() -> None:
    @rf.workflow(name="ev_bad_name")
    async def bad_name(ctx: rf.Context) -> object:
        return await ctx.wait_for_event("no spaces allowed")

    env = Environment(bad_name)
    handle = env.start(bad_name)
    with pytest.raises(rf.WorkflowError) as caught:
        handle.result()
    assert caught.value.error is not None and caught.value.error.type == "ValidationError"


class _Refused(rf.NonRetryableError):
    pass


@rf.step(name="ev_refuses")
def refuses() -> None:
    raise _Refused("no")


@rf.workflow(name="ev_left_behind")
async def left_behind(ctx: rf.Context) -> object:
    # The wait for "x" inside the ctx.all that fails is left behind.
    with contextlib.suppress(rf.StepFailed):
        await ctx.all([ctx.step("refuses", refuses), ctx.wait_for_event("x")])
    return await ctx.wait_for_event("x")


@pytest.mark.parametrize("cache_size", [0, 100])
def test_a_wait_left_behind_by_a_failed_ctx_all_does_not_take_events(cache_size: int) -> None:
    env = Environment(left_behind, cache_size=cache_size)
    handle = env.start(left_behind)
    env.send_event(handle.id, "x", 42)
    assert handle.result() == 42
    statuses = [(c.key, c.status) for c in env.states[handle.id].calls]
    assert statuses == [
        ("refuses", CallStatus.FAILED),
        ("x", CallStatus.WAITING),
        ("x#2", CallStatus.COMPLETED),
    ]
    assert env.replay(handle.id).identical
