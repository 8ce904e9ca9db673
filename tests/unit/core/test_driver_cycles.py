"""A driver that finished or was closed is freed by reference counting: it leaves no
cycle (driver, context, coroutine) for the cyclic collector, which the orchestrator
runs rarely (processors/collector.py) and which walked them by the hundred thousand."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest

import replayflow as rf
from replayflow.core.driver import Driver
from replayflow.core.messages import CompleteStep, StartWorkflow

from .helpers import Fold


@rf.step(name="dc_one")
def one(n: int) -> int:
    return n + 1


@rf.workflow(name="dc-flow", version="1")
async def flow(ctx: rf.Context, n: int) -> int:
    if ctx.patched("dc-patch"):
        n = await ctx.step("a", one, n)
    try:
        return await ctx.step("b", one, n)
    finally:
        # ctx.patched in a finally block runs again when the coroutine is closed.
        ctx.patched("dc-patch")


@pytest.fixture
def no_collector() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _live_drivers() -> int:
    """Drivers alive now. Counted among the objects the cyclic collector tracks (it is
    off here, so a driver left in a cycle stays in that list): a compiled Driver
    (setup.py) takes no weak reference."""
    return sum(1 for o in gc.get_objects() if type(o) is Driver)


def test_a_finished_run_frees_its_driver_at_once(no_collector: None) -> None:
    before = _live_drivers()
    fold = Fold.of(flow, one, cache_size=10)
    fold(StartWorkflow(instance_id="w", workflow="dc-flow", input="1"))
    fold(CompleteStep(instance_id="w", step="a", attempt=1, result="2"))
    assert len(fold.decider.cache._drivers) == 1
    assert _live_drivers() == before + 1
    fold(CompleteStep(instance_id="w", step="b", attempt=1, result="3"))
    assert fold.status == "COMPLETED"
    assert _live_drivers() == before  # gone without gc.collect()


def test_a_closed_driver_is_freed_and_still_answers_its_patches(no_collector: None) -> None:
    before = _live_drivers()
    fold = Fold.of(flow, one, cache_size=10)
    fold(StartWorkflow(instance_id="w", workflow="dc-flow", input="1"))
    (driver,) = fold.decider.cache._drivers.values()
    ctx: Any = driver.ctx
    del driver
    assert _live_drivers() == before + 1
    fold.decider.forget("w")  # closes it: the finally block asks ctx.patched again
    assert _live_drivers() == before
    assert ctx.patched("dc-patch") is True  # the run's first answer holds
    assert ctx.patched("other") is False
