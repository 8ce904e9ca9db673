"""Determinism: ctx.now/random/uuid4 come from the log; the same history gives the same
decisions; replayed code that asks for something else suspends the instance with a
NonDeterminismError naming both, and never continues down the wrong path."""

from __future__ import annotations

import uuid
from typing import Any

import replayflow as rf
from replayflow.core.decide import Decider
from replayflow.core.messages import (
    CompleteStep,
    SendEvent,
    StartWorkflow,
    WorkflowSuspended,
)
from replayflow.core.replay import replay
from replayflow.core.state import Status
from replayflow.testing import Environment

from .helpers import T0, Fold, kinds


@rf.step(name="d_fetch")
def fetch(x: int) -> int:
    return x + 1


@rf.step(name="d_other")
def other(x: int) -> int:
    return x - 1


@rf.workflow(name="d_values")
async def values(ctx: rf.Context) -> dict[str, Any]:
    before = [ctx.now_ms(), ctx.random(), str(ctx.uuid4())]
    await ctx.sleep("pause", "5s")
    got = await ctx.wait_for_event("poke")
    after = [ctx.now_ms(), ctx.random(), str(ctx.uuid4()), ctx.now().isoformat()]
    return {"before": before, "after": after, "got": got}


@rf.workflow(name="d_two_steps")
async def two_steps(ctx: rf.Context) -> int:
    a = await ctx.step("a", fetch, 1)
    b = await ctx.step("b", fetch, a)
    return int(b)


def run_values(instance_id: str, poke_after: str = "1m") -> tuple[Environment, Any]:
    env = Environment(values)
    handle = env.start(values, id=instance_id)
    env.advance(poke_after)
    env.send_event(handle.id, "poke", "hi")
    return env, handle.result()


# -- deterministic values ---------------------------------------------------------------


def test_now_random_and_uuid_come_from_the_log() -> None:
    _, output = run_values("values-1")
    before_now, before_random, before_uuid = output["before"]
    after_now, after_random, after_uuid, after_iso = output["after"]
    assert before_now == T0  # the start time, not the machine's
    assert after_now == T0 + 60_000  # the time the event that resumed it was folded
    assert after_iso == "2026-01-01T00:01:00+00:00"
    assert 0 <= before_random < 1 and before_random != after_random
    assert uuid.UUID(before_uuid).version == 4 and before_uuid != after_uuid
    # The same instance id and the same log give the same values on another "machine".
    assert run_values("values-1")[1] == output
    # Another instance draws other values.
    assert run_values("values-2")[1]["before"][1:] != output["before"][1:]


def test_replay_of_an_unchanged_workflow_is_identical() -> None:
    env, _ = run_values("values-3")
    report = env.replay("values-3")
    assert report.identical, report.difference
    assert report.state == env.states["values-3"]
    assert report.events == tuple(env.history("values-3"))


def test_the_same_commands_always_yield_the_same_decisions() -> None:
    commands = [
        (StartWorkflow(instance_id="s", workflow="d_two_steps"), T0),
        (CompleteStep(instance_id="s", step="a", attempt=1, result="2"), T0 + 10),
        (CompleteStep(instance_id="s", step="b", attempt=1, result="3"), T0 + 20),
    ]
    runs = []
    for cache_size in (0, 0, 100):
        fold = Fold.of(two_steps, fetch, cache_size=cache_size)
        runs.append([fold(command, at) for command, at in commands])
    assert runs[0] == runs[1] == runs[2]


# -- non-determinism ----------------------------------------------------------------------


def changed_registry(*items: Any) -> rf.Registry:
    return rf.Registry.of(*items, fetch, other)


def started_two_steps() -> tuple[Environment, str]:
    """d_two_steps with step "a" done and "b" still out with a worker."""
    env = Environment(two_steps)
    env.hold_step("b")
    handle = env.start(two_steps, id="nd-1")
    return env, handle.id


def test_replay_with_a_renamed_step_reports_what_history_held_and_what_code_asked() -> None:
    env = Environment(two_steps)
    handle = env.start(two_steps, id="nd-0")
    handle.result()

    @rf.workflow(name="d_two_steps")
    async def renamed(ctx: rf.Context) -> int:
        a = await ctx.step("a", fetch, 1)
        return int(await ctx.step("b_renamed", fetch, a))

    report = replay(env.history(handle.id), changed_registry(renamed))
    assert not report.identical
    assert report.position == 3  # the fourth event: the second StepScheduled
    assert report.difference is not None
    assert "step='b'" in report.difference and "step='b_renamed'" in report.difference


