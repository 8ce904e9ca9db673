"""The live coroutine cache (Decider(cache_size=...)) and the rebuild-by-replay path give
the same decisions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

import replayflow as rf
from replayflow.core.decide import Decider
from replayflow.core.messages import (
    CompleteStep,
    ErrorInfo,
    FailStep,
    FireTimer,
    SendEvent,
    StartWorkflow,
)
from replayflow.core.policy import Retry
from replayflow.testing import Environment

from .helpers import T0, Fold

BODY_RUNS: Counter[str] = Counter()  # how often each instance's code ran from the top

QUICK = Retry(limit=3, delay="1s", backoff="exponential", jitter=True)


@rf.step(name="cr_flaky", retry=QUICK)
def flaky(x: int) -> int:
    if rf.current_step().attempt < 2:
        raise RuntimeError("first attempt fails")
    return x * 3


@rf.step(name="cr_broken", retry=Retry(limit=2, delay="2s"))
def broken() -> None:
    raise RuntimeError("never works")


@rf.step(name="cr_plain")
def plain(x: object) -> object:
    return x


@rf.workflow(name="cr_rich")
async def rich(ctx: rf.Context, n: int) -> dict[str, Any]:
    BODY_RUNS[ctx.instance_id] += 1
    values = [ctx.random(), str(ctx.uuid4()), ctx.now_ms()]
    tripled = await ctx.all([ctx.step(f"t{i}", flaky, i) for i in range(n)])
    await ctx.sleep("pause", "3s")
    messages = [await ctx.wait_for_event("msg") for _ in range(2)]
    try:
        await ctx.step("broken", broken)
    except rf.StepFailed as exc:
        values.append(exc.attempts)
    try:
        late = await ctx.wait_for_event("never", timeout="5s")
    except rf.EventTimeout:
        late = "timeout"
    values += [ctx.random(), ctx.now_ms()]
    return {"tripled": tripled, "messages": messages, "late": late, "values": values}


@rf.workflow(name="cr_cancellable")
async def cancellable(ctx: rf.Context) -> None:
    BODY_RUNS[ctx.instance_id] += 1
    try:
        await ctx.wait_for_event("never")
    except rf.Cancelled:
        await ctx.step("cleanup", plain, ctx.now_ms())
        raise


def scenario(env: Environment) -> None:
    """Three instances whose decisions interleave, so a small cache evicts."""
    env.start(rich, 2, id="a")
    env.send_event("a", "msg", "a1")  # before the wait: kept
    env.start(rich, 3, id="b")
    env.start(cancellable, id="c")
    env.advance("2s")
    env.send_event("b", "msg", "b1")
    env.advance("2s")
    env.send_event("a", "msg", "a2")
    env.send_event("b", "msg", "b2")
    env.cancel("c", "no longer needed")
    env.advance("1m")


def run(cache_size: int, script: Callable[[Environment], None] = scenario) -> Environment:
    env = Environment(rich, cancellable, cache_size=cache_size)
    script(env)
    return env


def test_scenario_ends_as_expected() -> None:
    env = run(10_000)
    assert env.status("a") == env.status("b") == rf.Status.COMPLETED
    assert env.status("c") == rf.Status.CANCELLED
    assert env.result("a")["messages"] == ["a1", "a2"]
    assert env.result("b")["tripled"] == [0, 3, 6]


@pytest.mark.parametrize("cache_size", [0, 1, 2])
def test_cached_and_rebuilt_runs_write_the_same_histories(cache_size: int) -> None:
    cached, other = run(10_000), run(cache_size)
    assert other.histories == cached.histories
    assert other.states == cached.states
    assert other.completions == cached.completions


@rf.workflow(name="cr_steps")
async def steps_only(ctx: rf.Context, n: int) -> list[object]:
    BODY_RUNS[ctx.instance_id] += 1
    first = await ctx.all([ctx.step(f"s{i}", flaky, i) for i in range(n)])
    return [first, await ctx.step("last", plain, n)]


def test_a_warm_cache_runs_the_code_from_the_top_once_while_steps_run() -> None:
    BODY_RUNS.clear()
    env = Environment(steps_only, cache_size=10_000)
    env.start(steps_only, 3, id="s")
    assert env.result("s") == [[0, 3, 6], 3]
    assert BODY_RUNS == {"s": 1}  # retries, parallel results and the last step: no rebuild


def test_an_instance_waiting_only_on_sleeps_or_events_leaves_the_cache() -> None:
    BODY_RUNS.clear()
    env = run(10_000)
    # Each wake-up after a sleep or an event wait rebuilds; step results never do.
    assert 1 < BODY_RUNS["a"] <= 6
    assert len(env.decider.cache) == 0


def test_without_a_cache_every_decision_rebuilds() -> None:
    BODY_RUNS.clear()
    env = run(0)
    # At least once per decision that ran code; far more than the cached run.
    assert BODY_RUNS["a"] > 5 and BODY_RUNS["c"] >= 2
    assert len(env.decider.cache) == 0


def test_the_cache_is_bounded_and_forgets_finished_instances() -> None:
    env = Environment(steps_only, cache_size=2)
    env.hold_step("cr_plain")
    for n in range(5):
        env.start(steps_only, 0, id=f"c{n}")  # each waits on its held step
    assert len(env.decider.cache) == 2
    for n in range(5):
        env.terminate(f"c{n}", "done")
    assert len(env.decider.cache) == 0


def test_a_stale_driver_is_never_fed_a_state_it_does_not_reflect() -> None:
    # After an aborted transaction the store hands back the state before command X, and
    # another command Y is folded into it: the cached coroutine advanced by X must not
    # be used.
    items = (rich, flaky, broken, plain)
    cached = Decider(rf.Registry.of(*items), cache_size=100)
    fresh = Decider(rf.Registry.of(*items), cache_size=0)
    start = StartWorkflow(instance_id="s", workflow="cr_rich", input="2")
    state = cached.decide(None, start, T0).state
    assert state == fresh.decide(None, start, T0).state
    x = CompleteStep(instance_id="s", step="t0", attempt=1, result="0")
    y = FailStep(instance_id="s", step="t1", attempt=1, error=ErrorInfo(type="E", message="m"))
    cached.decide(state, x, T0 + 1)  # advances the live coroutine, then "aborts"
    assert cached.decide(state, y, T0 + 2) == fresh.decide(state, y, T0 + 2)
    # And the other way round: the state X produced, folded on.
    after_x = fresh.decide(state, x, T0 + 1).state
    assert cached.decide(after_x, y, T0 + 2) == fresh.decide(after_x, y, T0 + 2)


def test_events_kept_for_later_and_retries_keep_the_live_coroutine() -> None:
    BODY_RUNS.clear()
    fold = Fold.of(rich, flaky, broken, plain, cache_size=10)
    fold(StartWorkflow(instance_id="k", workflow="cr_rich", input="1"))
    fold(SendEvent(instance_id="k", name="msg", payload='"early"'))  # into the inbox
    fold(FailStep(instance_id="k", step="t0", attempt=1, error=ErrorInfo(type="E", message="m")))
    retry_timer = next(t for t in fold.timers if t.startswith("step/t0/retry"))
    fold(FireTimer(instance_id="k", timer=retry_timer), at=fold.timers[retry_timer])
    fold(CompleteStep(instance_id="k", step="t0", attempt=2, result="0"))
    assert BODY_RUNS["k"] == 1


def test_forget_drops_a_live_coroutine_and_the_next_decision_rebuilds_it() -> None:
    env = Environment(steps_only, cache_size=10)
    env.hold_step("cr_plain")
    env.start(steps_only, 0, id="f1")
    assert len(env.decider.cache) == 1
    env.decider.forget("f1")
    assert len(env.decider.cache) == 0
    env.decider.forget("f1")  # forgetting what is not cached is no error
    BODY_RUNS.clear()
    env.release_held()
    assert env.result("f1") == [[], 0]
    assert BODY_RUNS == {"f1": 1}  # rebuilt from the recorded calls once
