"""AsyncClient.schedules: every schedule operation as a coroutine, over the same
operations (here the test environment's, which the client's share an interface with)."""

from __future__ import annotations

import asyncio

import pytest

import replayflow as rf
from replayflow.client_schedules import AsyncSchedules
from replayflow.testing import Environment


@rf.workflow(name="async_sched")
async def ticking(ctx: rf.Context) -> int:
    return 1


def test_the_async_operations_are_the_operations_awaited() -> None:
    env = Environment(ticking)
    schedules = AsyncSchedules(env.schedules)  # type: ignore[arg-type]

    async def scenario() -> list[str]:
        await schedules.create("a", "async_sched", rf.Schedule(every="1h"))
        env.advance("2h")
        await schedules.pause("a", note="enough")
        described = await schedules.describe("a")
        assert described is not None and described.paused
        return [run.instance_id for run in described.recent_runs]

    assert asyncio.run(scenario()) == ["a-20260101T010000Z", "a-20260101T020000Z"]
    with pytest.raises(AttributeError):
        schedules._send  # noqa: B018  # the operations only
