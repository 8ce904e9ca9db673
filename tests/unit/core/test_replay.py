"""core.replay: history back into the commands that made it, re-folded with the current
code, compared event for event."""

from __future__ import annotations

import contextlib
import dataclasses

import pytest

import replayflow as rf
from replayflow.core.decide import Decider
from replayflow.core.messages import (
    CancelWorkflow,
    CompleteStep,
    FailStep,
    FireTimer,
    GrantSlot,
    HistoryEvent,
    SendEvent,
    StartWorkflow,
    StepCompleted,
    StepScheduled,
    TerminateWorkflow,
)
from replayflow.core.policy import Retry
from replayflow.core.replay import input_commands, replay
from replayflow.testing import Environment

from .helpers import Fold


@rf.step(name="rp_slow", timeout="5s", retry=Retry(limit=2, delay="1s", jitter=False))
def slow(x: int) -> int:
    return x + 1


@rf.step(name="rp_fails", retry=Retry(limit=2, delay="1s"))
def fails() -> None:
    raise RuntimeError("no")


@rf.workflow(name="rp_flow", concurrency=1)
async def flow(ctx: rf.Context, x: int) -> dict[str, object]:
    a = await ctx.step("slow", slow, x)
    with contextlib.suppress(rf.StepFailed):
        await ctx.step("fails", fails)
    await ctx.sleep("nap", "2s")
    event = await ctx.wait_for_event("go")
    b = await ctx.step("again", slow, a)
    return {"a": a, "b": b, "event": event, "r": ctx.random()}


@rf.workflow(name="rp_waits")
async def waits(ctx: rf.Context) -> object:
    try:
        return await ctx.wait_for_event("go")
    except rf.Cancelled:
        await ctx.step("cleanup", slow, 0)
        raise


REGISTRY = rf.Registry.of(flow, waits, slow, fails)


def recorded_flow() -> list[HistoryEvent]:
    env = Environment(flow)
    env.hold_step("slow")  # attempt 1 of "slow" times out
    handle = env.start(flow, 1, id="f")
    env.advance("5s")
    env.release_held()  # attempt 2, and the stale attempt 1, report now
    env.send_event(handle.id, "go", "early")  # kept until the wait
    handle.result()
    return env.history(handle.id)


def test_input_commands_are_the_inputs_of_the_history() -> None:
    history = recorded_flow()
    commands = [type(c).__name__ for c, _ in input_commands(history)]
    # The timeout's StepFailed comes from the TimerFired before it, not from a FailStep;
    # the late result of the timed-out attempt never made it into history at all.
    assert commands == [
        "StartWorkflow",
        "GrantSlot",
        "FireTimer",
        "SendEvent",
        "FireTimer",
        "CompleteStep",
        "FailStep",
        "FireTimer",
        "FailStep",
        "FireTimer",
        "CompleteStep",
    ]
    for (command, at), event in zip(input_commands(history[:1]), history, strict=False):
        assert isinstance(command, StartWorkflow) and at == event.at
        assert (command.workflow, command.version, command.input) == ("rp_flow", "1", "1")


def test_a_recorded_history_replays_identically() -> None:
    history = recorded_flow()
    report = replay(history, REGISTRY)
    assert report.identical, report.difference
    assert report.events == tuple(history)
    assert report.state is not None and report.state.status is rf.Status.COMPLETED


def test_replay_with_a_live_cache_is_identical_too() -> None:
    history = recorded_flow()
    report = replay(history, REGISTRY, Decider(REGISTRY, cache_size=100))
    assert report.identical, report.difference


@pytest.mark.parametrize("ending", ["cancel", "terminate"])
def test_cancelled_and_terminated_histories_replay(ending: str) -> None:
    env = Environment(waits)
    handle = env.start(waits, id="w")
    env.advance("1m")
    if ending == "cancel":
        env.cancel(handle.id, "why not")
    else:
        env.terminate(handle.id, "stop")
    report = env.replay(handle.id)
    assert report.identical, report.difference
    commands = [type(c) for c, _ in input_commands(env.history(handle.id))]
    assert commands[-1] in (CancelWorkflow, TerminateWorkflow, CompleteStep)


