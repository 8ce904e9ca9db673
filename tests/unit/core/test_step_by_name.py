"""A step called by its registered name gets the policies it was declared with."""

from __future__ import annotations

import pytest

import replayflow as rf
from replayflow.core.messages import StepFailed, StepScheduled
from replayflow.testing import Environment


@rf.step(name="declared_flaky", retry=rf.Retry(limit=4, delay="1s", jitter=False), timeout="30s")
def declared_flaky() -> str:
    if rf.current_step().attempt < 3:
        raise ConnectionError("not yet")
    return "ok"


@rf.workflow(name="by-name")
async def by_name(ctx: rf.Context) -> str:
    return await ctx.step("call", "declared_flaky")


@rf.workflow(name="by-name-override")
async def by_name_override(ctx: rf.Context) -> str:
    return await ctx.step("call", "declared_flaky", retry=rf.Retry(limit=1))


def test_the_declared_retry_and_timeout_apply() -> None:
    env = Environment(by_name, declared_flaky)
    assert env.start(by_name, id="n1").result() == "ok"
    scheduled = [e for e in env.history("n1") if isinstance(e, StepScheduled)]
    assert [e.attempt for e in scheduled] == [1, 2, 3]
    assert {e.timeout_ms for e in scheduled} == {30_000}


def test_an_explicit_policy_wins() -> None:
    env = Environment(by_name_override, declared_flaky)
    handle = env.start(by_name_override, id="n2")
    with pytest.raises(rf.WorkflowError, match="FAILED"):
        handle.result()
    failures = [e for e in env.history("n2") if isinstance(e, StepFailed)]
    assert len(failures) == 1 and failures[0].retry_at is None
