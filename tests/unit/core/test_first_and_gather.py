"""ctx.first (the first outcome wins) and ctx.all(return_exceptions=True)."""

from __future__ import annotations

import replayflow as rf
from replayflow.testing import Environment


@rf.step(retry=rf.Retry(limit=1))
def fg_fail(x: int) -> int:
    raise ValueError(f"bad {x}")


@rf.step
def fg_ok(x: int) -> int:
    return x


@rf.workflow(name="fg-gather")
async def gather(ctx: rf.Context) -> list:
    results = await ctx.all(
        [ctx.step("a", fg_ok, 1), ctx.step("b", fg_fail, 2), ctx.step("c", fg_ok, 3)],
        return_exceptions=True,
    )
    return [r.error.type if isinstance(r, rf.StepFailed) else r for r in results]


@rf.workflow(name="fg-race")
async def race(ctx: rf.Context) -> dict:
    index, value = await ctx.first(
        [ctx.wait_for_event("approve"), ctx.wait_for_event("reject"), ctx.sleep("deadline", "1h")]
    )
    later = await ctx.wait_for_event("after")
    return {"winner": index, "value": value, "later": later}


def test_gather_returns_failures_in_place() -> None:
    env = Environment(gather)
    handle = env.start(gather, id="g1")
    assert handle.result() == [1, "ValueError", 3]
    assert env.replay("g1").identical


def test_first_takes_the_first_recorded_outcome() -> None:
    env = Environment(race)
    handle = env.start(race, id="r1")
    env.send_event("r1", "reject", "no")
    env.send_event("r1", "approve", "yes")  # too late: and no wait is awaiting it
    env.send_event("r1", "after", 1)
    assert handle.result() == {"winner": 1, "value": "no", "later": 1}
    assert env.replay("r1").identical


def test_first_with_a_timer_winning() -> None:
    env = Environment(race)
    handle = env.start(race, id="r2")
    env.advance("2h")
    env.send_event("r2", "after", 2)
    assert handle.result() == {"winner": 2, "value": None, "later": 2}


def test_first_and_gather_rebuild_like_the_live_run() -> None:
    live, rebuilt = Environment(race), Environment(race, cache_size=0)
    for env in (live, rebuilt):
        env.start(race, id="r3")
        env.send_event("r3", "approve", "y")
        env.send_event("r3", "after", 0)
    assert live.history("r3") == rebuilt.history("r3")