def test_a_suspended_history_does_not_replay_as_if_nothing_happened() -> None:
    @rf.workflow(name="rp_waits")
    async def changed(ctx: rf.Context) -> object:
        await ctx.wait_for_event("go")
        await ctx.sleep("extra", "1s")
        return None

    env = Environment(waits)
    env.hold_step("cleanup")
    handle = env.start(waits, id="s")
    env.cancel(handle.id, "stop")  # the cleanup step is out with a worker
    decider = Decider(rf.Registry.of(changed, slow), cache_size=0)
    fold = Fold(decider, state=env.states[handle.id], now=env.now, history=env.history(handle.id))
    fold(CompleteStep(instance_id="s", step="cleanup", attempt=1, result="1"))
    assert fold.status == "SUSPENDED"
    report = replay(fold.history, REGISTRY)  # the original code completes the cleanup
    assert not report.identical
    assert report.position == len(fold.history) - 1
    assert "WorkflowSuspended" in (report.difference or "")


def test_a_changed_result_changes_later_decisions_and_is_reported() -> None:
    history = recorded_flow()
    position = next(
        i for i, e in enumerate(history) if isinstance(e, StepCompleted) and e.step == "slow"
    )
    tampered = list(history)
    tampered[position] = dataclasses.replace(history[position], result="41")
    report = replay(tampered, REGISTRY)
    assert not report.identical
    # The tampered result is an input, so it is folded as recorded; the first decision
    # that used it (the input of step "again") is what differs.
    assert report.position is not None and report.position > position
    assert isinstance(history[report.position], StepScheduled)
    assert history[report.position].step == "again"
    assert '"args":[41]' in (report.difference or "")


def test_a_truncated_or_extended_history_is_reported() -> None:
    history = recorded_flow()
    report = replay(history[:-1], REGISTRY)
    assert not report.identical
    assert report.difference is not None and "beyond the history" in report.difference
    extra = dataclasses.replace(history[-1], seq=history[-1].seq + 1)
    report = replay([*history, extra], REGISTRY)
    assert not report.identical and "gives nothing more" in (report.difference or "")


def test_a_history_of_an_unknown_workflow_is_reported_not_raised() -> None:
    history = recorded_flow()
    report = replay(history, rf.Registry.of(waits, slow))
    assert not report.identical
    assert report.difference is not None and "unknown workflow 'rp_flow'" in report.difference


def test_every_input_command_kind_is_recovered() -> None:
    history = recorded_flow()
    seen = {type(c) for c, _ in input_commands(history)}
    assert {StartWorkflow, GrantSlot, FireTimer, CompleteStep, FailStep, SendEvent} <= seen
    assert any(isinstance(e, StepScheduled) and e.timeout_ms == 5000 for e in history)


def test_replay_without_a_cache_rebuilds_and_is_identical_too() -> None:
    history = recorded_flow()
    report = replay(history, REGISTRY, Decider(REGISTRY, cache_size=0))
    assert report.identical, report.difference


STARTS: list[str] = []


@rf.workflow(name="rp_counted")
async def counted(ctx: rf.Context, n: int) -> int:
    STARTS.append(ctx.instance_id)  # once per run of the code from its start
    x = 0
    for i in range(n):
        x = await ctx.step("add", slow, x)
        await ctx.sleep(f"nap{i}", "2h")  # a long sleep: the live fold lets it go
    await ctx.wait_for_event("go")
    return x


def test_replay_runs_the_workflow_code_once_whatever_the_history_length() -> None:
    env = Environment(counted)
    handle = env.start(counted, 20, id="c")
    for _ in range(20):
        env.advance("2h")  # each sleep ends, the next step runs
    env.send_event(handle.id, "go", None)
    assert handle.result() == 20
    history = env.history(handle.id)
    registry = rf.Registry.of(counted, slow)
    STARTS.clear()
    assert replay(history, registry).identical
    assert STARTS == ["c"]  # one run through 20 steps, 20 sleeps and a wait
    STARTS.clear()
    assert replay(history, registry, Decider(registry, cache_size=0)).identical
    assert len(STARTS) > 40  # rebuilt from the start at every decision
