"""What the workflow author touches: ctx.step/sleep/wait_for_event/all and how the
driver answers them."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

import replayflow as rf
from replayflow.core.messages import ErrorInfo, FailStep, StartWorkflow
from replayflow.testing import Environment

from .helpers import T0, Fold, kinds


@rf.step(name="cx_id")
def ident(x: object) -> object:
    return x


@rf.workflow(name="cx_empty_all")
async def empty_all(ctx: rf.Context) -> list[object]:
    return list(await ctx.all([]))


@rf.workflow(name="cx_repeats")
async def repeats(ctx: rf.Context) -> list[object]:
    return [await ctx.step("same", ident, i) for i in range(3)]


@rf.workflow(name="cx_first_failure")
async def first_failure(ctx: rf.Context) -> str:
    try:
        await ctx.all([ctx.step("p", ident, 1), ctx.step("q", ident, 2)])
    except rf.StepFailed as exc:
        return exc.step
    return "none"


@rf.workflow(name="cx_foreign_await")
async def foreign_await(ctx: rf.Context) -> None:
    await asyncio.sleep(0)


@rf.workflow(name="cx_sleep_until")
async def sleep_until(ctx: rf.Context, iso: str) -> int:
    await ctx.sleep_until("until", datetime.fromisoformat(iso))
    return ctx.now_ms()


@rf.workflow(name="cx_no_input")
async def no_input(ctx: rf.Context) -> str:
    return ctx.workflow + "/" + ctx.version + "/" + ctx.instance_id


def test_ctx_all_of_nothing_is_an_empty_list() -> None:
    assert Environment(empty_all).start(empty_all).result() == []


def test_ctx_all_rejects_what_is_not_a_ctx_call() -> None:
    ctx = rf.Context("i", "w", "1", T0)
    with pytest.raises(rf.ValidationError, match=r"ctx\.all takes"):
        ctx.all([ctx.step("a", ident), "not a request"])  # type: ignore[list-item]


def test_a_repeated_step_name_gets_a_count() -> None:
    env = Environment(repeats)
    handle = env.start(repeats)
    assert handle.result() == [0, 1, 2]
    assert [c.key for c in env.states[handle.id].calls] == ["same", "same#2", "same#3"]


@pytest.mark.parametrize(("failing_first", "expected"), [("q", "q"), ("p", "p")])
def test_ctx_all_raises_a_branch_failure_at_once(failing_first: str, expected: str) -> None:
    fold = Fold.of(first_failure, ident)
    fold(StartWorkflow(instance_id="f", workflow="cx_first_failure"))
    error = ErrorInfo(type="E", message="m", retryable=False)
    decision = fold(FailStep(instance_id="f", step=failing_first, attempt=1, error=error))
    assert kinds(decision.events)[-1] == "WorkflowCompleted"
    assert fold.state is not None and fold.state.info.output == f'"{expected}"'


def test_awaiting_anything_but_a_ctx_call_fails_the_instance_clearly() -> None:
    env = Environment(foreign_await)
    with pytest.raises(rf.WorkflowError) as caught:
        env.start(foreign_await).result()
    assert caught.value.error is not None
    assert "may await only ctx operations" in caught.value.error.message


def test_sleep_until_a_moment() -> None:
    env = Environment(sleep_until)
    assert env.start(sleep_until, "2026-01-01T00:00:30+00:00").result() == T0 + 30_000
    with pytest.raises(rf.WorkflowError) as caught:
        env.start(sleep_until, "2026-01-01T00:00:30").result()  # naive: refused
    assert caught.value.error is not None and "timezone-aware" in caught.value.error.message


def test_a_workflow_without_input_and_its_context() -> None:
    env = Environment(no_input)
    assert env.start(no_input, id="n-1").result() == "cx_no_input/1/n-1"
