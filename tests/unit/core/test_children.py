"""Child workflows: started by ctx.child, awaited like a step, stopped with the parent."""

from __future__ import annotations

import pytest

import replayflow as rf
from replayflow.core.state import Status
from replayflow.testing import Environment


@rf.step
def ch_double(x: int) -> int:
    return 2 * x


@rf.workflow(name="ch-child")
async def child(ctx: rf.Context, x: int) -> int:
    if x < 0:
        raise ValueError("negative")
    await ctx.wait_for_event("release") if x == 99 else None
    return await ctx.step("double", ch_double, x)


@rf.workflow(name="ch-parent")
async def parent(ctx: rf.Context, xs: list[int]) -> dict:
    results = await ctx.all([ctx.child(f"c{i}", child, x) for i, x in enumerate(xs)])
    try:
        await ctx.child("bad", "ch-child", -1)
    except rf.StepFailed as exc:
        return {"results": results, "failed": exc.error.type}
    return {"results": results, "failed": None}


def test_children_run_and_report_their_outputs_and_failures() -> None:
    env = Environment(parent, child)
    handle = env.start(parent, [1, 2, 3], id="fam")
    assert handle.result() == {"results": [2, 4, 6], "failed": "ValueError"}
    assert env.status("fam/c0") is Status.COMPLETED
    assert env.status("fam/bad") is Status.FAILED
    assert env.replay("fam").identical


def test_cancelling_the_parent_cancels_a_running_child() -> None:
    env = Environment(parent, child)
    env.start(parent, [99], id="fam2")
    assert env.status("fam2/c0") is Status.RUNNING
    env.cancel("fam2", "stop")
    assert env.status("fam2") is Status.CANCELLED
    assert env.status("fam2/c0") is Status.CANCELLED


def test_an_unknown_child_workflow_fails_the_call() -> None:
    @rf.workflow(name="ch-orphan")
    async def orphan(ctx: rf.Context) -> str:
        await ctx.child("x", "no-such-workflow")
        return "unreachable"

    env = Environment(orphan)
    with pytest.raises(rf.WorkflowError, match=r"UnknownWorkflow|unknown child"):
        env.start(orphan, id="o1").result()


def test_a_child_name_used_again_gets_its_own_instance() -> None:
    @rf.workflow(name="ch-loop")
    async def loop(ctx: rf.Context) -> list[int]:
        return [await ctx.child("each", child, x) for x in (1, 2, 3)]

    env = Environment(loop, child)
    assert env.start(loop, id="lp").result() == [2, 4, 6]
    assert env.status("lp/each+3") is Status.COMPLETED
