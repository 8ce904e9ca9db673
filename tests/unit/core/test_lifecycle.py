"""Pause, resume and restart are folded like any other command."""

from __future__ import annotations

import pytest

import replayflow as rf
from replayflow.core.messages import (
    CompleteStep,
    WorkflowPaused,
    WorkflowRestarted,
    WorkflowResumed,
)
from replayflow.core.state import Status
from replayflow.testing import Environment

CALLS: list[str] = []


@rf.step
def lc_first(x: int) -> int:
    CALLS.append("first")
    return x + 1


@rf.step(retry=rf.Retry(limit=3, delay="1s", jitter=False))
def lc_second(x: int) -> int:
    CALLS.append("second")
    if rf.current_step().attempt == 1 and x < 0:
        raise RuntimeError("first attempt of a negative input fails")
    return x * 10


@rf.workflow(name="lifecycle")
async def lifecycle(ctx: rf.Context, x: int) -> dict:
    a = await ctx.step("first", lc_first, x)
    event = await ctx.wait_for_event("go")
    b = await ctx.step("second", lc_second, a)
    return {"a": a, "b": b, "event": event}


def _env() -> Environment:
    CALLS.clear()
    return Environment(lifecycle)


def test_paused_instance_records_results_but_waits_for_resume() -> None:
    env = _env()
    env.hold_step("first")
    handle = env.start(lifecycle, 1, id="p1")
    env.pause("p1", "maintenance")
    assert env.status("p1") is Status.PAUSED
    env.release_held()  # the step finishes while paused: recorded, code does not move
    env.send_event("p1", "go", "yes")
    assert env.status("p1") is Status.PAUSED
    assert CALLS == ["first"]
    env.resume("p1", "done")
    assert handle.result() == {"a": 2, "b": 20, "event": "yes"}
    types = [type(e) for e in env.history("p1")]
    assert types.index(WorkflowPaused) < types.index(WorkflowResumed)
    assert env.replay("p1").identical


def test_retry_due_during_pause_is_dispatched_on_resume() -> None:
    env = _env()
    handle = env.start(lifecycle, -5, id="p2")
    env.send_event("p2", "go", 1)  # 'second' attempt 1 fails, a retry timer is set
    env.pause("p2")
    env.advance("10s")  # the retry timer fires while paused: no new attempt
    assert env.status("p2") is Status.PAUSED
    assert CALLS.count("second") == 1
    env.resume("p2")
    assert handle.result()["b"] == -40
    assert CALLS.count("second") == 2


def test_restart_from_a_step_keeps_the_results_before_it() -> None:
    env = _env()
    handle = env.start(lifecycle, 1, id="r1")
    env.send_event("r1", "go", "first-run")
    assert handle.result()["b"] == 20
    CALLS.clear()
    env.restart("r1", from_step="second", reason="re-run the tail")
    assert env.status("r1") is Status.COMPLETED
    assert CALLS == ["second"]  # 'first' and the event were kept
    assert any(
        isinstance(e, WorkflowRestarted) and e.from_step == "second" for e in env.history("r1")
    )
    assert env.replay("r1").identical


def test_restart_from_the_start_runs_everything_again() -> None:
    env = _env()
    env.start(lifecycle, 1, id="r2")
    env.send_event("r2", "go", 1)
    CALLS.clear()
    env.restart("r2")
    assert env.status("r2") is Status.RUNNING  # waits for a new event
    assert CALLS == ["first"]
    env.send_event("r2", "go", 2)
    assert env.result("r2")["event"] == 2


def test_stale_result_from_before_a_restart_changes_nothing() -> None:
    env = _env()
    env.hold_step("second")
    env.start(lifecycle, 1, id="r3")
    env.send_event("r3", "go", 1)
    stale = env.held[0]
    env.restart("r3", from_step="second")
    before = env.states["r3"]
    env.deliver(CompleteStep(instance_id="r3", step="second", attempt=stale.attempt, result="999"))
    assert env.states["r3"] is before  # the old attempt's result is not this run's
    env.release_held()
    assert env.result("r3")["b"] == 20


def test_restart_from_an_unknown_step_is_rejected() -> None:
    env = _env()
    env.start(lifecycle, 1, id="r4")
    with pytest.raises(rf.ValidationError, match="no step 'nope'"):
        env.restart("r4", from_step="nope")


def test_resume_retries_a_suspended_instance_after_a_code_fix() -> None:
    @rf.workflow(name="fixable")
    async def broken(ctx: rf.Context) -> str:
        await ctx.wait_for_event("a")
        return "old"

    env = Environment(broken)
    env.start("fixable", id="s1")

    @rf.workflow(name="fixable")
    async def changed(ctx: rf.Context) -> str:
        await ctx.wait_for_event("b")  # not what history holds
        return "changed"

    env.registry.workflows["fixable"]["1"] = changed
    env.decider.cache.clear()
    env.send_event("s1", "a", 1)
    assert env.status("s1") is Status.SUSPENDED

    env.registry.workflows["fixable"]["1"] = broken  # the fix: the original code again
    env.resume("s1")
    assert env.result("s1") == "old"