def test_stored_state_rebuilt_with_a_renamed_step_suspends_naming_both() -> None:
    env, instance_id = started_two_steps()

    @rf.workflow(name="d_two_steps")
    async def renamed(ctx: rf.Context) -> int:
        a = await ctx.step("a", fetch, 1)
        return int(await ctx.step("b_renamed", fetch, a))

    decider = Decider(changed_registry(renamed), cache_size=0)
    decision = decider.decide(
        env.states[instance_id],
        CompleteStep(instance_id=instance_id, step="b", attempt=1, result="3"),
        env.now,
    )
    assert decision.state is not None and decision.state.status is Status.SUSPENDED
    suspended = decision.events[-1]
    assert isinstance(suspended, WorkflowSuspended)
    assert suspended.error.type == "NonDeterminismError"
    assert not suspended.error.retryable
    assert "history holds step 'b'" in suspended.error.message
    assert "the code asked for step 'b_renamed'" in suspended.error.message
    assert decision.state.info.error == suspended.error


def test_a_new_result_folded_into_stored_state_with_changed_code_suspends() -> None:
    env, instance_id = started_two_steps()
    stored = env.states[instance_id]

    @rf.workflow(name="d_two_steps")
    async def sleeps_instead(ctx: rf.Context) -> int:
        a = await ctx.step("a", fetch, 1)
        await ctx.sleep("b", "1s")  # same name, another kind of await
        return int(a)

    decider = Decider(changed_registry(sleeps_instead), cache_size=0)
    decision = decider.decide(
        stored, CompleteStep(instance_id=instance_id, step="b", attempt=1, result="3"), env.now
    )
    assert decision.state is not None and decision.state.status is Status.SUSPENDED
    assert kinds(decision.events) == ["StepCompleted", "WorkflowSuspended"]
    message = decision.state.info.error.message  # type: ignore[union-attr]
    assert "await #2" in message and "step 'b'" in message and "sleep 'b'" in message
    assert decision.tasks == () and decision.timers_set == ()  # nothing down the wrong path
    assert decision.completion is None


def test_a_step_running_another_function_is_non_determinism() -> None:
    env, instance_id = started_two_steps()

    @rf.workflow(name="d_two_steps")
    async def other_function(ctx: rf.Context) -> int:
        a = await ctx.step("a", other, 1)
        return int(await ctx.step("b", fetch, a))

    decider = Decider(changed_registry(other_function), cache_size=0)
    decision = decider.decide(
        env.states[instance_id],
        CompleteStep(instance_id=instance_id, step="b", attempt=1, result="3"),
        env.now,
    )
    assert decision.state is not None and decision.state.status is Status.SUSPENDED
    message = decision.state.info.error.message  # type: ignore[union-attr]
    assert "'d_other'" in message and "'d_fetch'" in message


def test_code_that_ends_early_while_history_holds_more_is_non_determinism() -> None:
    env, instance_id = started_two_steps()

    @rf.workflow(name="d_two_steps")
    async def returns_early(ctx: rf.Context) -> int:
        return int(await ctx.step("a", fetch, 1))

    decider = Decider(changed_registry(returns_early), cache_size=0)
    decision = decider.decide(
        env.states[instance_id],
        CompleteStep(instance_id=instance_id, step="b", attempt=1, result="3"),
        env.now,
    )
    assert decision.state is not None and decision.state.status is Status.SUSPENDED
    assert decision.completion is None
    message = decision.state.info.error.message  # type: ignore[union-attr]
    assert "history holds step 'b'" in message and "it returned" in message


def test_a_suspended_instance_never_continues() -> None:
    env, instance_id = started_two_steps()

    @rf.workflow(name="d_two_steps")
    async def renamed(ctx: rf.Context) -> int:
        await ctx.step("a", fetch, 1)
        return int(await ctx.step("c", fetch, 2))

    fold = Fold(
        Decider(changed_registry(renamed), cache_size=0), state=env.states[instance_id], now=env.now
    )
    # An event makes the code catch up to its current await, which finds the change.
    decision = fold(SendEvent(instance_id=instance_id, name="nudge"))
    assert kinds(decision.events) == ["EventReceived", "EventKept", "WorkflowSuspended"]
    assert fold.status == "SUSPENDED"
    assert fold.state is not None and fold.state.info.inbox == (
        ("nudge", "null", decision.events[0].seq),
    )
    # From then on results are recorded (a resume after a fix loses no work), but the
    # code does not move and nothing new is scheduled.
    late = fold(CompleteStep(instance_id=instance_id, step="b", attempt=1, result="3"))
    assert kinds(late.events) == ["StepCompleted"]
    assert fold.status == "SUSPENDED"
    assert fold.tasks == [] and late.tasks == ()
    assert kinds(fold.history).count("WorkflowSuspended") == 1


def test_a_rebuild_with_the_recorded_code_does_not_suspend() -> None:
    env, instance_id = started_two_steps()
    decider = Decider(changed_registry(two_steps), cache_size=0)
    decision = decider.decide(
        env.states[instance_id],
        CompleteStep(instance_id=instance_id, step="b", attempt=1, result="3"),
        env.now,
    )
    assert decision.state is not None and decision.state.status is Status.COMPLETED
    assert decision.state.info.output == "3"
